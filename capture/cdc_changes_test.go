package capture_test

import (
	"strings"
	"testing"
	"time"

	"orgsync/capture"
	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

// changesOf returns each record's changes in stream order.
func (e *env) changesOf() map[string][]event.Event {
	e.t.Helper()
	out := map[string][]event.Event{}
	for _, m := range e.messages() {
		out[m.ev.SourceID] = append(out[m.ev.SourceID], m.ev)
	}
	return out
}

func kinds(evs []event.Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Change())
	}
	return strings.Join(s, ",")
}

// An update touching only fields outside -fields publishes nothing and is
// counted as skipped, as is orgsync's own update (changeOrigin
// client=orgsync); one touching copied fields publishes those, with the
// change event's transactionKey and sequenceNumber as change key.
func TestCDCUpdatesOutsideFieldsPublishNothing(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	id := e.createREST("fields", 1)[0]
	c := e.userClient()
	if err := c.Update(t.Context(), "Account", id, salesforce.Record{"Site": "HQ", "Rating": "Hot"}); err != nil {
		t.Fatal(err)
	}
	// orgsync's own write (Sforce-Call-Options: client=orgsync) is skipped.
	if err := e.client().Update(t.Context(), "Account", id, salesforce.Record{"Name": "from the other org"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(t.Context(), "Account", id, salesforce.Record{"Site": "Branch", "BillingCity": "Lyon", "Industry": nil}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "4 events handled", func() bool {
		tot := r.cdc.Totals()
		return tot.Events[pubsub.ChangeUpdate] == 3 && tot.Published == 2
	})
	r.stop()
	if tot := r.cdc.Totals(); tot.Skipped != 2 || tot.OwnChanges != 1 {
		t.Errorf("skipped %d, own changes %d; want 2 (fields not copied, orgsync's own) and 1", tot.Skipped, tot.OwnChanges)
	}
	evs := e.changesOf()[id]
	if kinds(evs) != "created,updated" {
		t.Fatalf("%s: %s, want created,updated", id, kinds(evs))
	}
	up := evs[1]
	if _, nulled := up.Fields["Industry"]; len(up.Fields) != 2 || up.Fields["BillingCity"] != "Lyon" || !nulled || up.Fields["Industry"] != nil {
		t.Errorf("update fields %v, want BillingCity and a nulled Industry", up.Fields)
	}
	if k := strings.Split(up.ChangeKey, ":"); len(k) != 2 || k[0] == "" || k[1] != "1" || up.ChangedAt.IsZero() {
		t.Errorf("change key %q changed_at %v, want <transactionKey>:1 and the commit time", up.ChangeKey, up.ChangedAt)
	}
}

// GAP_UPDATE and GAP_DELETE events re-read their records: the current
// state of a live one is published as an update, a deleted one as a
// delete; the gap event's keys keep them apart from other changes.
func TestCDCGapEventsReadRecords(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	ids := e.createREST("gap", 2)
	eventually(t, "the creates", func() bool { return r.cdc.Totals().Published == 2 })
	e.bus.Configure(eventbus.Settings{Suppress: true})
	c := e.userClient()
	if err := c.Update(t.Context(), "Account", ids[0], salesforce.Record{"Name": "gap renamed"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), "Account", ids[1]); err != nil {
		t.Fatal(err)
	}
	e.bus.Configure(eventbus.Settings{})
	if err := e.bus.Gap(pubsub.ChangeGapUpdate, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if err := e.bus.Gap(pubsub.ChangeGapDelete, ids[1:]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gap catch-ups", func() bool { return r.cdc.Totals().CatchUps[capture.CauseGap] == 2 })
	r.stop()
	got := e.changesOf()
	if kinds(got[ids[0]]) != "created,updated" || kinds(got[ids[1]]) != "created,deleted" {
		t.Fatalf("got %s and %s, want created,updated and created,deleted", kinds(got[ids[0]]), kinds(got[ids[1]]))
	}
	if up := got[ids[0]][1]; up.Fields["Name"] != "gap renamed" || up.Fields["BillingCity"] != "Paris" {
		t.Errorf("gap update fields %v, want the record's whole copied state", up.Fields)
	}
}

// An overflow catch-up captures updates (SystemModstamp) and deletes (Get
// Deleted) besides creates; the part of the delete log Get Deleted did not
// cover yet (the running minute) is asked again once that minute is over.
func TestCDCOverflowCatchesUpUpdatesAndDeletes(t *testing.T) {
	clk := newClock()
	e := newCDCEnvOrg(t, fakeorg.Config{Now: clk.Now}, eventbus.Config{Now: clk.Now})
	r := e.start(e.dbPath(), func(c *capture.CDCConfig, _ *pubsub.Config) { c.Now = clk.Now })
	e.ready(r)
	ids := e.createREST("overflow", 3)
	eventually(t, "the creates", func() bool { return r.cdc.Totals().Published == 3 })
	clk.Advance(time.Second)
	e.bus.Configure(eventbus.Settings{Suppress: true})
	c := e.userClient()
	if err := c.Update(t.Context(), "Account", ids[0], salesforce.Record{"Phone": "555-0142"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), "Account", ids[1]); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	late := clk.Now()
	if err := c.Delete(t.Context(), "Account", ids[2]); err != nil { // in the minute still running
		t.Fatal(err)
	}
	e.bus.Configure(eventbus.Settings{})
	e.bus.Overflow()
	eventually(t, "the overflow catch-up", func() bool { return r.cdc.Totals().CatchUps[capture.CauseOverflow] == 1 })
	got := e.changesOf()
	if kinds(got[ids[0]]) != "created,updated" || kinds(got[ids[1]]) != "created,deleted" || kinds(got[ids[2]]) != "created" {
		t.Fatalf("after the catch-up: %s / %s / %s, want created,updated / created,deleted / created (its minute runs)",
			kinds(got[ids[0]]), kinds(got[ids[1]]), kinds(got[ids[2]]))
	}
	if up := got[ids[0]][1]; up.Fields["Phone"] != "555-0142" || up.Fields["Name"] == nil ||
		!strings.HasPrefix(up.ChangeKey, event.TimeKey(up.ChangedAt)+":") {
		t.Errorf("catch-up update %+v, want the whole copied state keyed <SystemModstamp>:<hash>", up)
	}
	// Once the minute is over, the next batch runs the follow-up.
	clk.Advance(time.Minute)
	other := e.createREST("after", 1)[0]
	// The batch publishes the new record's create and the follow-up's
	// delete; wait for both before stopping.
	eventually(t, "the follow-up's delete and the new create", func() bool {
		got := e.changesOf()
		return kinds(got[ids[2]]) == "created,deleted" && len(got[other]) > 0
	})
	r.stop()
	got = e.changesOf()
	if del := got[ids[2]][1]; !del.ChangedAt.Equal(late) {
		t.Errorf("late delete at %v, want %v", del.ChangedAt, late)
	}
	if kinds(got[other]) != "created" {
		t.Errorf("%s: %s", other, kinds(got[other]))
	}
}
