package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"orgsync/capture"
	"orgsync/event"
	"orgsync/internal/app"
	"orgsync/internal/cli"
	"orgsync/queue"
	"orgsync/salesforce"
)

const usage = `usage:
  producer poll     [-once] [flags]     capture new (-changes all: changed, deleted) Accounts by SOQL polling
  producer serve    [flags]             POST /v1/accounts endpoint for a bulk-safe Apex trigger
  producer publish  [-file F] [flags]   publish NDJSON Account records (stdin by default)
  producer cdc      [flags]             capture Account changes from Change Data Capture (Pub/Sub API)
Run "producer COMMAND -h" for a command's flags.
`

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	var err error
	switch cmd {
	case "poll":
		err = cmdPoll(ctx, args[1:], getenv, stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], getenv, stderr)
	case "publish":
		err = cmdPublish(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "cdc":
		err = cmdCDC(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "":
		fmt.Fprint(stderr, "producer: no command given\n"+usage)
		return 2
	default:
		fmt.Fprintf(stderr, "producer: unknown subcommand %q\n%s", cmd, usage)
		return 2
	}
	return cli.Exit(err, stderr, "producer", "producer "+cmd)
}

// captureFlags are the flags every capture path shares.
type captureFlags struct {
	fields    *string
	skipField *string
	logLevel  *string
}

func addCaptureFlags(fs *flag.FlagSet) captureFlags {
	return captureFlags{
		fields: fs.String("fields", "", "comma-separated allow-list of Account fields copied into events (default: "+
			strings.Join(event.DefaultFields, ",")+")"),
		skipField: fs.String("skip-field", capture.DefaultSkipField, "records with this field set are orgsync's own writes and are not captured (\"\": capture all)"),
		logLevel:  fs.String("log-level", "info", "debug, info, warn or error"),
	}
}

func (c captureFlags) parse() (event.Fields, error) {
	f, err := event.ParseFields(*c.fields)
	if err != nil {
		return f, cli.Usagef("%v", err)
	}
	if *c.skipField != "" && !cli.FieldName(*c.skipField) {
		return f, cli.Usagef("-skip-field %q is not a field name", *c.skipField)
	}
	return f, nil
}

func sourceOrgID(v string, required bool) (string, error) {
	if v == "" {
		if required {
			return "", cli.Usagef("-source-org-id is required (the source org's 00D… Organization ID; it is part of every event's dedup key)")
		}
		return "", nil
	}
	id, err := salesforce.NormalizeIDWithPrefix(v, salesforce.PrefixOrganization)
	if err != nil {
		return "", cli.Usagef("-source-org-id: %v", err)
	}
	return id, nil
}

// pollerOrgID is the optional -source-org-id of the commands that read the
// source org (poll, cdc): learnt from the token's identity when empty,
// except with a static token, which has no identity URL.
func pollerOrgID(org *cli.OrgFlags, srcOrg string) (string, error) {
	if org.AccessToken != "" && srcOrg == "" {
		return "", cli.Usagef("-source-access-token needs -source-org-id: a static token has no identity URL to learn the org from")
	}
	return sourceOrgID(srcOrg, false)
}

func cmdPoll(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("producer poll", stderr)
	nf := cli.AddStreamFlags(fs)
	org := cli.AddOrgFlags(fs, "source")
	cf := addCaptureFlags(fs)
	interval := fs.Duration("interval", capture.DefaultInterval, "pause between two polls")
	overlap := fs.Duration("overlap", capture.DefaultOverlap, "how far behind the checkpoint each poll reads again (rows committed late by long transactions)")
	pageLimit := fs.Int("page-limit", capture.DefaultPageLimit, "LIMIT of one keyset query (1..2000)")
	budget := fs.Float64("api-budget", capture.DefaultAPIBudget, "share of the source's daily API limit the poller may use before it holds back")
	rateLimit := fs.Float64("rate-limit", capture.DefaultRateLimit, "source calls per second (0: no cap)")
	srcOrg := fs.String("source-org-id", "", "the source org's ID, only needed when the token has no identity URL (-source-access-token)")
	dataDir := fs.String("data-dir", app.DefaultDataDir, "directory of the producer's checkpoint file (producer.db)")
	once := fs.Bool("once", false, "catch up and exit (backfill)")
	metricsAddr := fs.String("metrics-addr", "", "address for /metrics, /healthz and /readyz (none when empty)")
	changes := fs.String("changes", capture.ChangesCreated, "what to capture: created (new records, by CreatedDate) or all (creates, updates and deletes, by SystemModstamp and Get Deleted)")
	skipUser := fs.String("skip-user", "", "with -changes all: rows last modified by this user (the 005… ID orgsync writes the source with in a two-way setup) are not captured; replaces -skip-field")
	if err := cli.Parse(fs, args, getenv, "once"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("producer poll takes no arguments, got %q", fs.Args())
	}
	fields, err := cf.parse()
	if err != nil {
		return err
	}
	if err := cli.NotZero(fs, "interval", "page-limit", "api-budget", "stream-replicas"); err != nil {
		return err
	}
	switch {
	case *changes != capture.ChangesCreated && *changes != capture.ChangesAll:
		return cli.Usagef("-changes %q: want %s or %s", *changes, capture.ChangesCreated, capture.ChangesAll)
	case *skipUser != "" && *changes != capture.ChangesAll:
		return cli.Usagef("-skip-user needs -changes all (with -changes created, -skip-field drops orgsync's own writes)")
	case *overlap < 0:
		return cli.Usagef("-overlap %v: must not be negative (0: no overlap)", *overlap)
	case !(*rateLimit >= 0):
		return cli.Usagef("-rate-limit %v: must be 0 (no cap) or a positive number of calls per second", *rateLimit)
	}
	orgID, err := pollerOrgID(org, *srcOrg)
	if err != nil {
		return err
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return err
	}
	log, err := cli.Logger(stderr, *cf.logLevel)
	if err != nil {
		return err
	}
	// On the command line 0 turns overlap and rate limit off; in the config
	// struct zero means the default and negative means none.
	ov, rl := *overlap, *rateLimit
	if ov == 0 {
		ov = -1
	}
	if rl == 0 {
		rl = -1
	}
	cfg := app.PollerConfig{
		NATS:       app.NATSConfig{URL: nf.URL, Options: natsOpts},
		Queue:      queue.Config{Replicas: nf.StreamReplicas},
		APIVersion: org.APIVersion,
		Poll: capture.PollerConfig{
			SourceOrg: orgID, Fields: fields, Interval: *interval, Overlap: ov, SkipField: *cf.skipField,
			PageLimit: *pageLimit, APIBudget: *budget, RateLimit: rl, Changes: *changes, SkipUser: *skipUser,
		},
		DataDir:     *dataDir,
		Once:        *once,
		MetricsAddr: *metricsAddr,
		Logger:      log,
	}
	// Every value is checked before anything is opened or created.
	if err := cfg.Validate(); err != nil {
		return cli.Usagef("%v", strings.TrimPrefix(err.Error(), app.ErrInvalidConfig.Error()+": "))
	}
	if cfg.Source, err = org.AuthConfig(); err != nil {
		return err
	}
	st, err := app.RunPoller(ctx, cfg)
	if *once {
		printStats(stdout, st)
	}
	return err
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := cli.NewFlagSet("producer serve", stderr)
	nf := cli.AddStreamFlags(fs)
	cf := addCaptureFlags(fs)
	listen := fs.String("listen", app.DefaultListen, "address of the ingest endpoint (POST /v1/accounts, /healthz, /readyz, /metrics)")
	token := fs.String("ingest-token", "", "bearer token the Apex caller must send (prefer ORGSYNC_INGEST_TOKEN)")
	srcOrg := fs.String("source-org-id", "", "the source org's 00D… ID (part of every event's dedup key)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate file; with -tls-key the endpoint serves HTTPS")
	tlsKey := fs.String("tls-key", "", "PEM private key file of -tls-cert")
	metricsAddr := fs.String("metrics-addr", "", "a separate address for /metrics, /healthz and /readyz (none when empty)")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("producer serve takes no arguments, got %q", fs.Args())
	}
	fields, err := cf.parse()
	if err != nil {
		return err
	}
	orgID, err := sourceOrgID(*srcOrg, true)
	if err != nil {
		return err
	}
	if *token == "" {
		return cli.Usagef("-ingest-token (or ORGSYNC_INGEST_TOKEN) is required")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return cli.Usagef("-tls-cert and -tls-key go together")
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return err
	}
	log, err := cli.Logger(stderr, *cf.logLevel)
	if err != nil {
		return err
	}
	return app.RunServe(ctx, app.ServeConfig{
		NATS:        app.NATSConfig{URL: nf.URL, Options: natsOpts},
		Queue:       queue.Config{Replicas: nf.StreamReplicas},
		Ingest:      capture.IngestConfig{SourceOrg: orgID, Token: *token, Fields: fields, SkipField: *cf.skipField},
		Listen:      *listen,
		TLSCert:     *tlsCert,
		TLSKey:      *tlsKey,
		MetricsAddr: *metricsAddr,
		Logger:      log,
	})
}

func cmdPublish(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("producer publish", stderr)
	nf := cli.AddStreamFlags(fs)
	cf := addCaptureFlags(fs)
	srcOrg := fs.String("source-org-id", "", "the source org's 00D… ID (part of every event's dedup key)")
	file := fs.String("file", "", "NDJSON file, one Account record per line (default: stdin)")
	if err := cli.Parse(fs, args, getenv, "file"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("producer publish takes no arguments, got %q", fs.Args())
	}
	fields, err := cf.parse()
	if err != nil {
		return err
	}
	orgID, err := sourceOrgID(*srcOrg, true)
	if err != nil {
		return err
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return err
	}
	log, err := cli.Logger(stderr, *cf.logLevel)
	if err != nil {
		return err
	}
	in := stdin
	if *file != "" && *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	st, err := app.RunPublish(ctx, app.PublishConfig{
		NATS:   app.NATSConfig{URL: nf.URL, Options: natsOpts},
		Queue:  queue.Config{Replicas: nf.StreamReplicas},
		NDJSON: capture.NDJSONConfig{SourceOrg: orgID, Fields: fields, SkipField: *cf.skipField},
		Input:  in,
		Logger: log,
	})
	printStats(stdout, st)
	var bad *capture.BadLinesError
	if errors.As(err, &bad) {
		for _, l := range bad.Lines {
			fmt.Fprintf(stderr, "producer: %s\n", l)
		}
		return fmt.Errorf("%d bad line(s); every good line was published", len(bad.Lines))
	}
	return err
}

func printStats(w io.Writer, st capture.Stats) {
	fmt.Fprintf(w, "read %d, published %d, duplicates %d, skipped %d, bad %d\n",
		st.Read, st.Published, st.Duplicates, st.Skipped, st.Bad)
}
