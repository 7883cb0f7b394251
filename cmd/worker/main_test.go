package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

// syncBuffer is a bytes.Buffer safe for a running command to write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// runCmd runs the worker command to completion.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, noEnv, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no command", args: nil, want: "worker: no command given\n"},
		{name: "unknown command", args: []string{"runn"}, want: "worker: unknown subcommand \"runn\"\n"},
		{name: "unknown dlq command", args: []string{"dlq", "lst"}, want: "worker: unknown subcommand \"lst\" of \"dlq\"\n"},
		{name: "dlq without subcommand", args: []string{"dlq"}, want: "worker: \"dlq\" needs a subcommand\n"},
		{name: "bad flag value", args: []string{"run", "-batch", "many"}, want: "worker: -batch \"many\": want a whole number\nRun \"worker run -h\" for the flags.\n"},
		{name: "bad duration", args: []string{"run", "-linger", "250"}, want: "worker: -linger \"250\": want a duration such as 250ms, 2s or 1m\nRun \"worker run -h\" for the flags.\n"},
		{name: "batch out of range", args: []string{"run", "-batch", "500"}, want: "worker: -batch 500: must be in 1..200\nRun \"worker run -h\" for the flags.\n"},
		{name: "batch zero", args: []string{"run", "-batch", "0"}, want: "worker: -batch 0: must be at least 1\n"},
		{name: "negative rate limit", args: []string{"run", "-rate-limit", "-1"}, want: "worker: -rate-limit -1: must be 0 (no cap) or a positive number of calls per second\n"},
		{name: "budget above 1", args: []string{"run", "-api-budget", "1.5"}, want: "worker: -api-budget 1.5: must be in (0, 1]\n"},
		{name: "bad worker id", args: []string{"run", "-worker-id", "a/b"}, want: "worker: -worker-id \"a/b\": use letters, digits, '-', '_' and '.' only\n"},
		{name: "unknown flag", args: []string{"dlq", "list", "-nope"}, want: "worker: flag provided but not defined: -nope\nRun \"worker dlq list -h\" for the flags.\n"},
		{name: "one-shot without -stream-replicas", args: []string{"dlq", "list", "-stream-replicas", "3"}, want: "not defined: -stream-replicas"},
		{name: "bad mode", args: []string{"run", "-mode", "merge", "-target-url", "https://x.my.salesforce.com"}, want: "worker: -mode \"merge\": want upsert, create or apexrest\n"},
		{name: "no credentials", args: []string{"run", "-target-url", "https://x.my.salesforce.com"}, want: "no credentials"},
		{name: "mapping get without id", args: []string{"mapping", "get"}, want: "one SOURCE_ID"},
		{name: "bad export format", args: []string{"mapping", "export", "-format", "xml"}, want: "want csv or json"},
		{name: "bad source id", args: []string{"dlq", "replay", "-source-id", "nope"}, want: "invalid record id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			if strings.Count(stderr, "\n  -") > 0 {
				t.Errorf("stderr lists the flags on a usage error:\n%s", stderr)
			}
		})
	}
}

// -h prints the flags and exits 0.
func TestHelp(t *testing.T) {
	code, _, stderr := runCmd(t, "run", "-h")
	if code != 0 || !strings.HasPrefix(stderr, "usage of worker run:\n") || !strings.Contains(stderr, "-max-ack-pending") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// A bad value is refused before the worker creates anything: no data
// directory, no ID map.
func TestBadValueCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runCmd(t, "run", "-data-dir", dir, "-worker-id", "w1", "-batch", "500",
		"-target-url", "http://127.0.0.1:1", "-target-access-token", "x")
	if code != 2 {
		t.Fatalf("exit %d (%s), want 2", code, stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created: %v", err)
	}
}

// A second worker with the same -worker-id on one -data-dir is told to
// give each worker its own ID.
func TestLockedIDMapSuggestsWorkerID(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "worker-w1.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _, stderr := runCmd(t, "run", "-data-dir", dir, "-worker-id", "w1",
		"-target-url", "http://127.0.0.1:1", "-target-access-token", "x", "-nats-url", "nats://127.0.0.1:1")
	want := "is locked by another process: is a worker with -worker-id w1 already running on -data-dir " + dir + "? Give each worker its own -worker-id\n"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// mapping export without -worker-id takes the only ID map in -data-dir,
// lists the choices when there are several, and says when there is none.
func TestMappingExportFindsTheMap(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCmd(t, "mapping", "export", "-data-dir", dir)
	if want := "worker: error: no ID map in " + dir + ": it holds no worker-<id>.db file\n"; code != 1 || stderr != want {
		t.Errorf("none: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	st, err := store.Open(filepath.Join(dir, "worker-alpha.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutMappings([]store.Mapping{{SourceID: salesforce.ID18("001SRC000000001"), TargetID: salesforce.ID18("001TGT000000001"), WrittenAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, stderr := runCmd(t, "mapping", "export", "-data-dir", dir)
	if code != 0 || !strings.Contains(out, salesforce.ID18("001TGT000000001")) {
		t.Errorf("one: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	st, err = store.Open(filepath.Join(dir, "worker-beta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, _, stderr = runCmd(t, "mapping", "export", "-data-dir", dir)
	want := "worker: " + dir + " holds 2 ID maps (worker IDs alpha, beta): choose one with -worker-id\n"
	if code != 2 || !strings.HasPrefix(stderr, want) {
		t.Errorf("several: exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

// One-shot commands name the NATS URL they could not reach.
func TestOneShotNamesNATSURL(t *testing.T) {
	for _, args := range [][]string{
		{"dlq", "list", "-nats-url", "nats://127.0.0.1:1"},
		{"dlq", "replay", "-nats-url", "nats://127.0.0.1:1"},
		{"mapping", "get", "-nats-url", "nats://127.0.0.1:1", salesforce.ID18("001SRC000000001")},
	} {
		code, _, stderr := runCmd(t, args...)
		if want := "worker: error: connect to NATS at nats://127.0.0.1:1: "; code != 1 || !strings.HasPrefix(stderr, want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", args, code, stderr, want)
		}
	}
}

func TestEnvironmentConfiguresFlags(t *testing.T) {
	env := map[string]string{"ORGSYNC_BATCH": "lots"}
	var errb bytes.Buffer
	code := run(t.Context(), []string{"run"}, func(k string) string { return env[k] }, nil, &bytes.Buffer{}, &errb)
	if code != 2 || !strings.Contains(errb.String(), "ORGSYNC_BATCH") {
		t.Errorf("exit %d, stderr %q; want 2 naming ORGSYNC_BATCH", code, errb.String())
	}
}

// The whole operator workflow against a running worker process (in-process):
// sync, inspect and replay dead letters, look up and export the ID map.
func TestOperatorWorkflow(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	natsURL := ns.ClientURL()
	org, err := fakeorg.New(fakeorg.Config{RejectName: "^Bad", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	dataDir := t.TempDir()
	target := []string{"-target-url", srv.URL, "-target-client-id", "demo", "-target-client-secret", "demo-secret"}

	// Start the worker.
	wctx, stopWorker := context.WithCancel(context.Background())
	var werr syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"run", "-nats-url", natsURL, "-data-dir", dataDir, "-worker-id", "w1", "-linger", "20ms"}, target...)
		done <- run(wctx, args, noEnv, nil, &bytes.Buffer{}, &werr)
	}()
	t.Cleanup(func() {
		stopWorker()
		<-done
	})

	// Publish 30 good and 3 bad events.
	q := ns.Queue(t, queue.Config{})
	srcOrg := salesforce.ID18("00D0000000SRC01")
	id := func(i int) string { return salesforce.ID18(fmt.Sprintf("001SRC%09d", i)) }
	for i := range 33 {
		name := fmt.Sprintf("Good %d", i)
		if i >= 30 {
			name = fmt.Sprintf("Bad %d", i)
		}
		ev := event.Event{V: 1, Type: event.TypeAccountCreated, SourceOrg: srcOrg, SourceID: id(i), Fields: map[string]any{"Name": name}}
		body, _ := ev.Encode()
		if _, err := q.Publish(t.Context(), queue.AccountSubject(ev.Change(), ev.SourceID), ev.MsgID(), body, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "30 records and 3 dead letters", func() bool {
		es, err := q.ListDLQ(t.Context())
		return err == nil && len(es) == 3 && org.Stats().Records["Account"] == 30
	})

	// dlq list -json: one object per dead letter with the contract's keys.
	code, out, stderr := runCmd(t, "dlq", "list", "-nats-url", natsURL, "-json")
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("dlq list -json printed %d lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"source_id", "code", "message", "attempts", "failed_at", "stream_seq"} {
			if _, ok := e[k]; !ok {
				t.Errorf("dead letter %s has no %q", l, k)
			}
		}
		if e["code"] != "FIELD_CUSTOM_VALIDATION_EXCEPTION" {
			t.Errorf("code = %v", e["code"])
		}
	}
	code, out, _ = runCmd(t, "dlq", "list", "-nats-url", natsURL)
	if code != 0 || !strings.Contains(out, "3 dead letters") || !strings.Contains(out, id(30)) {
		t.Errorf("dlq list table: exit %d\n%s", code, out)
	}

	// mapping get answers from the running worker's ID map.
	code, out, stderr = runCmd(t, "mapping", "get", "-nats-url", natsURL, id(3))
	if code != 0 {
		t.Fatalf("mapping get: exit %d: %s", code, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["from"] != "worker" || m["target_id"] == "" || m["worker"] != "w1" {
		t.Errorf("mapping get = %s (%v)", out, err)
	}
	targetID := m["target_id"].(string)
	if rec, ok := org.Account(targetID); !ok || rec["Name"] != "Good 3" {
		t.Errorf("mapping points at %v, %v", rec, ok)
	}

	// mapping export while the worker runs: the worker exports its own map.
	code, out, stderr = runCmd(t, "mapping", "export", "-nats-url", natsURL, "-data-dir", dataDir, "-worker-id", "w1", "-format", "json")
	if code != 0 {
		t.Fatalf("mapping export (running): exit %d: %s", code, stderr)
	}
	if n := strings.Count(out, `"source_id"`); n != 30 {
		t.Errorf("export from the running worker has %d mappings, want 30:\n%.300s", n, out)
	}

	// Dry-run replay changes nothing; lifting the rule and replaying syncs all.
	code, out, _ = runCmd(t, "dlq", "replay", "-nats-url", natsURL, "-dry-run")
	if code != 0 || !strings.Contains(out, "dry run: 3 dead letters would be replayed") {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	none := ""
	if err := org.Configure(fakeorg.ConfigPatch{RejectName: &none}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, "dlq", "replay", "-nats-url", natsURL, "-code", "field_custom_validation_exception")
	if code != 0 || !strings.Contains(out, "replayed 3 of 3") {
		t.Errorf("replay: exit %d\n%s", code, out)
	}
	waitFor(t, "33 records, empty DLQ", func() bool {
		es, err := q.ListDLQ(t.Context())
		return err == nil && len(es) == 0 && org.Stats().Records["Account"] == 33
	})

	// Stop the worker: export reads its file, and mapping get falls back to
	// querying the target.
	stopWorker()
	if c := <-done; c != 0 {
		t.Fatalf("worker run exited %d: %s", c, werr.String())
	}
	done <- 0 // for the cleanup
	code, out, stderr = runCmd(t, "mapping", "export", "-data-dir", dataDir, "-worker-id", "w1")
	if code != 0 {
		t.Fatalf("mapping export (stopped): exit %d: %s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 34 || strings.Join(rows[0], ",") != "source_id,target_id,written_at" {
		t.Errorf("csv export: %d rows, %v\n%.300s", len(rows), err, out)
	}
	args := append([]string{"mapping", "get", "-nats-url", natsURL, "-timeout", "200ms"}, append(target, id(31))...)
	code, out, stderr = runCmd(t, args...)
	if code != 0 || !strings.Contains(out, `"from":"target"`) {
		t.Errorf("mapping get fallback: exit %d: %s %s", code, out, stderr)
	}
	args = append([]string{"mapping", "get", "-nats-url", natsURL, "-timeout", "200ms"}, append(target, id(999))...)
	if code, _, stderr = runCmd(t, args...); code != 1 || !strings.Contains(stderr, "no mapping") {
		t.Errorf("unknown source: exit %d: %s", code, stderr)
	}
	if strings.Contains(werr.String(), "demo-secret") {
		t.Error("the worker's log contains the client secret")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One-shot options and filters read no environment (docs/contract.md); the other
// flags do.
func TestOneShotFlagsIgnoreEnvironment(t *testing.T) {
	env := map[string]string{
		"ORGSYNC_FORMAT":  "xml",   // would be a usage error if read
		"ORGSYNC_TIMEOUT": "never", // must be read: a bad value is an error naming it
	}
	getenv := func(k string) string { return env[k] }
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"mapping", "export", "-data-dir", t.TempDir(), "-worker-id", "x"}, getenv, nil, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "ORGSYNC_TIMEOUT") || strings.Contains(errb.String(), "xml") {
		t.Errorf("exit %d, stderr %q: want a usage error naming ORGSYNC_TIMEOUT and nothing about -format", code, errb.String())
	}
}
