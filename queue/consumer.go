package queue

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// MinFetchWait is the shortest wait Fetch asks the server for; a shorter
// maxWait is raised to it.
const MinFetchWait = 10 * time.Millisecond

// Consumer is a worker's handle on the durable pull consumer "workers". It is
// safe for concurrent use: several goroutines of one process may Fetch at
// once, and every process of the pool shares the same server-side consumer.
type Consumer struct {
	c   jetstream.Consumer
	cfg jetstream.ConsumerConfig // of the consumer as found or created
	log *slog.Logger
}

// LegacyConsumer returns the durable pull consumer "workers" of the layout
// before partitions, creating it if it is missing: AckWait and
// MaxAckPending from Config, MaxDeliver -1 (unlimited; the worker enforces
// -max-deliver), explicit acks, DeliverAll, filter orgsync.account.>. An
// existing consumer is used as it is: it is never updated, and each
// difference from that configuration is logged (warn).
//
// Workers take their events with Partitions, which keeps each record's
// events in order; LegacyConsumer is for tools and tests that work with a
// deployment still in the old layout. Creating "workers" on a partitioned
// stream puts it back in the old layout: workers then refuse to start
// (ErrLegacyLayout) until `worker migrate` deletes the consumer.
//
// It returns an error wrapping ErrNoStream when ORGSYNC does not exist.
func (q *Queue) LegacyConsumer(ctx context.Context) (*Consumer, error) {
	c, err := q.ensureConsumer(ctx)
	if err != nil {
		return nil, err
	}
	return &Consumer{c: c, cfg: c.CachedInfo().Config, log: q.log}, nil
}

// Config returns the consumer's configuration as read when it was found or
// created: an existing consumer's AckWait may differ from Config.AckWait.
func (c *Consumer) Config() jetstream.ConsumerConfig { return c.cfg }

// AckWait is the consumer's actual ack wait; send InProgress well inside it
// (Hold at a third of it does).
func (c *Consumer) AckWait() time.Duration {
	if c.cfg.AckWait > 0 {
		return c.cfg.AckWait
	}
	return 30 * time.Second // the server's default
}

// Info fetches the consumer's current state from the server. It returns an
// error wrapping ErrNoConsumer if the consumer was deleted.
func (c *Consumer) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	info, err := c.c.Info(ctx)
	if err != nil {
		return nil, consumerErr("consumer info", err)
	}
	return info, nil
}

// Fetch pulls up to batchSize messages in one request and waits at most
// maxWait for the batch to fill (never past ctx's deadline; at least MinFetchWait).
// It returns what arrived, possibly nothing with a nil error.
//
// If ctx is cancelled while waiting, Fetch returns at once with the messages
// it already holds (nil error), or with ctx's error when it holds none. The
// server-side request stays open until maxWait; messages that reach it after
// Fetch returned are nak'ed with a delay that outlasts the request, so each
// is redelivered once, to another request, instead of waiting out its
// AckWait unseen. (An immediate nak would hand it straight back to the same
// abandoned request, again and again, burning its delivery count.)
//
// A non-nil error always comes with no messages. It wraps ErrNoConsumer when
// the consumer does not exist (deleted after it was obtained).
func (c *Consumer) Fetch(ctx context.Context, batchSize int, maxWait time.Duration) ([]jetstream.Msg, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("queue: fetch: batch size %d, want at least 1", batchSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("queue: fetch: %w", err)
	}
	wait := maxWait
	if dl, ok := ctx.Deadline(); ok {
		// Leave room for the server's answer to arrive before the deadline.
		left := time.Until(dl)
		left -= min(left/10, time.Second)
		wait = min(wait, left)
	}
	wait = max(wait, MinFetchWait)

	expires := time.Now().Add(wait)
	batch, err := c.c.Fetch(batchSize, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, consumerErr("fetch", err)
	}
	msgs := make([]jetstream.Msg, 0, min(batchSize, 256))
	ch := batch.Messages()
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return c.fetchDone(msgs, batch.Error())
			}
			msgs = append(msgs, m)
		case <-ctx.Done():
			go nakAll(ch, expires)
			if len(msgs) == 0 {
				return nil, fmt.Errorf("queue: fetch: %w", ctx.Err())
			}
			return msgs, nil
		}
	}
}

// fetchDone ends a Fetch whose batch is complete: a delivery error is
// returned only when no message arrived, and logged otherwise.
func (c *Consumer) fetchDone(msgs []jetstream.Msg, err error) ([]jetstream.Msg, error) {
	if err == nil {
		return msgs, nil
	}
	if len(msgs) == 0 {
		return nil, consumerErr("fetch", err)
	}
	c.log.Warn("queue: fetch ended early; keeping the messages received",
		logKeyCount, len(msgs), logKeyErr, err)
	return msgs, nil
}

// nakAll naks every message still delivered to an abandoned fetch, until the
// library closes the channel (at most the fetch's max wait plus a second),
// with a delay that ends after the request has expired on the server.
func nakAll(ch <-chan jetstream.Msg, expires time.Time) {
	for m := range ch {
		_ = m.NakWithDelay(time.Until(expires) + abandonedNakMargin)
	}
}

// abandonedNakMargin is added to an abandoned request's remaining wait.
const abandonedNakMargin = 200 * time.Millisecond

// Nak asks for m to be redelivered after delay (at once when delay <= 0).
// The message keeps counting against MaxAckPending while it waits.
func Nak(m jetstream.Msg, delay time.Duration) error {
	var err error
	if delay > 0 {
		err = m.NakWithDelay(delay)
	} else {
		err = m.Nak()
	}
	if err != nil {
		return fmt.Errorf("queue: nak: %w", err)
	}
	return nil
}

// Term stops all redelivery of m and removes it from the work queue; reason
// (e.g. an error code) goes into the server's MSG_TERMINATED advisory. Only
// DeadLetter should normally terminate a message: anything else drops it.
func Term(m jetstream.Msg, reason string) error {
	var err error
	if reason != "" {
		err = m.TermWithReason(headerValue(reason))
	} else {
		err = m.Term()
	}
	if err != nil {
		return fmt.Errorf("queue: term: %w", err)
	}
	return nil
}

// NakDelay is the redelivery delay for a transient record failure after
// numDelivered deliveries: 1s for the first, doubling with each further
// delivery, with ±20% jitter, never above 2 minutes. It uses math/rand/v2's
// top-level functions, which are safe for concurrent use.
func NakDelay(numDelivered uint64) time.Duration {
	return nakDelay(numDelivered, rand.Float64())
}

// Bounds of NakDelay.
const (
	nakDelayBase   = time.Second
	nakDelayMax    = 2 * time.Minute
	nakDelayJitter = 0.2
)

// nakDelay is NakDelay with the random number u in [0, 1) given.
func nakDelay(numDelivered uint64, u float64) time.Duration {
	d := nakDelayMax
	if numDelivered <= 1 {
		d = nakDelayBase
	} else if shift := numDelivered - 1; shift < 8 { // 2^7 s > 2 min already
		d = min(nakDelayBase<<shift, nakDelayMax)
	}
	j := time.Duration(float64(d) * nakDelayJitter * (2*u - 1))
	return min(d+j, nakDelayMax)
}
