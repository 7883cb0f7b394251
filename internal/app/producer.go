package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"orgsync/capture"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

// ProducerStorePath is the producer's bbolt file: <data-dir>/producer.db.
func ProducerStorePath(dataDir string) string {
	return filepath.Join(dataDir, "producer.db")
}

// PollerConfig is everything `producer poll` needs.
type PollerConfig struct {
	NATS       NATSConfig
	Source     salesforce.AuthConfig
	APIVersion string
	Queue      queue.Config
	// Poll holds the polling settings; its Client, Queue, Store, Metrics
	// and Logger are filled in by RunPoller.
	Poll    capture.PollerConfig
	DataDir string // default DefaultDataDir
	// Once catches up and returns (-once, a backfill) instead of polling
	// every interval.
	Once        bool
	MetricsAddr string // admin endpoints; none when empty (never with Once)
	Logger      *slog.Logger

	// Ready, when set, is called once the poller is built (tests and the demo).
	Ready func(*capture.Poller)
	// Registry, when set, receives the metrics (default: a new registry).
	Registry *prometheus.Registry
}

// Validate reports the first setting that cannot work, naming its flag;
// zero values mean the defaults. It opens and contacts nothing.
func (c PollerConfig) Validate() error {
	p := c.Poll
	switch {
	case p.Interval < 0:
		return invalid("-interval %v: must be positive", p.Interval)
	case p.PageLimit < 0 || p.PageLimit > 2000:
		return invalid("-page-limit %d: must be in 1..2000", p.PageLimit)
	case !(p.APIBudget >= 0 && p.APIBudget <= 1): // also NaN
		return invalid("-api-budget %v: must be in (0, 1]", p.APIBudget)
	case math.IsNaN(p.RateLimit):
		return invalid("-rate-limit NaN: must be 0 (no cap) or a positive number of calls per second")
	case c.Queue.Replicas < 0 || c.Queue.Replicas > 5:
		return invalid("-stream-replicas %d: must be in 1..5", c.Queue.Replicas)
	case p.Changes != "" && p.Changes != capture.ChangesCreated && p.Changes != capture.ChangesAll:
		return invalid("-changes %q: want %s or %s", p.Changes, capture.ChangesCreated, capture.ChangesAll)
	case p.SkipUser != "" && p.Changes != capture.ChangesAll:
		return invalid("-skip-user needs -changes all")
	}
	if p.SkipUser != "" {
		if _, err := salesforce.NormalizeIDWithPrefix(p.SkipUser, salesforce.PrefixUser); err != nil {
			return invalid("-skip-user: %v", err)
		}
	}
	return nil
}

// RunPoller runs `producer poll` until ctx is cancelled or, with Once,
// until it has caught up. It returns what the poller captured. The admin
// listener (MetricsAddr) starts first: /readyz says what the poller waits
// for (NATS, the streams, a token for the source org), then its own
// readiness.
func RunPoller(ctx context.Context, cfg PollerConfig) (capture.Stats, error) {
	if err := cfg.Validate(); err != nil {
		return capture.Stats{}, fmt.Errorf("producer: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "poller")
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	where := redact(cfg.NATS.url())
	rd := newReadiness("NATS at " + where)
	var stats capture.Stats
	addr := cfg.MetricsAddr
	if cfg.Once {
		addr = "" // a backfill serves no endpoints
	}
	err := withAdmin(ctx, "producer", addr, reg, rd, log, func(ctx context.Context) error {
		var err error
		stats, err = runPoller(ctx, cfg, reg, rd, log)
		return err
	})
	return stats, err
}

func runPoller(ctx context.Context, cfg PollerConfig, reg *prometheus.Registry, rd *readiness, log *slog.Logger) (capture.Stats, error) {
	path := ProducerStorePath(cfg.DataDir)
	st, err := store.Open(path, nil)
	if errors.Is(err, store.ErrLocked) {
		return capture.Stats{}, fmt.Errorf("producer: %s is locked by another process: is another producer poll running on -data-dir %s? Give each poller its own -data-dir", path, cfg.DataDir)
	}
	if err != nil {
		return capture.Stats{}, fmt.Errorf("producer: %w", err)
	}
	defer st.Close()

	natsCfg := cfg.NATS
	natsCfg.FailFast = cfg.Once // a one-shot run reports an unreachable NATS, it does not wait
	nc, q, closeNC, err := openProducerQueue(ctx, natsCfg, cfg.Queue, "orgsync-producer-poll", rd, log)
	if err != nil {
		if ctx.Err() != nil && !cfg.Once {
			return capture.Stats{}, nil
		}
		return capture.Stats{}, err
	}
	defer closeNC()

	metrics := capture.NewMetrics(reg)
	auth, client, err := NewOrgClient(ctx, cfg.Source, cfg.APIVersion, metrics.ObserveCall, log)
	if err != nil {
		return capture.Stats{}, fmt.Errorf("producer: source: %w", err)
	}
	rd.wait("a token for the source org")
	if err := waitForToken(ctx, auth, "source", rd, log, cfg.Once); err != nil {
		if ctx.Err() != nil && !cfg.Once {
			return capture.Stats{}, nil
		}
		return capture.Stats{}, fmt.Errorf("producer: %w", err)
	}
	pc := cfg.Poll
	pc.Client, pc.Queue, pc.Store, pc.Metrics, pc.Logger = client, q, st, metrics, log
	p, err := capture.NewPoller(pc)
	if err != nil {
		return capture.Stats{}, fmt.Errorf("producer: %w", err)
	}
	if cfg.Ready != nil {
		cfg.Ready(p)
	}
	if cfg.Once {
		return p.Once(ctx)
	}
	where := redact(cfg.NATS.url())
	rd.running(func() error {
		if err := natsCheck(nc, where); err != nil {
			return err
		}
		return p.Ready()
	})
	err = p.Run(ctx)
	return p.Totals(), err
}

// ServeConfig is everything `producer serve` needs.
type ServeConfig struct {
	NATS  NATSConfig
	Queue queue.Config
	// Ingest holds the handler's settings; its Queue, Metrics and Logger are
	// filled in by RunServe.
	Ingest capture.IngestConfig
	// Listen is the ingest endpoint's address (default 127.0.0.1:8090). It
	// also serves /healthz, /readyz and /metrics.
	Listen string
	// TLSCert and TLSKey are PEM files; with both, the endpoint serves HTTPS.
	TLSCert, TLSKey string
	MetricsAddr     string // a separate admin listener; none when empty
	Logger          *slog.Logger

	// Ready, when set, is called with the bound address once the endpoint
	// accepts events (tests and the demo).
	Ready func(addr net.Addr)
	// Registry, when set, receives the metrics (default: a new registry).
	Registry *prometheus.Registry
}

// DefaultListen is `producer serve`'s default -listen.
const DefaultListen = "127.0.0.1:8090"

// RunServe runs `producer serve` until ctx is cancelled; requests in flight
// are finished (up to 10s) before it returns. Both listeners start first:
// until NATS and the streams are there, /readyz says what it waits for and
// POST /v1/accounts answers 503, which the caller retries.
func RunServe(ctx context.Context, cfg ServeConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "ingest")
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return fmt.Errorf("producer: %w", invalid("-tls-cert and -tls-key go together"))
	}
	if cfg.Queue.Replicas < 0 || cfg.Queue.Replicas > 5 {
		return fmt.Errorf("producer: %w", invalid("-stream-replicas %d: must be in 1..5", cfg.Queue.Replicas))
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	where := redact(cfg.NATS.url())
	rd := newReadiness("NATS at " + where)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("producer: -listen: %w", err)
	}
	var ingest atomic.Pointer[http.Handler]
	mux := adminMux(reg, rd.ready)
	mux.HandleFunc("/v1/accounts", func(w http.ResponseWriter, r *http.Request) {
		if h := ingest.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not ready: " + rd.ready().Error()})
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return withAdmin(ctx, "producer", cfg.MetricsAddr, reg, rd, log, func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			var err error
			if cfg.TLSCert != "" {
				err = srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("producer: serve: %w", err)
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("producer: shutdown: %w", err)
			}
			return nil
		})
		log.Info("ingest endpoint listening", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "",
			"source_org", cfg.Ingest.SourceOrg)
		g.Go(func() error {
			nc, q, closeNC, err := openProducerQueue(gctx, cfg.NATS, cfg.Queue, "orgsync-producer-serve", rd, log)
			if err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return err
			}
			ic := cfg.Ingest
			ic.Queue, ic.Metrics, ic.Logger = q, capture.NewMetrics(reg), log
			h, err := capture.NewIngest(ic)
			if err != nil {
				closeNC()
				return fmt.Errorf("producer: %w", err)
			}
			var hh http.Handler = h
			ingest.Store(&hh)
			rd.running(func() error { return natsCheck(nc, where) })
			if cfg.Ready != nil {
				cfg.Ready(ln.Addr())
			}
			<-gctx.Done()
			// Requests in flight finish before the connection closes.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			closeNC()
			return nil
		})
		return g.Wait()
	})
}

// PublishConfig is everything `producer publish` needs.
type PublishConfig struct {
	NATS  NATSConfig
	Queue queue.Config
	// NDJSON holds the settings; its Queue and Logger are filled in.
	NDJSON capture.NDJSONConfig
	Input  io.Reader
	Logger *slog.Logger
}

// RunPublish publishes the NDJSON records of cfg.Input (`producer publish`).
// Errors are as capture.PublishNDJSON's.
func RunPublish(ctx context.Context, cfg PublishConfig) (capture.Stats, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	natsCfg := cfg.NATS
	natsCfg.FailFast = true // a one-shot run reports an unreachable NATS, it does not wait
	_, q, closeNC, err := openProducerQueue(ctx, natsCfg, cfg.Queue, "orgsync-producer-publish", nil, log)
	if err != nil {
		return capture.Stats{}, err
	}
	defer closeNC()
	nc := cfg.NDJSON
	nc.Queue, nc.Logger = q, log
	return capture.PublishNDJSON(ctx, cfg.Input, nc)
}

// openProducerQueue connects to NATS and makes sure the streams exist.
// rd, when set, is told what the set-up waits for.
func openProducerQueue(ctx context.Context, nc NATSConfig, qc queue.Config, name string, rd *readiness, log *slog.Logger) (*nats.Conn, *queue.Queue, func(), error) {
	conn, closeNC, err := ConnectNATS(ctx, nc, name, log)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("producer: %w", err)
	}
	if rd != nil {
		rd.wait(fmt.Sprintf("the %s and %s streams on NATS at %s", queue.Stream, queue.DLQStream, redact(nc.url())))
	}
	js, err := jetstream.New(conn)
	if err != nil {
		closeNC()
		return nil, nil, nil, fmt.Errorf("producer: jetstream: %w", err)
	}
	qc.Logger = log
	var q *queue.Queue
	setup := func(ctx context.Context) error {
		var err error
		q, err = queue.New(ctx, js, qc)
		return err
	}
	if nc.FailFast {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = setup(sctx)
		cancel()
	} else {
		err = retrySetup(ctx, log, "queue", setup)
	}
	if err != nil {
		closeNC()
		return nil, nil, nil, fmt.Errorf("producer: %w", err)
	}
	return conn, q, closeNC, nil
}
