package reconcile

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"orgsync/salesforce/fakeorg"
)

// The Bulk measurement is off in the normal test command. Run it with
//
//	go test ./reconcile -run TestBulkMeasure -v -reconcile.bulk 100000 -reconcile.latency 150ms -reconcile.bulk-delay 10s -reconcile.paths bulk
//
// It seeds two fake orgs with N synced records each (a tenth with a
// parent), gives every call the latency and every query job the
// processing delay, and runs the paths named (rest, bulk or both) at the
// default rate limit, reporting API calls and time. The fake evaluates IN
// lists record by record, so keep N near 10,000 for the REST path.
var (
	bulkRecords = flag.Int("reconcile.bulk", 0, "records per org for TestBulkMeasure (0: skip)")
	bulkLatency = flag.Duration("reconcile.latency", 150*time.Millisecond, "latency of every fake org call in TestBulkMeasure")
	bulkDelay   = flag.Duration("reconcile.bulk-delay", 10*time.Second, "processing time of each fake query job in TestBulkMeasure")
	bulkPaths   = flag.String("reconcile.paths", "both", "rest, bulk or both")
)

func TestBulkMeasure(t *testing.T) {
	n := *bulkRecords
	if n == 0 {
		t.Skip("set -reconcile.bulk N to run")
	}
	flds := []Field{{"Name", KindText}, {"Phone", KindText}, {"AnnualRevenue", KindNumber}, {"ParentId", KindID}}
	sf, so := fakeOrg(t, "00D000000000SRC", OrgConfig{Name: "source", RateLimit: DefaultRateLimit})
	tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target", RateLimit: DefaultRateLimit})
	seedPair(t, sf, tf, n)
	for _, f := range []*fakeorg.Org{sf, tf} {
		if err := f.Configure(fakeorg.ConfigPatch{Latency: bulkLatency, BulkProcessingDelay: bulkDelay}); err != nil {
			t.Fatal(err)
		}
	}
	for _, bulk := range []bool{false, true} {
		if *bulkPaths != "both" && (*bulkPaths == "bulk") != bulk {
			continue
		}
		threshold := 0
		if bulk {
			threshold = 1
		}
		s0, t0 := sf.Stats().APICalls, tf.Stats().APICalls
		base := liveHeap()
		r, err := New(Config{
			Source: &SourceOrg{Org: so, Fields: flds}, Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"},
			Fields: flds, BulkThreshold: threshold, TempDir: t.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		h := startHeapSampler()
		res, err := r.Run(t.Context())
		took := time.Since(start)
		peak := h.Peak()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Clean() || res.SourceRecords != n {
			t.Errorf("bulk %v: %+v", bulk, res)
		}
		sc, tc := sf.Stats().APICalls-s0, tf.Stats().APICalls-t0
		per := 100000 / float64(n)
		t.Logf("bulk %v, %d records per org, latency %v, query job delay %v, rate limit %v/s: source %d calls, target %d calls, %v; per 100,000 records: %.0f calls in all; heap high-water above the seeded orgs (both fakes' garbage included): %.1f MiB",
			bulk, n, *bulkLatency, *bulkDelay, DefaultRateLimit, sc, tc, took.Round(100*time.Millisecond), float64(sc+tc)*per, float64(peak-min(peak, base))/mib)
	}
}

// bulkScale is the record count of TestScaleBulkMemory:
//
//	go test ./reconcile -run TestScaleBulkMemory -v -reconcile.bulk-scale 200000
var bulkScale = flag.Int("reconcile.bulk-scale", 0, "records per org for TestScaleBulkMemory (0: skip)")

// stride visits 0..n-1 in a scrambled order, as a query job returns rows
// in no order the engine may rely on.
func stride(n int, fn func(i int) error) error {
	const step = 7919 // prime, so every index comes once when n is not a multiple
	if n%step == 0 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	for k, i := 0, 0; k < n; k, i = k+1, (i+step)%n {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (g genSource) Scan(_ context.Context, fn func(Record) error) error {
	return stride(g.n, func(i int) error {
		if i%5000 == 2500 {
			return nil
		}
		return fn(Record{ID: genID(i), SourceID: genID(i), Fields: genFields(i)})
	})
}

func (g genTarget) Scan(_ context.Context, fn func(Record) error) error {
	return stride(g.n, func(i int) error {
		if i%1000 == 999 {
			return nil
		}
		f := genFields(i)
		if i%997 == 0 {
			f["Phone"] = "555-9999"
		}
		return fn(Record{ID: "t" + genID(i), SourceID: genID(i), Fields: f})
	})
}

// TestScaleBulkMemory: the Bulk path's engine over generated scans in a
// scrambled order: the live heap while merging stays at the sorter's runs'
// read buffers and one page, however many records.
func TestScaleBulkMemory(t *testing.T) {
	n := *bulkScale
	if n == 0 {
		t.Skip("set -reconcile.bulk-scale N to run")
	}
	base := liveHeap()
	var marks []string
	var livePeak uint64
	nextPct := 10
	r, err := New(Config{Source: genSource{n}, Target: genTarget{n}, Fields: fields, BulkThreshold: 1, TempDir: t.TempDir(),
		Report: func(Difference) {},
		Progress: func(p Progress) {
			if p.Phase == PhaseCompare && p.Done*100 < nextPct*p.Total {
				return
			}
			if p.Phase != PhaseCompare && p.Done%(5*DefaultSortRun) != 0 {
				return
			}
			l := liveHeap()
			livePeak = max(livePeak, l)
			marks = append(marks, fmt.Sprintf("%s %d: %.1f MiB", p.Phase, p.Done, float64(l-min(l, base))/mib))
			if p.Phase == PhaseCompare {
				nextPct += 20
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	h := startHeapSampler()
	res, err := r.Run(t.Context())
	peak := h.Peak()
	if err != nil {
		t.Fatal(err)
	}
	if res.Missing != n/1000 || res.Extra != n/5000 || !res.Bulk {
		t.Errorf("missing %d, extra %d, bulk %v; want %d and %d", res.Missing, res.Extra, res.Bulk, n/1000, n/5000)
	}
	t.Logf("%d records per org: %s", n, res.Summary())
	t.Logf("live heap above the start: %v", marks)
	t.Logf("live heap high-water at those marks: %.1f MiB; heap objects high-water (sampled every 1ms, garbage included): %.1f MiB",
		float64(livePeak-min(livePeak, base))/mib, float64(peak)/mib)
}
