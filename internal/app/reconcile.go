package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/reconcile"
	"orgsync/salesforce"
	"orgsync/store"
)

// ReconcileConfig is everything `worker reconcile` needs.
type ReconcileConfig struct {
	Source, Target  salesforce.AuthConfig
	APIVersion      string
	ExternalIDField string
	Fields          event.Fields
	Where           string  // narrows the source records compared (SOQL condition)
	APIBudget       float64 // share of each org's daily API limit (default 0.5)
	RateLimit       float64 // calls per second to each org (default 5; negative: no cap)
	ProbeInterval   time.Duration
	// BulkThreshold reads both orgs with Bulk API 2.0 query jobs when the
	// source has at least this many records to compare (0: never).
	BulkThreshold int

	// Repair publishes a repair event for every missing and different
	// record (needs NATS, unless DryRun) and, with DataDir, corrects stale
	// ID map entries.
	Repair bool
	// DryRun, with Repair, writes what would be published to DryRunOut and
	// changes nothing.
	DryRun    bool
	DryRunOut io.Writer
	NATS      NATSConfig
	Queue     queue.Config

	// DataDir and WorkerID name a worker's ID map to check (off when DataDir
	// is empty). The worker must not be running: it holds the file.
	DataDir, WorkerID string

	// Interval, when positive, runs again every Interval until ctx ends;
	// zero runs once.
	Interval time.Duration
	// MetricsAddr serves /metrics (orgsync_reconcile_*), /healthz and
	// /readyz while the command runs; off when empty.
	MetricsAddr string
	Registry    *prometheus.Registry // default: a new registry

	// Report receives every difference; Progress every page; Finished each
	// run's result. Any may be nil.
	Report   func(reconcile.Difference)
	Progress func(reconcile.Progress)
	Finished func(reconcile.Result, error)
	Logger   *slog.Logger
}

// RunReconcile runs `worker reconcile`: once, or every Interval until ctx
// ends. It returns the last run's result.
func RunReconcile(ctx context.Context, cfg ReconcileConfig) (reconcile.Result, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "reconcile")
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics := reconcile.NewMetrics(reg)
	rd := newReadiness("")
	rd.running(func() error { return nil })
	var res reconcile.Result
	err := withAdmin(ctx, "worker reconcile", cfg.MetricsAddr, reg, rd, log, func(ctx context.Context) error {
		var err error
		res, err = reconcileLoop(ctx, cfg, metrics, log)
		return err
	})
	return res, err
}

// reconcileLoop runs once, or every Interval until ctx ends.
func reconcileLoop(ctx context.Context, cfg ReconcileConfig, metrics *reconcile.Metrics, log *slog.Logger) (reconcile.Result, error) {
	for {
		res, err := runReconcileOnce(ctx, cfg, metrics, log)
		if cfg.Finished != nil {
			cfg.Finished(res, err)
		}
		if cfg.Interval <= 0 || ctx.Err() != nil {
			return res, err
		}
		if err != nil {
			log.Error("reconcile run failed; the next one follows after the interval", "err", err, "interval", cfg.Interval)
		}
		t := time.NewTimer(cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, err
		case <-t.C:
		}
	}
}

func runReconcileOnce(ctx context.Context, cfg ReconcileConfig, metrics *reconcile.Metrics, log *slog.Logger) (res reconcile.Result, err error) {
	var src, tgt *reconcile.Org
	defer func() {
		var sc, tc int64
		if src != nil {
			sc, tc = src.Calls(), tgt.Calls()
		}
		metrics.Finished(time.Now(), res, sc, tc, err)
	}()
	src, tgt, err = reconcileOrgs(ctx, cfg, metrics, log)
	if err != nil {
		return res, err
	}
	sd, err := src.Describe(ctx)
	if err != nil {
		return res, err
	}
	td, err := tgt.Describe(ctx)
	if err != nil {
		return res, err
	}
	fields, skipped := reconcile.ResolveFields(cfg.Fields, sd, td)
	if len(skipped) > 0 {
		log.Warn("fields one org lacks are not compared", "fields", skipped)
	}
	if len(fields) == 0 {
		return res, errors.New("reconcile: none of the -fields exists in both orgs")
	}
	target := &reconcile.TargetOrg{Org: tgt, Fields: fields, ExternalIDField: cfg.ExternalIDField}
	if err := target.Check(td); err != nil {
		return res, err
	}
	rc := reconcile.Config{
		Source:        &reconcile.SourceOrg{Org: src, Fields: fields, Where: cfg.Where},
		Target:        target,
		Fields:        fields,
		BulkThreshold: cfg.BulkThreshold,
		DryRun:        cfg.DryRun,
		Report:        cfg.Report,
		Progress:      cfg.Progress,
		Logger:        log,
	}
	if cfg.DataDir != "" {
		st, err := openIDMap(cfg)
		if err != nil {
			return res, err
		}
		defer st.Close()
		rc.IDMap = st
	}
	if cfg.Repair {
		org, _, err := src.Client().Identity(ctx)
		if err != nil {
			return res, fmt.Errorf("reconcile: -repair needs the source org's ID from the token's identity URL: %w", err)
		}
		if rc.SourceOrg, err = salesforce.NormalizeIDWithPrefix(org, salesforce.PrefixOrganization); err != nil {
			return res, fmt.Errorf("reconcile: source org id: %w", err)
		}
		runID := strconv.FormatInt(time.Now().UnixNano(), 10)
		if cfg.DryRun {
			out := cfg.DryRunOut
			if out == nil {
				out = io.Discard
			}
			rc.Publisher = &reconcile.DryRun{W: out, RunID: runID}
		} else {
			pub, closeNC, err := openRepairQueue(ctx, cfg, runID, log)
			if err != nil {
				return res, err
			}
			defer closeNC()
			rc.Publisher = pub
		}
	}
	r, err := reconcile.New(rc)
	if err != nil {
		return res, err
	}
	start := time.Now()
	log.Info("reconcile started", "fields", len(fields), "where", cfg.Where, "repair", cfg.Repair, "dry_run", cfg.DryRun,
		"id_map", cfg.DataDir != "", "bulk_threshold", cfg.BulkThreshold)
	res, err = r.Run(ctx)
	log.Info("reconcile finished", "missing", res.Missing, "extra", res.Extra, "different", res.Different,
		"stale_mappings", res.StaleMappings, "repairs", res.Repairs, "source_records", res.SourceRecords,
		"target_records", res.TargetRecords, "bulk", res.Bulk, "source_api_calls", src.Calls(), "target_api_calls", tgt.Calls(),
		"took", time.Since(start).Round(time.Millisecond), "err", err)
	return res, err
}

// reconcileOrgs builds both orgs' clients inside the budget and rate limit.
func reconcileOrgs(ctx context.Context, cfg ReconcileConfig, metrics *reconcile.Metrics, log *slog.Logger) (src, tgt *reconcile.Org, err error) {
	build := func(name string, auth salesforce.AuthConfig) (*reconcile.Org, error) {
		_, client, err := NewOrgClient(ctx, auth, cfg.APIVersion, nil, log)
		if err != nil {
			return nil, fmt.Errorf("reconcile: %s: %w", name, err)
		}
		return reconcile.NewOrg(reconcile.OrgConfig{
			Client: client, Name: name, APIBudget: cfg.APIBudget, RateLimit: cfg.RateLimit,
			ProbeInterval: cfg.ProbeInterval, OnPause: metrics.Paused(name), Logger: log,
		})
	}
	if src, err = build("source", cfg.Source); err != nil {
		return nil, nil, err
	}
	if tgt, err = build("target", cfg.Target); err != nil {
		return nil, nil, err
	}
	return src, tgt, nil
}

// openIDMap opens the worker's ID map: read-only for a check or a dry run,
// writable when -repair corrects it.
func openIDMap(cfg ReconcileConfig) (*store.Store, error) {
	path := StorePath(cfg.DataDir, cfg.WorkerID)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("reconcile: no ID map for worker %q: %w", cfg.WorkerID, err)
	}
	readOnly := !cfg.Repair || cfg.DryRun
	st, err := store.Open(path, &store.Options{ReadOnly: readOnly, Timeout: 500 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("reconcile: the ID map %s is held by a running worker; stop worker %q or leave out -data-dir: %w", path, cfg.WorkerID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	return st, nil
}

// openRepairQueue connects to NATS and returns the repair publisher.
func openRepairQueue(ctx context.Context, cfg ReconcileConfig, runID string, log *slog.Logger) (*reconcile.QueuePublisher, func(), error) {
	nc := cfg.NATS
	nc.FailFast = true
	conn, closeNC, err := ConnectNATS(ctx, nc, "orgsync-reconcile", log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(conn)
	if err != nil {
		closeNC()
		return nil, nil, fmt.Errorf("reconcile: jetstream: %w", err)
	}
	qc := cfg.Queue
	qc.Logger = log
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	q, err := queue.New(sctx, js, qc)
	cancel()
	if err != nil {
		closeNC()
		return nil, nil, fmt.Errorf("reconcile: %w", err)
	}
	return &reconcile.QueuePublisher{Queue: q, RunID: runID}, closeNC, nil
}
