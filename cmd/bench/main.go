// Command bench measures the whole pipeline on loopback: an embedded
// JetStream server and the fake target org in this process, the worker as a
// real process. It compares the seed's one-callout-per-record pattern
// (-mode apexrest) with orgsync's upsert mode at several target latencies
// and prints a Markdown report. Run it from the module's directory:
//
//	go run ./cmd/bench                      # the table in README's Performance section
//	go run ./cmd/bench -memory -memory-max 1000000
//	go run ./cmd/bench -processes           # nats-server, fake org and worker as separate processes
//
// See internal/bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"orgsync/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.IntVar(&cfg.Records, "records", 20000, "backlog size of each scenario")
	fs.IntVar(&cfg.ApexRecords, "apex-records", 2000, "backlog size cap in apexrest mode (one call per record)")
	fs.DurationVar(&cfg.LatencyPerRecord, "latency-per-record", 0, "the fake org's latency per record written (fakeorg -latency-per-record)")
	fs.DurationVar(&cfg.BulkDelay, "bulk-delay", 0, "how long the fake org processes a closed Bulk job (fakeorg's bulk_processing_delay)")
	latencies := fs.String("latencies", "0ms,20ms,150ms", "fake org latencies, comma-separated")
	modes := fs.String("modes", "apexrest,upsert,bulk", "worker modes, comma-separated: apexrest (the seed's pattern), upsert (collections calls), bulk (upsert with Bulk API 2.0 jobs), update (account.updated events of records the worker created), update-unmapped (the same, the worker's ID map empty)")
	fs.DurationVar(&cfg.DurationCap, "duration-cap", 2*time.Minute, "longest a scenario may run")
	lowLoad := fs.Bool("low-load", true, "run the low-load scenario (one event every 100 ms for 10 s, upsert at 20 ms)")
	fs.BoolVar(&cfg.Memory, "memory", false, "run the memory scenario (backlogs of 10k, 100k, 1M up to -memory-max)")
	fs.IntVar(&cfg.MemoryMax, "memory-max", 100000, "largest backlog of the memory scenario")
	fs.StringVar(&cfg.WorkerBin, "worker-bin", "", "worker binary (default: go build orgsync/cmd/worker)")
	fs.StringVar(&cfg.Dir, "dir", "", "working directory (default: a temporary one, removed at the end)")
	fs.BoolVar(&cfg.Processes, "processes", false, "multi-process mode: run nats-server and the fake org as processes of their own (built from the module), as a user runs them")
	fs.IntVar(&cfg.Partitions, "partitions", 0, "partitions of ORGSYNC (the stream is created with them, the worker run with -partitions); 0: the worker's default")
	workerArgs := fs.String("worker-args", "", "extra `worker run` flags, space-separated (e.g. \"-max-calls 32\")")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the embedded JetStream server and the fake org; not the worker) to `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: no arguments expected, got %q\n", fs.Args())
		return 2
	}
	var err error
	if cfg.Latencies, err = parseDurations(*latencies); err != nil {
		fmt.Fprintf(stderr, "bench: -latencies: %v\n", err)
		return 2
	}
	cfg.Modes = splitList(*modes)
	cfg.LowLoad = *lowLoad
	cfg.WorkerArgs = strings.Fields(*workerArgs)
	if cfg.Records < 1 || cfg.ApexRecords < 1 || cfg.MemoryMax < 1 || len(cfg.Modes) == 0 || cfg.LatencyPerRecord < 0 || cfg.BulkDelay < 0 || cfg.Partitions < 0 {
		fmt.Fprintln(stderr, "bench: -records, -apex-records and -memory-max must be positive, -modes not empty, -latency-per-record, -bulk-delay and -partitions not negative")
		return 2
	}
	cfg.Command = command(args)
	if !*quiet {
		cfg.Progress = stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "bench: -cpuprofile: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "bench: -cpuprofile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil && (len(rep.Scenarios) > 0 || rep.LowLoad != nil || len(rep.Memory) > 0) {
		rep.WriteMarkdown(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseDurations(s string) ([]time.Duration, error) {
	out := []time.Duration{}
	for _, f := range splitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, fmt.Errorf("negative latency %v", d)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no latency")
	}
	return out, nil
}

// command is the command line that reproduces the run.
func command(args []string) string {
	parts := []string{"go", "run", "./cmd/bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\*?;&|<>()") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
