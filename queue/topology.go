package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Log attribute keys.
const (
	logKeyStream   = "stream"
	logKeyConsumer = "consumer"
	logKeyField    = "field"
	logKeyExisting = "existing"
	logKeyWanted   = "wanted"
	logKeyErr      = "err"
	logKeyCount    = "count"
)

// streamConfig is ORGSYNC as docs/contract.md specifies it: a work queue on file
// storage that refuses publishes when full (DiscardNew) and never ages
// messages out.
func (q *Queue) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream,
		Description: "orgsync: account events to replicate (work queue)",
		Subjects:    []string{SubjectAccounts},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		Duplicates:  q.cfg.Duplicates,
		Replicas:    q.cfg.Replicas,
		// Lets `nats stream view ORGSYNC` page a work-queue stream.
		AllowDirect:      true,
		SubjectTransform: partitionTransform(q.cfg.Partitions),
	}
}

// dlqConfig is ORGSYNC_DLQ: limits retention on file storage, kept until
// replayed or purged. DiscardNew makes a DLQ given limits later refuse a dead
// letter (the original is then nak'ed) rather than drop an older one.
func (q *Queue) dlqConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DLQStream,
		Description: "orgsync: dead letters, kept until replayed or purged",
		Subjects:    []string{SubjectDLQ},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		Duplicates:  q.cfg.Duplicates,
		Replicas:    q.cfg.Replicas,
	}
}

// consumerConfig is the durable pull consumer "workers".
func (q *Queue) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "orgsync: worker pool",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1, // the worker enforces -max-deliver itself
		MaxAckPending: q.cfg.MaxAckPending,
		FilterSubject: SubjectAccounts,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// ensureStream creates the stream want describes if it does not exist, and
// logs the differences of an existing one. It returns the stream's
// configuration as found or created.
func (q *Queue) ensureStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	s, err := q.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = q.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it in between: use theirs.
			s, err = q.js.Stream(ctx, want.Name)
		} else if err == nil {
			q.log.Info("queue: created stream", logKeyStream, want.Name)
			return s.CachedInfo().Config, nil
		}
	}
	if err != nil {
		return jetstream.StreamConfig{}, fmt.Errorf("queue: ensure stream %s: %w", want.Name, err)
	}
	have := s.CachedInfo().Config
	for _, d := range streamDiff(have, want) {
		if d.field == "SubjectTransform" {
			continue // adoptLayout says what it means
		}
		q.log.Warn("queue: existing stream differs from the wanted configuration; using it as it is",
			logKeyStream, want.Name, logKeyField, d.field, logKeyExisting, d.have, logKeyWanted, d.want)
	}
	return have, nil
}

// ensureConsumer returns the consumer "workers", creating it if missing; the
// differences of an existing one are logged.
func (q *Queue) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	want := q.consumerConfig()
	c, err := q.js.Consumer(ctx, Stream, ConsumerName)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = q.js.CreateConsumer(ctx, Stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another worker created it in between, differently: use theirs.
			c, err = q.js.Consumer(ctx, Stream, ConsumerName)
		} else if err == nil {
			q.log.Info("queue: created consumer", logKeyStream, Stream, logKeyConsumer, ConsumerName)
			return c, nil
		}
	}
	if err != nil {
		return nil, consumerErr("ensure consumer", err)
	}
	for _, d := range consumerDiff(c.CachedInfo().Config, want) {
		q.log.Warn("queue: existing consumer differs from the flags; using it as it is",
			logKeyStream, Stream, logKeyConsumer, ConsumerName, logKeyField, d.field, logKeyExisting, d.have, logKeyWanted, d.want)
	}
	return c, nil
}

// difference is one configuration field that differs.
type difference struct {
	field      string
	have, want any
}

// streamDiff lists the fields of have that differ from want, among those
// orgsync specifies.
func streamDiff(have, want jetstream.StreamConfig) []difference {
	var d []difference
	add := func(field string, h, w any, differ bool) {
		if differ {
			d = append(d, difference{field, fmt.Sprint(h), fmt.Sprint(w)})
		}
	}
	add("Subjects", have.Subjects, want.Subjects, !slices.Equal(have.Subjects, want.Subjects))
	add("Retention", have.Retention, want.Retention, have.Retention != want.Retention)
	add("Storage", have.Storage, want.Storage, have.Storage != want.Storage)
	add("Discard", have.Discard, want.Discard, have.Discard != want.Discard)
	add("MaxAge", have.MaxAge, want.MaxAge, have.MaxAge != want.MaxAge)
	add("MaxMsgs", have.MaxMsgs, want.MaxMsgs, normLimit(have.MaxMsgs) != normLimit(want.MaxMsgs))
	add("MaxBytes", have.MaxBytes, want.MaxBytes, normLimit(have.MaxBytes) != normLimit(want.MaxBytes))
	add("Duplicates", have.Duplicates, want.Duplicates, have.Duplicates != want.Duplicates)
	add("Replicas", have.Replicas, want.Replicas, max(have.Replicas, 1) != max(want.Replicas, 1))
	add("SubjectTransform", transformString(have.SubjectTransform), transformString(want.SubjectTransform),
		transformString(have.SubjectTransform) != transformString(want.SubjectTransform))
	return d
}

// transformString shows a subject transform in a log line.
func transformString(t *jetstream.SubjectTransformConfig) string {
	if t == nil {
		return "none"
	}
	return t.Source + " -> " + t.Destination
}

// consumerDiff lists the fields of have that differ from want, among those
// orgsync specifies.
func consumerDiff(have, want jetstream.ConsumerConfig) []difference {
	var d []difference
	add := func(field string, h, w any, differ bool) {
		if differ {
			d = append(d, difference{field, fmt.Sprint(h), fmt.Sprint(w)})
		}
	}
	filters := func(c jetstream.ConsumerConfig) []string {
		if c.FilterSubject != "" {
			return []string{c.FilterSubject}
		}
		return c.FilterSubjects
	}
	add("DeliverSubject", have.DeliverSubject, "", have.DeliverSubject != "")
	add("AckPolicy", have.AckPolicy, want.AckPolicy, have.AckPolicy != want.AckPolicy)
	add("AckWait", have.AckWait, want.AckWait, have.AckWait != want.AckWait)
	add("MaxDeliver", have.MaxDeliver, want.MaxDeliver, normLimit(int64(have.MaxDeliver)) != normLimit(int64(want.MaxDeliver)))
	add("MaxAckPending", have.MaxAckPending, want.MaxAckPending, have.MaxAckPending != want.MaxAckPending)
	add("DeliverPolicy", have.DeliverPolicy, want.DeliverPolicy, have.DeliverPolicy != want.DeliverPolicy)
	add("FilterSubject", filters(have), filters(want), !slices.Equal(filters(have), filters(want)))
	add("BackOff", have.BackOff, want.BackOff, !slices.Equal(have.BackOff, want.BackOff))
	return d
}

// normLimit maps the "unlimited" spellings (0 and negative) to -1.
func normLimit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}
