package reconcile

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orgsync/salesforce"
)

// synthOrg is an HTTP server that answers the queries SourceOrg and
// TargetOrg send, over generated records it never stores, so that a run
// over hundreds of thousands of records goes through the real client (HTTP,
// JSON decoding) while the heap holds only what the run itself keeps. The
// records follow genSource and genTarget: the target lacks every 1000th,
// differs on every 997th, and keeps every 5000th that the source deleted.
type synthOrg struct {
	n      int
	target bool
	calls  atomic.Int64
}

var (
	reIN    = regexp.MustCompile(`WHERE (Id|Source_Id__c) IN \(([^)]*)\)`)
	reAfter = regexp.MustCompile(`(Id|Source_Id__c) > '([^']*)'`)
)

func (s *synthOrg) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if !strings.HasSuffix(r.URL.Path, "/query") {
		http.Error(w, "not here", http.StatusNotFound)
		return
	}
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/1000000", s.calls.Load()))
	q := r.URL.Query().Get("q")
	var ids []int
	switch {
	case strings.HasPrefix(q, "SELECT COUNT()"):
		n := s.n - s.n/5000
		if s.target {
			n = s.n - s.n/1000
		}
		writeJSONPage(w, n, nil)
		return
	case reIN.MatchString(q):
		for _, lit := range strings.Split(reIN.FindStringSubmatch(q)[2], ", ") {
			ids = append(ids, genIndex(strings.Trim(lit, "'")))
		}
	default: // a keyset page
		from := 0
		if m := reAfter.FindStringSubmatch(q); m != nil {
			from = genIndex(m[2]) + 1
		}
		for i := from; i < s.n && len(ids) < 2000; i++ {
			if s.exists(i) {
				ids = append(ids, i)
			}
		}
	}
	var recs []map[string]any
	for _, i := range ids {
		if !s.exists(i) {
			continue
		}
		rec := map[string]any{"attributes": map[string]any{"type": "Account"}, "Id": genID(i)}
		if s.target {
			rec["Id"] = salesforce.ID18(fmt.Sprintf("001T%011d", i))
			rec["Source_Id__c"] = genID(i)
		}
		if !strings.HasPrefix(q, "SELECT Id FROM") && !strings.HasPrefix(q, "SELECT Id, Source_Id__c FROM") {
			for k, v := range genFields(i) {
				rec[k] = v
			}
			if s.target && i%997 == 0 {
				rec["Phone"] = "555-9999"
			}
		}
		recs = append(recs, rec)
	}
	writeJSONPage(w, len(recs), recs)
}

func (s *synthOrg) exists(i int) bool {
	if i < 0 || i >= s.n {
		return false
	}
	if s.target {
		return i%1000 != 999
	}
	return i%5000 != 2500
}

func writeJSONPage(w http.ResponseWriter, total int, recs []map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	if recs == nil {
		recs = []map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"totalSize": total, "done": true, "records": recs})
}

func synthClient(t *testing.T, h http.Handler) *Org {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	auth, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: srv.URL, AccessToken: "synthetic"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: auth, APIVersion: "61.0"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOrg(OrgConfig{Client: c, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestScaleHTTP: a run over -reconcile.scale records per org through the
// Salesforce client and the adapters: the live heap stays flat, and the
// API calls per record are counted by the servers.
func TestScaleHTTP(t *testing.T) {
	n := *scaleRecords
	if n == 0 {
		t.Skip("set -reconcile.scale N to run")
	}
	src, tgt := &synthOrg{n: n}, &synthOrg{n: n, target: true}
	so, to := synthClient(t, src), synthClient(t, tgt)
	flds := []Field{{"Name", KindText}, {"Phone", KindText}, {"AnnualRevenue", KindNumber}, {"Industry", KindPicklist}, {"ParentId", KindID}, {"Description", KindText}}
	base := liveHeap()
	var (
		livePeak uint64
		marks    []string
		pages    int
	)
	nextPct := 10
	r, err := New(Config{
		Source: &SourceOrg{Org: so, Fields: flds},
		Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"},
		Fields: flds, Report: func(Difference) {},
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
	start := time.Now()
	res, err := r.Run(t.Context())
	peak := h.Peak()
	if err != nil {
		t.Fatal(err)
	}
	if res.Missing != n/1000 || res.Extra != n/5000 {
		t.Errorf("missing %d, extra %d; want %d and %d", res.Missing, res.Extra, n/1000, n/5000)
	}
	sc, tc := src.calls.Load(), tgt.calls.Load()
	t.Logf("%d records per org in %v: %s", n, time.Since(start).Round(time.Millisecond), res.Summary())
	t.Logf("API calls: source %d, target %d; per 100,000 records: source %.0f, target %.0f (%.4f calls per record in all)",
		sc, tc, float64(sc)*100000/float64(n), float64(tc)*100000/float64(n), float64(sc+tc)/float64(n))
	t.Logf("live heap above the start, after pages: %v", marks)
	t.Logf("live heap high-water (after a GC at every 10th page): %.1f MiB above the start", float64(livePeak-min(livePeak, base))/mib)
	t.Logf("heap objects high-water (sampled every 1ms, garbage and both servers' encoding included, GOGC default): %.1f MiB", float64(peak)/mib)
}
