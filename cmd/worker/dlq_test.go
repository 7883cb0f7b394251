package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/salesforce"
)

// dlqOrg is the source org of the dead letters fillDLQ writes.
var dlqOrg = salesforce.ID18("00D0000000DLQ01")

// dlqID is the i-th source record ID fillDLQ uses.
func dlqID(i int) string { return salesforce.ID18(fmt.Sprintf("001DLQ%09d", i)) }

// fillDLQ stores n dead letters in ORGSYNC_DLQ as DeadLetter writes them
// (published directly, which is much faster than dead-lettering n events),
// code(i) naming each one's error code.
func fillDLQ(t testing.TB, js jetstream.JetStream, n int, code func(int) string) {
	t.Helper()
	failedAt := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for start := 0; start < n; start += 5000 {
		for i := start; i < min(start+5000, n); i++ {
			m := nats.NewMsg(queue.SubjectDLQCreated)
			m.Data = fmt.Appendf(nil, `{"v":1,"type":"account.created","source_org":%q,"source_id":%q,"created_at":"2026-11-22T09:59:00Z","fields":{"Name":"Dead letter %d","Phone":"+1 555 0100"}}`,
				dlqOrg, dlqID(i), i)
			m.Header.Set(queue.HeaderErrorCode, code(i))
			m.Header.Set(queue.HeaderErrorMessage, "Name: the validation rule refused dead letter "+strconv.Itoa(i))
			m.Header.Set(queue.HeaderAttempts, "1")
			m.Header.Set(queue.HeaderFailedAt, failedAt.Format(time.RFC3339Nano))
			m.Header.Set(queue.HeaderSourceID, dlqID(i))
			m.Header.Set(queue.HeaderOriginalSubject, queue.SubjectCreated)
			m.Header.Set(queue.HeaderOriginalSeq, strconv.Itoa(i+1))
			if _, err := js.PublishMsgAsync(m, jetstream.WithExpectStream(queue.DLQStream)); err != nil {
				t.Fatalf("publish dead letter %d: %v", i, err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			t.Fatalf("dead letters %d.. not acknowledged within a minute", start)
		}
	}
}

// Ensure that -source-id selects a record's dead letters whether the
// filter or the dead letter spells the ID in 15 or 18 characters, with any
// case in the suffix, and that the dry run lists them as a table.
func TestDLQReplaySourceIDForms(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	ns.Queue(t, queue.Config{})
	fillDLQ(t, ns.JS, 3, func(int) string { return "FIELD_CUSTOM_VALIDATION_EXCEPTION" })
	// A fourth dead letter names its record in the 15-character form.
	m := nats.NewMsg(queue.SubjectDLQCreated)
	m.Data = []byte("not json")
	m.Header.Set(queue.HeaderErrorCode, "MALFORMED_EVENT")
	m.Header.Set(queue.HeaderSourceID, dlqID(1)[:15])
	if _, err := ns.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	url := ns.ClientURL()
	tests := []struct {
		filter   string
		wantSeqs []string
	}{
		{dlqID(1), []string{"2", "4"}},
		{dlqID(1)[:15], []string{"2", "4"}},
		{dlqID(1)[:15] + strings.ToLower(dlqID(1)[15:]), []string{"2", "4"}},
		{dlqID(2)[:15], []string{"3"}},
		{dlqID(7), nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			code, out, stderr := runCmd(t, "dlq", "replay", "-nats-url", url, "-dry-run", "-source-id", tt.filter)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var seqs []string
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				if len(f) < 5 {
					continue // the heading, the count, the summary
				}
				if _, err := strconv.Atoi(f[0]); err == nil {
					seqs = append(seqs, f[0])
				}
			}
			want := fmt.Sprintf("dry run: %d dead letters would be replayed", len(tt.wantSeqs))
			if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) || !strings.Contains(out, want) {
				t.Errorf("dry run listed seqs %v, want %v and %q:\n%s", seqs, tt.wantSeqs, want, out)
			}
		})
	}
	if got, err := ns.Queue(t, queue.Config{}).ListDLQ(t.Context()); err != nil || len(got) != 4 {
		t.Errorf("after dry runs the DLQ holds %d entries (%v), want 4", len(got), err)
	}
	// The real replay of one record: both its dead letters go, nothing else.
	code, out, stderr := runCmd(t, "dlq", "replay", "-nats-url", url, "-source-id", dlqID(1)[:15])
	if code != 0 || !strings.Contains(out, "replayed 2 of 2 matching dead letters") {
		t.Fatalf("replay: exit %d: %s %s", code, out, stderr)
	}
	code, out, _ = runCmd(t, "dlq", "list", "-nats-url", url)
	if code != 0 || !strings.Contains(out, "2 dead letters") || !strings.Contains(out, dlqID(0)) || !strings.Contains(out, dlqID(2)) {
		t.Errorf("dlq list after replay: exit %d:\n%s", code, out)
	}
}

// TestHelperWorkerCLI is not a test: the memory test runs the worker
// command in a process of its own through it, so the command's peak memory
// is measured apart from the test's NATS server.
func TestHelperWorkerCLI(t *testing.T) {
	if os.Getenv("ORGSYNC_TEST_WORKER_CLI") != "1" {
		t.Skip("runs only as the worker command of TestDLQBoundedMemory")
	}
	code := run(t.Context(), flag.Args(), noEnv, nil, os.Stdout, os.Stderr)
	if err := os.WriteFile(os.Getenv("ORGSYNC_TEST_PEAK_FILE"), []byte(strconv.FormatInt(peakRSS(), 10)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

// cliPeakRSS runs the worker command args in a process of its own and
// returns its peak resident memory in bytes (the process's own high-water
// mark: a parent's rusage would count the test's memory too, which a
// vfork'ed child inherits until exec), its output's line count and last line.
func cliPeakRSS(t *testing.T, args ...string) (peak int64, lines int, last string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], append([]string{"-test.run=^TestHelperWorkerCLI$", "--"}, args...)...)
	peakFile := filepath.Join(t.TempDir(), "peak")
	cmd.Env = append(os.Environ(), "ORGSYNC_TEST_WORKER_CLI=1", "ORGSYNC_TEST_PEAK_FILE="+peakFile)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
		last = sc.Text()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	b, err := os.ReadFile(peakFile)
	if err != nil {
		t.Fatal(err)
	}
	peak, err = strconv.ParseInt(string(b), 10, 64)
	if err != nil || peak <= 0 {
		t.Fatalf("peak RSS %q: %v", b, err)
	}
	return peak, lines, last
}

// Ensure that `worker dlq list` and `worker dlq replay` stream the DLQ: the
// command's peak memory with 50,000 dead letters stays close to its peak
// with 5,000 (it held every entry before, and grew with the DLQ).
func TestDLQBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a DLQ with 55,000 entries (-short)")
	}
	if raceEnabled {
		t.Skip("the race detector inflates memory and time; .ci/run runs this test without -race")
	}
	if !peakRSSSupported() {
		t.Skip("no peak RSS for a child process on this OS")
	}
	type run struct {
		peak  int64
		lines int
	}
	measure := func(n int) (list, dry, replay run) {
		ns := queuetest.Start(t, queuetest.Config{Listen: true})
		ns.Queue(t, queue.Config{})
		fillDLQ(t, ns.JS, n, func(i int) string { return [...]string{"FIELD_CUSTOM_VALIDATION_EXCEPTION", "STRING_TOO_LONG"}[i%2] })
		url := ns.ClientURL()
		var last string
		list.peak, list.lines, last = cliPeakRSS(t, "dlq", "list", "-json", "-nats-url", url)
		if list.lines != n || !strings.Contains(last, dlqID(n-1)) {
			t.Fatalf("dlq list -json of %d dead letters printed %d lines, the last %q", n, list.lines, last)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(last), &e); err != nil || e["stream_seq"] != float64(n) {
			t.Errorf("last line %s (%v), want stream_seq %d", last, err, n)
		}
		dry.peak, dry.lines, last = cliPeakRSS(t, "dlq", "replay", "-dry-run", "-code", "STRING_TOO_LONG", "-nats-url", url)
		if want := fmt.Sprintf("dry run: %d dead letters would be replayed", n/2); last != want {
			t.Fatalf("dry run ends with %q, want %q", last, want)
		}
		replay.peak, replay.lines, last = cliPeakRSS(t, "dlq", "replay", "-nats-url", url)
		if want := fmt.Sprintf("replayed %d of %d matching dead letters", n, n); last != want {
			t.Fatalf("replay ends with %q, want %q", last, want)
		}
		s, err := ns.JS.Stream(t.Context(), queue.DLQStream)
		if err != nil {
			t.Fatal(err)
		}
		if left := s.CachedInfo().State.Msgs; left != 0 {
			t.Errorf("after replaying %d dead letters the DLQ holds %d", n, left)
		}
		s, err = ns.JS.Stream(t.Context(), queue.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != uint64(n) {
			t.Errorf("replay of %d dead letters left %d events in ORGSYNC", n, got)
		}
		return list, dry, replay
	}
	const small, large = 5_000, 50_000
	l5, d5, r5 := measure(small)
	l50, d50, r50 := measure(large)
	const mib = 1 << 20
	// The entries alone are about 1 KiB each in memory: holding 45,000 more
	// would add some 45 MiB (twice that with the garbage collector's
	// headroom). Streaming, the peaks differ by noise.
	const slack = 12 * mib
	for _, c := range []struct {
		name         string
		small, large int64
	}{
		{"dlq list -json", l5.peak, l50.peak},
		{"dlq replay -dry-run", d5.peak, d50.peak},
		{"dlq replay", r5.peak, r50.peak},
	} {
		t.Logf("%s: peak RSS %.1f MiB with %d dead letters, %.1f MiB with %d", c.name,
			float64(c.small)/mib, small, float64(c.large)/mib, large)
		if c.large > c.small+slack {
			t.Errorf("%s: peak RSS grew from %.1f MiB (%d dead letters) to %.1f MiB (%d): more than %d MiB",
				c.name, float64(c.small)/mib, small, float64(c.large)/mib, large, slack/mib)
		}
	}
}

// Ensure that an empty DLQ lists as the table's heading and a zero count,
// and as nothing in JSON.
func TestDLQListEmpty(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	ns.Queue(t, queue.Config{})
	code, out, stderr := runCmd(t, "dlq", "list", "-nats-url", ns.ClientURL())
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "SEQ ") || lines[1] != "0 dead letters" {
		t.Errorf("dlq list: exit %d, stdout %q, stderr %q; want the heading and 0 dead letters", code, out, stderr)
	}
	code, out, stderr = runCmd(t, "dlq", "list", "-json", "-nats-url", ns.ClientURL())
	if code != 0 || out != "" {
		t.Errorf("dlq list -json: exit %d, stdout %q, stderr %q; want nothing", code, out, stderr)
	}
}
