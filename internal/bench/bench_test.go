package bench

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTinyRun runs the three modes on a tiny backlog at 0 ms and a short low-load
// scenario with a real worker process, and checks the report's counts.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the worker")
	}
	dir := t.TempDir()
	bin, err := BuildWorker(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{
		WorkerBin: bin, Dir: dir,
		Records: 400, Latencies: []time.Duration{0}, DurationCap: 30 * time.Second,
		LowLoad: true, LowLoadEvery: 50 * time.Millisecond, LowLoadFor: 500 * time.Millisecond,
		Command: "go run ./cmd/bench -records 400", Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Scenarios) != 3 {
		t.Fatalf("%d scenarios, want 3", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		if s.Capped || s.Written != 400 || s.Records != 400 {
			t.Errorf("%s: %d of %d written, capped %v", s.Mode, s.Written, s.Records, s.Capped)
		}
		if s.P50 <= 0 || s.P99 < s.P50 || s.Max < s.P99 {
			t.Errorf("%s: latencies p50 %v p99 %v max %v", s.Mode, s.P50, s.P99, s.Max)
		}
		if s.Worker.PeakRSSKB <= 0 {
			t.Errorf("%s: worker peak RSS %d KiB", s.Mode, s.Worker.PeakRSSKB)
		}
		if s.RecordsPerSec() <= 0 {
			t.Errorf("%s: %v records/s", s.Mode, s.RecordsPerSec())
		}
		switch s.Mode {
		case "apexrest":
			if s.CallsPerRecord() != 1 || s.WriteCalls != 400 {
				t.Errorf("apexrest: %v calls per record, %d write calls; want 1 and 400", s.CallsPerRecord(), s.WriteCalls)
			}
		case "upsert":
			if s.CallsPerRecord() > 0.01 || s.RecordsPerWrite() < 190 {
				t.Errorf("upsert: %v calls per record, %v records per write call", s.CallsPerRecord(), s.RecordsPerWrite())
			}
		case ModeBulk:
			// One job: create, upload, close, a few polls, three result reads.
			if s.WriteCalls != 1 || s.CallsPerRecord() > 0.1 {
				t.Errorf("bulk: %d jobs, %v calls per record; want 1 job", s.WriteCalls, s.CallsPerRecord())
			}
		}
	}
	l := rep.LowLoad
	if l == nil || l.Events < 5 || l.P50 <= 0 || l.WriteCalls < 1 {
		t.Errorf("low load: %+v", l)
	}
	var out strings.Builder
	rep.WriteMarkdown(&out)
	for _, want := range []string{"go run ./cmd/bench -records 400", "| apexrest | 0 ms | 400 |", "| upsert | 0 ms | 400 |", "| bulk | 0 ms | 400 |",
		"upsert vs apexrest rate", "Low load", "records per write call (upsert at 0 ms)", "records per counted API call"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, time.Duration(i))
	}
	for _, c := range []struct{ p, want int }{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := pct(v, c.p); got != time.Duration(c.want) {
			t.Errorf("pct(%d) = %v, want %v", c.p, got, c.want)
		}
	}
	if pct(nil, 50) != 0 || pct(v[:1], 99) != 1 {
		t.Error("edge cases")
	}
	if got := thousands(1234567.4); got != "1,234,567" {
		t.Errorf("thousands = %q", got)
	}
}

// The targets say "met" or by how much they are missed.
func TestTargets(t *testing.T) {
	r := &Report{Scenarios: []Scenario{
		{Mode: "apexrest", Latency: 20 * time.Millisecond, Written: 2000, APICalls: 2000, WriteCalls: 2000,
			FirstWrite: 0, LastWrite: 5 * time.Second},
		{Mode: "upsert", Latency: 20 * time.Millisecond, Written: 20001, APICalls: 22, WriteCalls: 20,
			FirstWrite: 0, LastWrite: time.Second, MeanCalls: 2.8},
		{Mode: "upsert", Latency: 0, Written: 20001, APICalls: 40, WriteCalls: 30,
			FirstWrite: 0, LastWrite: time.Second, Worker: Usage{CPU: 400 * time.Millisecond}},
	}}
	got := strings.Join(r.Targets(), "\n")
	for _, want := range []string{
		"≥ 950 records per write call (upsert at 20 ms): met (1000.0)",
		"≥ 800 records per counted API call (upsert at 20 ms): met (909.1)",
		"≥ 950 records per write call (upsert at 0 ms): missed by 283 (70% of the target) (666.7)",
		"≥ 800 records per counted API call (upsert at 0 ms): missed by 300 (63% of the target) (500.0)",
		"≥ ×60 the per-record pattern's rate at 20 ms: missed by 10.0× (83% of the target) (×50.0: 20,000 against 400 records/s)",
		"≥ 40,000 records/s at 0 ms on 2 cores: missed by 20,000 records/s (50% of the target)",
		"worker CPU ≤ 15 µs per record (upsert at 0 ms): missed by 5.0 µs (1.3×) (20.0 µs)",
		"records per counted API call, apexrest at 20 ms: 1.0",
		"≥ 3.5 of 4 batch slots busy at 20 ms (mean calls in flight, upsert): missed by 0.7 (80% of the target) (2.8)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets lack %q:\n%s", want, got)
		}
	}
	// Out of process the calls in flight are not measured: no slot verdict.
	for i := range r.Scenarios {
		r.Scenarios[i].Processes = true
	}
	if got := strings.Join(r.Targets(), "\n"); strings.Contains(got, "batch slots") {
		t.Errorf("multi-process targets judge the batch slots:\n%s", got)
	}
}

// TestProcessesRun runs upsert on a tiny backlog with nats-server, the fake
// org and the worker as separate processes, and checks the counts the bench
// read over NATS and HTTP.
func TestProcessesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs nats-server, the fake org and the worker")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the binaries")
	}
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{
		Dir: t.TempDir(), Processes: true, Modes: []string{"upsert"},
		Records: 1500, Latencies: []time.Duration{20 * time.Millisecond}, DurationCap: 60 * time.Second,
		Command: "go run ./cmd/bench -processes", Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("%d scenarios, want 1", len(rep.Scenarios))
	}
	s := rep.Scenarios[0]
	if s.Capped || s.Written != 1500 || !s.Processes {
		t.Errorf("%d of 1500 written, capped %v, processes %v", s.Written, s.Capped, s.Processes)
	}
	// 1,500 events: one composite call of 1,000 and one of 500 (two
	// collections), or smaller calls if a fetch came back early.
	if s.WriteCalls < 2 || s.WriteCalls > 15 {
		t.Errorf("%d write calls for 1500 records", s.WriteCalls)
	}
	if s.LastWrite <= s.FirstWrite || s.WriteRate() <= 0 || s.P50 <= 0 {
		t.Errorf("write phase %v → %v, rate %v, p50 %v", s.FirstWrite, s.LastWrite, s.WriteRate(), s.P50)
	}
	if s.BenchCPU <= 0 || s.Worker.CPU <= 0 {
		t.Errorf("bench CPU %v, worker CPU %v", s.BenchCPU, s.Worker.CPU)
	}
	var out strings.Builder
	rep.WriteMarkdown(&out)
	for _, want := range []string{"Multi-process mode", "| upsert | 20 ms | 1500 |", "| n/a |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestUpdateRun runs the update modes on a small backlog at 0 ms, ORGSYNC
// with 4 partitions: the
// records are created first (not counted), then each gets one
// account.updated event, written as an update by target ID, found in the
// ID map (update) or with a query by external ID (update-unmapped).
func TestUpdateRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the worker")
	}
	dir := t.TempDir()
	bin, err := BuildWorker(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{
		WorkerBin: bin, Dir: dir, Modes: []string{ModeUpdate, ModeUpdateUnmapped},
		Records: 400, Latencies: []time.Duration{0}, DurationCap: 60 * time.Second, Partitions: 4,
		Command: "go run ./cmd/bench -modes update,update-unmapped -records 400 -partitions 4", Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Scenarios) != 2 {
		t.Fatalf("%d scenarios, want 2", len(rep.Scenarios))
	}
	const (
		update = "PATCH /composite/sobjects"
		upsert = "PATCH /composite/sobjects/Account/{field}"
	)
	for _, s := range rep.Scenarios {
		if s.Capped || s.Written != 400 {
			t.Errorf("%s: %d of 400 updates in the target, capped %v", s.Mode, s.Written, s.Capped)
		}
		// ≤ 200 records per collections update, alone or in composite
		// calls; none written as an upsert (the first phase's creates are
		// not counted).
		if n := s.Routes[update] + s.Subrequests[update]; n < 2 || s.Routes[update]+s.Routes["POST /composite"] != s.WriteCalls {
			t.Errorf("%s: %d collections updates, %d write calls; want at least 2, all updates or composite (routes %v, subrequests %v)",
				s.Mode, n, s.WriteCalls, s.Routes, s.Subrequests)
		}
		if s.Routes[upsert]+s.Subrequests[upsert] != 0 {
			t.Errorf("%s: upserts counted: %v, subrequests %v", s.Mode, s.Routes, s.Subrequests)
		}
		queries := s.Routes["GET /query"] + s.Routes["GET /queryAll"] + s.Subrequests["GET /query"] + s.Subrequests["GET /queryAll"]
		switch s.Mode {
		case ModeUpdate:
			if queries != 0 {
				t.Errorf("update: %d queries with the records in the ID map (routes %v)", queries, s.Routes)
			}
		case ModeUpdateUnmapped:
			if queries < 1 {
				t.Errorf("update-unmapped: no query to find the target IDs (routes %v)", s.Routes)
			}
		}
		if s.LastWrite < s.FirstWrite || s.P50 <= 0 || s.Worker.CPU <= 0 {
			t.Errorf("%s: write phase %v → %v, p50 %v, worker CPU %v", s.Mode, s.FirstWrite, s.LastWrite, s.P50, s.Worker.CPU)
		}
	}
	var out strings.Builder
	rep.WriteMarkdown(&out)
	for _, want := range []string{"| update | 0 ms | 400 |", "| update-unmapped | 0 ms | 400 |",
		"Counted calls of the update rows, by route", "update-unmapped at 0 ms: ", "× `" + update + "`",
		"ORGSYNC has 4 partitions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
