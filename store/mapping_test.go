package store_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"orgsync/store"
)

// Ensure that a mapping reads back the same in both directions.
func TestStore_RoundTrip(t *testing.T) {
	s := mustOpen(t)
	berlin := time.FixedZone("CET", 3600)
	want := []store.Mapping{
		{SourceID: srcID(1), TargetID: dstID(1), WrittenAt: time.Date(2026, 11, 22, 10, 0, 0, 1, time.UTC)},
		{SourceID: srcID(2), TargetID: dstID(2), WrittenAt: time.Date(2026, 11, 22, 11, 0, 0, 0, berlin)},
		{SourceID: srcID(3), TargetID: dstID(3), WrittenAt: time.Now()}, // with a monotonic reading
	}
	mustPut(t, s, want...)

	for _, w := range want {
		got, err := s.Target(w.SourceID)
		if err != nil || !equalMapping(got, w) {
			t.Errorf("Target(%s): got %v, %v; want %v", w.SourceID, got, err, w)
		}
		if got.WrittenAt.Location() != time.UTC {
			t.Errorf("Target(%s).WrittenAt: got location %v, want UTC", w.SourceID, got.WrittenAt.Location())
		}
		got, err = s.Source(w.TargetID)
		if err != nil || !equalMapping(got, w) {
			t.Errorf("Source(%s): got %v, %v; want %v", w.TargetID, got, err, w)
		}
	}
	if n, err := s.Count(); err != nil || n != len(want) {
		t.Errorf("Count: got %d, %v; want %d", n, err, len(want))
	}
}

// Ensure that absent IDs give ErrNotFound in both directions.
func TestStore_NotFound(t *testing.T) {
	s := mustOpen(t)
	mustPut(t, s, store.Mapping{SourceID: srcID(1), TargetID: dstID(1)})
	tests := []struct {
		name string
		get  func(string) (store.Mapping, error)
		id   string
	}{
		{name: "Target absent", get: s.Target, id: srcID(2)},
		{name: "Target of a target ID", get: s.Target, id: dstID(1)},
		{name: "Target empty", get: s.Target, id: ""},
		{name: "Source absent", get: s.Source, id: dstID(2)},
		{name: "Source of a source ID", get: s.Source, id: srcID(1)},
		{name: "Source empty", get: s.Source, id: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get(tt.id)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("got %v, %v; want ErrNotFound", got, err)
			}
			if got != (store.Mapping{}) {
				t.Errorf("got %v, want the zero Mapping", got)
			}
		})
	}
}

// Ensure that the map stays one-to-one when entries are rewritten.
func TestStore_PutMappings_Rewrite(t *testing.T) {
	a, b := srcID(1), srcID(2)
	x, y := dstID(1), dstID(2)
	tests := []struct {
		name       string
		batches    [][]store.Mapping
		wantTarget map[string]string // source → target; "" means absent
		wantSource map[string]string // target → source; "" means absent
		wantCount  int
	}{
		{
			name:       "new target removes old reverse entry",
			batches:    [][]store.Mapping{{{SourceID: a, TargetID: x}}, {{SourceID: a, TargetID: y}}},
			wantTarget: map[string]string{a: y},
			wantSource: map[string]string{x: "", y: a},
			wantCount:  1,
		},
		{
			name:       "rewrite within one batch",
			batches:    [][]store.Mapping{{{SourceID: a, TargetID: x}, {SourceID: a, TargetID: y}}},
			wantTarget: map[string]string{a: y},
			wantSource: map[string]string{x: "", y: a},
			wantCount:  1,
		},
		{
			name:       "same mapping twice",
			batches:    [][]store.Mapping{{{SourceID: a, TargetID: x}}, {{SourceID: a, TargetID: x}}},
			wantTarget: map[string]string{a: x},
			wantSource: map[string]string{x: a},
			wantCount:  1,
		},
		{
			name:       "target taken by another source",
			batches:    [][]store.Mapping{{{SourceID: a, TargetID: x}}, {{SourceID: b, TargetID: x}}},
			wantTarget: map[string]string{a: "", b: x},
			wantSource: map[string]string{x: b},
			wantCount:  1,
		},
		{
			name: "swap targets",
			batches: [][]store.Mapping{
				{{SourceID: a, TargetID: x}, {SourceID: b, TargetID: y}},
				{{SourceID: a, TargetID: y}, {SourceID: b, TargetID: x}},
			},
			wantTarget: map[string]string{a: y, b: x},
			wantSource: map[string]string{x: b, y: a},
			wantCount:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for _, batch := range tt.batches {
				mustPut(t, s, batch...)
			}
			for src, want := range tt.wantTarget {
				m, err := s.Target(src)
				if want == "" {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Target(%s): got %v, %v; want ErrNotFound", src, m, err)
					}
				} else if err != nil || m.TargetID != want {
					t.Errorf("Target(%s): got %v, %v; want %s", src, m.TargetID, err, want)
				}
			}
			for dst, want := range tt.wantSource {
				m, err := s.Source(dst)
				if want == "" {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Source(%s): got %v, %v; want ErrNotFound", dst, m, err)
					}
				} else if err != nil || m.SourceID != want {
					t.Errorf("Source(%s): got %v, %v; want %s", dst, m.SourceID, err, want)
				}
			}
			if n, err := s.Count(); err != nil || n != tt.wantCount {
				t.Errorf("Count: got %d, %v; want %d", n, err, tt.wantCount)
			}
		})
	}
}

// Ensure that a rewrite updates the time and a zero time becomes now.
func TestStore_PutMappings_WrittenAt(t *testing.T) {
	s := mustOpen(t)
	before := time.Now()
	mustPut(t, s, store.Mapping{SourceID: srcID(1), TargetID: dstID(1)})
	after := time.Now()
	m, err := s.Target(srcID(1))
	if err != nil {
		t.Fatal(err)
	}
	if m.WrittenAt.Before(before) || m.WrittenAt.After(after) {
		t.Errorf("zero WrittenAt stored as %v, want between %v and %v", m.WrittenAt, before, after)
	}

	later := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	mustPut(t, s, store.Mapping{SourceID: srcID(1), TargetID: dstID(1), WrittenAt: later})
	for _, get := range []func() (store.Mapping, error){
		func() (store.Mapping, error) { return s.Target(srcID(1)) },
		func() (store.Mapping, error) { return s.Source(dstID(1)) },
	} {
		if m, err := get(); err != nil || !m.WrittenAt.Equal(later) {
			t.Errorf("got %v, %v; want WrittenAt %v", m, err, later)
		}
	}
}

// Ensure that a bad entry fails the whole batch and stores nothing.
func TestStore_PutMappings_Invalid(t *testing.T) {
	tests := []struct {
		name string
		bad  store.Mapping
	}{
		{name: "empty source", bad: store.Mapping{TargetID: dstID(9)}},
		{name: "empty target", bad: store.Mapping{SourceID: srcID(9)}},
		{name: "time before 1678", bad: store.Mapping{SourceID: srcID(9), TargetID: dstID(9), WrittenAt: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "time after 2262", bad: store.Mapping{SourceID: srcID(9), TargetID: dstID(9), WrittenAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			err := s.PutMappings([]store.Mapping{{SourceID: srcID(1), TargetID: dstID(1)}, tt.bad})
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if n, err := s.Count(); err != nil || n != 0 {
				t.Errorf("Count: got %d, %v; want 0", n, err)
			}
		})
	}

	s := mustOpen(t)
	if err := s.PutMappings(nil); err != nil {
		t.Errorf("PutMappings(nil): got %v, want nil", err)
	}
}

// Ensure that Lookup returns exactly the present IDs.
func TestStore_Lookup(t *testing.T) {
	s := mustOpen(t)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		mustPut(t, s, store.Mapping{SourceID: srcID(i), TargetID: dstID(i), WrittenAt: at})
	}
	tests := []struct {
		name string
		in   []string
		want []int // source numbers expected in the result
	}{
		{name: "nil", in: nil, want: nil},
		{name: "all present", in: []string{srcID(1), srcID(2), srcID(3)}, want: []int{1, 2, 3}},
		{name: "present and absent", in: []string{srcID(4), srcID(2), srcID(5)}, want: []int{2}},
		{name: "all absent", in: []string{srcID(4), dstID(1)}, want: nil},
		{name: "duplicates and empty", in: []string{srcID(1), "", srcID(1)}, want: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Lookup(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("got a nil map, want a non-nil one")
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d mappings %v, want %d", len(got), got, len(tt.want))
			}
			for _, n := range tt.want {
				want := store.Mapping{SourceID: srcID(n), TargetID: dstID(n), WrittenAt: at}
				if m, ok := got[srcID(n)]; !ok || !equalMapping(m, want) {
					t.Errorf("got[%s] = %v, %v; want %v", srcID(n), m, ok, want)
				}
			}
		})
	}
}

// Ensure that ForEach visits every mapping in source-ID order and stops at
// fn's error, returning it unchanged.
func TestStore_ForEach(t *testing.T) {
	s := mustOpen(t)
	const n = 500
	var all []store.Mapping
	for _, i := range rand.Perm(n) {
		all = append(all, store.Mapping{SourceID: srcID(i), TargetID: dstID(n - i)})
	}
	mustPut(t, s, all...)

	var got []string
	err := s.ForEach(func(m store.Mapping) error {
		got = append(got, m.SourceID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("got %d mappings, want %d", len(got), n)
	}
	if !slices.IsSorted(got) {
		t.Errorf("ForEach is not in source-ID order: %v", got[:10])
	}

	errStop := errors.New("stop")
	calls := 0
	err = s.ForEach(func(store.Mapping) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Errorf("got %v, want errStop unchanged", err)
	}
	if calls != 3 {
		t.Errorf("fn called %d times, want 3", calls)
	}
}

// Ensure that many goroutines can write at once, without losing or mixing up
// entries (run with -race). Some of them rewrite the same source IDs, which
// must leave the map one-to-one (checked by mustOpen's cleanup).
func TestStore_PutMappings_Concurrent(t *testing.T) {
	s := mustOpen(t)
	const (
		goroutines = 16
		batches    = 10
		batchSize  = 50
		shared     = 20
	)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*batches)
	for g := range goroutines {
		wg.Go(func() {
			for b := range batches {
				ms := make([]store.Mapping, 0, batchSize+1)
				for i := range batchSize {
					n := (g*batches+b)*batchSize + i
					ms = append(ms, store.Mapping{SourceID: srcID(n), TargetID: dstID(n)})
				}
				// A contested entry: every goroutine maps shared source IDs
				// to targets of its own.
				k := b % shared
				ms = append(ms, store.Mapping{SourceID: srcID(1_000_000 + k), TargetID: dstID(1_000_000 + g*shared + k)})
				if err := s.PutMappings(ms); err != nil {
					errs <- err
				}
				if _, err := s.Lookup([]string{ms[0].SourceID, srcID(1_000_000 + k)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	const unique = goroutines * batches * batchSize
	contested := min(batches, shared)
	if n, err := s.Count(); err != nil || n != unique+contested {
		t.Errorf("Count: got %d, %v; want %d", n, err, unique+contested)
	}
	for n := range unique {
		if m, err := s.Target(srcID(n)); err != nil || m.TargetID != dstID(n) {
			t.Fatalf("Target(%s): got %v, %v; want %s", srcID(n), m, err, dstID(n))
		}
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}
