package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/app"
	"orgsync/internal/cli"
	"orgsync/queue"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/store"
)

const usage = `usage:
  worker run             [flags]                 sync events to the target org
  worker dlq list        [-json] [flags]         list dead letters
  worker dlq replay      [-code C] [-source-id ID] [-dry-run] [flags]
  worker mapping get     [-timeout 2s] [flags] SOURCE_ID
  worker mapping export  -data-dir DIR [-worker-id ID] [-format csv|json] [flags]
Run "worker COMMAND -h" for a command's flags.
`

func dispatch(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	sub := ""
	if len(args) > 1 {
		sub = args[1]
	}
	var err error
	switch {
	case cmd == "run":
		err = cmdRun(ctx, args[1:], getenv, stderr)
	case cmd == "dlq" && sub == "list":
		err = cmdDLQList(ctx, args[2:], getenv, stdout, stderr)
	case cmd == "dlq" && sub == "replay":
		err = cmdDLQReplay(ctx, args[2:], getenv, stdout, stderr)
	case cmd == "mapping" && sub == "get":
		err = cmdMappingGet(ctx, args[2:], getenv, stdout, stderr)
	case cmd == "mapping" && sub == "export":
		err = cmdMappingExport(ctx, args[2:], getenv, stdout, stderr)
	case cmd == "-h" || cmd == "--help" || cmd == "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	return cli.Exit(err, stderr, "worker")
}

// natsFlags adds -nats-url and the NATS security flags.
func natsFlags(fs *flag.FlagSet) *cli.NATSFlags { return cli.AddNATSFlags(fs) }

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker run", stderr)
	nf := natsFlags(fs)
	org := cli.AddOrgFlags(fs, "target")
	mode := fs.String("mode", string(replicate.ModeUpsert), "write mode: upsert, create or apexrest")
	ext := fs.String("external-id-field", replicate.DefaultExternalIDField, "the target's external ID field that holds the source record ID (upsert mode)")
	batch := fs.Int("batch", replicate.DefaultBatch, "events per target call (1..200)")
	linger := fs.Duration("linger", replicate.DefaultLinger, "how long a fetch waits for a batch to fill")
	conc := fs.Int("concurrency", replicate.DefaultConcurrency, "batches in flight")
	ackWait := fs.Duration("ack-wait", queue.DefaultAckWait, "the consumer's ack wait (when this worker creates it)")
	maxDeliver := fs.Int("max-deliver", replicate.DefaultMaxDeliver, "deliveries before an event is dead-lettered")
	maxAckPending := fs.Int("max-ack-pending", queue.DefaultMaxAckPending, "events in flight across the whole pool (when this worker creates the consumer)")
	budget := fs.Float64("api-budget", replicate.DefaultAPIBudget, "share of the target's daily API limit orgsync may use before it pauses the pool")
	bulkThreshold := fs.Int("bulk-threshold", replicate.DefaultBulkThreshold, "pending events above which upsert mode writes Bulk API 2.0 jobs (0: never)")
	bulkBatch := fs.Int("bulk-batch", replicate.DefaultBulkBatch, "events per Bulk API 2.0 job")
	composite := fs.Int("composite", replicate.DefaultComposite, "upsert mode: collections calls of -batch records packed in one composite call, 1..5 (1: off); a fetch takes -batch × -composite events")
	rateLimit := fs.Float64("rate-limit", 0, "target calls per second from this worker (0: no cap)")
	maxCalls := fs.Int("max-calls", replicate.DefaultMaxCalls, "concurrent target calls from this worker")
	workerID := fs.String("worker-id", app.DefaultWorkerID(), "this worker's name; its ID map is <data-dir>/worker-<id>.db")
	dataDir := fs.String("data-dir", "data", "directory of the worker's ID map")
	metricsAddr := fs.String("metrics-addr", "", "address for /metrics, /healthz and /readyz (off when empty)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("worker run takes no arguments, got %q", fs.Args())
	}
	m, err := replicate.ParseMode(*mode)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	if !cli.FieldName(*ext) {
		return cli.Usagef("-external-id-field %q is not a field name", *ext)
	}
	auth, err := org.AuthConfig()
	if err != nil {
		return err
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return err
	}
	log, err := cli.Logger(stderr, *logLevel)
	if err != nil {
		return err
	}
	return app.RunWorker(ctx, app.WorkerConfig{
		NATS:       app.NATSConfig{URL: nf.URL, Options: natsOpts},
		Target:     auth,
		APIVersion: org.APIVersion,
		Queue:      queue.Config{AckWait: *ackWait, MaxAckPending: *maxAckPending, Replicas: nf.StreamReplicas},
		Engine: replicate.Config{
			Mode: m, ExternalIDField: *ext, Batch: *batch, Linger: *linger, Concurrency: *conc,
			MaxDeliver: *maxDeliver, APIBudget: *budget, RateLimit: *rateLimit, MaxCalls: *maxCalls,
			WorkerID: *workerID, BulkThreshold: bulkSetting(*bulkThreshold), BulkBatch: *bulkBatch,
			Composite: *composite,
		},
		DataDir:     *dataDir,
		MetricsAddr: *metricsAddr,
		Logger:      log,
	})
}

// bulkSetting maps -bulk-threshold 0 ("never") to the engine's negative.
func bulkSetting(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// openQueue connects to NATS and opens the queue for an operator command.
func openQueue(ctx context.Context, nf *cli.NATSFlags) (*queue.Queue, func(), error) {
	opts, err := nf.Options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := cli.ConnectNATS(nf.URL, "orgsync-worker-cli", opts)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	q, err := queue.New(ctx, js, queue.Config{Replicas: nf.StreamReplicas})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return q, func() { _ = nc.Drain() }, nil
}

func cmdDLQList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker dlq list", stderr)
	nf := natsFlags(fs)
	asJSON := fs.Bool("json", false, "one JSON object per dead letter")
	if err := cli.Parse(fs, args, getenv, "json"); err != nil {
		return err
	}
	q, done, err := openQueue(ctx, nf)
	if err != nil {
		return err
	}
	defer done()
	entries, err := q.ListDLQ(ctx)
	if err != nil {
		return err
	}
	return printEntries(stdout, entries, *asJSON)
}

func printEntries(w io.Writer, entries []queue.Entry, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSOURCE_ID\tCODE\tATTEMPTS\tFAILED_AT\tMESSAGE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", e.Seq, e.SourceID, e.Code, e.Attempts,
			e.FailedAt.UTC().Format(time.RFC3339), oneLine(e.Message, 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d dead letters\n", len(entries))
	return nil
}

func cmdDLQReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker dlq replay", stderr)
	nf := natsFlags(fs)
	code := fs.String("code", "", "replay only dead letters with this error code")
	sourceID := fs.String("source-id", "", "replay only dead letters of this source record")
	dryRun := fs.Bool("dry-run", false, "list what would be replayed, change nothing")
	if err := cli.Parse(fs, args, getenv, "code", "source-id", "dry-run"); err != nil {
		return err
	}
	if *sourceID != "" {
		if _, err := salesforce.NormalizeID(*sourceID); err != nil {
			return cli.Usagef("-source-id: %v", err)
		}
	}
	q, done, err := openQueue(ctx, nf)
	if err != nil {
		return err
	}
	defer done()
	res, err := q.Replay(ctx, queue.ReplayOptions{Code: *code, SourceID: *sourceID, DryRun: *dryRun})
	if *dryRun {
		if perr := printEntries(stdout, res.Entries, false); perr != nil && err == nil {
			err = perr
		}
		fmt.Fprintf(stdout, "dry run: %d dead letters would be replayed\n", res.Matched)
		return err
	}
	fmt.Fprintf(stdout, "replayed %d of %d matching dead letters\n", res.Replayed, res.Matched)
	return err
}

func cmdMappingGet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker mapping get", stderr)
	nf := natsFlags(fs)
	org := cli.AddOrgFlags(fs, "target")
	ext := fs.String("external-id-field", replicate.DefaultExternalIDField, "the target's external ID field, for the fallback query")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for a running worker's answer")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("worker mapping get takes one SOURCE_ID (flags come first)")
	}
	if !cli.FieldName(*ext) {
		return cli.Usagef("-external-id-field %q is not a field name", *ext)
	}
	opts, err := nf.Options()
	if err != nil {
		return err
	}
	nc, err := cli.ConnectNATS(nf.URL, "orgsync-worker-cli", opts)
	if err != nil {
		return err
	}
	defer nc.Close()
	var target *salesforce.Client
	if org.Configured() {
		auth, err := org.AuthConfig()
		if err != nil {
			return err
		}
		target, err = cli.NewClient(ctx, auth, org.APIVersion)
		if err != nil {
			return err
		}
	}
	r, err := replicate.LookupMapping(ctx, nc, target, *ext, fs.Arg(0), *timeout)
	if err != nil {
		if errors.Is(err, salesforce.ErrInvalidID) {
			return cli.Usagef("%v", err)
		}
		return err
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(r)
}

func cmdMappingExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker mapping export", stderr)
	nf := natsFlags(fs)
	dataDir := fs.String("data-dir", "data", "directory of the worker's ID map")
	workerID := fs.String("worker-id", app.DefaultWorkerID(), "whose ID map to export")
	format := fs.String("format", store.FormatCSV, "csv or json")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for a running worker's answer")
	if err := cli.Parse(fs, args, getenv, "format"); err != nil {
		return err
	}
	if *format != store.FormatCSV && *format != store.FormatJSON {
		return cli.Usagef("-format %q: want csv or json", *format)
	}
	path := app.StorePath(*dataDir, *workerID)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no ID map for worker %q: %w", *workerID, err)
	}
	st, err := store.Open(path, &store.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if err == nil {
		defer st.Close()
		return st.Export(stdout, *format)
	}
	if !errors.Is(err, store.ErrLocked) {
		return err
	}
	// The worker is running and holds the file: it exports its own map.
	opts, err := nf.Options()
	if err != nil {
		return err
	}
	nc, err := cli.ConnectNATS(nf.URL, "orgsync-worker-cli", opts)
	if err != nil {
		return fmt.Errorf("%s is in use by a running worker, and asking it failed: %w", path, err)
	}
	defer nc.Close()
	return replicate.ExportFromWorker(ctx, nc, *workerID, *format, stdout, *timeout)
}

func oneLine(s string, n int) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		out = append(out, r)
		if len(out) >= n {
			out = append(out, '…')
			break
		}
	}
	return string(out)
}
