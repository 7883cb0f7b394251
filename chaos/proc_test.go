package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// proc is one child process, which can be started again after it ended.
// Every start appends to the same log file (stdout and stderr).
type proc struct {
	name string
	bin  string
	log  string
	// args returns the command line of the next start (ports may change
	// between starts).
	args func() []string

	// ctl serialises the test's actions on the process (a kill and its
	// restart) with the supervisor's restarts.
	ctl sync.Mutex
	// supervised: the supervisor restarts the process when it exits on its
	// own, as a process manager (compose restart policy, systemd) would.
	supervised atomic.Bool
	selfExits  atomic.Int64

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	offset int64 // where the current start's output begins in log
	starts int
}

// env of every child: the test's environment without ORGSYNC_ variables,
// so a developer's settings cannot change what the processes do.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORGSYNC_") {
			out = append(out, kv)
		}
	}
	return out
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s: already running", p.name)
		}
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := p.args()
	p.starts++
	fmt.Fprintf(f, "=== chaos: %s start #%d at %s: %s %s\n", p.name, p.starts,
		time.Now().Format("15:04:05.000"), filepath.Base(p.bin), strings.Join(args, " "))
	off, _ := f.Seek(0, 2)
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== chaos: %s exited at %s: %v\n", p.name, time.Now().Format("15:04:05.000"), err)
		f.Close()
		close(done)
	}()
	p.cmd, p.done, p.offset = cmd, done, off
	return nil
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// signal sends sig and waits up to wait for the process to end; past it the
// process is SIGKILLed. It reports whether the process was running.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
	return true
}

// kill SIGKILLs the process and waits for it to end.
func (p *proc) kill() bool { return p.signal(syscall.SIGKILL, 10*time.Second) }

// stop asks the process to end (SIGTERM) and waits up to 20 s.
func (p *proc) stop() bool { return p.signal(syscall.SIGTERM, 20*time.Second) }

// waitLine waits until the current start's output matches re and returns
// the submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	p.mu.Lock()
	off, done := p.offset, p.done
	p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(p.log)
		if err == nil && int64(len(b)) > off {
			if m := re.FindStringSubmatch(string(b[off:])); m != nil {
				return m, nil
			}
		}
		select {
		case <-done:
			return nil, fmt.Errorf("%s exited before printing %q", p.name, re)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not print %q within %s", p.name, re, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePort returns a loopback port that was free a moment ago. Callers
// that bind it later retry with another one if it was taken in between.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// waitHTTP polls url until it answers 200, p exits, or timeout.
func waitHTTP(p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	last := ""
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited():
			return fmt.Errorf("%w: %s exited while waiting for %s", errExited, p.name, url)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready within %s (last: %s)", p.name, url, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errExited = errors.New("process exited")

// httpStatus returns the status code of GET url (0 when unreachable).
func httpStatus(url string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond every interval until it returns true or timeout.
func eventually(ctx context.Context, timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}
