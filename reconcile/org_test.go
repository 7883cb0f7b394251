package reconcile

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// fakeOrg starts a fake org and returns it with an Org over it.
func fakeOrg(t *testing.T, orgID string, cfg OrgConfig) (*fakeorg.Org, *Org) {
	t.Helper()
	f, err := fakeorg.New(fakeorg.Config{OrgID: orgID, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	auth, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: auth, APIVersion: "61.0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Client = c
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1
	}
	o, err := NewOrg(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f, o
}

func insert(t *testing.T, f *fakeorg.Org, rec fakeorg.Record) string {
	t.Helper()
	id, err := f.InsertAccount(rec, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// -api-budget: the run pauses at the budget, makes no call past it while
// paused (only GET /limits probes), and goes on when usage falls below.
func TestOrgPausesAtTheBudget(t *testing.T) {
	paused := make(chan bool, 4)
	f, o := fakeOrg(t, "00D000000000BUD", OrgConfig{Name: "source", APIBudget: 0.5, ProbeInterval: 5 * time.Millisecond,
		OnPause: func(p bool) { paused <- p }})
	limit := 10
	if err := f.Configure(fakeorg.ConfigPatch{DailyAPILimit: &limit}); err != nil {
		t.Fatal(err)
	}
	src := &SourceOrg{Org: o, Fields: []Field{{"Name", KindText}}}
	done := make(chan error, 1)
	go func() {
		for range 8 {
			if _, err := src.Count(t.Context()); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if p := <-paused; !p {
		t.Fatal("first OnPause was false")
	}
	if n := f.Stats().ByRoute["GET /query"]; n != 5 {
		t.Errorf("paused after %d queries, want 5 (50%% of 10)", n)
	}
	more := 1000
	if err := f.Configure(fakeorg.ConfigPatch{DailyAPILimit: &more}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := <-paused; p {
		t.Error("no OnPause(false) after the budget freed")
	}
	st := f.Stats()
	if st.ByRoute["GET /query"] != 8 || int64(st.APICalls) != o.Calls() {
		t.Errorf("fake counted %v, the Org %d calls", st.ByRoute, o.Calls())
	}
}

// The adapters against a fake org: keyset pages in Id order, IN lists
// chunked at MaxIDsPerQuery, parents translated to source IDs, target
// values that are not IDs reported as extra without a failed query.
func TestSourceAndTargetOrgs(t *testing.T) {
	sf, so := fakeOrg(t, "00D000000000SRC", OrgConfig{Name: "source"})
	tf, to := fakeOrg(t, "00D000000000TGT", OrgConfig{Name: "target"})
	flds := []Field{{"Name", KindText}, {"ParentId", KindID}}
	n := MaxIDsPerQuery + 50
	var ids []string
	for i := range n {
		rec := fakeorg.Record{"Name": fmt.Sprintf("A%d", i)}
		if i > 0 {
			rec["ParentId"] = ids[0]
		}
		ids = append(ids, insert(t, sf, rec))
	}
	parentTarget := insert(t, tf, fakeorg.Record{"Name": "A0", "Source_Id__c": ids[0]})
	for i := 1; i < n; i++ {
		insert(t, tf, fakeorg.Record{"Name": fmt.Sprintf("A%d", i), "Source_Id__c": ids[i], "ParentId": parentTarget})
	}
	insert(t, tf, fakeorg.Record{"Name": "junk", "Source_Id__c": "not an id"})

	src := &SourceOrg{Org: so, Fields: flds}
	tgt := &TargetOrg{Org: to, Fields: flds, ExternalIDField: "source_id__c"}
	d, err := to.Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Check(d); err != nil || tgt.ExternalIDField != "Source_Id__c" {
		t.Fatalf("Check: %v, field %q", err, tgt.ExternalIDField)
	}
	if err := (&TargetOrg{ExternalIDField: "Nope__c"}).Check(d); err == nil || !strings.Contains(err.Error(), "Nope__c") {
		t.Errorf("Check of a missing field: %v", err)
	}

	// Only the second of two source pages: the keyset starts after ids[0]
	// (the fake mints IDs in ascending order).
	page, err := src.Page(t.Context(), ids[0], 2000)
	if err != nil || len(page) != n-1 || page[0].ID != ids[1] {
		t.Fatalf("Page after %s: %d records, %v", ids[0], len(page), err)
	}
	before := to.Calls()
	got, err := tgt.BySourceID(t.Context(), ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	// Two chunks, and one query for the parent, which is not in the page.
	if calls := to.Calls() - before; calls != 3 || len(got) != n-1 {
		t.Errorf("BySourceID: %d records in %d calls, want %d in 3", len(got), calls, n-1)
	}
	if p := got[ids[7]].Fields["ParentId"]; p != ids[0] {
		t.Errorf("child's ParentId = %v, want the parent's source ID %s", p, ids[0])
	}
	r, err := New(Config{Source: src, Target: tgt, Fields: flds})
	if err != nil {
		t.Fatal(err)
	}
	var extras []string
	r.cfg.Report = func(d Difference) { extras = append(extras, string(d.Kind)+" "+d.SourceID) }
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Extra != 1 || res.Missing != 0 || res.Different != 0 || len(extras) != 1 || extras[0] != "extra not an id" {
		t.Errorf("run: %+v %v", res, extras)
	}
}
