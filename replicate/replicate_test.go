package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

func wantNames(first int, ns []string) map[string]string {
	m := make(map[string]string, len(ns))
	for i, n := range ns {
		m[sourceID(first+i)] = n
	}
	return m
}

// Three workers share the consumer; every record lands once, and the
// batches are full collections calls.
func TestHappyPathThreeWorkers(t *testing.T) { bothPackings(t, testHappyPathThreeWorkers) }

func testHappyPathThreeWorkers(t *testing.T, composite int) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.composite = composite
	ns := names("Acme", 1000)
	h.publish(0, ns...)
	ws := []*runningWorker{h.startWorker("a", nil), h.startWorker("b", nil), h.startWorker("c", nil)}
	h.waitFor("all records in the target", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] >= 1000 && h.settled() })
	h.assertExactlyOnce(wantNames(0, ns))
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0: %+v", len(d), d[0])
	}
	// Every worker's ID map holds exactly the records it wrote; together
	// they cover every record with the target's IDs.
	byTarget := map[string]string{}
	for _, r := range h.org.Accounts() {
		byTarget[r["Id"].(string)] = r["Source_Id__c"].(string)
	}
	mapped := 0
	for _, w := range ws {
		w.stop(t)
	}
	for _, w := range ws {
		st, err := store.Open(w.store.Path(), nil)
		if err != nil {
			t.Fatal(err)
		}
		err = st.ForEach(func(m store.Mapping) error {
			mapped++
			if byTarget[m.TargetID] != m.SourceID {
				t.Errorf("mapping %s → %s, but the target record has source %q", m.SourceID, m.TargetID, byTarget[m.TargetID])
			}
			return nil
		})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if mapped != 1000 {
		t.Errorf("ID maps hold %d mappings, want 1000", mapped)
	}
	st := h.org.Stats()
	calls := st.ByRoute["PATCH /composite/sobjects/Account/{field}"] + st.ByRoute["POST /composite"]
	if calls < 1 || calls > 40 {
		t.Errorf("%d upsert calls for 1000 records, want a handful of full batches", calls)
	}
	if composite == 1 && st.ByRoute["POST /composite"] != 0 {
		t.Errorf("%d composite calls with -composite 1", st.ByRoute["POST /composite"])
	}
}

// Permanent errors are dead-lettered with their codes while the rest syncs.
func TestPermanentErrorsDeadLettered(t *testing.T) { bothPackings(t, testPermanentErrorsDeadLettered) }

func testPermanentErrorsDeadLettered(t *testing.T, composite int) {
	h := newHarness(t, fakeorg.Config{RejectName: "^Reject"}, queue.Config{})
	h.composite = composite
	good := names("Good", 150)
	h.publish(0, good...)
	h.publish(1000, "Reject 1", "Reject 2")
	h.publish(2000, strings.Repeat("x", 300))
	// A body that is not an event.
	if _, err := h.q.Publish(t.Context(), queue.AccountSubject(event.ChangeCreated, sourceID(3000)), "junk-1", []byte(`{"v":1,"type":"account.created"`), nil); err != nil {
		t.Fatal(err)
	}
	h.startWorker("a", nil)
	h.waitFor("settled", 30*time.Second, h.settled)
	h.assertExactlyOnce(wantNames(0, good))
	codes := map[string]string{}
	for _, e := range h.dlq() {
		codes[e.SourceID] = e.Code
		if e.Message == "" || e.Attempts != 1 {
			t.Errorf("dead letter %+v: want a message and 1 attempt", e)
		}
	}
	want := map[string]string{
		sourceID(1000): "FIELD_CUSTOM_VALIDATION_EXCEPTION",
		sourceID(1001): "FIELD_CUSTOM_VALIDATION_EXCEPTION",
		sourceID(2000): "STRING_TOO_LONG",
		"":             CodeMalformedEvent,
	}
	if len(codes) != len(want) {
		t.Errorf("dead letters = %v, want %v", codes, want)
	}
	for id, c := range want {
		if codes[id] != c {
			t.Errorf("dead letter of %q: code %q, want %q", id, codes[id], c)
		}
	}
}

// 503s and row locks are retried until every record is in.
func TestTransientFailuresRetried(t *testing.T) { bothPackings(t, testTransientFailuresRetried) }

func testTransientFailuresRetried(t *testing.T, composite int) {
	h := newHarness(t, fakeorg.Config{FailRate: 0.3, LockRate: 0.1}, queue.Config{})
	h.composite = composite
	ns := names("Flaky", 400)
	h.publish(0, ns...)
	h.startWorker("a", func(c *Config) { c.MaxDeliver = 50; c.Batch = 50 })
	h.startWorker("b", func(c *Config) { c.MaxDeliver = 50; c.Batch = 50 })
	h.waitFor("settled", 90*time.Second, h.settled)
	h.assertExactlyOnce(wantNames(0, ns))
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0; first: %+v", len(d), d[0])
	}
}

// Tokens that expire every few hundred milliseconds are renewed
// transparently: nothing is dead-lettered and the pool never pauses.
func TestTokenExpiryCausesNoDeadLetters(t *testing.T) {
	h := newHarness(t, fakeorg.Config{TokenTTL: 300 * time.Millisecond, Latency: 20 * time.Millisecond}, queue.Config{})
	w := h.startWorker("a", func(c *Config) { c.Batch = 20 })
	var all []string
	for wave := range 5 {
		ns := names("Wave"+string(rune('A'+wave)), 60)
		h.publish(wave*100, ns...)
		all = append(all, ns...)
		time.Sleep(350 * time.Millisecond) // let the token expire between waves
	}
	h.waitFor("settled", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] == 300 && h.settled() })
	want := map[string]string{}
	for wave := range 5 {
		for i, n := range all[wave*60 : wave*60+60] {
			want[sourceID(wave*100+i)] = n
		}
	}
	h.assertExactlyOnce(want)
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
	if err := w.w.Ready(); err != nil {
		t.Errorf("worker not ready: %v", err)
	}
}

// A small daily API limit pauses the whole pool before it is exceeded;
// raising the limit resumes it and everything syncs, nothing dead-lettered.
func TestBudgetPausesAndResumes(t *testing.T) {
	h := newHarness(t, fakeorg.Config{DailyAPILimit: 40}, queue.Config{})
	ns := names("Budget", 400)
	h.publish(0, ns...)
	w := h.startWorker("a", func(c *Config) { c.Batch = 10; c.Composite = 1; c.APIBudget = 0.5; c.Concurrency = 1 })
	h.waitFor("the pool paused", 30*time.Second, func() bool {
		p, err := h.q.Paused(t.Context())
		return err == nil && p && w.w.Ready() != nil
	})
	if used := h.org.Stats().APIUsage; used > 40 {
		t.Errorf("API usage %d went past the daily limit 40", used)
	}
	synced := h.org.Stats().Records["Account"]
	if synced == 0 || synced >= 400 {
		t.Fatalf("%d records synced before the pause, want some but not all", synced)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("DLQ has %d entries while paused, want 0", len(d))
	}
	limit := 100000
	if err := h.org.Configure(fakeorg.ConfigPatch{DailyAPILimit: &limit}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("everything synced after the limit was raised", 60*time.Second, func() bool {
		return h.org.Stats().Records["Account"] == 400 && h.settled()
	})
	h.assertExactlyOnce(wantNames(0, ns))
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
	h.waitFor("the pool resumed", 10*time.Second, func() bool {
		p, err := h.q.Paused(t.Context())
		return err == nil && !p && w.w.Ready() == nil
	})
}

// A 403 TotalRequests answer (the org's own limit, with no budget margin)
// also pauses rather than dead-letters.
func TestLimitExceededPauses(t *testing.T) {
	h := newHarness(t, fakeorg.Config{DailyAPILimit: 3}, queue.Config{})
	h.publish(0, names("Over", 100)...)
	w := h.startWorker("a", func(c *Config) { c.Batch = 10; c.Composite = 1; c.APIBudget = 1; c.Concurrency = 1 })
	h.waitFor("the pool paused", 30*time.Second, func() bool { return w.w.Ready() != nil })
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("DLQ has %d entries, want 0", len(d))
	}
	limit := 100000
	if err := h.org.Configure(fakeorg.ConfigPatch{DailyAPILimit: &limit}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("settled", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] == 100 && h.settled() })
}

// A redelivered, already-synced event reaching the same worker makes no API
// call; reaching another worker it makes no duplicate.
func TestRedeliveryAfterSync(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	evs := h.publish(0, "Once")
	a := h.startWorker("a", nil)
	h.waitFor("synced", 20*time.Second, func() bool { return h.org.Stats().Records["Account"] == 1 && h.settled() })
	before := h.org.Stats().APICalls

	h.publishEvent(evs[0], "redelivery-1") // same event, new dedup key
	h.waitFor("settled", 20*time.Second, h.settled)
	if after := h.org.Stats().APICalls; after != before {
		t.Errorf("API calls went from %d to %d for an event the ID map knows", before, after)
	}
	a.stop(t)

	h.startWorker("b", nil) // a fresh ID map
	h.publishEvent(evs[0], "redelivery-2")
	h.waitFor("settled", 20*time.Second, func() bool { return h.org.Stats().APICalls > before && h.settled() })
	h.assertExactlyOnce(map[string]string{sourceID(0): "Once"})
}

// Events for one source ID inside a batch become one record.
func TestDuplicatesInBatchCollapsed(t *testing.T) { bothPackings(t, testDuplicatesInBatchCollapsed) }

func testDuplicatesInBatchCollapsed(t *testing.T, composite int) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.composite = composite
	ev := h.created(sourceID(0), "Same", "")
	for i := range 5 {
		h.publishEvent(ev, "dup-"+string(rune('a'+i)))
	}
	h.startWorker("a", nil)
	h.waitFor("settled", 20*time.Second, h.settled)
	h.assertExactlyOnce(map[string]string{sourceID(0): "Same"})
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ: %+v", d)
	}
}

// Children published before their parents end up linked to them.
func TestChildrenBeforeParentsEndLinked(t *testing.T) {
	bothPackings(t, testChildrenBeforeParentsEndLinked)
}

func testChildrenBeforeParentsEndLinked(t *testing.T, composite int) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.composite = composite
	w := h.startWorker("a", nil)
	want := map[string]string{}
	for i := range 20 {
		child := h.created(sourceID(100+i), "Child "+string(rune('A'+i)), sourceID(i))
		h.publishEvent(child, "")
		want[child.SourceID] = child.Fields["Name"].(string)
	}
	h.waitFor("children written", 20*time.Second, func() bool { return h.org.Stats().Records["Account"] == 20 })
	for i := range 20 {
		p := h.created(sourceID(i), "Parent "+string(rune('A'+i)), "")
		h.publishEvent(p, "")
		want[p.SourceID] = p.Fields["Name"].(string)
	}
	h.waitFor("children linked", 30*time.Second, func() bool {
		got := h.targetBySource()
		for i := range 20 {
			c, p := got[sourceID(100+i)], got[sourceID(i)]
			if len(c) != 1 || len(p) != 1 || c[0]["ParentId"] != p[0]["Id"] {
				return false
			}
		}
		return h.settled()
	})
	h.assertExactlyOnce(want)
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ: %+v", d)
	}
	_ = w
}

// A link whose parent never arrives is dead-lettered as PARENT_MISSING.
func TestParentNeverArrives(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.publishEvent(h.created(sourceID(1), "Orphan", sourceID(999)), "")
	h.startWorker("a", func(c *Config) { c.MaxDeliver = 2 })
	h.waitFor("settled", 30*time.Second, h.settled)
	h.assertExactlyOnce(map[string]string{sourceID(1): "Orphan"})
	d := h.dlq()
	if len(d) != 1 || d[0].Code != CodeParentMissing || d[0].SourceID != sourceID(1) {
		t.Fatalf("DLQ = %+v, want one PARENT_MISSING for %s", d, sourceID(1))
	}
}

// A message that crashes the worker on every delivery ends in the DLQ as
// MAX_DELIVERIES instead of blocking the queue; its batch-mates sync.
func TestCrashEveryDeliveryDeadLettered(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{AckWait: time.Second})
	poison := sourceID(7)
	crash := func(_ context.Context, ids []string) error {
		for _, id := range ids {
			if id == poison {
				return errors.New("simulated crash")
			}
		}
		return nil
	}
	ns := names("Batchmate", 10)
	h.publish(0, ns...)
	h.startWorker("a", func(c *Config) { c.MaxDeliver = 3; c.Batch = 1; c.Composite = 1; c.beforeWrite = crash })
	h.waitFor("settled", 60*time.Second, h.settled)
	want := wantNames(0, ns)
	delete(want, poison)
	h.assertExactlyOnce(want)
	d := h.dlq()
	if len(d) != 1 || d[0].SourceID != poison || d[0].Code != CodeMaxDeliveries || d[0].Attempts != 4 {
		t.Fatalf("DLQ = %+v, want one MAX_DELIVERIES entry for %s after 4 deliveries", d, poison)
	}
}

// A worker that dies after the target write and before it acks loses
// nothing and duplicates nothing: another worker gets the redelivery and
// its upsert is idempotent.
func TestKilledAfterWriteBeforeAck(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{AckWait: time.Second})
	ns := names("Killed", 300)
	h.publish(0, ns...)
	var once sync.Once
	killed := make(chan struct{})
	a := h.startWorker("a", func(c *Config) {
		c.Concurrency = 1
		c.afterWrite = func(context.Context, []string) error {
			err := errors.New("not this time")
			once.Do(func() { close(killed) })
			return err // every write of worker a "dies" before settling
		}
	})
	<-killed
	a.stop(t)
	if n := h.org.Stats().Records["Account"]; n == 0 {
		t.Fatal("worker a wrote nothing before it died")
	}
	h.startWorker("b", nil)
	h.waitFor("settled", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] == 300 && h.settled() })
	h.assertExactlyOnce(wantNames(0, ns))
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
}

// Replay after fixing the cause syncs every dead letter once; a replayed
// record that fails again is dead-lettered again, not lost.
func TestReplayAfterFix(t *testing.T) {
	h := newHarness(t, fakeorg.Config{RejectName: "^(Bad|Worse)"}, queue.Config{})
	good := names("Good", 50)
	bad := names("Bad", 20)
	h.publish(0, good...)
	h.publish(100, bad...)
	h.publish(200, "Worse one")
	h.startWorker("a", nil)
	h.waitFor("settled", 30*time.Second, h.settled)
	if d := h.dlq(); len(d) != 21 {
		t.Fatalf("DLQ has %d entries, want 21", len(d))
	}
	rule := "^Worse"
	if err := h.org.Configure(fakeorg.ConfigPatch{RejectName: &rule}); err != nil {
		t.Fatal(err)
	}
	// A dry run changes nothing.
	res, err := h.q.Replay(t.Context(), queue.ReplayOptions{DryRun: true})
	if err != nil || res.Matched != 21 || res.Replayed != 0 || len(h.dlq()) != 21 {
		t.Fatalf("dry run: %+v, %v; DLQ %d", res, err, len(h.dlq()))
	}
	res, err = h.q.Replay(t.Context(), queue.ReplayOptions{})
	if err != nil || res.Replayed != 21 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	h.waitFor("replayed events settled", 30*time.Second, func() bool { return h.settled() && len(h.dlq()) == 1 })
	want := wantNames(0, good)
	for k, v := range wantNames(100, bad) {
		want[k] = v
	}
	h.assertExactlyOnce(want)
	d := h.dlq()
	if d[0].SourceID != sourceID(200) || d[0].Code != "FIELD_CUSTOM_VALIDATION_EXCEPTION" {
		t.Errorf("DLQ after replay = %+v, want the still-rejected record", d)
	}
	// Lift the rule; replaying by source ID brings the last one in.
	none := ""
	if err := h.org.Configure(fakeorg.ConfigPatch{RejectName: &none}); err != nil {
		t.Fatal(err)
	}
	if res, err := h.q.Replay(t.Context(), queue.ReplayOptions{SourceID: sourceID(200)}); err != nil || res.Replayed != 1 {
		t.Fatalf("replay by source id: %+v, %v", res, err)
	}
	h.waitFor("settled", 30*time.Second, func() bool { return h.settled() && len(h.dlq()) == 0 })
	want[sourceID(200)] = "Worse one"
	h.assertExactlyOnce(want)
}

// Create mode writes each record once when nothing fails, and sets parents
// it has mapped by their target ID.
func TestCreateMode(t *testing.T) {
	h := newHarness(t, fakeorg.Config{RejectName: "^Reject"}, queue.Config{})
	h.startWorker("a", func(c *Config) { c.Mode = ModeCreate })
	ns := names("Created", 120)
	h.publish(0, ns...)
	h.publish(500, "Reject me")
	h.waitFor("settled", 30*time.Second, h.settled)
	child := h.created(sourceID(900), "Child", sourceID(0))
	h.publishEvent(child, "")
	h.waitFor("child settled", 30*time.Second, func() bool { return h.org.Stats().Records["Account"] == 121 && h.settled() })
	recs := h.org.Accounts()
	byName := map[string]fakeorg.Record{}
	for _, r := range recs {
		if _, dup := byName[r["Name"].(string)]; dup {
			t.Errorf("duplicate record %q", r["Name"])
		}
		byName[r["Name"].(string)] = r
	}
	for _, n := range ns {
		if _, ok := byName[n]; !ok {
			t.Errorf("missing %q", n)
		}
	}
	if byName["Child"]["ParentId"] != byName[ns[0]]["Id"] {
		t.Errorf("child's ParentId = %v, want %v", byName["Child"]["ParentId"], byName[ns[0]]["Id"])
	}
	if d := h.dlq(); len(d) != 1 || d[0].Code != "FIELD_CUSTOM_VALIDATION_EXCEPTION" {
		t.Errorf("DLQ = %+v", d)
	}
}

// The apexrest mode calls the seed's endpoint once per record and
// classifies its answers.
func TestApexRESTMode(t *testing.T) {
	h := newHarness(t, fakeorg.Config{RejectName: "^Reject"}, queue.Config{})
	h.startWorker("a", func(c *Config) { c.Mode = ModeApexREST })
	ns := names("Apex", 30)
	h.publish(0, ns...)
	h.publish(100, "Reject me")
	h.publishEvent(event.Event{V: 1, Type: event.TypeAccountCreated, SourceOrg: h.srcOrg, SourceID: sourceID(101),
		Fields: map[string]any{"Name": ""}}, "")
	h.waitFor("settled", 30*time.Second, h.settled)
	st := h.org.Stats()
	if st.Records["Account"] != 30 {
		t.Errorf("%d records, want 30", st.Records["Account"])
	}
	if calls := st.ByRoute["POST /apexrest/arrify/v1/accounts"]; calls != 32 {
		t.Errorf("%d apexrest calls, want one per record (32)", calls)
	}
	codes := map[string]string{}
	for _, e := range h.dlq() {
		codes[e.SourceID] = e.Code
	}
	if codes[sourceID(100)] != salesforce.CodeApexDMLError || codes[sourceID(101)] != salesforce.CodeApexBadRequest || len(codes) != 2 {
		t.Errorf("dead letters = %v", codes)
	}
}

// Under a large backlog the worker writes Bulk API 2.0 jobs, with the
// same exactness as collections: rejected records dead-lettered with their
// code, locked ones retried, children linked, everything else once.
func TestBulkModeExactness(t *testing.T) {
	h := newHarness(t, fakeorg.Config{RejectName: "^Reject", LockRate: 0.02}, queue.Config{})
	ns := names("Bulk", 3000)
	for i := 0; i < len(ns); i += 100 {
		ns[i] = "Reject " + ns[i]
	}
	h.publish(0, ns...)
	// Children of records in the same backlog, and of one that arrives later.
	for i := range 30 {
		h.publishEvent(h.created(sourceID(5000+i), "Child "+string(rune('A'+i%26)), sourceID(1+i*7)), "")
	}
	late := h.created(sourceID(9000), "Late child", sourceID(9001))
	h.publishEvent(late, "")
	h.startWorker("a", func(c *Config) {
		c.BulkThreshold = 500
		c.BulkBatch = 1000
		c.BulkPoll = 20 * time.Millisecond
		c.MaxDeliver = 20
	})
	h.startWorker("b", func(c *Config) {
		c.BulkThreshold = 500
		c.BulkBatch = 1000
		c.BulkPoll = 20 * time.Millisecond
		c.MaxDeliver = 20
	})
	want := map[string]string{}
	rejected := map[string]bool{}
	for i, n := range ns {
		if strings.HasPrefix(n, "Reject") {
			rejected[sourceID(i)] = true
			continue
		}
		want[sourceID(i)] = n
	}
	for i := range 30 {
		want[sourceID(5000+i)] = "Child " + string(rune('A'+i%26))
	}
	want[sourceID(9000)] = "Late child"
	h.waitFor("backlog written", 90*time.Second, func() bool { return h.org.Stats().Records["Account"] == len(want) })
	h.publishEvent(h.created(sourceID(9001), "Late parent", ""), "")
	want[sourceID(9001)] = "Late parent"
	h.waitFor("settled and linked", 60*time.Second, func() bool {
		got := h.targetBySource()
		c, p := got[sourceID(9000)], got[sourceID(9001)]
		return h.settled() && len(c) == 1 && len(p) == 1 && c[0]["ParentId"] == p[0]["Id"]
	})
	h.assertExactlyOnce(want)
	got := h.targetBySource()
	for i := range 30 {
		c, p := got[sourceID(5000+i)], got[sourceID(1+i*7)]
		if len(c) != 1 || len(p) != 1 || c[0]["ParentId"] != p[0]["Id"] {
			t.Errorf("child %d not linked to its parent", i)
		}
	}
	dl := h.dlq()
	if len(dl) != len(rejected) {
		t.Errorf("DLQ has %d entries, want %d", len(dl), len(rejected))
	}
	for _, e := range dl {
		if !rejected[e.SourceID] || e.Code != "FIELD_CUSTOM_VALIDATION_EXCEPTION" {
			t.Errorf("unexpected dead letter %+v", e)
		}
	}
	st := h.org.Stats()
	jobs := st.ByRoute["POST /jobs/ingest"]
	collections := st.ByRoute["PATCH /composite/sobjects/Account/{field}"]
	t.Logf("bulk jobs %d, collections calls %d, API calls %d for %d records", jobs, collections, st.APICalls, len(want))
	if jobs == 0 {
		t.Fatal("no bulk job was created")
	}
	// Unbatched would be one call per record; batches fill less under a
	// loaded machine (smaller fetches, lock retries in collections calls).
	if st.APICalls > len(want)/20 {
		t.Errorf("%d API calls for %d records: not batched", st.APICalls, len(want))
	}
}

// bulk configures a worker to write Bulk API jobs for any backlog above
// 200 events.
func bulk(c *Config) {
	c.BulkThreshold, c.BulkBatch, c.BulkPoll, c.MaxDeliver = 200, 1000, 20*time.Millisecond, 30
}

// The collections exactness scenarios, in Bulk mode.
func TestBulkModeFaults(t *testing.T) {
	t.Run("503s and locks", func(t *testing.T) {
		h := newHarness(t, fakeorg.Config{FailRate: 0.15, LockRate: 0.05}, queue.Config{})
		ns := names("Flaky bulk", 2500)
		h.publish(0, ns...)
		h.startWorker("a", bulk)
		h.startWorker("b", bulk)
		h.waitFor("settled", 120*time.Second, func() bool { return h.org.Stats().Records["Account"] == len(ns) && h.settled() })
		h.assertExactlyOnce(wantNames(0, ns))
		if d := h.dlq(); len(d) != 0 {
			t.Errorf("DLQ has %d entries, want 0; first: %+v", len(d), d[0])
		}
		if h.org.Stats().ByRoute["POST /jobs/ingest"] == 0 {
			t.Error("no bulk job was created")
		}
	})
	t.Run("killed after the job, before settling", func(t *testing.T) {
		h := newHarness(t, fakeorg.Config{}, queue.Config{AckWait: 2 * time.Second})
		ns := names("Killed bulk", 2000)
		h.publish(0, ns...)
		killed := make(chan struct{})
		var once sync.Once
		a := h.startWorker("a", func(c *Config) {
			bulk(c)
			c.Concurrency = 1
			c.afterWrite = func(context.Context, []string) error {
				once.Do(func() { close(killed) })
				return errors.New("died")
			}
		})
		<-killed
		a.stop(t)
		if h.org.Stats().Records["Account"] == 0 {
			t.Fatal("the bulk job wrote nothing before the worker died")
		}
		h.startWorker("b", bulk)
		h.waitFor("settled", 90*time.Second, func() bool { return h.org.Stats().Records["Account"] == len(ns) && h.settled() })
		h.assertExactlyOnce(wantNames(0, ns))
		if d := h.dlq(); len(d) != 0 {
			t.Errorf("DLQ has %d entries, want 0", len(d))
		}
	})
	t.Run("replay after fixing the cause", func(t *testing.T) {
		h := newHarness(t, fakeorg.Config{RejectName: "^Bad"}, queue.Config{})
		good, bad := names("Good", 1500), names("Bad", 300)
		h.publish(0, good...)
		h.publish(5000, bad...)
		h.startWorker("a", bulk)
		h.waitFor("settled", 90*time.Second, func() bool { return h.settled() && len(h.dlq()) == len(bad) })
		none := ""
		if err := h.org.Configure(fakeorg.ConfigPatch{RejectName: &none}); err != nil {
			t.Fatal(err)
		}
		if res, err := h.q.Replay(t.Context(), queue.ReplayOptions{}); err != nil || res.Replayed != len(bad) {
			t.Fatalf("replay: %+v, %v", res, err)
		}
		h.waitFor("replayed events settled", 90*time.Second, func() bool { return h.settled() && len(h.dlq()) == 0 })
		want := wantNames(0, good)
		for k, v := range wantNames(5000, bad) {
			want[k] = v
		}
		h.assertExactlyOnce(want)
	})
}

// A target without the external ID field (or an integration user who cannot
// see it) is a configuration error: the pool pauses with the reason and
// nothing is dead-lettered (the probe resumes it once the field exists).
func TestMissingExternalIDFieldPauses(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.publish(0, names("Waiting", 50)...)
	w := h.startWorker("a", func(c *Config) { c.ExternalIDField = "Missing_Id__c"; c.MaxDeliver = 2 })
	h.waitFor("the pool paused", 30*time.Second, func() bool {
		p, err := h.q.Paused(t.Context())
		return err == nil && p && w.w.Ready() != nil
	})
	// The probe checks the field: after fifteen probes the pool is still
	// paused, and no event ran out of deliveries in pause/resume cycles.
	h.waitFor("fifteen probes of the field", 30*time.Second, func() bool {
		return h.org.Stats().ByRoute["GET /sobjects/Account/describe"] >= 15
	})
	if p, err := h.q.Paused(t.Context()); err != nil || !p {
		t.Errorf("the pool resumed though the field is still missing (paused %v, %v)", p, err)
	}
	if err := w.w.Ready(); !strings.Contains(err.Error(), "external ID field") {
		t.Errorf("Ready() = %v, want the reason", err)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0: %+v", len(d), d[0])
	}
	if n := h.org.Stats().Records["Account"]; n != 0 {
		t.Errorf("%d records written", n)
	}
}

// In apexrest mode a batch makes one call per record: with as many batches
// in flight as call slots, the batches must not hold slots themselves, or
// no record call could ever start.
func TestApexRESTSlotsNotHeldByBatches(t *testing.T) {
	h := newHarness(t, fakeorg.Config{Latency: 5 * time.Millisecond}, queue.Config{})
	ns := names("Slots", 100)
	h.publish(0, ns...)
	h.startWorker("a", func(c *Config) { c.Mode = ModeApexREST; c.Concurrency = 2; c.MaxCalls = 2; c.Batch = 10 })
	h.waitFor("all written", 30*time.Second, func() bool { return h.org.Stats().Records["Account"] == len(ns) && h.settled() })
}

// In apexrest mode, too, going over the budget pauses the pool and
// dead-letters nothing; raising the limit lets everything through.
func TestApexRESTBudgetPauses(t *testing.T) {
	h := newHarness(t, fakeorg.Config{DailyAPILimit: 20}, queue.Config{})
	ns := names("Apex budget", 60)
	h.publish(0, ns...)
	w := h.startWorker("a", func(c *Config) { c.Mode = ModeApexREST; c.APIBudget = 0.5; c.MaxDeliver = 2; c.Batch = 10 })
	h.waitFor("the pool paused", 30*time.Second, func() bool { return w.w.Ready() != nil })
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("DLQ has %d entries while over budget, want 0: %+v", len(d), d[0])
	}
	limit := 100000
	if err := h.org.Configure(fakeorg.ConfigPatch{DailyAPILimit: &limit}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("all written", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] == len(ns) && h.settled() })
	// apexrest sends Name only: check the names, each once.
	seen := map[any]int{}
	for _, r := range h.org.Accounts() {
		seen[r["Name"]]++
	}
	for _, n := range ns {
		if seen[n] != 1 {
			t.Errorf("%q is in the target %d times, want 1", n, seen[n])
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
}

// A backlog is written with composite calls of five 200-record upserts:
// children whose parent is in the same composite, or not in the target at
// all, are written without it and linked later; a list refused as a whole
// (an unknown field) is split until the one bad record is dead-lettered.
func TestCompositePacking(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	want := map[string]string{}
	for i := range 600 {
		ev := h.created(sourceID(i), fmt.Sprintf("Plain %d", i), "")
		h.publishEvent(ev, "")
		want[ev.SourceID] = ev.Fields["Name"].(string)
	}
	for i := range 50 { // parents 0..49 are in the same backlog
		ev := h.created(sourceID(1000+i), fmt.Sprintf("Child %d", i), sourceID(i))
		h.publishEvent(ev, "")
		want[ev.SourceID] = ev.Fields["Name"].(string)
	}
	orphan := h.created(sourceID(2000), "Orphan", sourceID(5000))
	h.publishEvent(orphan, "")
	want[orphan.SourceID] = "Orphan"
	bad := h.created(sourceID(3000), "Bad", "")
	bad.Fields["NoSuchField__c"] = "x"
	h.publishEvent(bad, "")

	h.startWorker("a", nil)
	h.waitFor("the backlog written", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] >= len(want) })
	parent := h.created(sourceID(5000), "Late parent", "")
	h.publishEvent(parent, "")
	want[parent.SourceID] = "Late parent"
	h.waitFor("children linked", 60*time.Second, func() bool {
		got := h.targetBySource()
		for i := range 50 {
			c, p := got[sourceID(1000+i)], got[sourceID(i)]
			if len(c) != 1 || len(p) != 1 || c[0]["ParentId"] != p[0]["Id"] {
				return false
			}
		}
		o, p := got[sourceID(2000)], got[sourceID(5000)]
		return len(o) == 1 && len(p) == 1 && o[0]["ParentId"] == p[0]["Id"] && h.settled()
	})
	h.assertExactlyOnce(want)
	d := h.dlq()
	if len(d) != 1 || d[0].SourceID != sourceID(3000) || d[0].Code != "INVALID_FIELD" {
		t.Errorf("DLQ = %+v, want one INVALID_FIELD for %s", d, sourceID(3000))
	}
	if n := h.org.Stats().ByRoute["POST /composite"]; n < 1 {
		t.Errorf("no composite call for a backlog of %d events", len(want))
	}
}
