package store_test

import (
	"sync/atomic"
	"testing"
	"time"

	"orgsync/store"
)

const benchBatch = 200

// batchAt returns benchBatch new mappings numbered from first.
func batchAt(first int, at time.Time) []store.Mapping {
	ms := make([]store.Mapping, benchBatch)
	for i := range ms {
		ms[i] = store.Mapping{SourceID: srcID(first + i), TargetID: dstID(first + i), WrittenAt: at}
	}
	return ms
}

// BenchmarkPutMappings writes batches of 200 new mappings from one goroutine,
// each batch one synced transaction.
func BenchmarkPutMappings(b *testing.B) {
	s := mustOpen(b)
	at := time.Now()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ms := batchAt(n, at)
		n += benchBatch
		b.StartTimer()
		if err := s.PutMappings(ms); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/mapping")
}

// BenchmarkPutMappings_Parallel writes batches of 200 from GOMAXPROCS×4
// goroutines, where DB.Batch combines calls into fewer syncs.
func BenchmarkPutMappings_Parallel(b *testing.B) {
	s := mustOpen(b)
	at := time.Now()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			first := int(next.Add(benchBatch)) - benchBatch
			if err := s.PutMappings(batchAt(first, at)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next.Load()), "ns/mapping")
}

// BenchmarkLookup looks up batches of 200 source IDs, half of them present,
// in a map of 100,000 entries.
func BenchmarkLookup(b *testing.B) {
	s := mustOpen(b)
	const size = 100_000
	at := time.Now()
	for first := 0; first < size; first += 5000 {
		ms := make([]store.Mapping, 0, 5000)
		for i := first; i < first+5000; i++ {
			ms = append(ms, store.Mapping{SourceID: srcID(i), TargetID: dstID(i), WrittenAt: at})
		}
		if err := s.PutMappings(ms); err != nil {
			b.Fatal(err)
		}
	}
	// Spread over the map; odd numbers past size are absent.
	ids := make([]string, benchBatch)
	for i := range ids {
		if i%2 == 0 {
			ids[i] = srcID(i * (size / benchBatch))
		} else {
			ids[i] = srcID(size + i)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Lookup(ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != benchBatch/2 {
			b.Fatalf("got %d mappings, want %d", len(got), benchBatch/2)
		}
	}
}
