package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
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
	DataDir string
	// Once catches up and returns (-once, a backfill) instead of polling
	// every interval.
	Once        bool
	MetricsAddr string // admin endpoints; off when empty (never with Once)
	Logger      *slog.Logger

	// Ready, when set, is called once the poller is built (tests and the demo).
	Ready func(*capture.Poller)
	// Registry, when set, receives the metrics (default: a new registry).
	Registry *prometheus.Registry
}

// RunPoller runs `producer poll` until ctx is cancelled or, with Once,
// until it has caught up. It returns what the poller captured.
func RunPoller(ctx context.Context, cfg PollerConfig) (capture.Stats, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "poller")
	if cfg.DataDir == "" {
		return capture.Stats{}, errors.New("producer: -data-dir is required")
	}
	st, err := store.Open(ProducerStorePath(cfg.DataDir), nil)
	if err != nil {
		return capture.Stats{}, fmt.Errorf("producer: %w", err)
	}
	defer st.Close()

	natsCfg := cfg.NATS
	natsCfg.FailFast = cfg.Once // a one-shot run reports an unreachable NATS, it does not wait
	nc, q, closeNC, err := openProducerQueue(ctx, natsCfg, cfg.Queue, "orgsync-producer-poll", log)
	if err != nil {
		return capture.Stats{}, err
	}
	defer closeNC()

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics := capture.NewMetrics(reg)
	_, client, err := newOrgClient(ctx, cfg.Source, cfg.APIVersion, metrics.ObserveCall, log)
	if err != nil {
		return capture.Stats{}, fmt.Errorf("producer: source: %w", err)
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
		s, err := p.Once(ctx)
		return s, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Run(gctx) })
	if cfg.MetricsAddr != "" {
		g.Go(func() error {
			return ServeAdmin(gctx, cfg.MetricsAddr, reg, func() error {
				if !nc.IsConnected() {
					return errors.New("not connected to NATS")
				}
				return p.Ready()
			}, log)
		})
	}
	err = g.Wait()
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
	MetricsAddr     string // a separate admin listener; off when empty
	Logger          *slog.Logger

	// Ready, when set, is called with the bound address once the endpoint
	// listens (tests and the demo).
	Ready func(addr net.Addr)
	// Registry, when set, receives the metrics (default: a new registry).
	Registry *prometheus.Registry
}

// DefaultListen is `producer serve`'s default -listen.
const DefaultListen = "127.0.0.1:8090"

// RunServe runs `producer serve` until ctx is cancelled; requests in flight
// are finished (up to 10s) before it returns.
func RunServe(ctx context.Context, cfg ServeConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "ingest")
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("producer: -tls-cert and -tls-key go together")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	nc, q, closeNC, err := openProducerQueue(ctx, cfg.NATS, cfg.Queue, "orgsync-producer-serve", log)
	if err != nil {
		return err
	}
	defer closeNC()
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	ic := cfg.Ingest
	ic.Queue, ic.Metrics, ic.Logger = q, capture.NewMetrics(reg), log
	h, err := capture.NewIngest(ic)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	ready := func() error {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS")
		}
		return nil
	}
	mux := adminMux(reg, ready)
	mux.Handle("/v1/accounts", h)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("producer: listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
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
	if cfg.MetricsAddr != "" {
		g.Go(func() error { return ServeAdmin(gctx, cfg.MetricsAddr, reg, ready, log) })
	}
	log.Info("ingest endpoint listening", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "",
		"source_org", ic.SourceOrg)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	return g.Wait()
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
	_, q, closeNC, err := openProducerQueue(ctx, natsCfg, cfg.Queue, "orgsync-producer-publish", log)
	if err != nil {
		return capture.Stats{}, err
	}
	defer closeNC()
	nc := cfg.NDJSON
	nc.Queue, nc.Logger = q, log
	return capture.PublishNDJSON(ctx, cfg.Input, nc)
}

// openProducerQueue connects to NATS and makes sure the streams exist.
func openProducerQueue(ctx context.Context, nc NATSConfig, qc queue.Config, name string, log *slog.Logger) (*nats.Conn, *queue.Queue, func(), error) {
	conn, closeNC, err := nc.connect(name, log)
	if err != nil {
		return nil, nil, nil, err
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
