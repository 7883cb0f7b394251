package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The partitioned layout (docs/ordering.md): ORGSYNC stores every event of
// orgsync.account.<change>.<source_id> as
// orgsync.account.<change>.<source_id>.<partition>, and each partition has
// its own durable pull consumer workers-<partition>.
const (
	// transformSource is the subject transform's source: the subjects that
	// carry a record.
	transformSource = "orgsync.account.*.*"
	// transformDestination is its destination, %d being the partition count.
	transformDestination = "orgsync.account.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(%d,2)}}"
	// partitionConsumerPrefix names the partition consumers.
	partitionConsumerPrefix = ConsumerName + "-"
)

// partitionTransform is ORGSYNC's subject transform for n partitions.
func partitionTransform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{Source: transformSource, Destination: fmt.Sprintf(transformDestination, n)}
}

var partitionCountRE = regexp.MustCompile(`\{\{\s*[pP]artition\s*\(\s*(\d+)\s*,`)

// transformPartitions reads the partition count of ORGSYNC's subject
// transform; ok is false when the stream has no partition transform.
func transformPartitions(t *jetstream.SubjectTransformConfig) (n int, ok bool) {
	if t == nil || t.Source != transformSource {
		return 0, false
	}
	m := partitionCountRE.FindStringSubmatch(t.Destination)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// PartitionOf is the partition of ORGSYNC that stores the events of
// sourceID when the stream has n partitions: the FNV-32a hash of the ID
// modulo n, as the server's partition() transform computes it.
func PartitionOf(sourceID string, n int) int {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(sourceID))
	return int(h.Sum32() % uint32(n))
}

// ConsumerFor names the durable consumer of partition p: "workers-<p>".
func ConsumerFor(p int) string { return partitionConsumerPrefix + strconv.Itoa(p) }

// PartitionSubject is the filter of partition p: orgsync.account.*.*.<p>.
func PartitionSubject(p int) string { return transformSource + "." + strconv.Itoa(p) }

// PartitionedSubject is the subject a record's event is stored on:
// orgsync.account.<change>.<source_id>.<p>.
func PartitionedSubject(change, sourceID string, p int) string {
	return AccountSubject(change, sourceID) + "." + strconv.Itoa(p)
}

// partitionOfConsumer returns p for a consumer named workers-<p>.
func partitionOfConsumer(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, partitionConsumerPrefix)
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(rest)
	if err != nil || p < 0 || strconv.Itoa(p) != rest {
		return 0, false
	}
	return p, true
}

// adoptLayout takes the partition count of an existing ORGSYNC and logs
// what differs from the configuration.
func (q *Queue) adoptLayout(have jetstream.StreamConfig) {
	n, ok := transformPartitions(have.SubjectTransform)
	switch {
	case !ok:
		q.log.Warn("queue: ORGSYNC has no partition transform (the layout of an older orgsync); leaving it as it is: run `worker migrate`",
			logKeyStream, Stream, "transform", transformString(have.SubjectTransform))
	case n != q.cfg.Partitions:
		q.log.Warn("queue: ORGSYNC has another partition count than configured; using the stream's",
			logKeyStream, Stream, "stream_partitions", n, "configured", q.cfg.Partitions)
		q.cfg.Partitions = n
	}
}

// Layout describes how ORGSYNC is laid out.
type Layout struct {
	// Partitioned is true when ORGSYNC has the partition transform.
	Partitioned bool
	// Partitions is the stream's partition count (0 when not partitioned).
	Partitions int
	// LegacyConsumer is true when the consumer "workers" exists.
	LegacyConsumer bool
}

// Legacy reports whether the layout is (still) the single-consumer one.
func (l Layout) Legacy() bool { return !l.Partitioned || l.LegacyConsumer }

// Layout reads ORGSYNC's layout from the server.
func (q *Queue) Layout(ctx context.Context) (Layout, error) {
	var l Layout
	info, err := q.streamInfo(ctx, Stream)
	if err != nil {
		return l, err
	}
	l.Partitions, l.Partitioned = transformPartitions(info.Config.SubjectTransform)
	_, err = q.js.Consumer(ctx, Stream, ConsumerName)
	switch {
	case err == nil:
		l.LegacyConsumer = true
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return l, consumerErr("layout", err)
	}
	return l, nil
}

// partitionConsumerConfig is the durable pull consumer of partition p out
// of n.
func (q *Queue) partitionConsumerConfig(p, n int) jetstream.ConsumerConfig {
	map_ := q.cfg.MaxAckPending
	if map_ > 0 {
		map_ = max((map_+n-1)/n, 1)
	}
	return jetstream.ConsumerConfig{
		Durable:       ConsumerFor(p),
		Description:   fmt.Sprintf("orgsync: partition %d of %d", p, n),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1, // the worker enforces -max-deliver itself
		MaxAckPending: map_,
		FilterSubject: PartitionSubject(p),
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// ensurePartitionConsumer returns partition p's consumer, creating it if
// missing (paused until pausedUntil when that is in the future); the
// differences of an existing one are logged.
func (q *Queue) ensurePartitionConsumer(ctx context.Context, p, n int, pausedUntil time.Time) (jetstream.Consumer, error) {
	want := q.partitionConsumerConfig(p, n)
	name := want.Durable
	c, err := q.js.Consumer(ctx, Stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		create := want
		if time.Until(pausedUntil) > 0 {
			create.PauseUntil = &pausedUntil
		}
		c, err = q.js.CreateConsumer(ctx, Stream, create)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = q.js.Consumer(ctx, Stream, name)
		} else if err == nil {
			q.log.Info("queue: created consumer", logKeyStream, Stream, logKeyConsumer, name)
			return c, nil
		}
	}
	if err != nil {
		return nil, q.layoutErr(ctx, consumerNamedErr("ensure consumer", name, err))
	}
	for _, d := range consumerDiff(c.CachedInfo().Config, want) {
		q.log.Warn("queue: existing consumer differs from the flags; using it as it is",
			logKeyStream, Stream, logKeyConsumer, name, logKeyField, d.field, logKeyExisting, d.have, logKeyWanted, d.want)
	}
	return c, nil
}

// layoutErr adds ErrLegacyLayout to err when the consumer "workers" exists
// (a work-queue stream refuses the partition consumers beside it).
func (q *Queue) layoutErr(ctx context.Context, err error) error {
	if _, cerr := q.js.Consumer(ctx, Stream, ConsumerName); cerr == nil {
		return fmt.Errorf("%w (%w)", ErrLegacyLayout, err)
	}
	return err
}

// poolConsumers lists the consumers of ORGSYNC that belong to the pool: the
// partition consumers, or the legacy "workers".
func (q *Queue) poolConsumers(ctx context.Context) ([]*jetstream.ConsumerInfo, error) {
	s, err := q.js.Stream(ctx, Stream)
	if err != nil {
		return nil, streamErr("list consumers", Stream, err)
	}
	l := s.ListConsumers(ctx)
	var out []*jetstream.ConsumerInfo
	for info := range l.Info() {
		if _, ok := partitionOfConsumer(info.Name); ok || info.Name == ConsumerName {
			out = append(out, info)
		}
	}
	if err := l.Err(); err != nil {
		return nil, streamErr("list consumers", Stream, err)
	}
	return out, nil
}

// DeleteConsumer deletes the pool's consumers: the partition consumers
// workers-<p> (and the legacy "workers" if it exists). It is an operator's
// reset: running workers create them again. It returns an error wrapping
// ErrNoConsumer when there is none.
func (q *Queue) DeleteConsumer(ctx context.Context) error {
	infos, err := q.poolConsumers(ctx)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return fmt.Errorf("queue: delete consumer: %w: %s has no worker consumer", ErrNoConsumer, Stream)
	}
	for _, info := range infos {
		if err := q.js.DeleteConsumer(ctx, Stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return consumerNamedErr("delete consumer", info.Name, err)
		}
	}
	return nil
}
