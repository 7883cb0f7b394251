package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orgsync/capture"
	"orgsync/internal/app"
	"orgsync/queue/queuetest"
	"orgsync/reconcile"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// twoOrgs is a source and a target fake org, NATS and a running worker.
type twoOrgs struct {
	source, target     *fakeorg.Org
	srcURL, tgtURL     string
	src, tgt           *salesforce.Client // for edits behind orgsync's back
	natsURL, dataDir   string
	srcFlags, tgtFlags []string
	reconcileFlags     []string // added to every reconcile run (-bulk-threshold)
	getenv             func(string) string
	sourceIDs          []string // seeded source records, in creation order
	parentID, childID  string

	workerStderr  *syncBuffer
	workerDone    chan int
	workerStopped bool
	stopWorker    context.CancelFunc
}

func newOrg(t *testing.T, orgID string) (*fakeorg.Org, string, *salesforce.Client) {
	t.Helper()
	org, err := fakeorg.New(fakeorg.Config{OrgID: orgID, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	_, c, err := app.NewOrgClient(t.Context(), salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"}, "61.0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return org, srv.URL, c
}

// startTwoOrgs seeds n source accounts (the second a child of the first),
// syncs them with `producer poll -once` and a running worker, and waits
// until the target has them all, the child linked.
func startTwoOrgs(t *testing.T, n int) *twoOrgs {
	t.Helper()
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	e := &twoOrgs{natsURL: ns.ClientURL(), dataDir: t.TempDir()}
	e.source, e.srcURL, e.src = newOrg(t, "00D000000000SRC")
	e.target, e.tgtURL, e.tgt = newOrg(t, "00D000000000TGT")
	e.srcFlags = []string{"-source-url", e.srcURL, "-source-client-id", "demo", "-source-client-secret", "demo-secret"}
	e.tgtFlags = []string{"-target-url", e.tgtURL, "-target-client-id", "demo", "-target-client-secret", "demo-secret"}
	for i := range n {
		rec := fakeorg.Record{
			"Name": fmt.Sprintf("Account %03d", i), "Phone": fmt.Sprintf("555-%04d", i),
			"AnnualRevenue": 1000.5 + float64(i), "Industry": "Technology", "NumberOfEmployees": i,
		}
		if i == 1 {
			rec["ParentId"] = e.sourceIDs[0]
		}
		id, err := e.source.InsertAccount(rec, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		e.sourceIDs = append(e.sourceIDs, id)
	}
	e.parentID, e.childID = e.sourceIDs[0], e.sourceIDs[1]
	e.startWorker(t)
	t.Cleanup(e.stop)

	auth := salesforce.AuthConfig{URL: e.srcURL, ClientID: "demo", ClientSecret: "demo-secret"}
	if _, err := app.RunPoller(t.Context(), app.PollerConfig{
		NATS: app.NATSConfig{URL: e.natsURL}, Source: auth, APIVersion: "61.0",
		Poll: capture.PollerConfig{RateLimit: -1}, DataDir: t.TempDir(), Once: true,
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the target to hold every source record, the child linked", func() bool {
		recs := e.target.Accounts()
		if len(recs) != n {
			return false
		}
		for _, r := range recs {
			if r["Source_Id__c"] == e.childID {
				return r["ParentId"] != nil
			}
		}
		return false
	})
	return e
}

func (e *twoOrgs) startWorker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.stopWorker = cancel
	e.workerStderr = &syncBuffer{}
	e.workerDone = make(chan int, 1)
	e.workerStopped = false
	args := append([]string{"run", "-nats-url", e.natsURL, "-data-dir", e.dataDir, "-worker-id", "w1", "-linger", "20ms"}, e.tgtFlags...)
	go func() { e.workerDone <- run(ctx, args, noEnv, nil, &bytes.Buffer{}, e.workerStderr) }()
}

func (e *twoOrgs) stop() {
	if e.workerStopped {
		return
	}
	e.workerStopped = true
	e.stopWorker()
	<-e.workerDone
}

// reconcileCmd runs `worker reconcile` with both orgs' flags.
func (e *twoOrgs) reconcile(t *testing.T, extra ...string) (code int, stdout, stderr string) {
	t.Helper()
	args := append(append(append([]string{"reconcile", "-rate-limit", "-1"}, e.srcFlags...), e.tgtFlags...), e.reconcileFlags...)
	args = append(args, extra...)
	getenv := e.getenv
	if getenv == nil {
		getenv = noEnv
	}
	var out, errb bytes.Buffer
	code = run(t.Context(), args, getenv, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// targetBySource returns the target record carrying sourceID.
func (e *twoOrgs) targetBySource(sourceID string) (fakeorg.Record, bool) {
	for _, r := range e.target.Accounts() {
		if r["Source_Id__c"] == sourceID {
			return r, true
		}
	}
	return nil, false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func parseDiffs(t *testing.T, stdout string) map[string]reconcile.Difference {
	t.Helper()
	out := map[string]reconcile.Difference{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l == "" {
			continue
		}
		var d reconcile.Difference
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("-json line %q: %v", l, err)
		}
		out[string(d.Kind)+" "+d.SourceID] = d
	}
	return out
}

// The whole story through the command line: a clean sync agrees; edits
// behind orgsync's back in both orgs are each reported with the right kind
// and fields; a dry run publishes nothing; -repair goes through the running
// worker and a second run finds nothing missing or different.
func TestReconcileThroughTheCommandLine(t *testing.T) { testReconcileCommandLine(t, false) }

// The same scenarios through the Bulk path: -bulk-threshold 1 reads both
// orgs with Bulk API 2.0 query jobs, and the output is the same.
func TestReconcileThroughTheCommandLineBulk(t *testing.T) { testReconcileCommandLine(t, true) }

func testReconcileCommandLine(t *testing.T, bulk bool) {
	e := startTwoOrgs(t, 12)
	ctx := t.Context()
	if bulk {
		e.reconcileFlags = []string{"-bulk-threshold", "1"}
	} else {
		// worker run's ORGSYNC_BULK_THRESHOLD (pending events) is not
		// reconcile's: the REST path stays, as the deferred check proves.
		e.getenv = func(k string) string {
			if k == "ORGSYNC_BULK_THRESHOLD" {
				return "1"
			}
			return ""
		}
	}
	defer func() {
		for name, org := range map[string]*fakeorg.Org{"source": e.source, "target": e.target} {
			jobs := org.Stats().ByRoute["POST /jobs/query"]
			if bulk != (jobs > 0) {
				t.Errorf("bulk %v: the %s served %d query jobs", bulk, name, jobs)
			}
		}
	}()

	code, out, stderr := e.reconcile(t)
	if code != 0 || lastLine(out) != "missing 0, extra 0, different 0" {
		t.Fatalf("clean sync: exit %d, stdout %q, stderr %s", code, out, stderr)
	}

	// Behind orgsync's back.
	deletedInTarget, edited, normalised, deletedInSource := e.sourceIDs[3], e.sourceIDs[4], e.sourceIDs[5], e.sourceIDs[6]
	tgtOf := func(sid string) string {
		r, ok := e.targetBySource(sid)
		if !ok {
			t.Fatalf("no target record for %s", sid)
		}
		return r["Id"].(string)
	}
	editedTarget, deletedSourceTarget := tgtOf(edited), tgtOf(deletedInSource)
	if err := e.tgt.Delete(ctx, "Account", tgtOf(deletedInTarget)); err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.Update(ctx, "Account", editedTarget, salesforce.Record{"Phone": "999", "Industry": "Banking", "Description": "typed by hand"}); err != nil {
		t.Fatal(err)
	}
	// Values Salesforce treats as equal: a picklist's case, trailing zeros,
	// blank for null.
	if err := e.tgt.Update(ctx, "Account", tgtOf(normalised), salesforce.Record{
		"Industry": "TECHNOLOGY", "AnnualRevenue": json.Number("1005.50"), "Description": "",
	}); err != nil {
		t.Fatal(err)
	}
	// The child's parent link removed in the target.
	if err := e.tgt.Update(ctx, "Account", tgtOf(e.childID), salesforce.Record{"ParentId": nil}); err != nil {
		t.Fatal(err)
	}
	ghost := salesforce.ID18(e.sourceIDs[0][:12] + "ZZZ") // a source ID that never existed
	added, err := e.tgt.Create(ctx, "Account", salesforce.Record{"Name": "Added by hand", "Source_Id__c": ghost})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.src.Delete(ctx, "Account", deletedInSource); err != nil {
		t.Fatal(err)
	}

	code, out, stderr = e.reconcile(t, "-json")
	if code != 1 {
		t.Fatalf("after the edits: exit %d, want 1; stderr %s", code, stderr)
	}
	if got := lastLine(stderr); got != "missing 1, extra 2, different 2" {
		t.Errorf("summary (stderr with -json) = %q, want missing 1, extra 2, different 2", got)
	}
	diffs := parseDiffs(t, out)
	if len(diffs) != 5 {
		t.Errorf("got %d differences, want 5:\n%s", len(diffs), out)
	}
	if d, ok := diffs["missing "+deletedInTarget]; !ok || d.TargetID != "" {
		t.Errorf("missing %s: %+v, %v", deletedInTarget, d, ok)
	}
	d, ok := diffs["different "+edited]
	want := map[string]reconcile.Values{
		"Phone":       {Source: "555-0004", Target: "999"},
		"Industry":    {Source: "Technology", Target: "Banking"},
		"Description": {Source: nil, Target: "typed by hand"},
	}
	if !ok || d.TargetID != editedTarget || fmt.Sprint(d.Fields) != fmt.Sprint(want) {
		t.Errorf("different %s = %+v, want fields %v", edited, d, want)
	}
	d, ok = diffs["different "+e.childID]
	if !ok || len(d.Fields) != 1 || d.Fields["ParentId"].Source != e.parentID || d.Fields["ParentId"].Target != nil {
		t.Errorf("different %s (parent link) = %+v", e.childID, d)
	}
	if d, ok := diffs["extra "+deletedInSource]; !ok || d.TargetID != deletedSourceTarget {
		t.Errorf("extra %s (deleted in the source) = %+v, %v", deletedInSource, d, ok)
	}
	if d, ok := diffs["extra "+ghost]; !ok || d.TargetID != added.ID {
		t.Errorf("extra %s (added in the target) = %+v, %v", ghost, d, ok)
	}
	if _, ok := diffs["different "+normalised]; ok {
		t.Errorf("%s differs only in case, trailing zeros and blank vs null, yet is reported", normalised)
	}

	// -where narrows the source side: without the record deleted in the
	// target, nothing is missing; the extras stay (the target side is read
	// whole). A condition Salesforce refuses is a clear error.
	code, out, _ = e.reconcile(t, "-where", "Name != 'Account 003'")
	if code != 1 || lastLine(out) != "missing 0, extra 2, different 2" {
		t.Errorf("-where: exit %d\n%s", code, out)
	}
	code, _, stderr = e.reconcile(t, "-where", "Nope__c = 1")
	if code != 1 || !strings.Contains(stderr, "worker: error:") || !strings.Contains(stderr, "Nope__c") {
		t.Errorf("bad -where: exit %d\n%s", code, stderr)
	}

	// Text output: the differences, then the summary last.
	code, out, _ = e.reconcile(t)
	if code != 1 || lastLine(out) != "missing 1, extra 2, different 2" || !strings.Contains(out, "Phone: \"555-0004\" ≠ \"999\"") {
		t.Errorf("text output: exit %d\n%s", code, out)
	}

	// A dry run says what it would publish and publishes nothing.
	before := e.target.Stats().ByRoute
	code, out, stderr = e.reconcile(t, "-repair", "-dry-run", "-nats-url", e.natsURL)
	if code != 1 || strings.Count(out, "would publish orgsync.account.created.") != 3 ||
		!strings.Contains(out, ":"+deletedInTarget+":repair:") || !strings.Contains(out, "repair: would publish 3 events") ||
		!strings.Contains(out, `"created_at":"20`) {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if after := e.target.Stats().ByRoute; fmt.Sprint(writes(after)) != fmt.Sprint(writes(before)) {
		t.Errorf("the dry run wrote to the target: %v → %v", writes(before), writes(after))
	}

	// -repair publishes through the queue; the worker, whose ID map knows
	// every one of these records, writes them anyway.
	code, out, stderr = e.reconcile(t, "-repair", "-nats-url", e.natsURL)
	if code != 1 || !strings.Contains(out, "repair: published 3 events") {
		t.Fatalf("repair: exit %d\n%s\n%s", code, out, stderr)
	}
	waitFor(t, "the worker to apply the repairs", func() bool {
		r, ok := e.targetBySource(deletedInTarget)
		if !ok {
			return false
		}
		ed, _ := e.targetBySource(edited)
		ch, _ := e.targetBySource(e.childID)
		return r["Name"] == "Account 003" && ed["Phone"] == "555-0004" && ed["Industry"] == "Technology" &&
			ed["Description"] == nil && ch["ParentId"] != nil
	})
	code, out, stderr = e.reconcile(t)
	if code != 1 || lastLine(out) != "missing 0, extra 2, different 0" {
		t.Errorf("after the repair: exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	if strings.Contains(stderr, "demo-secret") || strings.Contains(e.workerStderr.String(), "demo-secret") {
		t.Error("a log contains the client secret")
	}
}

// writes keeps the write routes of a fake org's call counts (Bulk query
// jobs read: their create, abort and delete write no record).
func writes(byRoute map[string]int) map[string]int {
	out := map[string]int{}
	for r, n := range byRoute {
		if !strings.HasPrefix(r, "GET ") && !strings.Contains(r, " /jobs/query") {
			out[r] = n
		}
	}
	return out
}

// The ID map's own check: an entry whose target record was replaced
// behind orgsync's back is reported, -repair corrects it, and a running
// worker's map is refused with a clear error.
func TestReconcileIDMap(t *testing.T) {
	e := startTwoOrgs(t, 5)
	ctx := t.Context()
	mapFlags := []string{"-data-dir", e.dataDir, "-worker-id", "w1"}

	code, _, stderr := e.reconcile(t, mapFlags...)
	if code != 1 || !strings.Contains(stderr, "held by a running worker") {
		t.Errorf("while the worker runs: exit %d, stderr %s", code, stderr)
	}
	e.stop()

	// Without -worker-id: the only ID map in -data-dir.
	code, out, stderr := e.reconcile(t, "-data-dir", e.dataDir)
	if code != 0 || !strings.Contains(out, "id map of worker w1: 0 stale entries") {
		t.Fatalf("clean map: exit %d\n%s\n%s", code, out, stderr)
	}
	// Replace a record in the target by hand: same source ID, new target ID.
	sid := e.sourceIDs[2]
	old, _ := e.targetBySource(sid)
	if err := e.tgt.Delete(ctx, "Account", old["Id"].(string)); err != nil {
		t.Fatal(err)
	}
	rec := salesforce.Record{"Source_Id__c": sid}
	for _, f := range []string{"Name", "Phone", "AnnualRevenue", "Industry", "NumberOfEmployees"} {
		rec[f] = old[f]
	}
	created, err := e.tgt.Create(ctx, "Account", rec)
	if err != nil {
		t.Fatal(err)
	}

	code, out, _ = e.reconcile(t, append(mapFlags, "-json")...)
	diffs := parseDiffs(t, out)
	d, ok := diffs["stale_mapping "+sid]
	if code != 1 || len(diffs) != 1 || !ok || d.MapTargetID != old["Id"] || d.TargetID != created.ID {
		t.Fatalf("stale entry: exit %d, %+v\n%s", code, diffs, out)
	}
	code, out, _ = e.reconcile(t, append(mapFlags, "-repair", "-nats-url", e.natsURL)...)
	if code != 1 || !strings.Contains(out, "[mapping corrected]") {
		t.Errorf("repair: exit %d\n%s", code, out)
	}
	code, out, _ = e.reconcile(t, mapFlags...)
	if code != 0 || !strings.Contains(out, "0 stale entries") {
		t.Errorf("after the repair: exit %d\n%s", code, out)
	}
}

func TestReconcileUsageErrors(t *testing.T) {
	src := []string{"-source-url", "https://s.my.salesforce.com", "-source-client-id", "a", "-source-client-secret", "b"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dry run without repair", append([]string{"reconcile", "-dry-run"}, src...), "-dry-run goes with -repair"},
		{"budget out of range", []string{"reconcile", "-api-budget", "1.5"}, "-api-budget"},
		{"zero rate limit", []string{"reconcile", "-rate-limit", "0"}, "-rate-limit"},
		{"bad field", []string{"reconcile", "-fields", "Name,Bad-Field"}, "not a field name"},
		{"never copied field", []string{"reconcile", "-fields", "Name,OwnerId"}, "never copied"},
		{"no target", append([]string{"reconcile"}, src...), "-target-url is required"},
		{"arguments", []string{"reconcile", "extra"}, "takes no arguments"},
		{"negative bulk threshold", []string{"reconcile", "-bulk-threshold", "-1"}, "-bulk-threshold -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}
