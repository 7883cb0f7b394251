// Command fakeorg serves an in-memory Salesforce org (package
// orgsync/salesforce/fakeorg) over HTTP for the demo, tests and benchmarks.
//
//	fakeorg -addr 127.0.0.1:8081 -org-id 00D… -client-id demo -client-secret demo-secret
//	        -username integration@example.com -jwt-cert FILE -external-id-field Source_Id__c
//	        -latency 0s -latency-per-record 0s -fail-rate 0 -lock-rate 0 -token-ttl 0 -daily-api-limit 100000
//	        -reject-name REGEX -pubsub-addr 127.0.0.1:0 -event-retention 72h -pubsub-tls-cert FILE -pubsub-tls-key FILE
//
// Every flag can also be set through ORGSYNC_ + its name in upper snake case
// (-fail-rate ↔ ORGSYNC_FAIL_RATE); the command line wins. Once it serves it
// prints "fakeorg listening on http://HOST:PORT" on standard output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"orgsync/internal/cli"
	"orgsync/salesforce/fakeorg"
)

// shutdownGrace bounds the wait for in-flight requests at shutdown.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command: it serves until ctx is done and returns the exit
// code (2 for bad flags, 1 for a failure to serve).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fakeorg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen `address` (host:port; port 0 picks a free one)")
	var cfg fakeorg.Config
	fs.StringVar(&cfg.OrgID, "org-id", "", "Organization `ID` (00D…, 15 or 18 characters; random when empty)")
	fs.StringVar(&cfg.ClientID, "client-id", fakeorg.DefaultClientID, "connected app consumer key")
	fs.StringVar(&cfg.ClientSecret, "client-secret", fakeorg.DefaultClientSecret, "connected app consumer secret")
	fs.StringVar(&cfg.Username, "username", fakeorg.DefaultUsername, "integration user's username (password and JWT bearer flows)")
	jwtCert := fs.String("jwt-cert", "", "PEM `file` with the certificate or public key that verifies JWT bearer assertions (JWT flow refused when empty)")
	fs.StringVar(&cfg.ExternalIDField, "external-id-field", fakeorg.DefaultExternalIDField, "custom external ID `field` on Account")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency added to every REST call")
	fs.DurationVar(&cfg.LatencyPerRecord, "latency-per-record", 0, "latency added to a call for each record it writes (collections, single-record and Apex REST writes)")
	fs.Float64Var(&cfg.FailRate, "fail-rate", 0, "probability (0..1) that a REST call fails with 503 SERVER_UNAVAILABLE")
	fs.Float64Var(&cfg.LockRate, "lock-rate", 0, "probability (0..1) that a record write fails with UNABLE_TO_LOCK_ROW")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", 0, "access token lifetime (0: never expire)")
	fs.IntVar(&cfg.DailyAPILimit, "daily-api-limit", fakeorg.DefaultDailyAPILimit, "daily API request allocation")
	fs.StringVar(&cfg.RejectName, "reject-name", "", "regular `expression`: a validation rule rejects Account names matching it")
	var ps pubsubFlags
	ps.register(fs)

	if err := cli.Parse(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "fakeorg:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fakeorg: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *jwtCert != "" {
		pemBytes, err := os.ReadFile(*jwtCert)
		if err != nil {
			fmt.Fprintln(stderr, "fakeorg: -jwt-cert:", err)
			return 2
		}
		if cfg.JWTPublicKey, err = fakeorg.ParsePublicKey(pemBytes); err != nil {
			fmt.Fprintf(stderr, "fakeorg: -jwt-cert %s: %v\n", *jwtCert, err)
			return 2
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = logger
	org, err := fakeorg.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "fakeorg:", err)
		return 1
	}
	bus, handler, err := ps.start(org, logger, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "fakeorg:", err)
		ln.Close()
		return 1
	}
	if bus != nil {
		defer bus.Stop()
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("fake org ready", "org_id", org.OrgID(), "client_id", cfg.ClientID,
		"username", cfg.Username, "external_id_field", org.ExternalIDField(), "jwt", cfg.JWTPublicKey != nil)
	fmt.Fprintf(stdout, "fakeorg listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		fmt.Fprintln(stderr, "fakeorg:", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintln(stderr, "fakeorg: shutdown:", err)
		return 1
	}
	logger.Info("fake org stopped")
	return 0
}
