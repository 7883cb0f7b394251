package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orgsync/capture"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/pubsub"
	"orgsync/store"
)

// DefaultPubSubAddr is Salesforce's global Pub/Sub API endpoint.
const DefaultPubSubAddr = "api.pubsub.salesforce.com:7443"

// CDCConfig is everything `producer cdc` needs.
type CDCConfig struct {
	NATS       NATSConfig
	Source     salesforce.AuthConfig
	APIVersion string
	Queue      queue.Config
	// PubSubAddr is the Pub/Sub API's host:port (default DefaultPubSubAddr).
	PubSubAddr string
	// PubSubCA is a PEM file of extra roots to trust; PubSubInsecure turns
	// certificate checking off (a local fake only).
	PubSubCA       string
	PubSubInsecure bool
	// IdleTimeout is the stream watchdog (default pubsub.DefaultIdleTimeout).
	IdleTimeout time.Duration
	// CDC holds the capture settings; its Client, PubSub, Queue, Store,
	// metrics and Logger are filled in by RunCDC.
	CDC         capture.CDCConfig
	DataDir     string
	MetricsAddr string // admin endpoints; off when empty
	Logger      *slog.Logger

	// Ready, when set, is called once the capture is built (tests, the demo).
	Ready func(*capture.CDC)
	// Registry, when set, receives the metrics (default: a new registry).
	Registry *prometheus.Registry
}

// RunCDC runs `producer cdc` until ctx is cancelled. The admin listener
// (MetricsAddr) starts first: /readyz says what the capture waits for (NATS,
// the streams, a token for the source org), then its own readiness (false
// while disconnected from the Pub/Sub API or catching up).
func RunCDC(ctx context.Context, cfg CDCConfig) (capture.CDCStats, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "cdc")
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	tc, err := pubsubTLS(cfg.PubSubCA, cfg.PubSubInsecure)
	if err != nil {
		return capture.CDCStats{}, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	rd := newReadiness("NATS at " + redact(cfg.NATS.url()))
	var stats capture.CDCStats
	err = withAdmin(ctx, "producer", cfg.MetricsAddr, reg, rd, log, func(ctx context.Context) error {
		var err error
		stats, err = runCDC(ctx, cfg, tc, reg, rd, log)
		return err
	})
	return stats, err
}

func runCDC(ctx context.Context, cfg CDCConfig, tc *tls.Config, reg *prometheus.Registry, rd *readiness, log *slog.Logger) (capture.CDCStats, error) {
	path := ProducerStorePath(cfg.DataDir)
	st, err := store.Open(path, nil)
	if errors.Is(err, store.ErrLocked) {
		return capture.CDCStats{}, fmt.Errorf("producer: %s is locked by another process: is another producer running on -data-dir %s? Give each producer its own -data-dir", path, cfg.DataDir)
	}
	if err != nil {
		return capture.CDCStats{}, fmt.Errorf("producer: %w", err)
	}
	defer st.Close()
	nc, q, closeNC, err := openProducerQueue(ctx, cfg.NATS, cfg.Queue, "orgsync-producer-cdc", rd, log)
	if err != nil {
		if ctx.Err() != nil {
			return capture.CDCStats{}, nil
		}
		return capture.CDCStats{}, err
	}
	defer closeNC()

	metrics := capture.NewMetrics(reg)
	auth, client, err := NewOrgClient(ctx, cfg.Source, cfg.APIVersion, metrics.ObserveCall, log)
	if err != nil {
		return capture.CDCStats{}, fmt.Errorf("producer: source: %w", err)
	}
	rd.wait("a token for the source org")
	if err := waitForToken(ctx, auth, "source", rd, log, false); err != nil {
		if ctx.Err() != nil {
			return capture.CDCStats{}, nil
		}
		return capture.CDCStats{}, fmt.Errorf("producer: %w", err)
	}
	addr := cfg.PubSubAddr
	if addr == "" {
		addr = DefaultPubSubAddr
	}
	ps, err := pubsub.Dial(pubsub.Config{Addr: addr, Tokens: auth, TenantID: cfg.CDC.SourceOrg, TLS: tc,
		IdleTimeout: cfg.IdleTimeout, Logger: log})
	if err != nil {
		return capture.CDCStats{}, fmt.Errorf("producer: %w", err)
	}
	defer ps.Close()
	cc := cfg.CDC
	cc.Client, cc.PubSub, cc.Queue, cc.Store, cc.Logger = client, ps, q, st, log
	cc.Metrics, cc.CDCMetrics = metrics, capture.NewCDCMetrics(reg)
	c, err := capture.NewCDC(cc)
	if err != nil {
		return capture.CDCStats{}, fmt.Errorf("producer: %w", err)
	}
	if cfg.Ready != nil {
		cfg.Ready(c)
	}
	where := redact(cfg.NATS.url())
	rd.running(func() error {
		if err := natsCheck(nc, where); err != nil {
			return err
		}
		return c.Ready()
	})
	err = c.Run(ctx)
	return c.Totals(), err
}

// pubsubTLS builds the Pub/Sub API's TLS settings: the system roots plus
// caFile's certificates, or no checking at all with insecure.
func pubsubTLS(caFile string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		tc.InsecureSkipVerify = true //nolint:gosec // -pubsub-insecure, for a local fake org only
		return tc, nil
	}
	if caFile == "" {
		return tc, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("producer: -pubsub-ca: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("producer: -pubsub-ca %s holds no PEM certificate", caFile)
	}
	tc.RootCAs = roots
	return tc, nil
}
