package queue

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/natsembed"
	"orgsync/internal/tcpproxy"
)

// Ensure that a holder whose connection broke while the server delivered it
// a message (the message never arrived) fetches nothing newer of that
// partition until the lost message is redelivered: after the reconnection,
// the record's next event is not handed out before the lost one is settled.
func TestPartitions_ReconnectWaitsForLostDeliveries(t *testing.T) {
	e, err := natsembed.Run(natsembed.Config{Dir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatalf("natsembed.Run: %v", err)
	}
	t.Cleanup(e.Shutdown)
	direct, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	djs, err := jetstream.New(direct)
	if err != nil {
		t.Fatal(err)
	}
	q := mustNew(t, djs, Config{Partitions: 1, AckWait: testAckWait, LeaseTTL: testLeaseTTL})

	// The worker reaches the server through the proxy.
	px := tcpproxy.New(t, e.ClientURL()[len("nats://"):])
	nc, err := nats.Connect(px.URL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	wjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	qw := mustNew(t, wjs, Config{Partitions: 1, AckWait: testAckWait, LeaseTTL: testLeaseTTL})
	tr := newTracker()
	w := startWorker(t, qw, "w", tr, nil)
	waitFor(t, 10*time.Second, func() error {
		if h := w.ps.Held(); len(h) != 1 {
			return fmt.Errorf("w holds %v", h)
		}
		return nil
	})
	cons, err := djs.Consumer(t.Context(), Stream, ConsumerFor(0))
	if err != nil {
		t.Fatal(err)
	}
	ackPending := func(want int) func() error {
		return func() error {
			ci, err := cons.Info(t.Context())
			if err != nil {
				return err
			}
			if ci.NumAckPending != want {
				return fmt.Errorf("%d pending acknowledgement, want %d", ci.NumAckPending, want)
			}
			return nil
		}
	}

	// Event 0 is delivered to w's waiting fetch, and lost on the way.
	px.Drop(true)
	id := recordID(1)
	publishEvents(t, q, []string{id}, 0, 1)
	waitFor(t, 5*time.Second, ackPending(1))
	reconnects := nc.Stats().Reconnects
	px.Cut()
	px.Drop(false)
	waitFor(t, 10*time.Second, func() error {
		if nc.Stats().Reconnects == reconnects || !nc.IsConnected() {
			return errors.New("not reconnected yet")
		}
		return nil
	})
	// Event 1 follows while event 0 is still pending acknowledgement.
	publishEvents(t, q, []string{id}, 1, 1)
	waitAcked(t, tr, 2, 30*time.Second)
	tr.check(t)
	waitStreamMsgs(t, djs, Stream, 0)
}
