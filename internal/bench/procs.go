package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// Binaries are the programs of the multi-process mode: nats-server, the
// fake org (cmd/fakeorg) and the worker, each run as its own process, as a
// user runs them.
type Binaries struct {
	Worker, FakeOrg, NATSServer string
}

// BuildBinaries builds orgsync/cmd/worker, orgsync/cmd/fakeorg and the
// module's own nats-server (github.com/nats-io/nats-server/v2, a dependency
// in go.mod) into dir. Like BuildWorker it runs the go command inside the
// module.
func BuildBinaries(ctx context.Context, dir string) (Binaries, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return Binaries{}, fmt.Errorf("bench: no go command to build the binaries: %w", err)
	}
	pkgs := []string{"orgsync/cmd/worker", "orgsync/cmd/fakeorg", "github.com/nats-io/nats-server/v2"}
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	out, err := exec.CommandContext(ctx, goCmd, args...).CombinedOutput()
	if err != nil {
		return Binaries{}, fmt.Errorf("bench: go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return Binaries{Worker: filepath.Join(dir, "worker"), FakeOrg: filepath.Join(dir, "fakeorg"),
		NATSServer: filepath.Join(dir, "nats-server")}, nil
}

// proc is a helper process of the multi-process mode (nats-server, fake
// org); its output goes to a log file in the scenario's directory.
type proc struct {
	name string
	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
	err  error
}

func startProc(dir, name, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
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
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitLine waits until the process's log has a line matching re and
// returns the submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.logf.Name())
		if m := re.FindStringSubmatch(string(b)); m != nil {
			return m, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, tail(p.logf.Name()))
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no line matching %q within %v (log: %s)", p.name, re, timeout, tail(p.logf.Name()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpu is the process's user + system CPU so far, from /proc (Linux; 0
// elsewhere or once it exited).
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	const clockTicks = 100                   // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTicks
}

// stop sends SIGTERM and waits up to 10 s, then kills.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.logf.Close()
}

var fakeListening = regexp.MustCompile(`fakeorg listening on (http://\S+)`)

// startProcs starts nats-server and the fake org as processes and connects
// to the server.
func (e *env) startProcs(b *Binaries, latency, perRecord, bulkDelay time.Duration) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	ns, err := startProc(e.dir, "nats-server", b.NATSServer, "-js", "-sd", filepath.Join(e.dir, "jetstream"),
		"-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return err
	}
	e.procs = append(e.procs, ns)
	e.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	if _, err := ns.waitLine(regexp.MustCompile(`Server is ready`), 30*time.Second); err != nil {
		return err
	}
	if e.nc, err = nats.Connect(e.natsURL); err != nil {
		return fmt.Errorf("connect to nats-server: %w", err)
	}
	org, err := startProc(e.dir, "fakeorg", b.FakeOrg, "-addr", "127.0.0.1:0",
		"-latency", latency.String(), "-latency-per-record", perRecord.String(),
		"-daily-api-limit", strconv.Itoa(benchDailyLimit))
	if err != nil {
		return err
	}
	e.procs = append(e.procs, org)
	m, err := org.waitLine(fakeListening, 30*time.Second)
	if err != nil {
		return err
	}
	e.url = m[1]
	if bulkDelay > 0 {
		return e.configure(fmt.Sprintf(`{"bulk_processing_delay": %q}`, bulkDelay.String()))
	}
	return nil
}

// configure sends a PUT /_fake/config to the fake org process.
func (e *env) configure(body string) error {
	req, err := http.NewRequest(http.MethodPut, e.url+"/_fake/config", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return fmt.Errorf("configure the fake org: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("configure the fake org: %s", resp.Status)
	}
	return nil
}

// procsCPU is the CPU the helper processes used so far.
func (e *env) procsCPU() time.Duration {
	var d time.Duration
	for _, p := range e.procs {
		d += p.cpu()
	}
	return d
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var adminClient = &http.Client{Timeout: 30 * time.Second}

// stats are the fake org's counters: in process, or from GET /_fake/stats.
func (e *env) stats() (fakeorg.Stats, error) {
	if e.org != nil {
		return e.org.Stats(), nil
	}
	var st fakeorg.Stats
	resp, err := adminClient.Get(e.url + "/_fake/stats")
	if err != nil {
		return st, fmt.Errorf("fake org stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("fake org stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("fake org stats: %w", err)
	}
	return st, nil
}

// targetRecord is what the bench reads back of a target account.
type targetRecord struct {
	created, modified time.Time // CreatedDate, LastModifiedDate
	phone             string
}

// targetRecords returns each account's CreatedDate, LastModifiedDate and
// Phone by Name: in process, or with a SOQL query through the REST API
// (after the scenario's counters were read: these calls are not the
// worker's).
func (e *env) targetRecords(ctx context.Context) (map[string]targetRecord, error) {
	out := make(map[string]targetRecord)
	if e.org != nil {
		for _, a := range e.org.Accounts() {
			n, _ := a["Name"].(string)
			var t targetRecord
			t.created, _ = a["CreatedDate"].(time.Time)
			t.modified, _ = a["LastModifiedDate"].(time.Time)
			t.phone, _ = a["Phone"].(string)
			out[n] = t
		}
		return out, nil
	}
	auth, err := salesforce.NewAuth(ctx, salesforce.AuthConfig{URL: e.url,
		ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		return nil, err
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: auth})
	if err != nil {
		return nil, err
	}
	for rec, err := range c.Query(ctx, "SELECT Name, CreatedDate, LastModifiedDate, Phone FROM Account") {
		if err != nil {
			return nil, fmt.Errorf("query the fake org: %w", err)
		}
		n, _ := rec["Name"].(string)
		var t targetRecord
		if t.created, err = sfTime(rec, "CreatedDate"); err != nil {
			return nil, err
		}
		if t.modified, err = sfTime(rec, "LastModifiedDate"); err != nil {
			return nil, err
		}
		t.phone, _ = rec["Phone"].(string)
		out[n] = t
	}
	return out, nil
}

// sfTime parses a record's date-time field as the REST API writes it.
func sfTime(rec salesforce.Record, field string) (time.Time, error) {
	s, _ := rec[field].(string)
	t, err := time.Parse("2006-01-02T15:04:05.000-0700", s)
	if err != nil {
		return t, fmt.Errorf("%s %q: %w", field, s, err)
	}
	return t, nil
}
