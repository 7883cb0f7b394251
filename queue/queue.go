// Package queue is orgsync's JetStream layer: the streams ORGSYNC (a work
// queue of account events, partitioned by source record) and ORGSYNC_DLQ
// (dead letters), one durable pull consumer per partition with leases that
// say which worker fetches it (Partitions, docs/ordering.md), publish with
// deduplication, the acknowledgement helpers, dead-letter publish, streamed
// listing and replay of the DLQ, pausing the whole pool, and the migration
// from the single consumer "workers" of older versions (Migrate). The
// in-process JetStream server for tests and the demo is internal/natsembed
// (queue/queuetest wraps it for tests): production binaries do not link the
// NATS server.
//
// The topology follows docs/contract.md ("NATS subjects, streams and
// headers"): New creates missing streams and Partitions the missing
// partition consumers; anything that already exists is used as it is and
// only its differences from the wanted configuration are logged.
package queue

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream objects.
const (
	Stream    = "ORGSYNC"     // work-queue stream of account events
	DLQStream = "ORGSYNC_DLQ" // dead letters, kept until replayed or purged
	// ConsumerName is the single durable pull consumer of older versions
	// (Queue.LegacyConsumer), kept for Migrate and tests; the partition
	// consumers are named ConsumerFor(p).
	ConsumerName = "workers"
)

// Subjects.
const (
	SubjectCreated    = "orgsync.account.created"     // an Account was created in the source org
	SubjectLink       = "orgsync.account.link"        // follow-up: set the parent once it is in the target
	SubjectDLQCreated = "orgsync.dlq.account.created" // dead letters of SubjectCreated
	SubjectMappingGet = "orgsync.mapping.get"         // core NATS request-reply: ask workers for a mapping

	// SubjectAccounts is ORGSYNC's subject filter and the consumer's.
	SubjectAccounts = "orgsync.account.>"
	// SubjectDLQ is ORGSYNC_DLQ's subject filter.
	SubjectDLQ = "orgsync.dlq.>"

	// subjectRoot is the first token of every orgsync subject; a message on
	// subjectRoot+X is dead-lettered to dlqRoot+X.
	subjectRoot = "orgsync."
	dlqRoot     = "orgsync.dlq."
)

// AccountSubject is the subject of a record's event:
// orgsync.account.<change>.<source_id>, change being "created", "updated",
// "deleted", "undeleted" or "link". Subjects carry the record so that ORGSYNC
// can partition its events by it (see docs/ordering.md).
func AccountSubject(change, sourceID string) string {
	return "orgsync.account." + change + "." + sourceID
}

// Headers of dead letters and replayed messages.
const (
	HeaderErrorCode       = "Orgsync-Error-Code"       // the failure's code, e.g. REQUIRED_FIELD_MISSING
	HeaderErrorMessage    = "Orgsync-Error-Message"    // the failure's message, at most MaxErrorMessage bytes
	HeaderAttempts        = "Orgsync-Attempts"         // deliveries before the message was dead-lettered
	HeaderFailedAt        = "Orgsync-Failed-At"        // RFC 3339 (nanoseconds, UTC) time of dead-lettering
	HeaderSourceID        = "Orgsync-Source-Id"        // the source record's 18-character ID
	HeaderOriginalSubject = "Orgsync-Original-Subject" // the subject the message was consumed from
	HeaderOriginalSeq     = "Orgsync-Original-Seq"     // its ORGSYNC stream sequence
	HeaderReplayOf        = "Orgsync-Replay-Of"        // on a replayed message: the DLQ sequence it came from

	// HeaderMsgID is the JetStream deduplication header.
	HeaderMsgID = jetstream.MsgIDHeader
)

// MaxErrorMessage is the longest HeaderErrorMessage value, in bytes.
const MaxErrorMessage = 1024

// Defaults of Config's zero values.
const (
	DefaultAckWait       = 60 * time.Second
	DefaultMaxAckPending = 20000
	DefaultDuplicates    = time.Hour
	DefaultReplicas      = 1
	// DefaultDeadLetterNakDelay is how long DeadLetter delays the
	// redelivery of a message whose DLQ publish failed.
	DefaultDeadLetterNakDelay = 5 * time.Second
	// DefaultPartitions is the number of partitions of a new ORGSYNC.
	DefaultPartitions = 16
	// MaxPartitions bounds Config.Partitions.
	MaxPartitions = 1024
	// DefaultLeaseTTL is how long a partition lease outlives its holder's
	// last renewal.
	DefaultLeaseTTL = 15 * time.Second
	// MinLeaseTTL is the shortest Config.LeaseTTL.
	MinLeaseTTL = time.Second
)

// Config configures a Queue. The zero value of every field means its default.
type Config struct {
	// AckWait is the consumer's ack wait (-ack-wait). Default 60s.
	AckWait time.Duration
	// MaxAckPending is the consumer's in-flight limit, shared by the whole
	// pool (-max-ack-pending). Default 20000; -1 means unlimited.
	MaxAckPending int
	// Duplicates is the deduplication window of both streams. Default 1h.
	Duplicates time.Duration
	// Replicas of both streams (1, or 3 in a cluster). Default 1.
	Replicas int
	// DeadLetterNakDelay delays the redelivery of a message whose DLQ publish
	// failed. Default 5s.
	DeadLetterNakDelay time.Duration
	// Partitions is the number of partitions of ORGSYNC when New creates it
	// (-partitions). An existing stream keeps its own: Config() reports the
	// stream's. Default 16, at most MaxPartitions.
	Partitions int
	// LeaseTTL is how long a partition lease outlives its holder's last
	// renewal (-lease-ttl). Default 15s, at least MinLeaseTTL.
	LeaseTTL time.Duration
	// Logger receives the differences between existing and wanted streams or
	// consumer, and Fetch problems. Nil discards.
	Logger *slog.Logger
}

// Validate reports a field out of range; zero values are valid (defaults).
// Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.AckWait < 0:
		return fmt.Errorf("%w: AckWait %s is negative", ErrInvalidConfig, c.AckWait)
	case c.MaxAckPending < -1:
		return fmt.Errorf("%w: MaxAckPending %d (want -1 for unlimited, or positive)", ErrInvalidConfig, c.MaxAckPending)
	case c.Duplicates < 0:
		return fmt.Errorf("%w: Duplicates %s is negative", ErrInvalidConfig, c.Duplicates)
	case c.Duplicates > 0 && c.Duplicates < 100*time.Millisecond:
		return fmt.Errorf("%w: Duplicates %s is below the server's minimum of 100ms", ErrInvalidConfig, c.Duplicates)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("%w: Replicas %d (want 1 to 5)", ErrInvalidConfig, c.Replicas)
	case c.DeadLetterNakDelay < 0:
		return fmt.Errorf("%w: DeadLetterNakDelay %s is negative", ErrInvalidConfig, c.DeadLetterNakDelay)
	case c.Partitions < 0 || c.Partitions > MaxPartitions:
		return fmt.Errorf("%w: Partitions %d (want 1 to %d)", ErrInvalidConfig, c.Partitions, MaxPartitions)
	case c.LeaseTTL != 0 && c.LeaseTTL < MinLeaseTTL:
		return fmt.Errorf("%w: LeaseTTL %s is below %s", ErrInvalidConfig, c.LeaseTTL, MinLeaseTTL)
	}
	return nil
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.DeadLetterNakDelay == 0 {
		c.DeadLetterNakDelay = DefaultDeadLetterNakDelay
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Queue is orgsync's handle on its JetStream topology. It is safe for
// concurrent use.
type Queue struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger
}

// New checks cfg and makes sure both streams exist: a missing stream is
// created as docs/contract.md specifies; an existing one is left as it is and its
// differences from that specification are logged (warn level).
//
// It returns an error wrapping ErrInvalidConfig for a bad cfg, or the
// JetStream error (e.g. jetstream.ErrJetStreamNotEnabled) if a stream can be
// neither read nor created.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Queue, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	q := &Queue{js: js, cfg: cfg, log: cfg.Logger}
	for _, want := range []jetstream.StreamConfig{q.streamConfig(), q.dlqConfig()} {
		have, err := q.ensureStream(ctx, want)
		if err != nil {
			return nil, err
		}
		if want.Name == Stream {
			q.adoptLayout(have)
		}
	}
	return q, nil
}

// JetStream returns the JetStream handle the queue uses.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// Config returns the effective configuration (defaults filled in).
func (q *Queue) Config() Config { return q.cfg }

// Backlog is a snapshot of the queue's depth.
type Backlog struct {
	// Pending counts messages not yet delivered to the consumer.
	Pending uint64
	// AckPending counts messages delivered and not yet acknowledged,
	// including those nak'ed with a delay.
	AckPending uint64
	// Oldest is the stream time of the first message still in ORGSYNC
	// (zero when ORGSYNC is empty).
	Oldest time.Time
	// DLQ counts the dead letters in ORGSYNC_DLQ.
	DLQ uint64
}

// Backlog reads ORGSYNC, ORGSYNC_DLQ and the pool's consumers (the
// partition consumers, or the legacy "workers"). AckPending sums theirs;
// Pending is every other message of ORGSYNC (a work queue holds nothing
// else), so it is right before any consumer exists too. It returns an error
// wrapping ErrNoStream if a stream is missing.
func (q *Queue) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	main, err := q.streamInfo(ctx, Stream)
	if err != nil {
		return b, err
	}
	if main.State.Msgs > 0 {
		b.Oldest = main.State.FirstTime
	}
	dlq, err := q.streamInfo(ctx, DLQStream)
	if err != nil {
		return b, err
	}
	b.DLQ = dlq.State.Msgs
	infos, err := q.poolConsumers(ctx)
	if err != nil {
		return b, err
	}
	for _, info := range infos {
		b.AckPending += uint64(max(info.NumAckPending, 0))
	}
	b.Pending = main.State.Msgs - min(b.AckPending, main.State.Msgs)
	return b, nil
}

// streamInfo fetches a stream's info.
func (q *Queue) streamInfo(ctx context.Context, name string) (*jetstream.StreamInfo, error) {
	s, err := q.js.Stream(ctx, name)
	if err != nil {
		return nil, streamErr("stream info", name, err)
	}
	return s.CachedInfo(), nil
}
