package reconcile

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/nats-io/nats.go"

	"orgsync/event"
	"orgsync/queue"
)

// QueuePublisher publishes repairs to JetStream as `producer poll` would
// publish the record (subject orgsync.account.created.<source_id>, the same
// body), with a dedup key of its own,
// "<source_org>:<source_id>:repair:<run id>", so the duplicate window does
// not swallow them, and the HeaderRepair header, so a worker writes them even
// when its ID map knows the record.
type QueuePublisher struct {
	Queue interface {
		Publish(ctx context.Context, subject, msgID string, body []byte, hdr nats.Header) (bool, error)
	}
	// RunID tells this run's repairs from an earlier run's (e.g. the run's
	// start in Unix nanoseconds).
	RunID string
}

var _ Publisher = (*QueuePublisher)(nil)

// MsgID is the dedup key of a repair event.
func (p *QueuePublisher) MsgID(ev event.Event) string { return RepairMsgID(ev, p.RunID) }

// RepairMsgID is "<source_org>:<source_id>:repair:<runID>".
func RepairMsgID(ev event.Event, runID string) string {
	return ev.SourceOrg + ":" + ev.SourceID + ":repair:" + runID
}

// Publish publishes ev and waits for the stream's ack.
func (p *QueuePublisher) Publish(ctx context.Context, ev event.Event) error {
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	hdr := nats.Header{}
	hdr.Set(queue.HeaderSourceID, ev.SourceID)
	hdr.Set(queue.HeaderRepair, p.RunID)
	if _, err := p.Queue.Publish(ctx, queue.AccountSubject(ev.Change(), ev.SourceID), RepairMsgID(ev, p.RunID), body, hdr); err != nil {
		return err
	}
	return nil
}

// DryRun is a Publisher that publishes nothing and writes what it would
// publish, one line per event: "would publish <subject> <msg id> <body>".
type DryRun struct {
	W     io.Writer
	RunID string

	mu sync.Mutex
}

var _ Publisher = (*DryRun)(nil)

// Publish writes the line of ev.
func (d *DryRun) Publish(_ context.Context, ev event.Event) error {
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err = fmt.Fprintf(d.W, "would publish %s %s %s\n", queue.AccountSubject(ev.Change(), ev.SourceID), RepairMsgID(ev, d.RunID), body)
	return err
}
