// Command demo runs the whole of orgsync in one process on loopback, with
// no NATS server and no Salesforce org needed: an embedded JetStream server,
// a fake source and a fake target org, the producer and a pool of workers.
// It syncs -accounts Accounts, reports, replays the dead letters after
// lifting the target's validation rule, and checks that every Account is in
// the target exactly once (exit status 0 only then).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"orgsync/internal/cli"
	"orgsync/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("demo", stderr)
	accounts := fs.Int("accounts", 1000, "Accounts to create in the source org")
	workers := fs.Int("workers", 3, "worker instances")
	latency := fs.Duration("latency", 50*time.Millisecond, "latency the target org adds to every call")
	failRate := fs.Float64("fail-rate", 0.02, "share of target calls answered 503 SERVER_UNAVAILABLE")
	verbose := fs.Bool("v", false, "show the components' logs on stderr")
	capt := fs.String("capture", "poll", "how the producer captures: poll (SOQL) or cdc (Change Data Capture over the fake's Pub/Sub API)")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return cli.Exit(err, stderr, "demo", "demo")
	}
	if *accounts < 1 || *workers < 1 || *latency < 0 || *failRate < 0 || *failRate >= 1 || fs.NArg() > 0 ||
		(*capt != "poll" && *capt != "cdc") {
		return cli.Exit(cli.Usagef("want -accounts ≥ 1, -workers ≥ 1, -latency ≥ 0, 0 ≤ -fail-rate < 1, -capture poll|cdc, no arguments"), stderr, "demo", "demo")
	}
	var log *slog.Logger
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	_, err := demo.Run(ctx, demo.Config{
		Accounts: *accounts, Workers: *workers, Latency: *latency, FailRate: *failRate,
		Out: stdout, Logger: log, Capture: *capt,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "demo: interrupted; everything was shut down")
			return 130
		}
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}
