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
	"golang.org/x/sync/errgroup"

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

// RunCDC runs `producer cdc` until ctx is cancelled.
func RunCDC(ctx context.Context, cfg CDCConfig) (capture.CDCStats, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "cdc")
	if cfg.DataDir == "" {
		return capture.CDCStats{}, errors.New("producer: -data-dir is required")
	}
	tc, err := pubsubTLS(cfg.PubSubCA, cfg.PubSubInsecure)
	if err != nil {
		return capture.CDCStats{}, err
	}
	st, err := store.Open(ProducerStorePath(cfg.DataDir), nil)
	if err != nil {
		return capture.CDCStats{}, fmt.Errorf("producer: %w", err)
	}
	defer st.Close()
	nc, q, closeNC, err := openProducerQueue(ctx, cfg.NATS, cfg.Queue, "orgsync-producer-cdc", log)
	if err != nil {
		return capture.CDCStats{}, err
	}
	defer closeNC()

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics := capture.NewMetrics(reg)
	auth, client, err := newOrgClient(ctx, cfg.Source, cfg.APIVersion, metrics.ObserveCall, log)
	if err != nil {
		return capture.CDCStats{}, fmt.Errorf("producer: source: %w", err)
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
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.Run(gctx) })
	if cfg.MetricsAddr != "" {
		g.Go(func() error {
			return ServeAdmin(gctx, cfg.MetricsAddr, reg, func() error {
				if !nc.IsConnected() {
					return errors.New("not connected to NATS")
				}
				return c.Ready()
			}, log)
		})
	}
	err = g.Wait()
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
