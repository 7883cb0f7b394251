package reconcile

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// The scale measurements are off in the normal test command. Run them with
//
//	go test ./reconcile -run TestScale -v -reconcile.scale 200000 -reconcile.api 10000
//
// -reconcile.scale N: the engine over N generated records per org
// (TestScaleMemory: no org in the process, so the heap is the engine's own;
// TestScaleHTTP: the same records served over HTTP by synthOrg, through the
// Salesforce client and the adapters, counting API calls); -reconcile.api
// M: the adapters against two fake orgs of M records, counting the API
// calls the fakes served (the fake evaluates IN lists record by record, so
// keep M around 10,000).
var (
	scaleRecords = flag.Int("reconcile.scale", 0, "records per org for TestScaleMemory (0: skip)")
	apiRecords   = flag.Int("reconcile.api", 0, "records per org for TestScaleAPICalls (0: skip)")
)

// genID is the i-th generated Account ID; IDs sort as their numbers.
func genID(i int) string { return salesforce.ID18(fmt.Sprintf("001%012d", i)) }

func genIndex(id string) int {
	n, _ := strconv.Atoi(id[3:15])
	return n
}

func genFields(i int) map[string]any {
	return map[string]any{"Name": fmt.Sprintf("Account %d", i), "Phone": "555-0100", "AnnualRevenue": json.Number("1000.50"),
		"Industry": "Energy", "ParentId": nil, "Description": "a generated account of moderate length for the scale run"}
}

// genSource and genTarget generate n records on the fly, keeping none: the
// target lacks every 1000th record, differs on every 997th, and carries
// every 5000th record's ID after the source deleted it.
type genSource struct{ n int }

func (g genSource) Count(context.Context) (int, error) { return g.n, nil }

func (g genSource) Page(_ context.Context, after string, limit int) ([]Record, error) {
	i := 0
	if after != "" {
		i = genIndex(after) + 1
	}
	var out []Record
	for ; i < g.n && len(out) < limit; i++ {
		if i%5000 == 2500 {
			continue // deleted in the source
		}
		out = append(out, Record{ID: genID(i), SourceID: genID(i), Fields: genFields(i)})
	}
	return out, nil
}

func (g genSource) Live(_ context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		if i := genIndex(id); i < g.n && i%5000 != 2500 {
			out[id] = true
		}
	}
	return out, nil
}

type genTarget struct{ n int }

func (g genTarget) Count(context.Context) (int, error) { return g.n - g.n/1000, nil }

func (g genTarget) BySourceID(_ context.Context, ids []string) (map[string]Record, error) {
	out := make(map[string]Record, len(ids))
	for _, id := range ids {
		i := genIndex(id)
		if i%1000 == 999 {
			continue
		}
		f := genFields(i)
		if i%997 == 0 {
			f["Phone"] = "555-9999"
		}
		out[id] = Record{ID: "t" + id, SourceID: id, Fields: f}
	}
	return out, nil
}

func (g genTarget) Page(_ context.Context, after string, limit int) ([]Record, error) {
	i := 0
	if after != "" {
		i = genIndex(after) + 1
	}
	var out []Record
	for ; i < g.n && len(out) < limit; i++ {
		if i%1000 != 999 {
			out = append(out, Record{ID: "t" + genID(i), SourceID: genID(i)})
		}
	}
	return out, nil
}

// heapSampler records the highest heap-objects figure seen every
// millisecond.
type heapSampler struct {
	mu   sync.Mutex
	peak uint64
	stop chan struct{}
	done chan struct{}
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(h.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			h.mu.Lock()
			h.peak = max(h.peak, sample[0].Value.Uint64())
			h.mu.Unlock()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Peak() uint64 {
	close(h.stop)
	<-h.done
	return h.peak
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const mib = 1 << 20

// TestScaleMemory: memory stays flat however many records: the live heap
// after each page does not grow with the records read.
func TestScaleMemory(t *testing.T) {
	n := *scaleRecords
	if n == 0 {
		t.Skip("set -reconcile.scale N to run")
	}
	base := liveHeap()
	var (
		livePeak uint64
		marks    []string
		pages    int
	)
	nextPct := 10
	r, err := New(Config{Source: genSource{n}, Target: genTarget{n}, Fields: fields, Report: func(Difference) {},
		Progress: func(p Progress) {
			if p.Phase != PhaseSource || p.Done == 0 {
				return
			}
			pages++
			if pages%10 != 0 && p.Done*100 < nextPct*p.Total {
				return
			}
			l := liveHeap()
			livePeak = max(livePeak, l)
			if p.Done*100 >= nextPct*p.Total {
				marks = append(marks, fmt.Sprintf("%d records: %.1f MiB", p.Done, float64(l-min(l, base))/mib))
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
	if res.Missing != n/1000 || res.Extra != n/5000 {
		t.Errorf("missing %d, extra %d; want %d and %d", res.Missing, res.Extra, n/1000, n/5000)
	}
	t.Logf("%d records per org: %s", n, res.Summary())
	t.Logf("live heap above the start, after pages: %v", marks)
	t.Logf("live heap high-water (after a GC at every 10th page): %.1f MiB above the start", float64(livePeak-min(livePeak, base))/mib)
	t.Logf("heap objects high-water (sampled every 1ms, garbage included, GOGC default): %.1f MiB", float64(peak)/mib)
}

// TestScaleAPICalls: API calls per record of the Salesforce adapters, as
// the fake orgs count them.
func TestScaleAPICalls(t *testing.T) {
	n := *apiRecords
	if n == 0 {
		t.Skip("set -reconcile.api N to run")
	}
	sf, so := fakeOrg(t, "00D000000000SRC", OrgConfig{Name: "source"})
	tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target"})
	flds := []Field{{"Name", KindText}, {"Phone", KindText}, {"AnnualRevenue", KindNumber}, {"ParentId", KindID}}
	var parent string
	var parentTarget string
	for i := range n {
		rec := fakeorg.Record{"Name": fmt.Sprintf("Account %d", i), "Phone": "555-0100", "AnnualRevenue": 1000.5}
		if i%10 == 1 {
			rec["ParentId"] = parent // a tenth of the records have a parent
		}
		id := insert(t, sf, rec)
		if i%10 == 0 {
			parent = id
		}
		trec := fakeorg.Record{"Name": rec["Name"], "Phone": "555-0100", "AnnualRevenue": 1000.5, "Source_Id__c": id}
		if i%10 == 1 {
			trec["ParentId"] = parentTarget
		}
		tid := insert(t, tf, trec)
		if i%10 == 0 {
			parentTarget = tid
		}
	}
	s0, t0 := sf.Stats().APICalls, tf.Stats().APICalls
	base := liveHeap()
	r, err := New(Config{Source: &SourceOrg{Org: so, Fields: flds}, Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"}, Fields: flds})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h := startHeapSampler()
	res, err := r.Run(t.Context())
	peak := h.Peak()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() {
		t.Errorf("a synced pair reports %s", res.Summary())
	}
	sc, tc := sf.Stats().APICalls-s0, tf.Stats().APICalls-t0
	t.Logf("%d records per org in %v: source %d calls (%v), target %d calls (%v)", n, time.Since(start).Round(time.Millisecond),
		sc, sf.Stats().ByRoute, tc, tf.Stats().ByRoute)
	t.Logf("heap objects high-water above the seeded orgs (sampled every 1ms; includes both fake orgs' per-query garbage, so an upper bound): %.1f MiB",
		float64(peak-min(peak, base))/mib)
	t.Logf("per 100,000 records: source %.0f calls, target %.0f calls, %.4f calls per record in all",
		float64(sc)*100000/float64(n), float64(tc)*100000/float64(n), float64(sc+tc)/float64(n))
}
