package replicate

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce/fakeorg"
)

// A created event for a record already in the ID map is acknowledged
// without a write, unless it is a repair (queue.HeaderRepair) from `worker
// reconcile -repair`: the target disagrees, so the map's word does not count.
func TestRepairBypassesTheIDMapShortCut(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("w1", nil)
	h.publish(0, "Original")
	h.waitFor("the first write", 10*time.Second, func() bool { return len(h.targetBySource()[sourceID(0)]) == 1 && h.settled() })

	send := func(name, msgID string, hdr nats.Header) {
		t.Helper()
		ev := h.created(sourceID(0), name, "")
		body, err := ev.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.q.Publish(t.Context(), queue.AccountSubject(event.ChangeCreated, ev.SourceID), msgID, body, hdr); err != nil {
			t.Fatal(err)
		}
	}
	send("Ignored", "plain-again", nil)
	h.waitFor("the plain event to settle", 10*time.Second, h.settled)
	if got := h.targetBySource()[sourceID(0)][0]["Name"]; got != "Original" {
		t.Fatalf("a plain created event for a mapped record was written: Name %v", got)
	}
	hdr := nats.Header{}
	hdr.Set(queue.HeaderRepair, "1")
	send("Repaired", "repair-1", hdr)
	h.waitFor("the repair to be written", 10*time.Second, func() bool {
		rs := h.targetBySource()[sourceID(0)]
		return len(rs) == 1 && rs[0]["Name"] == "Repaired"
	})
}
