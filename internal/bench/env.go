package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"orgsync/replicate"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/event"
	"orgsync/internal/natsembed"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// env is one scenario's world: an embedded JetStream server listening on
// 127.0.0.1, the fake target org on a loopback HTTP server, and the queue
// handle the bench publishes and watches the backlog through.
type env struct {
	dir  string
	ns   *natsembed.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	q    *queue.Queue
	org  *fakeorg.Org
	http *http.Server
	url  string // the fake org's base URL
	conc concurrency

	// natsURL is the JetStream server's client URL; procs are nats-server
	// and the fake org in the multi-process mode (ns and org are nil then).
	natsURL string
	procs   []*proc

	srcOrg string
	// sent holds the time of each record's last published event (a created
	// event's created_at, an updated event's changed_at) by account Name
	// (the join key: apexrest mode sends Name only, so Source_Id__c is not
	// there).
	sent       map[string]time.Time
	keep       bool // remember the times (off for the memory scenarios)
	next       int  // the next record number
	partitions int  // ORGSYNC's partitions; 0: the default
}

// benchDailyLimit is the fake org's daily API allocation: large, so the
// worker's -api-budget never pauses a scenario.
const benchDailyLimit = 100_000_000

func newEnv(dir string, latency time.Duration, cfg Config, keep bool, bins *Binaries) (*env, error) {
	perRecord, bulkDelay := cfg.LatencyPerRecord, cfg.BulkDelay
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &env{dir: dir, keep: keep, sent: make(map[string]time.Time), partitions: cfg.Partitions,
		srcOrg: salesforce.ID18("00D000000BENCH1")}
	var err error
	if bins != nil {
		err = e.startProcs(bins, latency, perRecord, bulkDelay)
	} else {
		err = e.startInProcess(latency, perRecord, bulkDelay)
	}
	if err != nil {
		e.close()
		return nil, err
	}
	e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		e.close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The streams as the worker would create them (the worker then creates
	// the consumer with its own flags).
	e.q, err = queue.New(ctx, e.js, queue.Config{Partitions: cfg.Partitions})
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// startInProcess starts the embedded JetStream server and the fake org in
// this process.
func (e *env) startInProcess(latency, perRecord, bulkDelay time.Duration) error {
	var err error
	e.ns, err = natsembed.Run(natsembed.Config{Dir: filepath.Join(e.dir, "jetstream"), Listen: true})
	if err != nil {
		return err
	}
	e.natsURL = e.ns.ClientURL()
	if e.nc, err = e.ns.Connect(); err != nil {
		return err
	}
	e.org, err = fakeorg.New(fakeorg.Config{Latency: latency, LatencyPerRecord: perRecord,
		BulkProcessingDelay: bulkDelay, DailyAPILimit: benchDailyLimit, Seed: 1})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.http = &http.Server{Handler: e.conc.wrap(e.org), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.http.Serve(ln) }()
	e.url = "http://" + ln.Addr().String()
	return nil
}

func (e *env) close() {
	if e.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.http.Shutdown(ctx)
		cancel()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
	}
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
	_ = os.RemoveAll(e.dir)
}

// name is the Account Name of record i: unique, so it joins an event to
// its target record in every mode.
func name(i int) string { return fmt.Sprintf("Bench %09d", i) }

// sourceID is the source ID of record i.
func sourceID(i int) string { return salesforce.ID18(fmt.Sprintf("001BEN%09d", i)) }

// createdEvent is record i's account.created event.
func (e *env) createdEvent(i int, now time.Time) event.Event {
	return event.Event{
		V: event.Version, Type: event.TypeAccountCreated, SourceOrg: e.srcOrg,
		SourceID:  sourceID(i),
		CreatedAt: now.UTC(),
		Fields: map[string]any{
			"Name": name(i), "Industry": "Technology", "Phone": "+1 415 555 0100",
			"BillingCity": "San Francisco", "BillingCountry": "United States",
		},
	}
}

// updatedPhone is the Phone every updated event sets: a record holding it
// has had its update applied.
const updatedPhone = "+1 415 555 0199"

// updatedEvent is an account.updated event of record i (created before by
// its created event): two of its fields changed, as a user's edit of a
// record in the source.
func (e *env) updatedEvent(i int, now time.Time) event.Event {
	now = now.UTC()
	return event.Event{
		V: event.Version, Type: event.TypeAccountUpdated, SourceOrg: e.srcOrg,
		SourceID:  sourceID(i),
		ChangedAt: now,
		ChangeKey: now.Format("20060102T150405.000000000Z") + ":bench",
		Fields:    map[string]any{"Phone": updatedPhone, "Industry": "Manufacturing"},
	}
}

// subject is the subject an event is published on
// (orgsync.account.<change>.<source_id>).
func subject(ev event.Event) string { return queue.AccountSubject(ev.Change(), ev.SourceID) }

// publishBacklog publishes created events of n new records.
func (e *env) publishBacklog(ctx context.Context, n int) error {
	first := e.next
	e.next += n
	return e.publishAll(ctx, first, n, e.createdEvent)
}

// publishUpdates publishes one updated event for each of the first n
// records (published before as created events).
func (e *env) publishUpdates(ctx context.Context, n int) error {
	return e.publishAll(ctx, 0, min(n, e.next), e.updatedEvent)
}

// publishAll publishes the events of records first … first+n-1
// asynchronously (dedup IDs set), each made by mk at the time it is
// published, and waits for every ack.
func (e *env) publishAll(ctx context.Context, first, n int, mk func(i int, now time.Time) event.Event) error {
	var failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	futures := make([]jetstream.PubAckFuture, 0, 8192)
	check := func() {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
		futures = futures[:0]
	}
	for i := first; i < first+n; i++ {
		ev := mk(i, time.Now())
		body, err := ev.Encode()
		if err != nil {
			return err
		}
		if e.keep {
			e.sent[name(i)] = ev.When()
		}
		f, err := e.js.PublishAsync(subject(ev), body,
			jetstream.WithMsgID(ev.MsgID()), jetstream.WithExpectStream(queue.Stream))
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, f)
		if len(futures) == cap(futures) {
			check()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	check()
	if failed.Load() > 0 {
		return fmt.Errorf("publish: %d of %d events not acknowledged: %v", failed.Load(), n, firstErr)
	}
	return nil
}

// publishOne publishes one created event synchronously.
func (e *env) publishOne(ctx context.Context) error {
	i := e.next
	e.next++
	ev := e.createdEvent(i, time.Now())
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	if e.keep {
		e.sent[name(i)] = ev.CreatedAt
	}
	_, err = e.q.Publish(ctx, subject(ev), ev.MsgID(), body, nil)
	return err
}

// drained reports whether the queue holds nothing pending or unacked.
// ORGSYNC is a work-queue stream: a message leaves it when it is
// acknowledged, so an empty stream is a drained queue whatever the
// consumers are (one, or one per partition).
func (e *env) drained(ctx context.Context) (bool, error) {
	n, err := e.streamMsgs(ctx, queue.Stream)
	return n == 0, err
}

// deadLetters is the number of messages in the dead-letter stream.
func (e *env) deadLetters(ctx context.Context) (uint64, error) {
	return e.streamMsgs(ctx, queue.DLQStream)
}

func (e *env) streamMsgs(ctx context.Context, stream string) (uint64, error) {
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	return info.State.Msgs, nil
}

// worker is a running `worker run` process.
type worker struct {
	cmd    *exec.Cmd
	start  time.Time
	done   chan struct{}
	err    error
	logf   *os.File
	exited atomic.Bool

	mu                    sync.Mutex
	hwmKB, anonKB, fileKB int64 // VmHWM, the highest RssAnon, the last RssFile
}

// workerArgs are the `worker run` arguments for a scenario. The worker
// keeps its ID map in the scenario's directory under dataDir.
func (e *env) workerArgs(mode, dataDir string, extra []string) []string {
	args := []string{"run",
		"-nats-url", e.natsURL,
		"-target-url", e.url,
		"-target-client-id", fakeorg.DefaultClientID,
		"-target-client-secret", fakeorg.DefaultClientSecret,
		"-worker-id", "bench",
		"-data-dir", filepath.Join(e.dir, dataDir),
	}
	if e.partitions > 0 {
		args = append(args, "-partitions", strconv.Itoa(e.partitions))
	}
	switch mode {
	case ModeBulk:
		args = append(args, "-mode", "upsert", "-bulk-threshold", "1", "-bulk-batch", "10000")
	case ModeUpdate, ModeUpdateUnmapped:
		args = append(args, "-mode", string(replicate.ModeUpsert), "-bulk-threshold", "0")
	case string(replicate.ModeUpsert):
		args = append(args, "-mode", mode, "-bulk-threshold", "0")
	default:
		args = append(args, "-mode", mode)
	}
	return append(args, extra...)
}

// startWorker runs the worker binary. Its environment carries no ORGSYNC_*
// variable, so only the arguments configure it; its log is appended to a
// file in the scenario's directory.
func (e *env) startWorker(bin string, args []string) (*worker, error) {
	logf, err := os.OpenFile(filepath.Join(e.dir, "worker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORGSYNC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	w := &worker{cmd: cmd, done: make(chan struct{}), logf: logf}
	w.start = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	go func() {
		w.err = cmd.Wait()
		w.exited.Store(true)
		close(w.done)
	}()
	return w, nil
}

// sample reads the worker's memory figures from /proc/<pid>/status.
func (w *worker) sample() {
	if w.exited.Load() {
		return
	}
	st := procStatus(w.cmd.Process.Pid)
	if st == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hwmKB = max(w.hwmKB, st["VmHWM"])
	w.anonKB = max(w.anonKB, st["RssAnon"])
	if v, ok := st["RssFile"]; ok {
		w.fileKB = v
	}
}

// procStatus returns the kB figures of /proc/<pid>/status (Linux), or nil.
func procStatus(pid int) map[string]int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	out := make(map[string]int64)
	for line := range strings.Lines(string(b)) {
		k, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// stop sends SIGTERM, waits up to 30 s (then kills) and returns the usage.
// The peak RSS is VmHWM, read every poll and once more just before SIGTERM.
// The exit rusage's maxrss is not used: Go starts children with vfork, and
// Linux carries the parent's high-water mark into the child's maxrss at
// exec, so it reports the bench process's RSS, not the worker's.
func (w *worker) stop() (Usage, error) {
	w.sample()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
	w.logf.Close()
	w.mu.Lock()
	u := Usage{PeakRSSKB: w.hwmKB, PeakAnonKB: w.anonKB, LastFileKB: w.fileKB}
	w.mu.Unlock()
	if st := w.cmd.ProcessState; st != nil {
		u.CPU = st.UserTime() + st.SystemTime()
	}
	var ee *exec.ExitError
	if w.err != nil && !(errors.As(w.err, &ee) && ee.Exited() && ee.ExitCode() == 0) {
		return u, fmt.Errorf("worker exited: %w (log: %s)", w.err, tail(w.logf.Name()))
	}
	return u, nil
}

// exitedEarly reports the worker's failure if it has already exited.
func (w *worker) exitedEarly() error {
	if !w.exited.Load() {
		return nil
	}
	return fmt.Errorf("worker exited early: %v (log: %s)", w.err, tail(w.logf.Name()))
}

// tail returns the last lines of a log file.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	s := strings.TrimSpace(string(b))
	if len(s) > 800 {
		s = "…" + s[len(s)-800:]
	}
	return s
}

// concurrency measures the calls in flight at the fake org: the highest
// count, and the time integral of the count (for the mean while busy).
type concurrency struct {
	mu       sync.Mutex
	n, peak  int
	last     time.Time
	integral float64 // call-seconds
	busy     time.Duration
}

func (c *concurrency) add(d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.n > 0 {
		el := now.Sub(c.last)
		c.integral += float64(c.n) * el.Seconds()
		c.busy += el
	}
	c.last = now
	c.n += d
	c.peak = max(c.peak, c.n)
}

// mean is the mean number of calls in flight while at least one was.
func (c *concurrency) mean() (mean float64, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy <= 0 {
		return 0, c.peak
	}
	return c.integral / c.busy.Seconds(), c.peak
}

func (c *concurrency) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/services/data/") || strings.HasPrefix(r.URL.Path, "/services/apexrest/") {
			c.add(1)
			defer c.add(-1)
		}
		h.ServeHTTP(w, r)
	})
}
