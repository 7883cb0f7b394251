package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one message delivered to this worker by the consumer, with
// what the server said about it. The engine settles every Delivery exactly
// once: Ack, AckSync, Retry, Release or Queue.DeadLetterDelivery; Hold keeps
// it alive meanwhile.
type Delivery struct {
	msg jetstream.Msg
	// Seq is the message's ORGSYNC stream sequence.
	Seq uint64
	// NumDelivered counts deliveries so far, 1 on the first. The server
	// raises it on every redelivery, whatever caused it.
	NumDelivered int
	// Subject is the subject the message was published on.
	Subject string
	// Pending is how many messages were left for the consumer when this
	// one was delivered.
	Pending uint64
	// Received is when this worker got it.
	Received time.Time
	// Partition is the ORGSYNC partition it came from (-1 from the legacy
	// consumer "workers").
	Partition int

	// fence is set once this worker lost the lease of the message's
	// partition: InProgress and Hold then stop keeping it alive.
	fence *atomic.Bool
}

// fenced reports whether the lease of d's partition was lost.
func (d *Delivery) fenced() bool { return d.fence != nil && d.fence.Load() }

func newDelivery(m jetstream.Msg, now time.Time) *Delivery {
	d := &Delivery{msg: m, NumDelivered: 1, Subject: m.Subject(), Received: now, Partition: -1}
	if md, err := m.Metadata(); err == nil {
		d.Seq, d.NumDelivered = md.Sequence.Stream, int(min(md.NumDelivered, uint64(1<<31-1)))
		d.Pending = md.NumPending
	}
	return d
}

// Data is the message body.
func (d *Delivery) Data() []byte { return d.msg.Data() }

// Header returns the value of a message header, or "".
func (d *Delivery) Header(key string) string {
	if h := d.msg.Headers(); h != nil {
		return h.Get(key)
	}
	return ""
}

// Ack acknowledges the message without waiting for the server: a lost ack
// redelivers it, which suits an idempotent write.
func (d *Delivery) Ack() error {
	if err := d.msg.Ack(); err != nil {
		return fmt.Errorf("queue: ack seq %d: %w", d.Seq, err)
	}
	return nil
}

// AckSync acknowledges the message and waits for the server to confirm it
// (a double ack), for writes that a redelivery would duplicate.
func (d *Delivery) AckSync(ctx context.Context) error {
	if err := d.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("queue: ack seq %d: %w", d.Seq, err)
	}
	return nil
}

// Retry asks for a redelivery after delay (at once when delay <= 0). The
// redelivery raises NumDelivered.
func (d *Delivery) Retry(delay time.Duration) error { return Nak(d.msg, delay) }

// InProgress restarts the message's ack wait. Once this worker lost the
// lease of the message's partition it does nothing and returns
// ErrLeaseLost: the message must become redeliverable to the new holder.
func (d *Delivery) InProgress() error {
	if d.fenced() {
		return ErrLeaseLost
	}
	return d.msg.InProgress()
}

// DeadLetterDelivery is DeadLetter for a Delivery: publish to the DLQ, wait
// for its ack, then terminate the original (nak'ed instead when the DLQ
// publish fails, so nothing is dropped).
func (q *Queue) DeadLetterDelivery(ctx context.Context, d *Delivery, dl DeadLetter) error {
	if dl.Attempts <= 0 {
		dl.Attempts = d.NumDelivered
	}
	return q.DeadLetter(ctx, d.msg, dl)
}

// Deliveries is Fetch returning Deliveries.
func (c *Consumer) Deliveries(ctx context.Context, batchSize int, maxWait time.Duration) ([]*Delivery, error) {
	msgs, err := c.Fetch(ctx, batchSize, maxWait)
	if len(msgs) == 0 {
		return nil, err
	}
	now := time.Now()
	ds := make([]*Delivery, len(msgs))
	for i, m := range msgs {
		ds[i] = newDelivery(m, now)
	}
	return ds, err
}

// Hold sends InProgress for each of ds every interval, so their ack wait
// never expires while they are being written or held through a pause, until
// stop is called; it skips the deliveries of a partition whose lease this
// worker lost. A non-positive interval means 10s. stop waits for the
// heartbeat goroutine to end and may be called more than once.
func Hold(ds []*Delivery, interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, d := range ds {
					select {
					case <-done:
						return
					default:
					}
					if !d.fenced() {
						_ = d.msg.InProgress()
					}
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
