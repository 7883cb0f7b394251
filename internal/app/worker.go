// Package app wires orgsync's processes together: a worker or a producer
// from its configuration, with its NATS connection, store, Salesforce client,
// metrics and admin endpoints. The cmd mains parse flags into these configs;
// the demo and the tests run the same code in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/store"
)

// WorkerConfig is everything `worker run` needs.
type WorkerConfig struct {
	NATS   NATSConfig
	Target salesforce.AuthConfig
	// Source, when set, is the source org the engine reads (replayed
	// changes, updates of records the target lacks, links).
	Source     *salesforce.AuthConfig
	APIVersion string
	Queue      queue.Config
	// Engine holds the sync settings; its Queue, Consumer, Target, Auth,
	// Store, Metrics and Logger are filled in by RunWorker.
	Engine      replicate.Config
	DataDir     string // default DefaultDataDir
	MetricsAddr string // admin endpoints; none when empty
	Logger      *slog.Logger

	// Ready, when set, is called once the worker runs (tests and the demo).
	Ready func(*replicate.Worker)
	// Registry, when set, receives the metrics (default: a new registry).
	Registry *prometheus.Registry
}

// StorePath is the bbolt file of a worker: <data-dir>/worker-<id>.db.
func StorePath(dataDir, workerID string) string {
	return filepath.Join(dataDir, "worker-"+workerID+".db")
}

// DefaultWorkerID is the host name, or "worker" when it is unknown.
func DefaultWorkerID() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "worker"
}

// DefaultDataDir is -data-dir's default.
const DefaultDataDir = "data"

// ErrInvalidConfig is wrapped by the errors of Validate: the configuration
// cannot work, and nothing was started.
var ErrInvalidConfig = errors.New("invalid configuration")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// Validate reports the first setting that cannot work, naming its flag;
// the target's credentials are checked when the worker starts. Zero values
// mean the defaults; Validate opens, creates and contacts
// nothing, so a command can check its flags before it starts anything.
func (c WorkerConfig) Validate() error {
	e := c.Engine
	if _, err := replicate.ParseMode(string(e.Mode)); e.Mode != "" && err != nil {
		return invalid("-mode %q: want upsert, create or apexrest", e.Mode)
	}
	switch {
	case e.ExternalIDField != "" && !event.ValidFieldName(e.ExternalIDField):
		return invalid("-external-id-field %q is not a field name", e.ExternalIDField)
	case e.Batch < 0 || e.Batch > salesforce.MaxCollection:
		return invalid("-batch %d: must be in 1..%d", e.Batch, salesforce.MaxCollection)
	case e.Linger < 0:
		return invalid("-linger %v: must not be negative", e.Linger)
	case e.Concurrency < 0:
		return invalid("-concurrency %d: must be at least 1", e.Concurrency)
	case e.MaxDeliver < 0:
		return invalid("-max-deliver %d: must be at least 1", e.MaxDeliver)
	case !(e.APIBudget >= 0 && e.APIBudget <= 1): // also NaN
		return invalid("-api-budget %v: must be in (0, 1]", e.APIBudget)
	case e.BulkBatch < 0:
		return invalid("-bulk-batch %d: must be at least 1", e.BulkBatch)
	case !(e.RateLimit >= 0) || math.IsInf(e.RateLimit, 0): // also NaN
		return invalid("-rate-limit %v: must be 0 (no cap) or a positive number of calls per second", e.RateLimit)
	case e.MaxCalls < 0:
		return invalid("-max-calls %d: must be at least 1", e.MaxCalls)
	case c.Queue.AckWait < 0:
		return invalid("-ack-wait %v: must be positive", c.Queue.AckWait)
	case c.Queue.MaxAckPending < 0:
		return invalid("-max-ack-pending %d: must be at least 1", c.Queue.MaxAckPending)
	case c.Queue.Replicas < 0 || c.Queue.Replicas > 5:
		return invalid("-stream-replicas %d: must be in 1..5", c.Queue.Replicas)
	case e.WorkerID != "" && !validWorkerID(e.WorkerID):
		return invalid("-worker-id %q: use letters, digits, '-', '_' and '.' only", e.WorkerID)
	}
	return nil
}

// validWorkerID: the ID is part of a file name and of NATS messages.
func validWorkerID(id string) bool {
	for _, r := range id {
		ok := r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return false
		}
	}
	return id != "." && id != ".."
}

// RunWorker runs one worker process until ctx is cancelled. The admin
// listener (MetricsAddr) starts first, so /healthz answers at once and
// /readyz says what the worker waits for: NATS, the streams and consumer, a
// token for the target org, then the engine's own readiness (a pause and
// its cause).
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Engine.WorkerID == "" {
		cfg.Engine.WorkerID = DefaultWorkerID()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	log = log.With("worker", cfg.Engine.WorkerID)
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	where := redact(cfg.NATS.url())
	rd := newReadiness("NATS at " + where)
	return withAdmin(ctx, "worker", cfg.MetricsAddr, reg, rd, log, func(ctx context.Context) error {
		return runWorker(ctx, cfg, reg, rd, where, log)
	})
}

// withAdmin starts the admin listener on addr (none when empty) before
// anything else, then runs run; both stop when run returns or ctx ends.
func withAdmin(ctx context.Context, prog, addr string, reg *prometheus.Registry, rd *readiness, log *slog.Logger, run func(context.Context) error) error {
	if addr == "" {
		return run(ctx)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: -metrics-addr: %w", prog, err)
	}
	actx, stopAdmin := context.WithCancel(ctx)
	rctx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := serveAdmin(actx, ln, reg, rd.ready, log)
		stopRun() // the admin listener failed or stopped: so does the rest
		done <- err
	}()
	err = run(rctx)
	stopAdmin()
	aerr := <-done
	stopRun()
	if err == nil && ctx.Err() == nil {
		err = aerr
	}
	return err
}

func runWorker(ctx context.Context, cfg WorkerConfig, reg *prometheus.Registry, rd *readiness, where string, log *slog.Logger) error {
	path := StorePath(cfg.DataDir, cfg.Engine.WorkerID)
	st, err := store.Open(path, nil)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("worker: %s is locked by another process: is a worker with -worker-id %s already running on -data-dir %s? Give each worker its own -worker-id", path, cfg.Engine.WorkerID, cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer st.Close()

	nc, closeNC, err := ConnectNATS(ctx, cfg.NATS, "orgsync-worker-"+cfg.Engine.WorkerID, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("worker: %w", err)
	}
	defer closeNC()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}
	cfg.Queue.Logger = log
	var q *queue.Queue
	var parts *queue.Partitions
	rd.wait(fmt.Sprintf("the %s and %s streams and the partition consumers on NATS at %s", queue.Stream, queue.DLQStream, where))
	err = retrySetup(ctx, log, "queue", func(ctx context.Context) error {
		var err error
		if q, err = queue.New(ctx, js, cfg.Queue); err != nil {
			return err
		}
		parts, err = q.Partitions(ctx, queue.PartitionsConfig{WorkerID: cfg.Engine.WorkerID, Logger: log})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("worker: %w", err)
	}
	cfg.Engine.AckWait = q.Config().AckWait

	metrics := replicate.NewMetrics(reg)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orgsync_partitions_held",
		Help: "ORGSYNC partitions whose lease this worker holds (docs/ordering.md).",
	}, func() float64 { return float64(len(parts.Held())) }))
	auth, client, err := NewOrgClient(ctx, cfg.Target, cfg.APIVersion, metrics.ObserveCall, log)
	if err != nil {
		return fmt.Errorf("worker: target: %w", err)
	}
	var source *salesforce.Client
	if cfg.Source != nil {
		if _, source, err = NewOrgClient(ctx, *cfg.Source, cfg.APIVersion, nil, log.With("org", "source")); err != nil {
			return fmt.Errorf("worker: source: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	// The ID map answers `worker mapping` even while the token is missing.
	g.Go(func() error { return queue.ServeMappings(gctx, nc, replicate.MapSource(st), cfg.Engine.WorkerID, log) })
	g.Go(func() error {
		// A worker without a token fetches nothing: it would only pause the
		// pool for a cause that may be its own.
		rd.wait("a token for the target org")
		if err := waitForToken(gctx, auth, "target", rd, log, false); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		ecfg := cfg.Engine
		ecfg.Queue, ecfg.Feed, ecfg.Target, ecfg.Auth, ecfg.Store = q, replicate.PartitionFeed(parts), client, auth, st
		ecfg.Source = source
		ecfg.Metrics, ecfg.Logger = metrics, log
		w, err := replicate.New(ecfg)
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		rd.running(func() error {
			if err := natsCheck(nc, where); err != nil {
				return err
			}
			return w.Ready()
		})
		if cfg.Ready != nil {
			cfg.Ready(w)
		}
		// The partitions are held only while the engine runs: their Run
		// hands back and releases what the engine leaves at shutdown.
		pctx, stopParts := context.WithCancel(context.WithoutCancel(gctx))
		pdone := make(chan error, 1)
		go func() { pdone <- parts.Run(pctx) }()
		err = w.Run(gctx)
		stopParts()
		if perr := <-pdone; err == nil && gctx.Err() == nil {
			err = perr
		}
		return err
	})
	return g.Wait()
}

// FindWorkerID returns the worker ID of the only ID map in dataDir
// (worker-<id>.db). With none it says so; with several it lists them and
// asks for -worker-id (an error wrapping ErrInvalidConfig).
func FindWorkerID(dataDir string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dataDir, "worker-*.db"))
	if err != nil {
		return "", err
	}
	var ids []string
	for _, m := range matches {
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "worker-"), ".db"))
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no ID map in %s: it holds no worker-<id>.db file", dataDir)
	case 1:
		return ids[0], nil
	}
	return "", invalid("%s holds %d ID maps (worker IDs %s): choose one with -worker-id", dataDir, len(ids), strings.Join(ids, ", "))
}

// retrySetup runs setup until it succeeds or ctx ends, with backoff up to
// 10 s between attempts: at start-up NATS may still be booting, or a
// cluster may have no stream leader for a few seconds.
func retrySetup(ctx context.Context, log *slog.Logger, what string, setup func(context.Context) error) error {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := setup(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if errors.Is(err, queue.ErrInvalidConfig) || errors.Is(err, queue.ErrLegacyLayout) {
			return err // retrying cannot help: the operator must act
		}
		log.Warn("setting up failed; retrying", "what", what, "attempt", attempt, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}
