package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"orgsync/event"
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
  worker mapping export  [-data-dir DIR] [-worker-id ID] [-format csv|json] [flags]
  worker reconcile       [-repair [-dry-run]] [-json] [flags]   compare source and target
  worker migrate         [-partitions 16] [-dry-run] [flags]    move ORGSYNC to the partitioned layout
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
	name := "worker " + cmd
	switch {
	case cmd == "run":
		err = cmdRun(ctx, args[1:], getenv, stderr)
	case cmd == "reconcile":
		return cmdReconcile(ctx, args[1:], getenv, stdout, stderr)
	case cmd == "migrate":
		err = cmdMigrate(ctx, args[1:], getenv, stdout, stderr)
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
		return unknownCommand(stderr, cmd, sub)
	}
	if cmd != "run" && cmd != "migrate" {
		name += " " + sub
	}
	return cli.Exit(err, stderr, "worker", name)
}

// unknownCommand names what was not understood and lists the commands.
func unknownCommand(stderr io.Writer, cmd, sub string) int {
	switch {
	case cmd == "":
		fmt.Fprintf(stderr, "worker: no command given\n")
	case (cmd == "dlq" || cmd == "mapping") && sub == "":
		fmt.Fprintf(stderr, "worker: %q needs a subcommand\n", cmd)
	case cmd == "dlq" || cmd == "mapping":
		fmt.Fprintf(stderr, "worker: unknown subcommand %q of %q\n", sub, cmd)
	default:
		fmt.Fprintf(stderr, "worker: unknown subcommand %q\n", cmd)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// natsFlags adds -nats-url and the NATS security flags (no -stream-replicas:
// one-shot commands create no streams of their own choosing).
func natsFlags(fs *flag.FlagSet) *cli.NATSFlags { return cli.AddNATSFlags(fs) }

func natsConfig(nf *cli.NATSFlags) (app.NATSConfig, error) {
	opts, err := nf.Options()
	if err != nil {
		return app.NATSConfig{}, err
	}
	return app.NATSConfig{URL: nf.URL, Options: opts}, nil
}

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker run", stderr)
	nf := cli.AddStreamFlags(fs)
	org := cli.AddOrgFlags(fs, "target")
	src := cli.AddOrgFlags(fs, "source")
	fields := fs.String("fields", strings.Join(event.DefaultFields, ","), "comma-separated Account fields read from the source (with -source-…), as the producer's -fields")
	deletes := fs.String("deletes", string(replicate.DeletesDelete), "what an account.deleted event does: delete (the target record, and what Salesforce cascades) or off")
	partitions := fs.Int("partitions", queue.DefaultPartitions, "partitions of ORGSYNC, one consumer each (when this worker creates the stream)")
	leaseTTL := fs.Duration("lease-ttl", queue.DefaultLeaseTTL, "how long a partition's lease outlives its worker's last renewal")
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
	dataDir := fs.String("data-dir", app.DefaultDataDir, "directory of the worker's ID map")
	metricsAddr := fs.String("metrics-addr", "", "address for /metrics, /healthz and /readyz (none when empty)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("worker run takes no arguments, got %q", fs.Args())
	}
	if err := cli.NotZero(fs, "batch", "linger", "concurrency", "ack-wait", "max-deliver", "max-ack-pending",
		"api-budget", "bulk-batch", "max-calls", "stream-replicas", "partitions", "lease-ttl"); err != nil {
		return err
	}
	copied, err := event.ParseFields(*fields)
	if err != nil {
		return cli.Usagef("%v", strings.TrimPrefix(err.Error(), "event: "))
	}
	delMode, err := replicate.ParseDeleteMode(*deletes)
	if err != nil {
		return cli.Usagef("-deletes %q: want delete or off", *deletes)
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return err
	}
	log, err := cli.Logger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg := app.WorkerConfig{
		NATS:       app.NATSConfig{URL: nf.URL, Options: natsOpts},
		APIVersion: org.APIVersion,
		Queue: queue.Config{AckWait: *ackWait, MaxAckPending: *maxAckPending, Replicas: nf.StreamReplicas,
			Partitions: *partitions, LeaseTTL: *leaseTTL},
		Engine: replicate.Config{
			Mode: replicate.Mode(*mode), ExternalIDField: *ext, Batch: *batch, Linger: *linger, Concurrency: *conc,
			MaxDeliver: *maxDeliver, APIBudget: *budget, RateLimit: *rateLimit, MaxCalls: *maxCalls,
			WorkerID: *workerID, BulkThreshold: bulkSetting(*bulkThreshold), BulkBatch: *bulkBatch,
			Composite: *composite, Fields: copied, Deletes: delMode,
		},
		DataDir:     *dataDir,
		MetricsAddr: *metricsAddr,
		Logger:      log,
	}
	// Every value is checked before anything is opened or created.
	if err := cfg.Validate(); err != nil {
		return cli.Usagef("%v", strings.TrimPrefix(err.Error(), app.ErrInvalidConfig.Error()+": "))
	}
	if cfg.Target, err = org.AuthConfig(); err != nil {
		return err
	}
	if src.Configured() {
		sc, err := src.AuthConfig()
		if err != nil {
			return err
		}
		cfg.Source = &sc
	}
	return app.RunWorker(ctx, cfg)
}

// bulkSetting maps -bulk-threshold 0 ("never") to the engine's negative.
func bulkSetting(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// openQueue connects to NATS and opens the queue for an operator command;
// an unreachable server is an error naming its URL.
func openQueue(ctx context.Context, nf *cli.NATSFlags) (*queue.Queue, func(), error) {
	nc, err := natsConfig(nf)
	if err != nil {
		return nil, nil, err
	}
	return app.OpenQueue(ctx, nc, "orgsync-worker-cli")
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
	p := newEntryPrinter(stdout, *asJSON)
	err = q.ScanDLQ(ctx, p.print)
	if perr := p.done(err == nil); err == nil {
		err = perr
	}
	return err
}

// entryPrinter writes dead letters as they stream in: one JSON object a line,
// or a table with fixed-width columns (a tabwriter would hold every row until
// the end) and a count line.
type entryPrinter struct {
	w      *bufio.Writer
	json   *json.Encoder
	header bool
	n      int
}

func newEntryPrinter(w io.Writer, asJSON bool) *entryPrinter {
	p := &entryPrinter{w: bufio.NewWriter(w)}
	if asJSON {
		p.json = json.NewEncoder(p.w)
	}
	return p
}

// Table column widths: a DLQ sequence, an 18-character ID, an error code.
const entryTableFormat = "%-8s  %-18s  %-32s  %-8s  %-20s  %s\n"

func (p *entryPrinter) print(e queue.Entry) error {
	p.n++
	if p.json != nil {
		return p.json.Encode(e)
	}
	p.heading()
	_, err := fmt.Fprintf(p.w, entryTableFormat, strconv.FormatUint(e.Seq, 10), e.SourceID, e.Code,
		strconv.Itoa(e.Attempts), e.FailedAt.UTC().Format(time.RFC3339), oneLine(e.Message, 120))
	return err
}

// heading writes the table's column names once.
func (p *entryPrinter) heading() {
	if !p.header {
		p.header = true
		fmt.Fprintf(p.w, entryTableFormat, "SEQ", "SOURCE_ID", "CODE", "ATTEMPTS", "FAILED_AT", "MESSAGE")
	}
}

// done flushes what was printed; when the listing is complete, a table ends
// with its count line.
func (p *entryPrinter) done(complete bool) error {
	if p.json == nil && complete {
		p.heading()
		fmt.Fprintf(p.w, "%d dead letters\n", p.n)
	}
	return p.w.Flush()
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
	opt := queue.ReplayOptions{Code: *code, DryRun: *dryRun}
	if *sourceID != "" {
		id, err := salesforce.NormalizeID(*sourceID)
		if err != nil {
			return cli.Usagef("-source-id: %v", err)
		}
		// A dead letter may name its record in the 15-character form.
		opt.Match = func(e queue.Entry) bool {
			n, err := salesforce.NormalizeID(strings.TrimSpace(e.SourceID))
			return err == nil && n == id
		}
	}
	q, done, err := openQueue(ctx, nf)
	if err != nil {
		return err
	}
	defer done()
	if *dryRun {
		p := newEntryPrinter(stdout, false)
		opt.Each = p.print
		res, err := q.Replay(ctx, opt)
		if perr := p.done(err == nil); err == nil {
			err = perr
		}
		fmt.Fprintf(stdout, "dry run: %d dead letters would be replayed\n", res.Matched)
		return err
	}
	res, err := q.Replay(ctx, opt)
	fmt.Fprintf(stdout, "replayed %d of %d matching dead letters\n", res.Replayed, res.Matched)
	return err
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("worker migrate", stderr)
	nf := natsFlags(fs)
	partitions := fs.Int("partitions", queue.DefaultPartitions, "partitions of ORGSYNC when it has none yet (an existing transform is kept)")
	dryRun := fs.Bool("dry-run", false, "say what would be done, change nothing")
	if err := cli.Parse(fs, args, getenv, "dry-run"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("worker migrate takes no arguments, got %q", fs.Args())
	}
	if *partitions < 1 || *partitions > queue.MaxPartitions {
		return cli.Usagef("-partitions %d: want 1 to %d", *partitions, queue.MaxPartitions)
	}
	ncfg, err := natsConfig(nf)
	if err != nil {
		return err
	}
	q, done, err := app.OpenQueueConfig(ctx, ncfg, "orgsync-worker-cli", queue.Config{Partitions: *partitions})
	if err != nil {
		return err
	}
	defer done()
	r, err := q.Migrate(ctx, queue.MigrateConfig{Partitions: *partitions, DryRun: *dryRun})
	if err != nil {
		if r.Moved > 0 {
			fmt.Fprintln(stdout, r) // what was done before the failure
		}
		return err
	}
	fmt.Fprintln(stdout, r)
	return nil
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
	ncfg, err := natsConfig(nf)
	if err != nil {
		return err
	}
	var target *salesforce.Client
	if org.Configured() {
		auth, err := org.AuthConfig()
		if err != nil {
			return err
		}
		if _, target, err = app.NewOrgClient(ctx, auth, org.APIVersion, nil, nil); err != nil {
			return err
		}
	}
	ncfg.FailFast = true
	nc, closeNC, err := app.ConnectNATS(ctx, ncfg, "orgsync-worker-cli", nil)
	if err != nil {
		return err
	}
	defer closeNC()
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
	dataDir := fs.String("data-dir", app.DefaultDataDir, "directory of the worker's ID map")
	workerID := fs.String("worker-id", "", "whose ID map to export (default: the only worker-<id>.db in -data-dir)")
	format := fs.String("format", store.FormatCSV, "csv or json")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for a running worker's answer")
	if err := cli.Parse(fs, args, getenv, "format"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("worker mapping export takes no arguments, got %q", fs.Args())
	}
	if *format != store.FormatCSV && *format != store.FormatJSON {
		return cli.Usagef("-format %q: want csv or json", *format)
	}
	ncfg, err := natsConfig(nf)
	if err != nil {
		return err
	}
	id := *workerID
	if id == "" {
		if id, err = app.FindWorkerID(*dataDir); err != nil {
			if errors.Is(err, app.ErrInvalidConfig) {
				return cli.Usagef("%v", strings.TrimPrefix(err.Error(), app.ErrInvalidConfig.Error()+": "))
			}
			return err
		}
	}
	path := app.StorePath(*dataDir, id)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no ID map for worker %q: %w", id, err)
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
	ncfg.FailFast = true
	nc, closeNC, err := app.ConnectNATS(ctx, ncfg, "orgsync-worker-cli", nil)
	if err != nil {
		return fmt.Errorf("%s is in use by a running worker, and asking it failed: %w", path, err)
	}
	defer closeNC()
	return queue.ExportFromWorker(ctx, nc, id, *format, stdout, *timeout)
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
