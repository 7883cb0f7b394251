package store_test

import (
	"testing"
	"time"

	"orgsync/store"
)

// Ensure that checkpoints read back as set, start out zero, are replaced by
// later writes, are kept apart by name and survive Close and Open.
func TestStore_Checkpoint(t *testing.T) {
	s := mustOpen(t)
	t1 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t2 := time.Date(2026, 11, 22, 11, 0, 0, 5, time.FixedZone("CET", 3600))

	steps := []struct {
		name   string
		set    map[string]store.Checkpoint
		reopen bool
		want   map[string]store.Checkpoint
	}{
		{
			name: "never set",
			want: map[string]store.Checkpoint{"poll": {}, "other": {}},
		},
		{
			name: "set",
			set:  map[string]store.Checkpoint{"poll": {Time: t1, ID: srcID(1)}},
			want: map[string]store.Checkpoint{"poll": {Time: t1, ID: srcID(1)}, "other": {}},
		},
		{
			name: "overwritten",
			set:  map[string]store.Checkpoint{"poll": {Time: t2, ID: srcID(2)}},
			want: map[string]store.Checkpoint{"poll": {Time: t2, ID: srcID(2)}, "other": {}},
		},
		{
			name: "second name",
			set:  map[string]store.Checkpoint{"other": {Time: t1}},
			want: map[string]store.Checkpoint{"poll": {Time: t2, ID: srcID(2)}, "other": {Time: t1}},
		},
		{
			name:   "after reopen",
			reopen: true,
			want:   map[string]store.Checkpoint{"poll": {Time: t2, ID: srcID(2)}, "other": {Time: t1}},
		},
		{
			name: "set to zero",
			set:  map[string]store.Checkpoint{"poll": {}},
			want: map[string]store.Checkpoint{"poll": {}, "other": {Time: t1}},
		},
	}
	for _, st := range steps {
		for name, cp := range st.set {
			if err := s.SetCheckpoint(name, cp); err != nil {
				t.Fatalf("%s: SetCheckpoint(%q): %v", st.name, name, err)
			}
		}
		if st.reopen {
			s = reopen(t, s)
		}
		for name, want := range st.want {
			got, err := s.Checkpoint(name)
			if err != nil {
				t.Errorf("%s: Checkpoint(%q): %v", st.name, name, err)
				continue
			}
			if !got.Time.Equal(want.Time) || got.ID != want.ID {
				t.Errorf("%s: Checkpoint(%q): got %v, want %v", st.name, name, got, want)
			}
			if got.IsZero() != want.IsZero() {
				t.Errorf("%s: Checkpoint(%q).IsZero(): got %v, want %v", st.name, name, got.IsZero(), want.IsZero())
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("%s: Checkpoint(%q).Time: got location %v, want UTC", st.name, name, got.Time.Location())
			}
		}
	}

	if err := s.SetCheckpoint("", store.Checkpoint{ID: srcID(1)}); err == nil {
		t.Error("SetCheckpoint with an empty name: got nil error, want one")
	}
	if _, err := s.Checkpoint(""); err == nil {
		t.Error("Checkpoint with an empty name: got nil error, want one")
	}
}
