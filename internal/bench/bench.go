// Package bench measures the whole orgsync pipeline on loopback: an embedded
// JetStream server listening on 127.0.0.1 and the fake target org on a
// loopback HTTP server, both in this process, and the worker as a real
// process (`worker run`), so its peak memory is the kernel's figure.
//
// Each backlog scenario publishes N account events (created_at = publish
// time), starts the worker, waits until all N are in the target and the
// queue is drained, and stops it. It compares the seed's pattern (-mode
// apexrest: one Apex REST callout per record) with orgsync's upsert mode
// (sObject Collections upsert, ≤200 records per call) at several target
// latencies. A low-load scenario trickles events to measure the latency a
// lone record sees, and an optional memory scenario grows the backlog to
// show the worker's memory stays flat.
//
// cmd/bench is the command; README.md's Performance section has its figures.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"orgsync/replicate"
	"orgsync/salesforce/fakeorg"
)

// Config configures a run. Zero values mean the defaults of cmd/bench.
type Config struct {
	// WorkerBin is the worker binary; empty means build orgsync/cmd/worker
	// into Dir first (needs the go command and a checkout of the module).
	WorkerBin string
	// Dir holds the scenarios' JetStream stores, worker data and logs;
	// empty means a new temporary directory, removed at the end.
	Dir string

	Records     int             // backlog size (default 20000)
	ApexRecords int             // cap of the backlog in apexrest mode (default 2000)
	Latencies   []time.Duration // fake org latencies (default 0, 20ms, 150ms)
	// LatencyPerRecord is the fake org's latency per record written
	// (fakeorg -latency-per-record); 0 means none.
	LatencyPerRecord time.Duration
	// BulkDelay is how long the fake org processes a closed Bulk job
	// (fakeorg's bulk_processing_delay); 0 means none.
	BulkDelay   time.Duration
	Modes       []string      // worker modes (default apexrest, upsert, bulk)
	DurationCap time.Duration // per scenario (default 2m)

	// LowLoad runs the low-load scenario: one event every LowLoadEvery for
	// LowLoadFor (defaults 100ms, 10s) against upsert at LowLoadLatency
	// (default 20ms).
	LowLoad        bool
	LowLoadEvery   time.Duration
	LowLoadFor     time.Duration
	LowLoadLatency time.Duration

	// Memory runs the memory scenario: upsert at 0 ms with backlogs of 10k,
	// 100k and 1M events, those up to MemoryMax (default 100000).
	Memory    bool
	MemoryMax int

	// WorkerArgs are added to every `worker run` (e.g. -max-calls 32).
	WorkerArgs []string
	// Partitions is ORGSYNC's partition count (the stream is created with
	// it and the worker run with -partitions); 0 means the default (16).
	Partitions int

	// Processes runs nats-server and the fake org as processes of their
	// own (built from the module, see BuildBinaries) instead of in this
	// process, as a user runs them; the worker is a process either way.
	Processes bool

	// Command is the command line printed with the report.
	Command string
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

func (c *Config) setDefaults() {
	if c.Records == 0 {
		c.Records = 20000
	}
	if c.ApexRecords == 0 {
		c.ApexRecords = 2000
	}
	if c.Latencies == nil {
		c.Latencies = []time.Duration{0, 20 * time.Millisecond, 150 * time.Millisecond}
	}
	if c.Modes == nil {
		c.Modes = []string{string(replicate.ModeApexREST), string(replicate.ModeUpsert), ModeBulk}
	}
	if c.DurationCap == 0 {
		c.DurationCap = 2 * time.Minute
	}
	if c.LowLoadEvery == 0 {
		c.LowLoadEvery = 100 * time.Millisecond
	}
	if c.LowLoadFor == 0 {
		c.LowLoadFor = 10 * time.Second
	}
	if c.LowLoadLatency == 0 {
		c.LowLoadLatency = 20 * time.Millisecond
	}
	if c.MemoryMax == 0 {
		c.MemoryMax = 100_000
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Scenario is the result of one backlog scenario.
type Scenario struct {
	Mode    string
	Latency time.Duration
	Records int  // events published
	Written int  // records in the target at the end (update modes: records carrying the update)
	Capped  bool // stopped at -duration-cap before the backlog drained

	Drain      time.Duration // worker start → all records in the target and the queue drained
	FirstWrite time.Duration // worker start → first target write (CreatedDate; updates: LastModifiedDate)
	LastWrite  time.Duration // worker start → last target write

	APICalls   int // every authenticated call the worker made
	WriteCalls int // of which writes (upsert, update or Apex REST calls)
	// Routes splits APICalls by the fake org's route ("METHOD template",
	// fakeorg.Stats.ByRoute).
	Routes map[string]int
	// Subrequests counts the subrequests of the composite calls among them
	// by route (fakeorg.Stats.Subrequests).
	Subrequests map[string]int

	P50, P99, Max time.Duration // created_at → target CreatedDate (updates: changed_at → LastModifiedDate)

	// MeanCalls and PeakCalls are the calls in flight at the fake org
	// (mean while any was, and the highest).
	MeanCalls float64
	PeakCalls int

	Worker Usage
	// BenchCPU is the JetStream server's and the fake org's CPU during the
	// scenario, with the bench's own: this process, and in the
	// multi-process mode nats-server's and the fake org's processes too.
	BenchCPU  time.Duration
	Load1     float64 // load average when the scenario started
	Processes bool    // nats-server and the fake org ran as processes
}

// RecordsPerSec is Written over the drain time (from the worker's start).
func (s Scenario) RecordsPerSec() float64 {
	if s.Drain <= 0 {
		return 0
	}
	return float64(s.Written) / s.Drain.Seconds()
}

// WriteRate is Written over the time between the first and the last target
// write: the steady rate, without the process start and connection set-up.
func (s Scenario) WriteRate() float64 {
	d := s.LastWrite - s.FirstWrite
	if d <= 0 || s.Written < 2 {
		return 0
	}
	return float64(s.Written-1) / d.Seconds()
}

// CallsPerRecord is APICalls per written record.
func (s Scenario) CallsPerRecord() float64 {
	return float64(s.APICalls) / float64(max(s.Written, 1))
}

// RecordsPerAPICall is written records per counted API call (every
// authenticated call; OAuth token requests are not API calls).
func (s Scenario) RecordsPerAPICall() float64 {
	return float64(s.Written) / float64(max(s.APICalls, 1))
}

// RecordsPerWrite is written records per write call.
func (s Scenario) RecordsPerWrite() float64 {
	return float64(s.Written) / float64(max(s.WriteCalls, 1))
}

// Usage is what the worker process used.
type Usage struct {
	PeakRSSKB  int64         // VmHWM / rusage maxrss, KiB
	PeakAnonKB int64         // highest RssAnon seen (heap and stacks; excludes bbolt's mmap)
	LastFileKB int64         // RssFile at the last sample (binary and bbolt's mmap)
	CPU        time.Duration // user + system
}

// LowLoad is the result of the low-load scenario.
type LowLoad struct {
	Events        int
	Every, For    time.Duration
	Latency       time.Duration // fake org latency
	Linger        time.Duration // the worker's -linger
	P50, P99, Max time.Duration
	WriteCalls    int
	Load1         float64
}

// Bound is -linger plus one call at the fake org's latency.
func (l LowLoad) Bound() time.Duration { return l.Linger + l.Latency }

// Memory is one backlog of the memory scenario.
type Memory struct {
	Records int
	Publish time.Duration // publishing the backlog (async, acks awaited)
	Drain   time.Duration
	Worker  Usage
	Load1   float64
	Written int
	Capped  bool
}

// Report is a run's results.
type Report struct {
	Config    Config
	Scenarios []Scenario
	LowLoad   *LowLoad
	Memory    []Memory
	Started   time.Time
	Took      time.Duration
}

// Run runs the configured scenarios and returns the report. Scenarios run
// one after the other, each with a new JetStream store, fake org and worker.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if cfg.Records < 1 || cfg.ApexRecords < 1 {
		return nil, errors.New("bench: -records and -apex-records must be positive")
	}
	for _, m := range cfg.Modes {
		if m == ModeBulk || isUpdate(m) {
			continue
		}
		if _, err := replicate.ParseMode(m); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	rep := &Report{Config: cfg, Started: time.Now()}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "orgsync-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	bin := cfg.WorkerBin
	var bins *Binaries
	if cfg.Processes {
		b, err := BuildBinaries(ctx, dir)
		if err != nil {
			return nil, err
		}
		if bin == "" {
			bin = b.Worker
		}
		bins = &b
	}
	if bin == "" {
		var err error
		if bin, err = BuildWorker(ctx, dir); err != nil {
			return nil, err
		}
	}
	r := &runner{cfg: cfg, dir: dir, bin: bin, bins: bins}
	n := 0
	for _, lat := range cfg.Latencies {
		for _, mode := range cfg.Modes {
			n++
			recs := cfg.Records
			if mode == string(replicate.ModeApexREST) {
				recs = min(recs, cfg.ApexRecords)
			}
			fmt.Fprintf(cfg.Progress, "scenario %s at %v: %d records (load %.2f)…\n", mode, lat, recs, load1())
			s, err := r.backlog(ctx, filepath.Join(dir, fmt.Sprintf("s%d", n)), mode, lat, recs)
			if err != nil {
				return rep, fmt.Errorf("bench: %s at %v: %w", mode, lat, err)
			}
			fmt.Fprintf(cfg.Progress, "  %.0f records/s, %.3f calls/record, p50 %v p99 %v, worker peak %.1f MiB, calls in flight %.1f (peak %d)%s\n",
				s.RecordsPerSec(), s.CallsPerRecord(), ms(s.P50), ms(s.P99), mib(s.Worker.PeakRSSKB), s.MeanCalls, s.PeakCalls, cappedNote(s.Capped))
			rep.Scenarios = append(rep.Scenarios, s)
		}
	}
	if cfg.LowLoad {
		fmt.Fprintf(cfg.Progress, "low load: one event every %v for %v, upsert at %v (load %.2f)…\n",
			cfg.LowLoadEvery, cfg.LowLoadFor, cfg.LowLoadLatency, load1())
		l, err := r.lowLoad(ctx, filepath.Join(dir, "lowload"))
		if err != nil {
			return rep, fmt.Errorf("bench: low load: %w", err)
		}
		fmt.Fprintf(cfg.Progress, "  p50 %v p99 %v max %v (linger + one call: %v)\n", ms(l.P50), ms(l.P99), ms(l.Max), l.Bound())
		rep.LowLoad = &l
	}
	if cfg.Memory {
		for i, size := range []int{10_000, 100_000, 1_000_000} {
			if size > cfg.MemoryMax {
				break
			}
			fmt.Fprintf(cfg.Progress, "memory: backlog of %d events, upsert at 0 ms (load %.2f)…\n", size, load1())
			m, err := r.memory(ctx, filepath.Join(dir, fmt.Sprintf("m%d", i)), size)
			if err != nil {
				return rep, fmt.Errorf("bench: memory %d: %w", size, err)
			}
			fmt.Fprintf(cfg.Progress, "  published in %v, drained in %v, worker VmHWM %.1f MiB (anon %.1f MiB)%s\n",
				m.Publish.Round(time.Millisecond), m.Drain.Round(time.Millisecond), mib(m.Worker.PeakRSSKB), mib(m.Worker.PeakAnonKB), cappedNote(m.Capped))
			rep.Memory = append(rep.Memory, m)
		}
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

// BuildWorker builds orgsync/cmd/worker into dir and returns the binary's
// path. It runs the go command in the current directory, which must be
// inside the orgsync module.
func BuildWorker(ctx context.Context, dir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("bench: no go command to build the worker (give -worker-bin): %w", err)
	}
	bin := filepath.Join(dir, "worker")
	out, err := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "orgsync/cmd/worker").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bench: go build orgsync/cmd/worker: %w\n%s", err, out)
	}
	return bin, nil
}

type runner struct {
	cfg  Config
	dir  string
	bin  string
	bins *Binaries // the multi-process mode's binaries, or nil
}

// ModeBulk is the bench's name for upsert mode writing Bulk API 2.0 jobs
// from the first event on (-bulk-threshold 1); "upsert" is run with Bulk
// jobs off (-bulk-threshold 0), so each row measures one way of writing.
const ModeBulk = "bulk"

// The update modes measure account.updated events of records that are in
// the target already: a first, uncounted phase publishes N created events
// and lets a worker (upsert mode) write them; then N updated events (one
// per record, two fields changed) are published and a new worker process,
// whose calls, CPU and time are the row's figures, applies them as updates
// by target ID. In ModeUpdate the counted worker has the first worker's ID
// map (the records were created through orgsync, by this worker); in
// ModeUpdateUnmapped it starts with an empty one (another worker created
// them, or they predate orgsync), so it finds the target IDs by external
// ID with a query.
const (
	ModeUpdate         = "update"
	ModeUpdateUnmapped = "update-unmapped"
)

// isUpdate reports whether mode is one of the update modes.
func isUpdate(mode string) bool { return mode == ModeUpdate || mode == ModeUpdateUnmapped }

// writeRoutes are the fake org's routes of a mode's write calls.
func writeRoutes(mode string) []string {
	if mode == ModeBulk {
		return []string{"POST /jobs/ingest"}
	}
	if isUpdate(mode) {
		// Updates by ID; a record the target lacks would be upserted.
		return []string{"PATCH /composite/sobjects", "PATCH /composite/sobjects/Account/{field}", "POST /composite"}
	}
	switch replicate.Mode(mode) {
	case replicate.ModeApexREST:
		return []string{"POST /apexrest/arrify/v1/accounts"}
	case replicate.ModeCreate:
		return []string{"POST /composite/sobjects"}
	}
	return []string{"PATCH /composite/sobjects/Account/{field}", "POST /composite"}
}

// writeCalls counts a mode's write calls in the fake org's stats.
func writeCalls(mode string, st fakeorg.Stats) int {
	n := 0
	for _, r := range writeRoutes(mode) {
		n += st.ByRoute[r]
	}
	return n
}

func (r *runner) backlog(ctx context.Context, dir, mode string, latency time.Duration, n int) (Scenario, error) {
	s := Scenario{Mode: mode, Latency: latency, Records: n, Processes: r.bins != nil}
	e, err := newEnv(dir, latency, r.cfg, true, r.bins)
	if err != nil {
		return s, err
	}
	defer e.close()
	// Out of process the fake org answers each poll over HTTP, walking every
	// record: poll less often.
	every := 10 * time.Millisecond
	if r.bins != nil {
		every = 50 * time.Millisecond
	}
	if err := e.publishBacklog(ctx, n); err != nil {
		return s, err
	}
	dataDir := "worker"
	var before fakeorg.Stats // the first phase's calls, left out of the figures
	if isUpdate(mode) {
		if mode == ModeUpdateUnmapped {
			dataDir = "worker-created"
		}
		if before, err = r.createPhase(ctx, e, dataDir, n, every); err != nil {
			return s, fmt.Errorf("creating the records to update: %w", err)
		}
		if err := e.publishUpdates(ctx, n); err != nil {
			return s, err
		}
		dataDir = "worker"
	}
	s.Load1 = load1()
	cpu0 := selfCPU() + e.procsCPU()
	w, err := e.startWorker(r.bin, e.workerArgs(mode, dataDir, r.cfg.WorkerArgs))
	if err != nil {
		return s, err
	}
	done := e.hasRecords(n)
	if isUpdate(mode) {
		done = e.drained
	}
	ok, err := r.waitDrained(ctx, w, done, every)
	s.Drain = time.Since(w.start)
	s.Capped = !ok
	u, serr := w.stop()
	s.BenchCPU = selfCPU() + e.procsCPU() - cpu0
	s.Worker = u
	if err != nil {
		return s, err
	}
	if serr != nil {
		return s, serr
	}
	st, err := e.stats()
	if err != nil {
		return s, err
	}
	s.APICalls = st.APICalls - before.APICalls
	s.WriteCalls = writeCalls(mode, st) - writeCalls(mode, before)
	s.Routes = make(map[string]int)
	for route, c := range st.ByRoute {
		if d := c - before.ByRoute[route]; d > 0 {
			s.Routes[route] = d
		}
	}
	s.Subrequests = make(map[string]int)
	for route, c := range st.Subrequests {
		if d := c - before.Subrequests[route]; d > 0 {
			s.Subrequests[route] = d
		}
	}
	s.MeanCalls, s.PeakCalls = e.conc.mean()
	lat, first, last, written, err := e.latencies(ctx, isUpdate(mode))
	if err != nil {
		return s, err
	}
	s.Written = st.Records["Account"]
	if isUpdate(mode) {
		s.Written = written
		if dl, err := e.deadLetters(ctx); err != nil {
			return s, err
		} else if dl > 0 {
			return s, fmt.Errorf("%d events dead-lettered (log: %s)", dl, tail(w.logf.Name()))
		}
		if !s.Capped && written < n {
			return s, fmt.Errorf("the queue drained with %d of %d updates in the target (log: %s)", written, n, tail(w.logf.Name()))
		}
	}
	s.P50, s.P99, s.Max = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	if !first.IsZero() {
		s.FirstWrite, s.LastWrite = first.Sub(w.start), last.Sub(w.start)
	}
	return s, nil
}

// createPhase has a worker (upsert mode, its ID map in dataDir) write the
// n created events published, and returns the fake org's counters after
// it stopped.
func (r *runner) createPhase(ctx context.Context, e *env, dataDir string, n int, every time.Duration) (fakeorg.Stats, error) {
	w, err := e.startWorker(r.bin, e.workerArgs(string(replicate.ModeUpsert), dataDir, r.cfg.WorkerArgs))
	if err != nil {
		return fakeorg.Stats{}, err
	}
	ok, err := r.waitDrained(ctx, w, e.hasRecords(n), every)
	_, serr := w.stop()
	switch {
	case err != nil:
		return fakeorg.Stats{}, err
	case serr != nil:
		return fakeorg.Stats{}, serr
	case !ok:
		return fakeorg.Stats{}, fmt.Errorf("the %d records were not in the target within %v", n, r.cfg.DurationCap)
	}
	return e.stats()
}

// hasRecords is a waitDrained condition: at least n records in the target
// and the queue drained.
func (e *env) hasRecords(n int) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		st, err := e.stats()
		if err != nil || st.Records["Account"] < n {
			return false, err
		}
		return e.drained(ctx)
	}
}

// waitDrained polls until done (true), or the duration cap passes (false).
func (r *runner) waitDrained(ctx context.Context, w *worker, done func(context.Context) (bool, error), every time.Duration) (bool, error) {
	deadline := w.start.Add(r.cfg.DurationCap)
	for {
		w.sample()
		if err := w.exitedEarly(); err != nil {
			return false, err
		}
		ok, err := done(ctx)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(every):
		}
	}
}

// latencies joins the target's records to the published events by Name and
// returns, sorted, the time from each event (created_at, or changed_at of
// an update) to the record's CreatedDate (LastModifiedDate for updates),
// the first and last of those dates and the number of records joined: for
// updates only the records that carry the update.
func (e *env) latencies(ctx context.Context, updates bool) (lat []time.Duration, first, last time.Time, n int, err error) {
	recs, err := e.targetRecords(ctx)
	if err != nil {
		return nil, first, last, 0, err
	}
	for name, rec := range recs {
		at, ok := e.sent[name]
		if !ok {
			continue
		}
		d := rec.created
		if updates {
			if rec.phone != updatedPhone {
				continue
			}
			d = rec.modified
		}
		n++
		lat = append(lat, d.Sub(at))
		if first.IsZero() || d.Before(first) {
			first = d
		}
		if d.After(last) {
			last = d
		}
	}
	slices.Sort(lat)
	return lat, first, last, n, nil
}

// pct is the p-th percentile (nearest rank) of sorted values; 100 is the max.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted) + 99) / 100 // ceil(p/100 · n)
	return sorted[max(min(i, len(sorted))-1, 0)]
}

func (r *runner) lowLoad(ctx context.Context, dir string) (LowLoad, error) {
	l := LowLoad{Every: r.cfg.LowLoadEvery, For: r.cfg.LowLoadFor, Latency: r.cfg.LowLoadLatency,
		Linger: replicate.DefaultLinger}
	e, err := newEnv(dir, l.Latency, r.cfg, true, r.bins)
	if err != nil {
		return l, err
	}
	defer e.close()
	w, err := e.startWorker(r.bin, e.workerArgs(string(replicate.ModeUpsert), "worker", r.cfg.WorkerArgs))
	if err != nil {
		return l, err
	}
	defer func() { _, _ = w.stop() }()
	// A warm-up event: the worker has connected, created the consumer and
	// got its token once it is in the target. It is left out of the figures.
	if err := e.publishOne(ctx); err != nil {
		return l, err
	}
	if _, err := r.waitDrained(ctx, w, e.hasRecords(1), 10*time.Millisecond); err != nil {
		return l, err
	}
	st, err := e.stats()
	if err != nil {
		return l, err
	}
	warm := writeCalls(string(replicate.ModeUpsert), st)
	delete(e.sent, name(0))
	l.Load1 = load1()
	t := time.NewTicker(l.Every)
	end := time.Now().Add(l.For)
	for time.Now().Before(end) {
		if err := e.publishOne(ctx); err != nil {
			t.Stop()
			return l, err
		}
		l.Events++
		select {
		case <-ctx.Done():
			t.Stop()
			return l, ctx.Err()
		case <-t.C:
		}
	}
	t.Stop()
	w.start = time.Now() // the duration cap counts from here
	done, err := r.waitDrained(ctx, w, e.hasRecords(1+l.Events), 10*time.Millisecond)
	if err != nil {
		return l, err
	}
	if !done {
		return l, fmt.Errorf("the %d events did not reach the target within %v", l.Events, r.cfg.DurationCap)
	}
	if st, err = e.stats(); err != nil {
		return l, err
	}
	l.WriteCalls = writeCalls(string(replicate.ModeUpsert), st) - warm
	lat, _, _, _, err := e.latencies(ctx, false)
	if err != nil {
		return l, err
	}
	l.P50, l.P99, l.Max = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	return l, nil
}

func (r *runner) memory(ctx context.Context, dir string, n int) (Memory, error) {
	m := Memory{Records: n}
	e, err := newEnv(dir, 0, r.cfg, false, r.bins)
	if err != nil {
		return m, err
	}
	defer e.close()
	t0 := time.Now()
	if err := e.publishBacklog(ctx, n); err != nil {
		return m, err
	}
	m.Publish = time.Since(t0)
	m.Load1 = load1()
	w, err := e.startWorker(r.bin, e.workerArgs(string(replicate.ModeUpsert), "worker", r.cfg.WorkerArgs))
	if err != nil {
		return m, err
	}
	// Stats walks every record under the org's lock: poll gently.
	every := max(10*time.Millisecond, time.Duration(n/1000)*time.Millisecond/2)
	done, err := r.waitMemory(ctx, e, w, n, every)
	m.Drain = time.Since(w.start)
	m.Capped = !done
	u, serr := w.stop()
	m.Worker = u
	if err != nil {
		return m, err
	}
	if serr != nil {
		return m, serr
	}
	st, err := e.stats()
	if err != nil {
		return m, err
	}
	m.Written = st.Records["Account"]
	return m, nil
}

// waitMemory is waitDrained with the queue checked first (cheap at any
// size) and the target's count only once the queue is drained.
func (r *runner) waitMemory(ctx context.Context, e *env, w *worker, n int, every time.Duration) (bool, error) {
	deadline := w.start.Add(r.cfg.DurationCap)
	for {
		w.sample()
		if err := w.exitedEarly(); err != nil {
			return false, err
		}
		ok, err := e.drained(ctx)
		if err != nil {
			return false, err
		}
		if ok {
			st, err := e.stats()
			if err != nil {
				return false, err
			}
			if st.Records["Account"] >= n {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(every):
		}
	}
}

// load1 is the 1-minute load average (0 when unknown).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	_, _ = fmt.Sscanf(string(b), "%f", &l)
	return l
}

// selfCPU is this process's user + system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

func cappedNote(c bool) string {
	if c {
		return " (CAPPED: stopped at -duration-cap)"
	}
	return ""
}
