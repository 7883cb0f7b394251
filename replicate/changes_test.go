package replicate

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// sourceOrg is a fake source org for the engine's reads.
type sourceOrg struct {
	org *fakeorg.Org
	srv *httptest.Server
}

// withSource gives the harness a source org; workers started with
// h.sourced get a client of it.
func (h *harness) withSource() *sourceOrg {
	h.t.Helper()
	org, err := fakeorg.New(fakeorg.Config{Seed: 2})
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	h.t.Cleanup(srv.Close)
	s := &sourceOrg{org: org, srv: srv}
	h.src = s
	h.srcOrg = org.OrgID()
	return s
}

// sourced configures a worker with the harness's source org.
func (h *harness) sourced(c *Config) {
	h.t.Helper()
	auth, err := salesforce.NewAuth(h.t.Context(), salesforce.AuthConfig{URL: h.src.srv.URL, ClientID: "demo", ClientSecret: "demo-secret"})
	if err != nil {
		h.t.Fatal(err)
	}
	client, err := salesforce.NewClient(salesforce.Config{Auth: auth})
	if err != nil {
		h.t.Fatal(err)
	}
	c.Source = client
}

// insertSource creates an Account in the source org and returns its ID.
func (s *sourceOrg) insert(t testing.TB, fields fakeorg.Record) string {
	t.Helper()
	id, err := s.org.InsertAccount(fields, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var changeKeys atomic.Int64

// change builds an updated, deleted or undeleted event of a source record.
func (h *harness) change(typ, id string, fields map[string]any) event.Event {
	return event.Event{V: 1, Type: typ, SourceOrg: h.srcOrg, SourceID: id, Fields: fields,
		ChangedAt: time.Now().UTC(), ChangeKey: fmt.Sprintf("k%d", changeKeys.Add(1))}
}

// target returns the target's live record of a source ID, or nil.
func (h *harness) target(sourceID string) fakeorg.Record {
	recs := h.targetBySource()[strings.ToUpper(sourceID)]
	if len(recs) == 0 {
		return nil
	}
	if len(recs) > 1 {
		h.t.Fatalf("source %s: %d records in the target", sourceID, len(recs))
	}
	return recs[0]
}

func TestUpdateIsAnUpdateByTargetID(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("w1", nil)
	id := sourceID(1)
	h.publishEvent(h.created(id, "Acme", ""), "")
	h.waitFor("the create", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
	targetID := h.target(id)["Id"]
	upserts := h.org.Stats().ByRoute["PATCH /composite/sobjects/Account/{field}"]

	h.publishEvent(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "555", "Industry": nil}), "")
	h.waitFor("the update", 10*time.Second, func() bool { return h.settled() && h.target(id)["Phone"] == "555" })
	got := h.target(id)
	if got["Id"] != targetID || got["Name"] != "Acme" || got["Industry"] != nil {
		t.Errorf("target after the update = %v, want the same record (Id %v, Name Acme) with Industry blanked", got, targetID)
	}
	st := h.org.Stats()
	if n := st.ByRoute["PATCH /composite/sobjects"]; n != 1 {
		t.Errorf("%d collections updates, want 1 (routes %v)", n, st.ByRoute)
	}
	if n := st.ByRoute["PATCH /composite/sobjects/Account/{field}"]; n != upserts {
		t.Errorf("an update made %d upserts, want none", n-upserts)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dead letters: %v", d)
	}
}

func TestUpdateOfARecordTheTargetLacks(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	src := h.withSource()
	id := src.insert(t, fakeorg.Record{"Name": "Old Co", "Phone": "1", "Website": "old.example"})
	h.startWorker("w1", h.sourced)
	// A partial update of a record the target never got: the whole record
	// is read from the source and upserted, never a half record.
	h.publishEvent(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "2"}), "")
	h.waitFor("the re-created record", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
	got := h.target(id)
	if got["Name"] != "Old Co" || got["Website"] != "old.example" || got["Phone"] != "1" {
		t.Errorf("re-created target = %v, want the source's whole record (Name Old Co, Phone 1, Website old.example)", got)
	}
}

func TestUpdateOfARecordTheTargetLacksWithoutASource(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("w1", nil)
	id := sourceID(7)
	h.publishEvent(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "2"}), "")
	h.waitFor("a dead letter", 10*time.Second, func() bool { return len(h.dlq()) == 1 && h.settled() })
	if e := h.dlq()[0]; e.Code != CodeSourceNeeded || !strings.Contains(e.Message, "-source-") {
		t.Errorf("dead letter %s %q, want %s naming the -source-… flags", e.Code, e.Message, CodeSourceNeeded)
	}
	if n := len(h.org.Accounts()); n != 0 {
		t.Errorf("%d target records, want none (no half record)", n)
	}
}

func TestDeletes(t *testing.T) {
	for _, mode := range []DeleteMode{DeletesDelete, DeletesOff} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, fakeorg.Config{}, queue.Config{})
			h.startWorker("w1", func(c *Config) { c.Deletes = mode })
			id, never := sourceID(1), sourceID(2)
			h.publishEvent(h.created(id, "Acme", ""), "")
			h.waitFor("the create", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
			h.publishEvent(h.change(event.TypeAccountDeleted, id, nil), "")
			// A delete of a record the target never had is done at once.
			h.publishEvent(h.change(event.TypeAccountDeleted, never, nil), "")
			h.waitFor("the deletes", 10*time.Second, h.settled)
			gone := h.target(id) == nil
			if want := mode == DeletesDelete; gone != want {
				t.Errorf("-deletes %s: target record deleted = %v, want %v", mode, gone, want)
			}
			if d := h.dlq(); len(d) != 0 {
				t.Errorf("dead letters: %v", d)
			}
		})
	}
}

func TestUndeleteKeepsTheTargetID(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("w1", nil)
	id := sourceID(1)
	h.publishEvent(h.created(id, "Acme", ""), "")
	h.waitFor("the create", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
	targetID := h.target(id)["Id"]
	h.publishEvent(h.change(event.TypeAccountDeleted, id, nil), "")
	h.waitFor("the delete", 10*time.Second, func() bool { return h.target(id) == nil && h.settled() })
	h.publishEvent(h.change(event.TypeAccountUndeleted, id, map[string]any{"Phone": "9"}), "")
	h.waitFor("the undelete", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
	got := h.target(id)
	if got["Id"] != targetID || got["Phone"] != "9" || got["Name"] != "Acme" {
		t.Errorf("after the undelete: %v, want Id %v (the same record) with Phone 9", got, targetID)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dead letters: %v", d)
	}
}

func TestUndeleteOfARecordNotInTheRecycleBin(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	src := h.withSource()
	id := src.insert(t, fakeorg.Record{"Name": "Back Again", "Phone": "3"})
	h.startWorker("w1", h.sourced)
	h.publishEvent(h.change(event.TypeAccountUndeleted, id, nil), "")
	h.waitFor("the re-created record", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
	if got := h.target(id); got["Name"] != "Back Again" || got["Phone"] != "3" {
		t.Errorf("re-created target = %v, want the source's record", got)
	}
}

// replay publishes ev as `worker dlq replay` republishes a dead letter.
func (h *harness) replay(ev event.Event) {
	h.t.Helper()
	body, err := ev.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	hdr := nats.Header{}
	hdr.Set(queue.HeaderReplayOf, "1")
	if _, err := h.q.Publish(h.t.Context(), queue.AccountSubject(ev.Change(), ev.SourceID), ev.MsgID()+":replay", body, hdr); err != nil {
		h.t.Fatal(err)
	}
}

func TestReplayNeverMovesARecordBackInTime(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	src := h.withSource()
	id := src.insert(t, fakeorg.Record{"Name": "Now Co", "Phone": "2"})
	gone := src.insert(t, fakeorg.Record{"Name": "Gone Co"})
	h.startWorker("w1", h.sourced)
	h.publishEvent(h.created(id, "Now Co", ""), "")
	h.publishEvent(h.created(gone, "Gone Co", ""), "")
	h.waitFor("the creates", 10*time.Second, func() bool { return h.target(id) != nil && h.target(gone) != nil && h.settled() })

	// An old update replayed: the source's current state is applied.
	h.replay(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "1", "Name": "Then Co"}))
	// An old delete replayed while the record lives: stale.
	h.replay(h.change(event.TypeAccountDeleted, id, nil))
	h.waitFor("the replays", 10*time.Second, h.settled)
	if got := h.target(id); got == nil || got["Phone"] != "2" || got["Name"] != "Now Co" {
		t.Errorf("after the replays: %v, want the source's current Name Now Co, Phone 2", got)
	}
	// An old update replayed of a record deleted in the source since: it is
	// deleted in the target.
	srcClient := &Config{}
	h.sourced(srcClient)
	if err := srcClient.Source.Delete(t.Context(), "Account", gone); err != nil {
		t.Fatal(err)
	}
	h.replay(h.change(event.TypeAccountUpdated, gone, map[string]any{"Phone": "7"}))
	h.waitFor("the replayed update of a deleted record", 10*time.Second, func() bool { return h.target(gone) == nil && h.settled() })
}

func TestReplayWithoutASourceIsDeadLettered(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("w1", nil)
	id := sourceID(1)
	h.replay(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "1"}))
	h.waitFor("a dead letter", 10*time.Second, func() bool { return len(h.dlq()) == 1 && h.settled() })
	if e := h.dlq()[0]; e.Code != CodeSourceNeeded {
		t.Errorf("dead letter %s %q, want %s", e.Code, e.Message, CodeSourceNeeded)
	}
}

func TestChangesNeedUpsertMode(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("w1", func(c *Config) { c.Mode = ModeCreate })
	h.publishEvent(h.change(event.TypeAccountUpdated, sourceID(1), map[string]any{"Phone": "1"}), "")
	h.waitFor("a dead letter", 10*time.Second, func() bool { return len(h.dlq()) == 1 && h.settled() })
	if e := h.dlq()[0]; e.Code != CodeModeUnsupported || !strings.Contains(e.Message, "-mode upsert") {
		t.Errorf("dead letter %s %q, want %s naming -mode upsert", e.Code, e.Message, CodeModeUnsupported)
	}
}

// TestOrderHoldsThroughATransientFailure is the test that fails when
// per-record ordering is switched off: the first of two updates of one
// record fails transiently once; in order, the second is applied last.
// Without ordering (a delayed nak) the second overtakes the first, and
// the older value ends in the target.
func TestOrderHoldsThroughATransientFailure(t *testing.T) {
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("unordered=%v", unordered), func(t *testing.T) {
			h := newHarness(t, fakeorg.Config{}, queue.Config{})
			id := sourceID(1)
			// The first update call fails for every record (lock
			// contention, transient); the fake's rule is lifted as soon
			// as that call was answered, and the second update is
			// published only then.
			var updates atomic.Int64
			failed := make(chan struct{})
			h.middleware = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				first := r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/composite/sobjects") && updates.Add(1) == 1
				if first {
					lock := 1.0
					if err := h.org.Configure(fakeorg.ConfigPatch{LockRate: &lock}); err != nil {
						t.Error(err)
					}
				}
				next.ServeHTTP(w, r)
				if first {
					none := 0.0
					if err := h.org.Configure(fakeorg.ConfigPatch{LockRate: &none}); err != nil {
						t.Error(err)
					}
					close(failed)
				}
			}
			h.startWorker("w1", func(c *Config) { c.unordered = unordered })
			h.publishEvent(h.created(id, "Acme", ""), "")
			h.waitFor("the create", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
			h.publishEvent(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "older"}), "")
			select {
			case <-failed:
			case <-time.After(10 * time.Second):
				t.Fatal("the first update was never written")
			}
			h.publishEvent(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "newer"}), "")
			h.waitFor("both updates", 20*time.Second, func() bool { return h.settled() && updates.Load() >= 3 })
			got := h.target(id)["Phone"]
			if unordered {
				if got != "older" {
					t.Errorf("without ordering the older update was expected to land last (Phone %v): the test would not catch a lost order", got)
				}
				return
			}
			if got != "newer" {
				t.Errorf("Phone = %v, want newer: the older update was applied last", got)
			}
		})
	}
}

func TestLinkDroppedWhenTheChildChangedParent(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	src := h.withSource()
	parent := src.insert(t, fakeorg.Record{"Name": "Parent"})
	child := src.insert(t, fakeorg.Record{"Name": "Child"}) // no parent any more in the source
	h.startWorker("w1", h.sourced)
	h.publishEvent(h.created(parent, "Parent", ""), "")
	h.publishEvent(h.created(child, "Child", ""), "")
	h.waitFor("the creates", 10*time.Second, func() bool { return h.target(child) != nil && h.target(parent) != nil && h.settled() })
	link, err := event.NewAccountLink(h.srcOrg, child, parent)
	if err != nil {
		t.Fatal(err)
	}
	h.publishEvent(link, "")
	h.waitFor("the link", 10*time.Second, h.settled)
	if got := h.target(child)["ParentId"]; got != nil {
		t.Errorf("child's parent = %v, want none: the stale link was applied", got)
	}
}

// fencedFeed hands out lots whose partitions' leases are lost.
type fencedFeed struct {
	Feed
	done atomic.Int64
}

type fencedLot struct {
	Lot
	f *fencedFeed
}

func (f *fencedFeed) Next(ctx context.Context, max int, linger time.Duration) (Lot, error) {
	l, err := f.Feed.Next(ctx, max, linger)
	if err != nil {
		return nil, err
	}
	return fencedLot{l, f}, nil
}

func (l fencedLot) Fenced() bool { return true }
func (l fencedLot) Done()        { l.Lot.Done(); l.f.done.Add(1) }

// A batch whose lease was lost writes nothing: its events belong to the
// partition's new holder.
func TestLostLeaseWritesNothing(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	var feed *fencedFeed
	h.startWorker("w1", func(c *Config) {
		feed = &fencedFeed{Feed: c.Feed}
		c.Feed = feed
	})
	h.publish(0, "Acme")
	h.waitFor("a lot taken and given up", 10*time.Second, func() bool { return feed.done.Load() >= 1 })
	if n := h.org.Stats().APICalls; n != 0 {
		t.Errorf("%d target calls for a fenced batch, want 0", n)
	}
	if b, err := h.q.Backlog(t.Context()); err != nil || b.AckPending != 1 {
		t.Errorf("backlog %+v (%v): want the event left unsettled (ack pending 1)", b, err)
	}
}

// packedChanges creates n records with worker w1, stops it, publishes
// changes of them while no worker runs (edit sets each record's update
// fields; deletes of the records in del), runs then (when not nil), and
// starts w2, which takes them in one lot (a long linger): w2 has an empty
// ID map, so it finds the targets by external ID. It returns the target's
// call counts by route made for the changes, and their composite
// subrequests by route.
func packedChanges(t *testing.T, h *harness, n int, edit func(i int) map[string]any, del func(i int) bool, then func()) (calls, subs map[string]int) {
	t.Helper()
	w1 := h.startWorker("w1", nil)
	for i := range n {
		h.publishEvent(h.created(sourceID(i), fmt.Sprintf("Rec %d", i), ""), "")
	}
	h.waitFor("the creates", 60*time.Second, func() bool { return h.org.Stats().Records["Account"] == n && h.settled() })
	w1.stop(t)
	before := h.org.Stats()
	for i := range n {
		switch {
		case del(i):
			h.publishEvent(h.change(event.TypeAccountDeleted, sourceID(i), nil), "")
		case edit(i) != nil:
			h.publishEvent(h.change(event.TypeAccountUpdated, sourceID(i), edit(i)), "")
		}
	}
	if then != nil {
		then()
	}
	h.startWorker("w2", func(c *Config) { c.Linger = 3 * time.Second })
	h.waitFor("the changes", 60*time.Second, h.settled)
	after := h.org.Stats()
	return diffCounts(after.ByRoute, before.ByRoute), diffCounts(after.Subrequests, before.Subrequests)
}

// diffCounts returns the counts of after that grew since before.
func diffCounts(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range after {
		if d := n - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Updates and deletes of more than -batch records go in composite calls
// of collections calls: 600 updates are one counted call, not three.
func TestChangesArePacked(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	calls, subs := packedChanges(t, h, 650,
		func(i int) map[string]any { return map[string]any{"Phone": fmt.Sprint("p", i)} },
		func(i int) bool { return i >= 600 }, nil)
	got := h.targetBySource()
	for i := range 650 {
		recs := got[sourceID(i)]
		switch {
		case i >= 600 && len(recs) != 0:
			t.Errorf("record %d: %d live target records after its delete", i, len(recs))
		case i < 600 && (len(recs) != 1 || recs[0]["Phone"] != fmt.Sprint("p", i)):
			t.Errorf("record %d: target %v, want one record with Phone p%d", i, recs, i)
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dead letters: %v", d)
	}
	// 650 external IDs are one composite call of four queries of at most
	// 200; 600 updates one composite call of three lists; 50 deletes one
	// collections call.
	want := map[string]int{"POST /composite": 2, "DELETE /composite/sobjects": 1}
	if !maps.Equal(calls, want) {
		t.Errorf("calls for the changes: got %v, want %v", calls, want)
	}
	wantSubs := map[string]int{"GET /queryAll": 4, "PATCH /composite/sobjects": 3}
	if !maps.Equal(subs, wantSubs) {
		t.Errorf("composite subrequests: got %v, want %v (updates by target ID, never upserts)", subs, wantSubs)
	}
}

// A list of a packed update refused as a whole (an unknown field) fails
// the whole composite: the lot is split until the one bad update is
// dead-lettered, and every other update lands.
func TestPackedUpdateListRefusedAsAWhole(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	const bad = 123
	packedChanges(t, h, 450,
		func(i int) map[string]any {
			if i == bad {
				return map[string]any{"Phone": "x", "NoSuchField__c": "x"}
			}
			return map[string]any{"Phone": fmt.Sprint("p", i)}
		},
		func(int) bool { return false }, nil)
	got := h.targetBySource()
	for i := range 450 {
		want := fmt.Sprint("p", i)
		if i == bad {
			want = ""
		}
		if recs := got[sourceID(i)]; len(recs) != 1 || fmt.Sprint(recs[0]["Phone"]) != want && !(want == "" && recs[0]["Phone"] == nil) {
			t.Errorf("record %d: target %v, want one record with Phone %q", i, recs, want)
		}
	}
	d := h.dlq()
	if len(d) != 1 || d[0].SourceID != sourceID(bad) || d[0].Code != "INVALID_FIELD" {
		t.Errorf("DLQ = %+v, want one INVALID_FIELD for %s", d, sourceID(bad))
	}
}

// Packed changes through the target's transient faults (whole calls
// answered 503, rows locked): every update and delete lands, nothing is
// dead-lettered.
func TestPackedChangesThroughFaults(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	packedChanges(t, h, 450,
		func(i int) map[string]any { return map[string]any{"Phone": fmt.Sprint("p", i)} },
		func(i int) bool { return i%9 == 0 },
		func() {
			fail, lock := 0.2, 0.05
			if err := h.org.Configure(fakeorg.ConfigPatch{FailRate: &fail, LockRate: &lock}); err != nil {
				t.Fatal(err)
			}
		})
	got := h.targetBySource()
	for i := range 450 {
		recs := got[sourceID(i)]
		switch {
		case i%9 == 0 && len(recs) != 0:
			t.Errorf("record %d: %d live target records after its delete", i, len(recs))
		case i%9 != 0 && (len(recs) != 1 || recs[0]["Phone"] != fmt.Sprint("p", i)):
			t.Errorf("record %d: target %v, want one record with Phone p%d", i, recs, i)
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dead letters: %v", d)
	}
}

// A -fields list naming a field the source org lacks: the worker's reads
// of the source leave it out (as the producer does) instead of failing
// with "No such column" and dead-lettering the change.
func TestSourceReadsLeaveOutFieldsTheSourceLacks(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	src := h.withSource()
	id := src.insert(t, fakeorg.Record{"Name": "Old Co", "Phone": "1"})
	fields, err := event.ParseFields("Name,Phone,NoSuchField__c")
	if err != nil {
		t.Fatal(err)
	}
	h.startWorker("w1", func(c *Config) { h.sourced(c); c.Fields = fields })
	h.publishEvent(h.change(event.TypeAccountUpdated, id, map[string]any{"Phone": "2"}), "")
	h.waitFor("the re-created record", 10*time.Second, func() bool { return h.target(id) != nil && h.settled() })
	if got := h.target(id); got["Name"] != "Old Co" || got["Phone"] != "1" {
		t.Errorf("re-created target = %v, want the source's record (Name Old Co, Phone 1)", got)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dead letters: %v", d)
	}
}
