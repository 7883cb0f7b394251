package replicate

import (
	"strings"

	"testing"
	"time"

	"orgsync/queue"
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
func TestHappyPathThreeWorkers(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
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
	calls := h.org.Stats().ByRoute["PATCH /composite/sobjects/Account/{field}"]
	if calls < 5 || calls > 40 {
		t.Errorf("%d upsert calls for 1000 records, want a handful of full batches", calls)
	}
}

// Permanent errors are dead-lettered with their codes while the rest syncs.
func TestPermanentErrorsDeadLettered(t *testing.T) {
	h := newHarness(t, fakeorg.Config{RejectName: "^Reject"}, queue.Config{})
	good := names("Good", 150)
	h.publish(0, good...)
	h.publish(1000, "Reject 1", "Reject 2")
	h.publish(2000, strings.Repeat("x", 300))
	// A body that is not an event.
	if _, err := h.q.Publish(t.Context(), queue.SubjectCreated, "junk-1", []byte(`{"v":1,"type":"account.created"`), nil); err != nil {
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
func TestTransientFailuresRetried(t *testing.T) {
	h := newHarness(t, fakeorg.Config{FailRate: 0.3, LockRate: 0.2}, queue.Config{})
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
	w := h.startWorker("a", func(c *Config) { c.Batch = 10; c.APIBudget = 0.5; c.Concurrency = 1 })
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
	w := h.startWorker("a", func(c *Config) { c.Batch = 10; c.APIBudget = 1; c.Concurrency = 1 })
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
func TestDuplicatesInBatchCollapsed(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
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
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
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
