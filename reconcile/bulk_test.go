package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// Scan makes memSource a Scanner: its records in map order (no order).
func (m *memSource) Scan(_ context.Context, fn func(Record) error) error {
	if m.failAt < 0 {
		return errors.New("scan boom")
	}
	for id, f := range m.recs {
		if err := fn(Record{ID: id, SourceID: id, Fields: maps.Clone(f)}); err != nil {
			return err
		}
	}
	return nil
}

// Scan makes memTarget a Scanner.
func (m *memTarget) Scan(_ context.Context, fn func(Record) error) error {
	for id, r := range m.recs {
		if err := fn(Record{ID: r.ID, SourceID: id, Fields: maps.Clone(r.Fields)}); err != nil {
			return err
		}
	}
	return nil
}

// The Bulk path reports what the REST path reports, scenario by scenario
// (clean, missing, extra both ways, different, normalised equal, parent,
// stale ID map entries), with sort runs of 4 records spilled to disk.
func TestRunBulk(t *testing.T) { testRun(t, 1) }

// Below the threshold a run stays on the REST path; a scan error ends the
// run with the side named.
func TestRunBulkThresholdAndErrors(t *testing.T) {
	s, tg := synced(10)
	r, err := New(Config{Source: s, Target: tg, Fields: fields, BulkThreshold: 11})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Run(t.Context()); err != nil || res.Bulk || !res.Clean() {
		t.Errorf("10 records under a threshold of 11: %+v, %v", res, err)
	}
	s.failAt = -1
	r, _ = New(Config{Source: s, Target: tg, Fields: fields, BulkThreshold: 10, TempDir: t.TempDir()})
	if _, err := r.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "scan the source: scan boom") {
		t.Errorf("scan failure: got %v", err)
	}
	if _, err := New(Config{Source: s, Target: tg, Fields: fields, BulkThreshold: -1}); err == nil {
		t.Error("a negative threshold was accepted")
	}
}

// The sorter returns every record in key order whatever the order in,
// across runs on disk and the one left in memory, values intact.
func TestSorter(t *testing.T) {
	for _, run := range []int{1, 3, 7, 1000} {
		s := &sorter{dir: t.TempDir(), run: run}
		var keys []string
		for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(100) {
			k := fmt.Sprintf("k%03d", i%60) // duplicates too
			keys = append(keys, k)
			if err := s.add(k, Record{ID: "t" + k, SourceID: k, Fields: map[string]any{"n": i, "b": true, "x": nil}}); err != nil {
				t.Fatal(err)
			}
		}
		m, err := s.merge()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			r, ok := m.peek()
			if !ok {
				break
			}
			if r.ID != "t"+r.Key || r.F["b"] != true || r.F["x"] != nil || fmt.Sprint(r.F["n"]) == "" {
				t.Errorf("run %d: record %+v", run, r)
			}
			got = append(got, r.Key)
			if err := m.pop(); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(got, keys) {
			t.Errorf("run %d: got %d keys %v…, want %d sorted", run, len(got), got[:min(5, len(got))], len(keys))
		}
		s.close()
	}
}

// seedPair fills a source and a target fake org with n synced records, a
// tenth of them with a parent, and returns the source IDs.
func seedPair(t *testing.T, sf, tf *fakeorg.Org, n int) []string {
	t.Helper()
	var ids []string
	var parent, parentTarget string
	for i := range n {
		rec := fakeorg.Record{"Name": fmt.Sprintf("Account %d", i), "Phone": "555-0100", "AnnualRevenue": 1000.5}
		trec := fakeorg.Record{"Name": rec["Name"], "Phone": "555-0100", "AnnualRevenue": 1000.5}
		if i%10 == 1 {
			rec["ParentId"], trec["ParentId"] = parent, parentTarget
		}
		id := insert(t, sf, rec)
		trec["Source_Id__c"] = id
		tid := insert(t, tf, trec)
		if i%10 == 0 {
			parent, parentTarget = id, tid
		}
		ids = append(ids, id)
	}
	return ids
}

// Against two fake orgs, the Bulk path finds each kind of difference made
// behind orgsync's back, as the REST path does.
func TestBulkAgainstFakeOrgs(t *testing.T) {
	flds := []Field{{"Name", KindText}, {"Phone", KindText}, {"AnnualRevenue", KindNumber}, {"ParentId", KindID}}
	for _, tt := range []struct {
		name  string
		edit  func(t *testing.T, so, to *Org, tf *fakeorg.Org, ids []string)
		diffs []string
	}{
		{name: "clean", edit: func(*testing.T, *Org, *Org, *fakeorg.Org, []string) {}},
		{
			name: "each kind",
			edit: func(t *testing.T, so, to *Org, tf *fakeorg.Org, ids []string) {
				ctx := t.Context()
				for _, a := range tf.Accounts() {
					switch a["Source_Id__c"] {
					case ids[3]: // deleted in the target
						if err := to.Client().Delete(ctx, "Account", a["Id"].(string)); err != nil {
							t.Fatal(err)
						}
					case ids[5]: // edited in the target; 1000.50 is the same revenue
						if err := to.Client().Update(ctx, "Account", a["Id"].(string), salesforce.Record{"Phone": "999", "AnnualRevenue": "1000.50"}); err != nil {
							t.Fatal(err)
						}
					}
				}
				insert(t, tf, fakeorg.Record{"Name": "added", "Source_Id__c": "001000000000XYZAAA"}) // added in the target
				if err := so.Client().Delete(ctx, "Account", ids[7]); err != nil {                   // deleted in the source
					t.Fatal(err)
				}
			},
			diffs: []string{"different %5 Phone", "extra %7", "extra 001000000000XYZAAA", "missing %3"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sf, so := fakeOrg(t, "00D000000000SRC", OrgConfig{Name: "source", BulkPoll: 1})
			tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target", BulkPoll: 1})
			ids := seedPair(t, sf, tf, 30)
			tt.edit(t, so, to, tf, ids)
			var want []string
			for _, d := range tt.diffs {
				for i := len(ids) - 1; i >= 0; i-- {
					d = strings.ReplaceAll(d, fmt.Sprintf("%%%d", i), ids[i])
				}
				want = append(want, d)
			}
			slices.Sort(want)
			for _, threshold := range []int{0, 1} {
				var got []string
				r, err := New(Config{
					Source: &SourceOrg{Org: so, Fields: flds}, Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"},
					Fields: flds, BulkThreshold: threshold, PageSize: 7, SortRun: 8, TempDir: t.TempDir(),
					Report: func(d Difference) {
						line := string(d.Kind) + " " + d.SourceID
						if len(d.Fields) > 0 {
							line += " " + strings.Join(d.SortedFieldNames(), ",")
						}
						got = append(got, line)
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				res, err := r.Run(t.Context())
				if err != nil {
					t.Fatalf("threshold %d: %v", threshold, err)
				}
				slices.Sort(got)
				if res.Bulk != (threshold > 0) || !slices.Equal(got, want) {
					t.Errorf("threshold %d (bulk %v): %s\n%s\nwant:\n%s", threshold, res.Bulk, res.Summary(),
						strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
		})
	}
}

// Above the threshold the Bulk path makes a small fraction of the REST
// path's calls: a few per query job and per set of results instead of a
// page and a lookup per page on each side. Pages of 250 keep the fake
// orgs' IN evaluation quick under -race; the figures per 100,000 records
// at the default page size are in docs/reconcile.md.
func TestBulkUsesFewerCalls(t *testing.T) {
	const n, pageSize = 2000, 250
	flds := []Field{{"Name", KindText}, {"Phone", KindText}, {"AnnualRevenue", KindNumber}, {"ParentId", KindID}}
	sf, so := fakeOrg(t, "00D000000000SRC", OrgConfig{Name: "source", BulkPoll: 1})
	tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target", BulkPoll: 1})
	seedPair(t, sf, tf, n)
	calls := map[bool]int{}
	for _, threshold := range []int{0, n} {
		s0, t0 := sf.Stats().APICalls, tf.Stats().APICalls
		r, err := New(Config{
			Source: &SourceOrg{Org: so, Fields: flds}, Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"},
			Fields: flds, BulkThreshold: threshold, PageSize: pageSize, TempDir: t.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Clean() || res.SourceRecords != n || res.Bulk != (threshold > 0) {
			t.Fatalf("threshold %d: %+v", threshold, res)
		}
		calls[res.Bulk] = sf.Stats().APICalls - s0 + tf.Stats().APICalls - t0
		t.Logf("bulk %v: %d calls for %d records per org", res.Bulk, calls[res.Bulk], n)
	}
	if calls[true]*3 > calls[false] {
		t.Errorf("bulk path: %d calls, REST path %d: want at most a third", calls[true], calls[false])
	}
}

// A run that ends while its query jobs are still processing aborts them
// on both orgs, and says which side it was reading.
func TestBulkAbortsItsJobs(t *testing.T) {
	flds := []Field{{"Name", KindText}}
	sf, so := fakeOrg(t, "00D000000000SRC", OrgConfig{Name: "source", BulkPoll: 1})
	tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target", BulkPoll: 1})
	seedPair(t, sf, tf, 3)
	hour := time.Hour
	for _, f := range []*fakeorg.Org{sf, tf} {
		if err := f.Configure(fakeorg.ConfigPatch{BulkProcessingDelay: &hour}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, err := New(Config{
		Source: &SourceOrg{Org: so, Fields: flds}, Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"},
		Fields: flds, BulkThreshold: 1, TempDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cancel once both orgs have been polled a few times.
	go func() {
		for sf.Stats().ByRoute["GET /jobs/query/{id}"] < 3 || tf.Stats().ByRoute["GET /jobs/query/{id}"] < 3 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
	}()
	_, err = r.Run(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "scan the") {
		t.Errorf("Run: got %v, want the cancellation, naming the scan", err)
	}
	for name, f := range map[string]*fakeorg.Org{"source": sf, "target": tf} {
		if got := f.Stats().ByRoute["PATCH /jobs/query/{id}"]; got != 1 {
			t.Errorf("%s: %d aborts, want 1 (%v)", name, got, f.Stats().ByRoute)
		}
	}
}

// A query job that ends Failed ends the run with Salesforce's message, and
// is deleted.
func TestBulkFailedJob(t *testing.T) {
	f, err := fakeorg.New(fakeorg.Config{OrgID: "00D000000000SRC", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The fake's jobs always complete: answer every job poll Failed.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/jobs/query/") && !strings.HasSuffix(r.URL.Path, "/results") {
			id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":%q,"operation":"query","object":"Account","state":"Failed","errorMessage":"Query timed out"}`, id)
			return
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	auth, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: auth, APIVersion: "61.0"})
	if err != nil {
		t.Fatal(err)
	}
	so, err := NewOrg(OrgConfig{Client: c, Name: "source", RateLimit: -1, BulkPoll: 1})
	if err != nil {
		t.Fatal(err)
	}
	tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target", BulkPoll: 1})
	seedPair(t, f, tf, 3)
	flds := []Field{{"Name", KindText}}
	r, err := New(Config{
		Source: &SourceOrg{Org: so, Fields: flds}, Target: &TargetOrg{Org: to, Fields: flds, ExternalIDField: "Source_Id__c"},
		Fields: flds, BulkThreshold: 1, TempDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "ended Failed: Query timed out") || !strings.Contains(err.Error(), "scan the source") {
		t.Errorf("Run: got %v", err)
	}
	if got := f.Stats().ByRoute["DELETE /jobs/query/{id}"]; got != 1 {
		t.Errorf("the failed job was deleted %d times, want 1", got)
	}
}
