package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LegacyConsumerName is the durable consumer that moves messages on legacy
// subjects (orgsync.account.created, orgsync.account.link, and
// orgsync.account.<change>.<source_id> stored before the partition
// transform) to their partitions.
const LegacyConsumerName = ConsumerName + "-legacy"

// legacySubjects are the subjects of events stored without a partition.
// They do not overlap the partition filters (orgsync.account.*.*.<p>).
var legacySubjects = []string{SubjectCreated, SubjectLink, transformSource}

// CodeMalformedEvent is the dead-letter code of an event that cannot be
// read.
const CodeMalformedEvent = "MALFORMED_EVENT"

// legacyConsumerConfig is the forwarder's consumer.
func (q *Queue) legacyConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        LegacyConsumerName,
		Description:    "orgsync: moves events on legacy subjects to their partitions",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        q.cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  1, // one message at a time across the pool: stream order holds whoever forwards
		FilterSubjects: legacySubjects,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
	}
}

// forwardStats counts what a forward moved.
type forwardStats struct {
	moved        int
	deadLettered int
	partitions   map[int]bool
}

// ForwardLegacy moves the messages on legacy subjects to their partitioned
// subjects, in stream order, through the durable consumer workers-legacy:
// each is republished with its body and headers to
// orgsync.account.<change>.<source_id>.<p> (change and source ID from the
// subject, else from the body, else the source ID from the
// Orgsync-Source-Id header; p = PartitionOf) with Nats-Msg-Id
// ORGSYNC:migrate:<original sequence>, and acknowledged (AckSync) once
// ORGSYNC acknowledged the copy. A message naming no usable record is
// dead-lettered as MALFORMED_EVENT.
//
// With drain it returns once no legacy message is left; otherwise it runs
// until ctx ends and then returns nil. It returns how many messages it moved,
// and an error wrapping ErrLegacyLayout on the legacy layout. A failed
// publish stops it, the messages not moved handed back in order.
func (q *Queue) ForwardLegacy(ctx context.Context, drain bool) (moved int, err error) {
	st := forwardStats{partitions: map[int]bool{}}
	err = q.forwardLegacy(ctx, drain, &st)
	return st.moved, err
}

func (q *Queue) forwardLegacy(ctx context.Context, drain bool, st *forwardStats) error {
	l, err := q.Layout(ctx)
	if err != nil {
		return err
	}
	if l.Legacy() {
		return ErrLegacyLayout
	}
	c, err := q.js.CreateOrUpdateConsumer(ctx, Stream, q.legacyConsumerConfig())
	if err != nil {
		return q.layoutErr(ctx, consumerNamedErr("legacy forwarder", LegacyConsumerName, err))
	}
	wait := time.Second
	if drain {
		wait = 200 * time.Millisecond
	}
	for {
		if ctx.Err() != nil {
			if drain {
				return fmt.Errorf("queue: move legacy messages: %w", ctx.Err())
			}
			return nil
		}
		// One at a time: MaxAckPending 1 lets no second message out before
		// the ack, and a larger request would wait out its max wait.
		msgs, err := fetchAll(c, 1, wait)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			if !drain {
				continue
			}
			info, err := c.Info(ctx)
			if err != nil {
				return consumerNamedErr("legacy forwarder", LegacyConsumerName, err)
			}
			if info.NumPending == 0 && info.NumAckPending == 0 {
				return nil
			}
			continue
		}
		for i, m := range msgs {
			if err := q.forwardOne(ctx, m, l.Partitions, st); err != nil {
				for _, r := range msgs[i+1:] {
					_ = r.Nak()
				}
				return err
			}
		}
	}
}

// forwardOne moves one legacy message (see ForwardLegacy).
func (q *Queue) forwardOne(ctx context.Context, m jetstream.Msg, n int, st *forwardStats) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("queue: move legacy message: %w: %w", ErrNotJetStream, err)
	}
	change, id := legacyRecord(m)
	if !subjectToken(change) || !subjectToken(id) {
		dl := DeadLetter{Code: CodeMalformedEvent, Message: fmt.Sprintf(
			"event on %s names no usable record (change %q, source ID %q)", m.Subject(), change, id)}
		if err := q.DeadLetter(ctx, m, dl); err != nil {
			return err
		}
		st.deadLettered++
		return nil
	}
	p := PartitionOf(id, n)
	out := nats.NewMsg(PartitionedSubject(change, id, p))
	out.Data = m.Data()
	out.Header = cloneHeader(m.Headers())
	seq := strconv.FormatUint(md.Sequence.Stream, 10)
	if _, err := q.js.PublishMsg(ctx, out, jetstream.WithMsgID(Stream+":migrate:"+seq), jetstream.WithExpectStream(Stream)); err != nil {
		_ = m.Nak()
		return publishErr(fmt.Sprintf("move seq %s from %s", seq, m.Subject()), Stream, err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		// Moved; a redelivery moves it again and ORGSYNC drops the copy.
		return fmt.Errorf("queue: moved seq %s from %s, but ack: %w", seq, m.Subject(), err)
	}
	st.moved++
	st.partitions[p] = true
	return nil
}

// legacyRecord reads the change and source ID of a legacy message: from
// its subject (orgsync.account.<change>[.<source_id>]), else from the body
// ("type" account.<change>, "source_id"), else the source ID from the
// Orgsync-Source-Id header.
func legacyRecord(m jetstream.Msg) (change, id string) {
	tokens := strings.Split(m.Subject(), ".")
	if len(tokens) >= 3 {
		change = tokens[2]
	}
	if len(tokens) == 4 {
		id = tokens[3]
	}
	if change == "" {
		change, _ = strings.CutPrefix(bodyString(m.Data(), "type"), "account.")
	}
	if id == "" {
		id = bodyString(m.Data(), "source_id")
	}
	if id == "" && m.Headers() != nil {
		id = m.Headers().Get(HeaderSourceID)
	}
	return change, strings.TrimSpace(id)
}

// subjectToken reports whether s can be one subject token.
func subjectToken(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == '.' || c == '*' || c == '>' || c >= 0x7f {
			return false
		}
	}
	return true
}

// MigrateConfig configures Migrate.
type MigrateConfig struct {
	// Partitions is the partition count to give ORGSYNC when it has none
	// (default DefaultPartitions). A stream already partitioned keeps its own.
	Partitions int
	// DryRun reports what Migrate would do and changes nothing.
	DryRun bool
}

// MigrateReport says what Migrate did (or, in a dry run, would do).
type MigrateReport struct {
	DryRun bool
	// AlreadyPartitioned is true when ORGSYNC had the partition transform.
	AlreadyPartitioned bool
	// Partitions is ORGSYNC's partition count.
	Partitions int
	// AddedTransform is true when Migrate added the partition transform.
	AddedTransform bool
	// DeletedWorkers is true when Migrate deleted the consumer "workers".
	DeletedWorkers bool
	// Moved counts the messages moved from legacy subjects, to
	// MovedPartitions distinct partitions (in a dry run: the messages on
	// legacy subjects).
	Moved, MovedPartitions int
	// DeadLettered counts the legacy messages that named no record.
	DeadLettered int
}

// String is the line `worker migrate` prints.
func (r MigrateReport) String() string {
	var parts []string
	if r.DryRun {
		parts = append(parts, "dry run")
	}
	switch {
	case r.AddedTransform && r.DryRun:
		parts = append(parts, fmt.Sprintf("would partition ORGSYNC into %d partitions", r.Partitions))
	case r.AddedTransform:
		parts = append(parts, fmt.Sprintf("partitioned ORGSYNC into %d partitions", r.Partitions))
	default:
		parts = append(parts, fmt.Sprintf("ORGSYNC already has %d partitions", r.Partitions))
	}
	if r.DryRun {
		parts = append(parts, fmt.Sprintf("would move %d messages from legacy subjects", r.Moved))
	} else {
		parts = append(parts, fmt.Sprintf("moved %d messages to %d partitions", r.Moved, r.MovedPartitions))
	}
	if r.DeadLettered > 0 {
		parts = append(parts, fmt.Sprintf("dead-lettered %d malformed messages", r.DeadLettered))
	}
	switch {
	case r.DeletedWorkers && r.DryRun:
		parts = append(parts, "would delete consumer workers")
	case r.DeletedWorkers:
		parts = append(parts, "deleted consumer workers")
	default:
		parts = append(parts, "no consumer workers to delete")
	}
	return strings.Join(parts, "; ")
}

// Migrate moves ORGSYNC from the single consumer "workers" to the
// partitioned layout (docs/ordering.md, "Migration"): it refuses with an
// error wrapping ErrOldWorkersRunning while "workers" has pull requests
// waiting; otherwise it adds the partition transform, deletes "workers"
// (its unacknowledged messages stay in the stream) and moves every message
// on a legacy subject to its partition (ForwardLegacy with drain). Running
// it again is harmless.
func (q *Queue) Migrate(ctx context.Context, cfg MigrateConfig) (MigrateReport, error) {
	r := MigrateReport{DryRun: cfg.DryRun}
	if cfg.Partitions < 0 || cfg.Partitions > MaxPartitions {
		return r, fmt.Errorf("%w: Partitions %d (want 1 to %d)", ErrInvalidConfig, cfg.Partitions, MaxPartitions)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = DefaultPartitions
	}
	s, err := q.js.Stream(ctx, Stream)
	if err != nil {
		return r, streamErr("migrate", Stream, err)
	}
	have := s.CachedInfo().Config
	r.Partitions, r.AlreadyPartitioned = transformPartitions(have.SubjectTransform)
	if have.SubjectTransform != nil && !r.AlreadyPartitioned {
		return r, fmt.Errorf("queue: migrate: %s has another subject transform (%s); not touching it", Stream, transformString(have.SubjectTransform))
	}
	workers, err := q.js.Consumer(ctx, Stream, ConsumerName)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		workers = nil
	case err != nil:
		return r, consumerErr("migrate", err)
	}
	if workers != nil {
		if err := oldWorkersIdle(ctx, workers); err != nil {
			return r, err
		}
		r.DeletedWorkers = true
	}
	if !r.AlreadyPartitioned {
		r.Partitions = cfg.Partitions
		r.AddedTransform = true
	}
	if cfg.DryRun {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter("orgsync.account.*"))
		if err != nil {
			return r, streamErr("migrate", Stream, err)
		}
		for _, n := range info.State.Subjects {
			r.Moved += int(n)
		}
		info, err = s.Info(ctx, jetstream.WithSubjectFilter(transformSource))
		if err != nil {
			return r, streamErr("migrate", Stream, err)
		}
		for _, n := range info.State.Subjects {
			r.Moved += int(n)
		}
		return r, nil
	}
	if r.AddedTransform {
		have.SubjectTransform = partitionTransform(r.Partitions)
		if _, err := q.js.UpdateStream(ctx, have); err != nil {
			return r, fmt.Errorf("queue: migrate: add the partition transform to %s: %w", Stream, err)
		}
		q.log.Info("queue: added the partition transform", logKeyStream, Stream, "partitions", r.Partitions)
	}
	if workers != nil {
		if err := q.js.DeleteConsumer(ctx, Stream, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return r, consumerErr("migrate: delete", err)
		}
		q.log.Info("queue: deleted the consumer", logKeyStream, Stream, logKeyConsumer, ConsumerName)
	}
	st := forwardStats{partitions: map[int]bool{}}
	err = q.forwardLegacy(ctx, true, &st)
	r.Moved, r.MovedPartitions, r.DeadLettered = st.moved, len(st.partitions), st.deadLettered
	return r, err
}

// oldWorkersIdle returns an error wrapping ErrOldWorkersRunning when the
// consumer "workers" has pull requests waiting, looking a few times: a
// running worker fetches again within a linger.
func oldWorkersIdle(ctx context.Context, c jetstream.Consumer) error {
	for i := range 4 {
		if i > 0 && !sleepCtx(ctx, 150*time.Millisecond) {
			return ctx.Err()
		}
		info, err := c.Info(ctx)
		if err != nil {
			return consumerErr("migrate", err)
		}
		if info.NumWaiting > 0 {
			return fmt.Errorf("%w (%d pull requests waiting)", ErrOldWorkersRunning, info.NumWaiting)
		}
	}
	return nil
}
