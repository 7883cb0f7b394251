package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/tcpproxy"
	"orgsync/queue"
)

// env is one chaos run's set of processes on loopback.
type env struct {
	t   *testing.T
	dir string
	rnd *rand.Rand

	mu    sync.Mutex
	procs []*proc

	nats     []*natsServer
	source   *fakeOrg
	target   *fakeOrg
	workers  []*workerProc
	producer *proc
	// streamReplicas, when set, is passed to every worker and the producer
	// as -stream-replicas.
	streamReplicas int
	// producerArgs are added to the producer's command line.
	producerArgs []string
	// workerProxy, when set, stands between the workers and the (single)
	// NATS server: cutting its connections is a network blip.
	workerProxy *tcpproxy.Proxy

	mon *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	if os.Getenv("ORGSYNC_CHAOS_KEEP") != "" {
		// Keep the logs and stores for a post-mortem.
		d, err := os.MkdirTemp("", "orgsync-"+t.Name()+"-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
		t.Logf("ORGSYNC_CHAOS_KEEP: logs and stores kept in %s", dir)
	}
	e := &env{t: t, dir: dir, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))}
	t.Cleanup(func() {
		// Runs last: every process dies, even when the test failed.
		e.mu.Lock()
		procs := append([]*proc(nil), e.procs...)
		e.mu.Unlock()
		for _, p := range procs {
			p.ctl.Lock() // waits out a supervisor restart in progress
			p.supervised.Store(false)
			p.kill()
			p.ctl.Unlock()
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("----- tail of %s (%s) -----\n%s", p.name, p.log, p.tail(40))
			}
		}
		scanForSecrets(t, procs)
	})
	return e
}

// accessToken matches the access tokens the fake orgs issue (Salesforce's
// shape: the 15-character org ID, "!", the token).
var accessToken = regexp.MustCompile(`00D[0-9A-Za-z]{12}![0-9A-Za-z._-]{20,}`)

// scanForSecrets fails the test if anything a process printed (NATS, the
// fake orgs, the producer, the workers) contains the client secret or an
// access token.
func scanForSecrets(t *testing.T, procs []*proc) {
	t.Helper()
	bytes := 0
	for _, p := range procs {
		raw, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		// Only what the process printed: not the harness's own "=== chaos:"
		// lines, which quote the command line.
		var out []byte
		for _, line := range strings.SplitAfter(string(raw), "\n") {
			if !strings.HasPrefix(line, "=== chaos:") {
				out = append(out, line...)
			}
		}
		b := out
		bytes += len(b)
		if strings.Contains(string(b), "demo-secret") {
			t.Errorf("%s printed the client secret", p.name)
		}
		if tok := accessToken.Find(b); tok != nil {
			t.Errorf("%s printed an access token (%.20s…)", p.name, tok)
		}
	}
	t.Logf("secret scan: %d bytes of output from %d processes, no client secret or access token", bytes, len(procs))
}

// supervise restarts supervised processes that exited on their own until
// the test ends.
func (e *env) supervise(ctx context.Context) {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			e.mu.Lock()
			procs := append([]*proc(nil), e.procs...)
			e.mu.Unlock()
			for _, p := range procs {
				if !p.supervised.Load() || !p.ctl.TryLock() {
					continue
				}
				if p.supervised.Load() && !p.running() && ctx.Err() == nil {
					p.selfExits.Add(1)
					if err := p.start(); err != nil {
						e.t.Logf("supervisor: restarting %s: %v", p.name, err)
					}
				}
				p.ctl.Unlock()
			}
		}
	}()
}

// selfExits counts the restarts the supervisor made.
func (e *env) selfExits() (n int64, who []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		if c := p.selfExits.Load(); c > 0 {
			n += c
			who = append(who, fmt.Sprintf("%s×%d", p.name, c))
		}
	}
	return n, who
}

func (e *env) newProc(name, binName string, args func() []string) *proc {
	p := &proc{name: name, bin: bin(e.t, binName), log: filepath.Join(e.dir, name+".log"), args: args}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

// ---- NATS ----

type natsServer struct {
	p                       *proc
	name                    string
	port, httpPort, cluPort int
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// healthURL is the JetStream readiness probe of nats.md §5.6.
func (n *natsServer) healthURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", n.httpPort)
}

// startNATS starts n JetStream servers (1, or 3 for a cluster) and a
// monitoring connection to them.
func (e *env) startNATS(n int) {
	e.t.Helper()
	for attempt := 1; ; attempt++ {
		err := e.tryStartNATS(n)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errExited) {
			e.t.Fatalf("starting NATS: %v", err)
		}
		e.t.Logf("starting NATS (attempt %d): %v; trying other ports", attempt, err)
		for _, s := range e.nats {
			s.p.kill()
		}
	}
	urls := e.natsURLs()
	nc, err := nats.Connect(urls, nats.Name("chaos-monitor"), nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		e.t.Fatalf("monitor connection: %v", err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mon, e.js = nc, js
}

func (e *env) tryStartNATS(n int) error {
	e.nats = nil
	for i := 1; i <= n; i++ {
		s := &natsServer{name: fmt.Sprintf("n%d", i), port: freePort(e.t), httpPort: freePort(e.t)}
		if n > 1 {
			s.cluPort = freePort(e.t)
		}
		e.nats = append(e.nats, s)
	}
	for _, s := range e.nats {
		s := s
		store := filepath.Join(e.dir, "nats-"+s.name)
		args := []string{"-js", "-sd", store, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port),
			"-m", strconv.Itoa(s.httpPort), "-n", s.name}
		if n > 1 {
			var routes []string
			for _, o := range e.nats {
				if o != s {
					routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", o.cluPort))
				}
			}
			args = append(args, "--cluster_name", "chaos", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", s.cluPort),
				"--routes", strings.Join(routes, ","))
		}
		s.p = e.newProc("nats-"+s.name, "nats-server", func() []string { return args })
		if err := s.p.start(); err != nil {
			return err
		}
	}
	for _, s := range e.nats {
		if err := waitHTTP(s.p, s.healthURL(), 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// workerNATSURLs is what the workers connect to: the proxy when there is
// one, else the servers.
func (e *env) workerNATSURLs() string {
	if e.workerProxy != nil {
		return e.workerProxy.URL()
	}
	return e.natsURLs()
}

// natsURLs is the comma-separated list every client connects with.
func (e *env) natsURLs() string {
	var u []string
	for _, s := range e.nats {
		u = append(u, s.url())
	}
	return strings.Join(u, ",")
}

// restartNATS kills server s (SIGKILL) and starts it again on the same
// store directory and ports.
func (e *env) restartNATS(s *natsServer, down time.Duration) {
	e.t.Helper()
	s.p.kill()
	time.Sleep(down) // the outage itself, not a synchronisation
	if err := s.p.start(); err != nil {
		e.t.Fatalf("restarting %s: %v", s.name, err)
	}
	if err := waitHTTP(s.p, s.healthURL(), 60*time.Second); err != nil {
		e.t.Fatalf("restarting %s: %v", s.name, err)
	}
}

// streamLeader returns the server that leads ORGSYNC.
func (e *env) streamLeader(ctx context.Context) (*natsServer, error) {
	st, err := e.js.Stream(ctx, queue.Stream)
	if err != nil {
		return nil, err
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, errors.New("ORGSYNC has no leader")
	}
	for _, s := range e.nats {
		if s.name == info.Cluster.Leader {
			return s, nil
		}
	}
	return nil, fmt.Errorf("leader %q is none of our servers", info.Cluster.Leader)
}

// assertReplicas checks that the workers and producer created both
// streams with the replicas -stream-replicas asked for.
func (e *env) assertReplicas(ctx context.Context, want int) {
	e.t.Helper()
	for _, name := range []string{queue.Stream, queue.DLQStream} {
		var got int
		ok := eventually(ctx, 30*time.Second, 250*time.Millisecond, func() bool {
			st, err := e.js.Stream(ctx, name)
			if err != nil {
				return false
			}
			info, err := st.Info(ctx)
			if err != nil {
				return false
			}
			got = info.Config.Replicas
			return true
		})
		if !ok || got != want {
			e.t.Fatalf("stream %s: %d replicas, want %d", name, got, want)
		}
	}
}

// queueState is the pipeline's progress as JetStream sees it.
type queueState struct {
	pending, ackPending uint64
	dlq                 uint64
	// stored is what ORGSYNC holds (a work queue: every event not yet
	// acknowledged, including those on subjects no consumer reads yet).
	stored uint64
	// consumers is how many consumers ORGSYNC has.
	consumers int
}

// queueState sums the progress of every consumer of ORGSYNC: the single
// "workers" of the previous layout, or the partition consumers
// "workers-<p>" (docs/ordering.md).
func (e *env) queueState(ctx context.Context) (queueState, error) {
	var s queueState
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, queue.Stream)
	if err != nil {
		return s, err
	}
	s.stored = st.CachedInfo().State.Msgs
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		s.consumers++
		s.pending += ci.NumPending
		s.ackPending += uint64(max(ci.NumAckPending, 0))
	}
	if err := lister.Err(); err != nil {
		return s, err
	}
	if s.consumers == 0 {
		return s, fmt.Errorf("%s has no consumer yet", queue.Stream)
	}
	d, err := e.js.Stream(ctx, queue.DLQStream)
	if err != nil {
		return s, err
	}
	s.dlq = d.CachedInfo().State.Msgs
	return s, nil
}

// ---- fake orgs ----

var listeningRE = regexp.MustCompile(`fakeorg listening on (http://\S+)`)

func (e *env) startFakeOrg(name string, extra ...string) *fakeOrg {
	e.t.Helper()
	args := append([]string{"-addr", "127.0.0.1:0"}, extra...)
	p := e.newProc(name, "fakeorg", func() []string { return args })
	if err := p.start(); err != nil {
		e.t.Fatal(err)
	}
	m, err := p.waitLine(listeningRE, 30*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return &fakeOrg{p: p, url: m[1]}
}

// ---- workers ----

// Worker settings of the chaos runs.
const (
	ackWait    = 5 * time.Second
	maxDeliver = 20
)

type workerProc struct {
	p       *proc
	id      string
	dataDir string
	port    int // metrics
}

func (w *workerProc) readyURL() string { return fmt.Sprintf("http://127.0.0.1:%d/readyz", w.port) }

// addWorker creates (does not start) worker id with extra flags.
func (e *env) addWorker(id string, extra ...string) *workerProc {
	w := &workerProc{id: id, dataDir: filepath.Join(e.dir, "data-"+id), port: freePort(e.t)}
	w.p = e.newProc("worker-"+id, "worker", func() []string {
		args := []string{"run",
			"-nats-url", e.workerNATSURLs(),
			"-target-url", e.target.url, "-target-client-id", "demo", "-target-client-secret", "demo-secret",
			"-worker-id", id, "-data-dir", w.dataDir,
			"-ack-wait", ackWait.String(), "-max-deliver", strconv.Itoa(maxDeliver), "-linger", "50ms",
			"-metrics-addr", fmt.Sprintf("127.0.0.1:%d", w.port)}
		if e.streamReplicas > 0 {
			args = append(args, "-stream-replicas", strconv.Itoa(e.streamReplicas))
		}
		return append(args, extra...)
	})
	e.workers = append(e.workers, w)
	return w
}

// startWorker starts w and, when wait is set, waits for /readyz; a worker
// that exits (its metrics port taken) is retried on another port.
func (e *env) startWorker(w *workerProc, wait time.Duration) error {
	for attempt := 1; ; attempt++ {
		if err := w.p.start(); err != nil {
			return err
		}
		if wait == 0 {
			return nil
		}
		err := waitHTTP(w.p, w.readyURL(), wait)
		if err == nil || !errors.Is(err, errExited) || attempt == 3 {
			return err
		}
		w.port = freePort(e.t)
	}
}

// waitReady waits for /readyz of a supervised worker (which may exit and be
// restarted meanwhile).
func (e *env) waitReady(ctx context.Context, w *workerProc, timeout time.Duration) error {
	if eventually(ctx, timeout, 100*time.Millisecond, func() bool { return httpStatus(w.readyURL()) == 200 }) {
		return nil
	}
	return fmt.Errorf("worker %s not ready within %s", w.id, timeout)
}

// setSupervised turns supervision of the workers on or off (off: wait for
// a restart in progress).
func (e *env) setSupervised(on bool) {
	for _, w := range e.workers {
		w.p.ctl.Lock()
		w.p.supervised.Store(on)
		w.p.ctl.Unlock()
	}
}

// ---- producer ----

func (e *env) startProducer() {
	e.t.Helper()
	dataDir := filepath.Join(e.dir, "data-producer")
	if e.producer == nil {
		e.producer = e.newProc("producer", "producer", func() []string {
			args := []string{"poll",
				"-nats-url", e.natsURLs(),
				"-source-url", e.source.url, "-source-client-id", "demo", "-source-client-secret", "demo-secret",
				"-interval", "200ms", "-overlap", "30s", "-rate-limit", "50", "-data-dir", dataDir}
			if e.streamReplicas > 0 {
				args = append(args, "-stream-replicas", strconv.Itoa(e.streamReplicas))
			}
			return append(args, e.producerArgs...)
		})
	}
	if err := e.producer.start(); err != nil {
		e.t.Fatal(err)
	}
}

// countInLogs counts the lines containing substr in the logs of the
// processes whose names start with prefix.
func (e *env) countInLogs(prefix, substr string) int {
	e.mu.Lock()
	procs := append([]*proc(nil), e.procs...)
	e.mu.Unlock()
	n := 0
	for _, p := range procs {
		if !strings.HasPrefix(p.name, prefix) {
			continue
		}
		b, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, substr) {
				n++
			}
		}
	}
	return n
}

// ---- operator commands ----

// workerCLI runs `worker ARGS…` as an operator would and returns stdout.
func (e *env) workerCLI(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(e.t, "worker"), args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("worker %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// dlqEntry is one line of `worker dlq list -json`.
type dlqEntry struct {
	SourceID string `json:"source_id"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Attempts int    `json:"attempts"`
	Seq      uint64 `json:"stream_seq"`
	Change   string `json:"change"`
}

func (e *env) dlqList(ctx context.Context) ([]dlqEntry, error) {
	out, err := e.workerCLI(ctx, "dlq", "list", "-nats-url", e.natsURLs(), "-json")
	if err != nil {
		return nil, err
	}
	var entries []dlqEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var d dlqEntry
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("dlq list line %q: %w", sc.Text(), err)
		}
		entries = append(entries, d)
	}
	return entries, sc.Err()
}

var replayedRE = regexp.MustCompile(`replayed (\d+) of (\d+)`)

func (e *env) dlqReplay(ctx context.Context) (int, error) {
	out, err := e.workerCLI(ctx, "dlq", "replay", "-nats-url", e.natsURLs())
	if err != nil {
		return 0, err
	}
	m := replayedRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("dlq replay said %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n, nil
}

// mapping is one entry of `worker mapping export -format json`.
type mapping struct {
	SourceID string `json:"source_id"`
	TargetID string `json:"target_id"`
}

func (e *env) exportMapping(ctx context.Context, w *workerProc) ([]mapping, error) {
	if _, err := os.Stat(filepath.Join(w.dataDir, "worker-"+w.id+".db")); errors.Is(err, os.ErrNotExist) {
		return nil, nil // never wrote anything
	}
	out, err := e.workerCLI(ctx, "mapping", "export", "-nats-url", e.natsURLs(),
		"-data-dir", w.dataDir, "-worker-id", w.id, "-format", "json")
	if err != nil {
		return nil, err
	}
	var ms []mapping
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return nil, fmt.Errorf("mapping export of %s: %w", w.id, err)
	}
	return ms, nil
}
