package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"orgsync/event"
	"orgsync/internal/app"
	"orgsync/internal/cli"
	"orgsync/reconcile"
	"orgsync/replicate"
)

// listFirst is how many differences the text output lists.
const listFirst = 20

// cmdReconcile runs `worker reconcile` and returns the exit status: 0 when
// the orgs agree, 1 when they differ or the run failed, 2 for usage errors.
func cmdReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	code, err := reconcileCmd(ctx, args, getenv, stdout, stderr)
	if err != nil {
		return cli.Exit(err, stderr, "worker", "worker reconcile")
	}
	return code
}

func reconcileCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := cli.NewFlagSet("worker reconcile", stderr)
	nf := natsFlags(fs)
	source := cli.AddOrgFlags(fs, "source")
	target := cli.AddOrgFlags(fs, "target")
	ext := fs.String("external-id-field", replicate.DefaultExternalIDField, "the target's external ID field that holds the source record ID")
	fieldList := fs.String("fields", "", "comma-separated allow-list of copied fields to compare (default: the worker's default list)")
	where := fs.String("where", "", "a SOQL condition that narrows the source records compared, e.g. \"CreatedDate = LAST_N_DAYS:30\"")
	budget := fs.Float64("api-budget", reconcile.DefaultAPIBudget, "share of each org's daily API limit the run may use; at it the run pauses until usage falls")
	rateLimit := fs.Float64("rate-limit", reconcile.DefaultRateLimit, "calls per second to each org (negative: no cap)")
	bulkThreshold := fs.Int("bulk-threshold", reconcile.DefaultBulkThreshold, "read both orgs with Bulk API 2.0 query jobs when the source has at least this many records to compare (0: never)")
	repair := fs.Bool("repair", false, "publish a repair event for every missing and different record (needs NATS); with -data-dir also correct the ID map")
	dryRun := fs.Bool("dry-run", false, "with -repair: say what would be published, change nothing")
	dataDir := fs.String("data-dir", "", "directory of a worker's ID map to check too (the worker must be stopped); off when empty")
	workerID := fs.String("worker-id", "", "whose ID map to check (default: the only worker-<id>.db in -data-dir)")
	asJSON := fs.Bool("json", false, "write every difference as one JSON object per line on stdout (the summary goes to stderr)")
	interval := fs.Duration("interval", 0, "run again every interval until interrupted (0: run once)")
	metricsAddr := fs.String("metrics-addr", "", "address for /metrics (orgsync_reconcile_*), /healthz and /readyz while running (off when empty)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	// ORGSYNC_BULK_THRESHOLD is worker run's (pending events), not this
	// command's (source records): -bulk-threshold reads no environment.
	if err := cli.Parse(fs, args, getenv, "where", "repair", "dry-run", "json", "bulk-threshold"); err != nil {
		return 0, err
	}
	if fs.NArg() > 0 {
		return 0, cli.Usagef("worker reconcile takes no arguments, got %q", fs.Args())
	}
	if *bulkThreshold < 0 {
		return 0, cli.Usagef("-bulk-threshold %d: want a record count, or 0 for never", *bulkThreshold)
	}
	switch {
	case !cli.FieldName(*ext):
		return 0, cli.Usagef("-external-id-field %q is not a field name", *ext)
	case *budget <= 0 || *budget > 1:
		return 0, cli.Usagef("-api-budget must be in (0, 1]")
	case *rateLimit == 0:
		return 0, cli.Usagef("-rate-limit must not be 0 (negative: no cap)")
	case *dryRun && !*repair:
		return 0, cli.Usagef("-dry-run goes with -repair")
	case *interval < 0:
		return 0, cli.Usagef("-interval must not be negative")
	}
	if *dataDir != "" && *workerID == "" {
		id, err := app.FindWorkerID(*dataDir)
		if err != nil {
			if errors.Is(err, app.ErrInvalidConfig) {
				return 0, cli.Usagef("%v", strings.TrimPrefix(err.Error(), app.ErrInvalidConfig.Error()+": "))
			}
			return 0, err
		}
		*workerID = id
	}
	fields, err := event.ParseFields(*fieldList)
	if err != nil {
		return 0, cli.Usagef("%v", err)
	}
	srcAuth, err := source.AuthConfig()
	if err != nil {
		return 0, err
	}
	tgtAuth, err := target.AuthConfig()
	if err != nil {
		return 0, err
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return 0, err
	}
	log, err := cli.Logger(stderr, *logLevel)
	if err != nil {
		return 0, err
	}

	// stdout carries the differences (and, in text mode, the summary);
	// progress, logs and, with -json, the summary go to stderr.
	out := &lockedWriter{w: stdout}
	summaryOut, dryOut := io.Writer(out), io.Writer(out)
	if *asJSON {
		summaryOut, dryOut = stderr, stderr
	}
	var (
		mu     sync.Mutex
		listed int
		more   int
		enc    = json.NewEncoder(out)
	)
	prog := &reconcile.ProgressPrinter{W: stderr, Terminal: isTerminal(stderr), Logger: log, Every: 10 * time.Second}
	report := func(d reconcile.Difference) {
		mu.Lock()
		defer mu.Unlock()
		if *asJSON {
			_ = enc.Encode(d)
			return
		}
		if listed < listFirst {
			listed++
			prog.Clear()
			fmt.Fprintln(out, describe(d))
		} else {
			more++
		}
	}
	finished := func(res reconcile.Result, err error) {
		prog.Done()
		mu.Lock()
		if more > 0 {
			fmt.Fprintf(out, "… and %d more (-json lists every difference)\n", more)
		}
		listed, more = 0, 0
		mu.Unlock()
		if err != nil {
			return
		}
		if *dataDir != "" {
			fmt.Fprintf(summaryOut, "id map of worker %s: %d stale entries\n", *workerID, res.StaleMappings)
		}
		if *repair {
			verb := "published"
			if *dryRun {
				verb = "would publish"
			}
			fmt.Fprintf(summaryOut, "repair: %s %d events\n", verb, res.Repairs)
		}
		fmt.Fprintln(summaryOut, res.Summary())
	}
	res, err := app.RunReconcile(ctx, app.ReconcileConfig{
		Source: srcAuth, Target: tgtAuth, APIVersion: source.APIVersion,
		ExternalIDField: *ext, Fields: fields, Where: *where, APIBudget: *budget, RateLimit: *rateLimit,
		BulkThreshold: *bulkThreshold,
		Repair:        *repair, DryRun: *dryRun, DryRunOut: dryOut,
		NATS:    app.NATSConfig{URL: nf.URL, Options: natsOpts},
		DataDir: *dataDir, WorkerID: *workerID,
		Interval: *interval, MetricsAddr: *metricsAddr,
		Report: report, Progress: prog.Update, Finished: finished, Logger: log,
	})
	if err != nil {
		return 1, err
	}
	if !res.Clean() {
		return 1, nil
	}
	return 0, nil
}

// describe is a difference's line in the text output.
func describe(d reconcile.Difference) string {
	s := fmt.Sprintf("%-13s source %s", d.Kind, d.SourceID)
	if d.TargetID != "" {
		s += " target " + d.TargetID
	}
	switch d.Kind {
	case reconcile.Different:
		for _, n := range d.SortedFieldNames() {
			v := d.Fields[n]
			s += fmt.Sprintf("  %s: %s ≠ %s", n, jsonText(v.Source), jsonText(v.Target))
		}
	case reconcile.StaleMapping:
		s += " (the ID map says " + d.MapTargetID + ")"
	}
	if d.Repair != "" {
		s += "  [" + d.Repair + "]"
	}
	return s
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return oneLine(string(b), 60)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lockedWriter serialises writes from the report callbacks.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
