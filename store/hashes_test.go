package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"orgsync/store"
)

// Record hashes are stored per set, survive a reopen, are removed on
// request and pruned by change time; a read-only store refuses writes.
func TestRecordHashes(t *testing.T) {
	s := mustOpen(t)
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 123e6, time.UTC)
	put := map[string]store.RecordHash{
		srcID(1): {Stamp: t0, Hash: 1},
		srcID(2): {Stamp: t0.Add(time.Hour), Hash: 0xfedcba9876543210},
		srcID(3): {Stamp: t0.Add(2 * time.Hour), Hash: 3},
	}
	if err := s.UpdateRecordHashes("poll:A", put, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRecordHashes("poll:B", map[string]store.RecordHash{srcID(1): {Stamp: t0, Hash: 9}}, nil); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	got, err := s.RecordHashes("poll:A", []string{srcID(1), srcID(2), srcID(3), srcID(4)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[srcID(2)] != put[srcID(2)] || !got[srcID(1)].Stamp.Equal(t0) {
		t.Errorf("got %v, want %v", got, put)
	}
	if other, _ := s.RecordHashes("poll:B", []string{srcID(1)}); other[srcID(1)].Hash != 9 {
		t.Errorf("set B: %v", other)
	}
	if err := s.UpdateRecordHashes("poll:A", nil, []string{srcID(3)}); err != nil {
		t.Fatal(err)
	}
	removed, left, err := s.PruneRecordHashes("poll:A", t0.Add(30*time.Minute))
	if err != nil || removed != 1 || left != 1 {
		t.Errorf("prune: removed %d left %d (%v), want 1 and 1", removed, left, err)
	}
	got, _ = s.RecordHashes("poll:A", []string{srcID(1), srcID(2), srcID(3)})
	if len(got) != 1 || got[srcID(2)].Hash != put[srcID(2)].Hash {
		t.Errorf("after delete and prune: %v, want only %s", got, srcID(2))
	}
	if none, err := s.RecordHashes("never", []string{srcID(1)}); err != nil || len(none) != 0 {
		t.Errorf("unknown set: %v, %v", none, err)
	}
}

func TestRecordHashesReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "producer.db")
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro := openT(t, path, &store.Options{ReadOnly: true})
	if err := ro.UpdateRecordHashes("poll:A", map[string]store.RecordHash{srcID(1): {}}, nil); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("update: got %v, want ErrReadOnly", err)
	}
	if _, _, err := ro.PruneRecordHashes("poll:A", time.Now()); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("prune: got %v, want ErrReadOnly", err)
	}
}
