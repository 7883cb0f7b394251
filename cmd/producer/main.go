// Command producer captures Accounts created in the source org and publishes
// them to JetStream: by SOQL polling (poll), through an HTTP endpoint for an
// Apex trigger (serve) or from an NDJSON file (publish). See `producer -h`
// and README.md.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return dispatch(ctx, args, getenv, stdin, stdout, stderr)
}
