// Package replicate is orgsync's sync engine: it turns account events on
// JetStream into records in the target org.
//
// A Worker runs batch loops, two more than -concurrency. Each loop takes a
// lot from its Feed: up to -batch events (-batch × -composite in upsert
// mode; waiting at most -linger for it to fill) of partitions that have no
// other lot in flight, so a record's events are never in two batches at
// once (docs/ordering.md). It collapses each record's events in order,
// acknowledges the creates this worker's ID map already knows without an
// API call, waits for one of the -concurrency batch slots to write the
// rest (upserts, then updates, deletes and undeletes, then links), retries
// transient failures in process, and settles every message by its
// record's outcome. A batch holds its slot only while its calls are in
// flight, so the slots stay busy while the loops take, prepare and settle
// the batches around them. changes.go writes the changes beyond creates.
//
// outcome.go holds the whole failure table: a failure's class decides the
// action (ack, retry later, dead-letter, hold through a pool pause, hand
// back and stop this worker, link later). pause.go holds the two kinds of
// stop: a pool pause for causes that belong to the org (the daily budget,
// the org's configuration), recorded with its cause and owner where every
// worker sees it, and a worker stop for causes local to one worker (its
// credentials, its network path).
//
// Target writes are idempotent upserts by an external ID field in the default
// mode, so a redelivery to any worker never duplicates a record.
package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

// Mode is how a worker writes to the target org.
type Mode string

// The write modes of `worker run -mode`.
const (
	// ModeUpsert writes with sObject Collections upsert by the external ID
	// field: idempotent, the default.
	ModeUpsert Mode = "upsert"
	// ModeCreate writes with sObject Collections create, for targets
	// without an external ID field: at-least-once.
	ModeCreate Mode = "create"
	// ModeApexREST calls the seed's custom Apex REST endpoint once per
	// record: at-least-once, only Name is sent.
	ModeApexREST Mode = "apexrest"
)

// ParseMode parses a -mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeUpsert, ModeCreate, ModeApexREST:
		return m, nil
	}
	return "", fmt.Errorf("replicate: unknown mode %q (want upsert, create or apexrest)", s)
}

// Defaults of Config.
const (
	DefaultBatch           = 200
	DefaultLinger          = 250 * time.Millisecond
	DefaultConcurrency     = 4
	DefaultMaxDeliver      = 10
	DefaultAPIBudget       = 0.8
	DefaultExternalIDField = "Source_Id__c"
	DefaultPauseFor        = time.Minute
	DefaultProbeInterval   = 15 * time.Second
	DefaultCallRetry       = 10 * time.Second
	DefaultMaxCalls        = 8
)

// ApexRESTPath is the seed's custom endpoint (ArrifyAccountsApi).
const ApexRESTPath = "/services/apexrest/arrify/v1/accounts"

// Config configures a Worker. Queue, Feed, Target and Store are
// required; zero values of the rest mean the defaults above.
type Config struct {
	Queue *queue.Queue
	// Feed hands out the events: a queue.Partitions in production (see
	// PartitionFeed), which never hands out two batches holding events of
	// one record.
	Feed   Feed
	Target *salesforce.Client
	// Source, when set, is the source org, read when an update finds no
	// record in the target, when a replayed change is checked against the
	// source's current state, and when a link is checked against the
	// child's current parent.
	Source *salesforce.Client
	// Fields are the copied fields (-fields) read from the source; zero
	// means event.DefaultFields.
	Fields event.Fields
	// Deletes is what an account.deleted event does in the target.
	Deletes DeleteMode
	// Auth, when set, lets a stopped worker check that its credentials work
	// again before it fetches again.
	Auth *salesforce.Auth
	// Store is the source→target ID map (a *store.Store in production).
	Store IDMap

	Mode            Mode
	ExternalIDField string
	Batch           int           // events per target call, at most 200
	Linger          time.Duration // how long a fetch waits for a batch to fill
	Concurrency     int           // batches in flight
	MaxDeliver      int           // deliveries before a message is dead-lettered
	APIBudget       float64       // share of the target's daily API limit orgsync may use, (0,1]
	// AckWait is the consumer's ack wait: a batch in flight gets this long
	// to finish after shutdown starts, and InProgress is sent every third of it.
	AckWait time.Duration

	// BulkThreshold: above this many pending events a worker in upsert
	// mode writes Bulk API 2.0 jobs of up to BulkBatch events, polling a
	// job every BulkPoll (0: DefaultBulkThreshold, which is never;
	// negative: never).
	BulkThreshold int
	BulkBatch     int
	BulkPoll      time.Duration

	// Composite: in upsert mode, up to this many collections upserts of up
	// to Batch records go in one composite call when more than Batch
	// records are ready, and a fetch takes up to Batch × Composite events
	// (0: DefaultComposite; 1: one collections call per batch).
	Composite int

	// RateLimit caps target calls per second across this worker (0 = no cap);
	// MaxCalls caps concurrent target calls.
	RateLimit float64
	MaxCalls  int

	// CallRetry bounds the in-process retries of a failed whole call.
	CallRetry time.Duration
	// PauseFor is how long one pause lasts before the server lifts it by
	// itself (a paused worker extends it while the cause lasts);
	// ProbeInterval is how often a paused worker checks the cause.
	PauseFor      time.Duration
	ProbeInterval time.Duration

	WorkerID string
	Metrics  *Metrics     // nil = no metrics
	Logger   *slog.Logger // nil = discard

	// beforeWrite and afterWrite are test hooks called with each write's
	// source IDs before the target call and after it succeeded; an error
	// simulates a crash at that point: the write's messages are left
	// unsettled, to be redelivered after the ack wait.
	beforeWrite, afterWrite func(ctx context.Context, sourceIDs []string) error
	// unordered switches the in-process retry of transient failures off
	// (they are nak'ed with a delay, as before ordering): the tests that
	// prove the order holds must fail with it.
	unordered bool
	// linkPublish, when set, stands in for NATS when a link event is
	// published: an error simulates a failed publish.
	linkPublish func() error
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeUpsert
	}
	if c.Deletes == "" {
		c.Deletes = DeletesDelete
	}
	if len(c.Fields.Names()) == 0 {
		c.Fields, _ = event.ParseFields("") // the defaults always parse
	}
	if c.ExternalIDField == "" {
		c.ExternalIDField = DefaultExternalIDField
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.APIBudget == 0 {
		c.APIBudget = DefaultAPIBudget
	}
	if c.AckWait == 0 {
		c.AckWait = time.Minute
	}
	if c.BulkThreshold == 0 {
		c.BulkThreshold = DefaultBulkThreshold
	}
	if c.BulkBatch == 0 {
		c.BulkBatch = DefaultBulkBatch
	}
	if c.BulkPoll == 0 {
		c.BulkPoll = DefaultBulkPoll
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.CallRetry == 0 {
		c.CallRetry = DefaultCallRetry
	}
	if c.PauseFor == 0 {
		c.PauseFor = DefaultPauseFor
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.Queue == nil || c.Feed == nil:
		return errors.New("replicate: a queue and its feed are required")
	case c.Target == nil:
		return errors.New("replicate: a target client is required")
	case c.Store == nil:
		return errors.New("replicate: a store is required")
	case c.Batch < 1 || c.Batch > salesforce.MaxCollection:
		return fmt.Errorf("replicate: batch %d out of range 1..%d", c.Batch, salesforce.MaxCollection)
	case c.Concurrency < 1:
		return fmt.Errorf("replicate: concurrency %d must be at least 1", c.Concurrency)
	case c.MaxDeliver < 1:
		return fmt.Errorf("replicate: max-deliver %d must be at least 1", c.MaxDeliver)
	case !(c.APIBudget > 0 && c.APIBudget <= 1): // also NaN
		return fmt.Errorf("replicate: api-budget %v must be in (0, 1]", c.APIBudget)
	case c.BulkBatch < 1 || c.BulkPoll < 0:
		return fmt.Errorf("replicate: bulk batch %d must be at least 1 and bulk poll %v not negative", c.BulkBatch, c.BulkPoll)
	case c.Linger < 0 || c.RateLimit < 0 || c.MaxCalls < 1:
		return errors.New("replicate: linger, rate limit and max calls must not be negative")
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	if _, err := ParseDeleteMode(string(c.Deletes)); err != nil {
		return err
	}
	return c.validateComposite()
}

// Feed hands the engine its batches.
type Feed interface {
	// Next waits for deliveries and returns up to max of them, waiting at
	// most linger for more once one is there. No other lot in flight
	// holds an event of a record this lot holds, until Done.
	Next(ctx context.Context, max int, linger time.Duration) (Lot, error)
	// Pending is how many events wait for this worker, as last seen.
	Pending() uint64
	// AckWait is the shortest ack wait of the consumers the events come
	// from (0: unknown); held events are kept alive well inside it.
	AckWait() time.Duration
	// Suspend hands back what this worker holds and lets other workers
	// take its share, until Resume (this worker stopped for a local cause).
	Suspend(ctx context.Context) error
	Resume()
}

// Lot is one batch from a Feed.
type Lot interface {
	Deliveries() []*queue.Delivery
	// Done: every delivery is settled (acked, dead-lettered or handed back).
	Done()
	// Fenced: this worker lost the lease of a partition of the lot; its
	// events now belong to another worker, which gets them again once
	// their ack wait ends. No write of the lot may start.
	Fenced() bool
}

// holdEvery is how often held events are kept alive: a third of the
// shortest ack wait known.
func (w *Worker) holdEvery() time.Duration {
	aw := w.cfg.AckWait
	if f := w.cfg.Feed.AckWait(); f > 0 {
		aw = min(aw, f)
	}
	return aw / 3
}

// DeleteMode is what an account.deleted event does in the target
// (worker run -deletes).
type DeleteMode string

// Delete modes.
const (
	// DeletesDelete deletes the target record (the default).
	DeletesDelete DeleteMode = "delete"
	// DeletesOff acknowledges deletes without writing; an undelete is then
	// an update.
	DeletesOff DeleteMode = "off"
)

// ParseDeleteMode parses a -deletes value.
func ParseDeleteMode(s string) (DeleteMode, error) {
	switch m := DeleteMode(s); m {
	case DeletesDelete, DeletesOff:
		return m, nil
	}
	return "", fmt.Errorf("replicate: unknown deletes mode %q (want delete or off)", s)
}

// IDMap is the worker's source→target ID map.
type IDMap interface {
	// Lookup returns the mappings of the source IDs it knows.
	Lookup(sourceIDs []string) (map[string]store.Mapping, error)
	// PutMappings records written records.
	PutMappings(ms []store.Mapping) error
}

// Worker is one worker process's sync engine.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	limiter *rate.Limiter
	calls   chan struct{} // semaphore of concurrent target calls
	slots   chan struct{} // semaphore of batches being written (-concurrency)

	lastErr lastErrors // last error per stream sequence, for MAX_DELIVERIES

	bg     context.Context // Run's context, for the probe loop
	probes sync.WaitGroup
	bulk   atomic.Bool  // writing with Bulk jobs (see observeBacklog)
	packs  atomic.Int32 // collections per composite call now (see observeComposite)
	state  state        // pauses, stops and what the worker waits for

	srcMu   sync.Mutex
	srcCols string // the source reads' select list (see sourceColumns)
}

// New checks cfg and returns a Worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:     cfg,
		log:     cfg.Logger,
		calls:   make(chan struct{}, cfg.MaxCalls),
		slots:   make(chan struct{}, cfg.Concurrency),
		lastErr: lastErrors{m: make(map[uint64]string)},
	}
	w.state.init()
	if cfg.RateLimit > 0 {
		burst := int(cfg.RateLimit)
		if burst < 1 {
			burst = 1
		}
		w.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), burst)
	}
	return w, nil
}

// Run fetches and processes batches until ctx is cancelled, then lets the
// batches in flight finish (each within the ack wait) and returns nil.
// It returns an error only when the consumer cannot be read at all.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker started", "mode", w.cfg.Mode, "batch", w.cfg.Batch,
		"concurrency", w.cfg.Concurrency, "max_deliver", w.cfg.MaxDeliver, "api_budget", w.cfg.APIBudget)
	// Start in the right mode for the backlog there is.
	if b, err := w.cfg.Queue.Backlog(ctx); err == nil {
		w.observeBacklog(b.Pending)
	}
	g, gctx := errgroup.WithContext(ctx)
	w.state.mu.Lock()
	w.bg = gctx // for the probe loop, started under state.mu
	w.state.mu.Unlock()
	defer w.probes.Wait()
	// A worker that cannot get a token is not ready from the start and
	// fetches nothing until its probe gets one.
	w.checkCredentials(gctx)
	w.refreshPool(gctx) // follow a pause already in force
	// More loops than batch slots: they fetch, prepare and settle batches
	// while the slots' calls are in flight (takeSlot).
	for i := 0; i < w.cfg.Concurrency+prefetch; i++ {
		g.Go(func() error { return w.loop(gctx) })
	}
	g.Go(func() error { w.watch(gctx); return nil })
	err := g.Wait()
	w.log.Info("worker stopped")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Ready reports why the worker is not ready to sync, or nil: this worker
// stopped (its credentials, its path to the target), the pool paused (with
// every cause, who set it and since when), the ID map failing, or the
// consumer missing.
func (w *Worker) Ready() error { return w.state.ready() }

// prefetch is how many fetch loops a worker runs beyond its batch slots:
// they fetch, prepare and settle batches while the slots' calls are in
// flight.
const prefetch = 2

// loop is one batch loop: take a lot from the feed (deliveries of
// partitions with no other batch in flight), prepare it, write it in a batch
// slot, retry its transient failures in process, and free its partitions.
func (w *Worker) loop(ctx context.Context) error {
	fails := 0
	for ctx.Err() == nil {
		// While the pool is paused or this worker is stopped it takes
		// nothing, even if pausing the shared consumers failed.
		if !w.state.mayFetch() {
			if !sleep(ctx, min(w.cfg.ProbeInterval, time.Second)) {
				return nil
			}
			continue
		}
		bulk, size, linger := w.bulkActive(), w.fetchSize(), w.cfg.Linger
		if bulk {
			// A job's worth of events comes from many partitions' buffers:
			// give them time to fill (a Bulk job takes seconds anyway).
			size, linger = w.cfg.BulkBatch, max(linger, bulkLinger)
		}
		lot, err := w.cfg.Feed.Next(ctx, size, linger)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fails++
			w.state.setConsumerErr(fmt.Errorf("taking events from the partitions fails: %w", err))
			w.log.Warn("taking a batch failed", "err", err, "consecutive", fails)
			if !sleep(ctx, min(time.Duration(fails)*500*time.Millisecond, 5*time.Second)) {
				return nil
			}
			continue
		}
		if fails > 0 {
			fails = 0
			w.state.setConsumerErr(nil)
		}
		ds := lot.Deliveries()
		if len(ds) == 0 {
			lot.Done()
			continue
		}
		w.observeBacklog(w.cfg.Feed.Pending())
		// A batch in flight finishes even when shutdown starts: its context
		// outlives ctx (each write bounded by the ack wait), but a batch
		// held through a pool pause is handed back at shutdown.
		b := w.prepare(context.WithoutCancel(ctx), ctx.Done(), ds, bulk)
		b.r.fenced = lot.Fenced
		w.write(b)
		b.stop()
		lot.Done()
	}
	return nil
}

// bulkLinger is the shortest wait for a Bulk batch to fill.
const bulkLinger = 2 * time.Second

// takeSlot waits for one of the -concurrency batch slots: a batch holds one
// while its write calls are in flight (not while it is fetched, decoded,
// looked up in the ID map or settled, which the loops, prefetch more than
// the slots, do meanwhile). The records get a slot only while the pool runs
// and this worker is not stopped: through a pool pause they wait (held,
// InProgress) and are written when the pool resumes. ok false: shutdown
// started, or this worker stopped (cause), before a slot was free; the
// caller hands the records back unwritten.
func (w *Worker) takeSlot(r *run) (release func(), ok bool, cause error) {
	for {
		select {
		case <-r.shutdown:
			return nil, false, nil
		default:
		}
		select {
		case w.slots <- struct{}{}:
		case <-r.shutdown:
			return nil, false, nil
		}
		paused, stopped := w.state.blocked()
		if !paused && stopped == nil {
			return func() { <-w.slots }, true, nil
		}
		<-w.slots
		if stopped != nil {
			return nil, false, stopped
		}
		if !w.waitPool(r.shutdown) {
			return nil, false, nil
		}
	}
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lastErrors remembers the last error of messages that were nak'ed, so a
// message dead-lettered for too many deliveries says why it kept failing.
type lastErrors struct {
	mu sync.Mutex
	m  map[uint64]string
}

const maxLastErrors = 100_000

func (l *lastErrors) set(seq uint64, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) >= maxLastErrors {
		clear(l.m) // crude bound: losing old reasons only shortens a DLQ message
	}
	l.m[seq] = msg
}

func (l *lastErrors) take(seq uint64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[seq]
	delete(l.m, seq)
	return s
}
