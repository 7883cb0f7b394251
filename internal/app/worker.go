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
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"orgsync/queue"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/store"
)

// WorkerConfig is everything `worker run` needs.
type WorkerConfig struct {
	NATS       NATSConfig
	Target     salesforce.AuthConfig
	APIVersion string
	Queue      queue.Config
	// Engine holds the sync settings; its Queue, Consumer, Target, Auth,
	// Store, Metrics and Logger are filled in by RunWorker.
	Engine      replicate.Config
	DataDir     string
	MetricsAddr string // admin endpoints; off when empty
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

// RunWorker runs one worker process until ctx is cancelled.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Engine.WorkerID == "" {
		cfg.Engine.WorkerID = DefaultWorkerID()
	}
	if cfg.DataDir == "" {
		return errors.New("worker: -data-dir is required")
	}
	log = log.With("worker", cfg.Engine.WorkerID)

	st, err := store.Open(StorePath(cfg.DataDir, cfg.Engine.WorkerID), nil)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer st.Close()

	nc, closeNC, err := cfg.NATS.connect("orgsync-worker-"+cfg.Engine.WorkerID, log)
	if err != nil {
		return err
	}
	defer closeNC()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}
	cfg.Queue.Logger = log
	var q *queue.Queue
	var cons *queue.Consumer
	err = retrySetup(ctx, log, "queue", func(ctx context.Context) error {
		var err error
		if q, err = queue.New(ctx, js, cfg.Queue); err != nil {
			return err
		}
		cons, err = q.Consumer(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	cfg.Engine.AckWait = cons.AckWait() // the consumer's, which may predate our flags

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics := replicate.NewMetrics(reg)

	auth, client, err := newOrgClient(ctx, cfg.Target, cfg.APIVersion, metrics.ObserveCall, log)
	if err != nil {
		return fmt.Errorf("worker: target: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if _, err := auth.Token(tctx); err != nil {
		// Not fatal: the engine pauses the pool and probes until it works.
		log.Error("cannot get a token for the target org", "flow", auth.Flow(), "err", err)
	}
	cancel()

	ecfg := cfg.Engine
	ecfg.Queue, ecfg.Consumer, ecfg.Target, ecfg.Auth, ecfg.Store = q, cons, client, auth, st
	ecfg.Metrics, ecfg.Logger = metrics, log
	w, err := replicate.New(ecfg)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return queue.ServeMappings(gctx, nc, replicate.MapSource(st), ecfg.WorkerID, log) })
	if cfg.MetricsAddr != "" {
		g.Go(func() error {
			return ServeAdmin(gctx, cfg.MetricsAddr, reg, func() error {
				if !nc.IsConnected() {
					return errors.New("not connected to NATS")
				}
				return w.Ready()
			}, log)
		})
	}
	if cfg.Ready != nil {
		cfg.Ready(w)
	}
	return g.Wait()
}

// NATSConfig says how to reach NATS.
type NATSConfig struct {
	URL     string
	Options []nats.Option
	// Conn, when set, is used as it is (the demo's in-process connection)
	// and not closed.
	Conn *nats.Conn
	// FailFast: a server that cannot be reached is an error at once (for
	// one-shot commands), instead of being waited for.
	FailFast bool
}

func (c NATSConfig) connect(name string, log *slog.Logger) (*nats.Conn, func(), error) {
	if c.Conn != nil {
		return c.Conn, func() {}, nil
	}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		// A server that is not up yet (it starts after us, or restarts) is
		// waited for, as after a disconnect; retrySetup waits for the queue.
		nats.RetryOnFailedConnect(!c.FailFast),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted()) }),
	}, c.Options...)
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redact(c.URL), err)
	}
	return nc, func() { _ = nc.FlushTimeout(2 * time.Second); nc.Close() }, nil
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
		if errors.Is(err, queue.ErrInvalidConfig) {
			return err
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
