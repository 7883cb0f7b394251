package bench

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"orgsync/replicate"
)

// Targets (issue 12; the memory target is issue 7's).
const (
	TargetRecordsPerWrite   = 950    // upsert mode under a backlog, composite packing on
	TargetRecordsPerAPICall = 800    // upsert mode under a backlog: records per counted API call
	TargetSpeedup           = 60     // upsert vs apexrest write-phase rate at 20 ms
	TargetRate0ms           = 40_000 // write-phase records per second at 0 ms on 2 cores
	TargetWorkerCPU         = 15.0   // µs of worker CPU per record, upsert at 0 ms
	TargetMemoryGrowth      = 1.25   // largest / smallest backlog's peak heap, RssAnon ("flat")
	TargetSlotsBusy         = 3.5    // calls in flight of the worker's 4 batch slots, upsert at 20 ms
)

// WriteMarkdown prints the report: the command, the scenario table, the
// upsert/apexrest ratios, the low-load and memory figures and the targets.
func (r *Report) WriteMarkdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	cfg := r.Config
	p("## orgsync benchmark\n\n")
	if cfg.Command != "" {
		p("```sh\n%s\n```\n\n", cfg.Command)
	}
	p("%d CPUs, %s/%s, %s; started %s, took %v. Load average (1 min) at each scenario's start is in the table.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		r.Started.Format(time.RFC3339), r.Took.Round(time.Second))

	if len(r.Scenarios) > 0 {
		p("Backlog scenarios: N events published first (created_at = publish time), then one `worker run` process\n")
		p("with default flags drains them into the fake org (a new JetStream store, org and worker per row).\n")
		if cfg.Processes {
			p("Multi-process mode (-processes): nats-server, the fake org (cmd/fakeorg) and the worker each run as a\n")
			p("process of their own, built from the module, as a user runs them; the bench publishes over NATS and\n")
			p("reads the fake org's counters and records over HTTP.\n")
		}
		if cfg.LatencyPerRecord > 0 {
			p("The fake org adds %v per record written to each write call (-latency-per-record) on top of the target latency.\n", cfg.LatencyPerRecord)
		}
		if cfg.Partitions > 0 {
			p("ORGSYNC has %d partitions (-partitions; the worker's default is 16).\n", cfg.Partitions)
		}
		if cfg.BulkDelay > 0 {
			p("The fake org keeps each closed Bulk job in progress for %v (-bulk-delay).\n", cfg.BulkDelay)
		}
		p("apexrest rows use at most %d records (-apex-records): one callout per record makes larger backlogs\n", cfg.ApexRecords)
		p("take minutes at 150 ms; records/s does not depend on N.\n")
		if r.hasUpdates() {
			p("update rows: the N records are created first by a worker that is not counted; then N account.updated\n")
			p("events (one per record, two fields) are published and a new worker applies them as updates by target\n")
			p("ID. update: the worker has the first one's ID map; update-unmapped: its ID map is empty, so it finds\n")
			p("the target IDs with a query by external ID. Their created→write columns are changed_at → LastModifiedDate.\n")
		}
		p("\n")
		p("| mode | target latency | records | records/s | write-phase records/s | first write after | API calls per record | records per write call | records per counted API call | calls in flight (mean / peak) | p50 created→write | p99 created→write | worker peak RSS | worker CPU per record | bench CPU per record | load |\n")
		p("|---|---|%s\n", strings.Repeat("---:|", 14))
		for _, s := range r.Scenarios {
			recs := fmt.Sprint(s.Records)
			if s.Capped {
				recs = fmt.Sprintf("%d of %d (capped at %v)", s.Written, s.Records, cfg.DurationCap)
			}
			inFlight := fmt.Sprintf("%.1f / %d", s.MeanCalls, s.PeakCalls)
			if s.Processes {
				inFlight = "n/a"
			}
			p("| %s | %v | %s | %s | %s | %v | %.3f | %.1f | %.1f | %s | %v | %v | %.1f MiB | %.0f µs | %.0f µs | %.2f |\n",
				s.Mode, latencyString(s.Latency), recs, thousands(s.RecordsPerSec()), thousands(s.WriteRate()), ms(s.FirstWrite),
				s.CallsPerRecord(), s.RecordsPerWrite(), s.RecordsPerAPICall(), inFlight, ms(s.P50), ms(s.P99), mib(s.Worker.PeakRSSKB),
				perRecord(s.Worker.CPU, s.Written), perRecord(s.BenchCPU, s.Written), s.Load1)
		}
		p("\nrecords/s: records over the time from the worker's start to the backlog drained (all in the target,\n")
		p("all acked); write-phase: between the first and the last target write; first write after: the worker's\n")
		p("start-up (process, NATS, token, consumer) and first fetch. created→write: the event's\n")
		p("created_at to the target record's CreatedDate; in a pre-published backlog it is mostly queueing time.\n")
		p("Records per counted API call: every authenticated call the worker made (writes, /limits, describe, Bulk\n")
		p("polls…; OAuth token requests are not API calls). The per-record pattern makes 1, sObject Collections\n")
		p("peers 200.\n")
		p("Calls in flight: concurrent calls at the fake org, mean while any was in flight (measured in process\n")
		p("only). Worker peak RSS: VmHWM.\n")
		if cfg.Processes {
			p("Worker CPU: user+system of the worker process; bench CPU: this process (publishing, polling) plus\n")
			p("the nats-server and fake org processes.\n\n")
		} else {
			p("Worker CPU: user+system of the worker process; bench CPU: this process (JetStream server, fake org).\n\n")
		}
		if r.hasUpdates() {
			p("Counted calls of the update rows, by route:\n\n")
			for _, sc := range r.Scenarios {
				if isUpdate(sc.Mode) {
					p("- %s at %s: %s", sc.Mode, latencyString(sc.Latency), routes(sc.Routes))
					if len(sc.Subrequests) > 0 {
						p(" (their subrequests: %s)", routes(sc.Subrequests))
					}
					p("\n")
				}
			}
			p("\n")
		}
		if ratios := r.ratios(); len(ratios) > 0 {
			p("upsert vs apexrest rate (write phase, same -max-calls): %s\n\n", strings.Join(ratios, ", "))
		}
	}

	if l := r.LowLoad; l != nil {
		p("Low load: one event every %v for %v (%d events), upsert, fake org latency %v, worker -linger %v:\n\n",
			l.Every, l.For, l.Events, l.Latency, l.Linger)
		p("| p50 created→write | p99 | max | -linger + one call | write calls | records per write call | load |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|\n")
		p("| %v | %v | %v | %v | %d | %.1f | %.2f |\n\n", ms(l.P50), ms(l.P99), ms(l.Max), l.Bound(), l.WriteCalls,
			float64(l.Events)/float64(max(l.WriteCalls, 1)), l.Load1)
	}

	if len(r.Memory) > 0 {
		p("Memory: upsert at 0 ms, worker peak memory as the backlog grows:\n\n")
		p("| backlog | publish (async) | drain | records/s | worker VmHWM | worker peak RssAnon | worker RssFile at end | worker CPU per record | load |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range r.Memory {
			drain := fmt.Sprint(m.Drain.Round(100 * time.Millisecond))
			if m.Capped {
				drain += fmt.Sprintf(" (capped: %d written)", m.Written)
			}
			p("| %s | %v | %s | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.0f µs | %.2f |\n",
				thousands(float64(m.Records)), m.Publish.Round(100*time.Millisecond), drain,
				thousands(float64(m.Written)/m.Drain.Seconds()), mib(m.Worker.PeakRSSKB),
				mib(m.Worker.PeakAnonKB), mib(m.Worker.LastFileKB), perRecord(m.Worker.CPU, m.Written), m.Load1)
		}
		p("\nVmHWM counts file-backed pages too (the binary, and the bbolt ID map, which is mmap'ed and grows with\n")
		p("the records written); RssAnon is the heap and stacks.\n\n")
	}

	p("Targets:\n\n")
	for _, t := range r.Targets() {
		p("- %s\n", t)
	}
}

func (r *Report) hasUpdates() bool {
	return slices.ContainsFunc(r.Scenarios, func(s Scenario) bool { return isUpdate(s.Mode) })
}

// routes is "n × route" for each route, most calls first.
func routes(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if c := m[b] - m[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d × `%s`", m[k], k)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// ratios are "at L: ×R" for each latency with both modes.
func (r *Report) ratios() []string {
	var out []string
	for _, lat := range r.Config.Latencies {
		a, okA := r.find(string(replicate.ModeApexREST), lat)
		u, okU := r.find(string(replicate.ModeUpsert), lat)
		if okA && okU && a.WriteRate() > 0 {
			out = append(out, fmt.Sprintf("%s ×%.0f", latencyString(lat), u.WriteRate()/a.WriteRate()))
		}
	}
	return out
}

func (r *Report) find(mode string, lat time.Duration) (Scenario, bool) {
	for _, s := range r.Scenarios {
		if s.Mode == mode && s.Latency == lat {
			return s, true
		}
	}
	return Scenario{}, false
}

// Targets says, for each target this run measured, "met" or "missed by"
// how much.
func (r *Report) Targets() []string {
	var out []string
	atLeast := func(v, target float64, unit string) string {
		if v >= target {
			return "met"
		}
		return fmt.Sprintf("missed by %s%s (%.0f%% of the target)", thousandsOrRatio(target-v), unit, 100*v/target)
	}
	atMost := func(v, target float64, unit string) string {
		if v <= target {
			return "met"
		}
		return fmt.Sprintf("missed by %.1f%s (%.1f×)", v-target, unit, v/target)
	}
	for _, s := range r.Scenarios {
		out = append(out, fmt.Sprintf("records per counted API call, %s at %s: %.1f (per-record pattern 1, sObject Collections peers 200)",
			s.Mode, latencyString(s.Latency), s.RecordsPerAPICall()))
		if s.Mode != string(replicate.ModeUpsert) {
			continue
		}
		out = append(out, fmt.Sprintf("≥ %d records per write call (upsert at %s): %s (%.1f)",
			TargetRecordsPerWrite, latencyString(s.Latency), atLeast(s.RecordsPerWrite(), TargetRecordsPerWrite, ""), s.RecordsPerWrite()))
		out = append(out, fmt.Sprintf("≥ %d records per counted API call (upsert at %s): %s (%.1f)",
			TargetRecordsPerAPICall, latencyString(s.Latency), atLeast(s.RecordsPerAPICall(), TargetRecordsPerAPICall, ""), s.RecordsPerAPICall()))
	}
	if u, ok := r.find(string(replicate.ModeUpsert), 20*time.Millisecond); ok && !u.Processes {
		out = append(out, fmt.Sprintf("≥ %.1f of 4 batch slots busy at 20 ms (mean calls in flight, upsert): %s (%.1f)",
			TargetSlotsBusy, atLeast(u.MeanCalls, TargetSlotsBusy, ""), u.MeanCalls))
	}
	if a, ok := r.find(string(replicate.ModeApexREST), 20*time.Millisecond); ok {
		if u, ok := r.find(string(replicate.ModeUpsert), 20*time.Millisecond); ok && a.WriteRate() > 0 {
			x := u.WriteRate() / a.WriteRate()
			out = append(out, fmt.Sprintf("≥ ×%d the per-record pattern's rate at 20 ms: %s (×%.1f: %s against %s records/s)",
				TargetSpeedup, atLeast(x, TargetSpeedup, "×"), x, thousands(u.WriteRate()), thousands(a.WriteRate())))
		}
	}
	if u, ok := r.find(string(replicate.ModeUpsert), 0); ok {
		v := u.WriteRate()
		line := fmt.Sprintf("≥ %s records/s at 0 ms on 2 cores: %s (%s records/s in the write phase, %s from the worker's start)",
			thousands(TargetRate0ms), atLeast(v, TargetRate0ms, " records/s"), thousands(v), thousands(u.RecordsPerSec()))
		if runtime.NumCPU() != 2 {
			line += fmt.Sprintf(" — measured on %d CPUs", runtime.NumCPU())
		}
		out = append(out, line)
		c := perRecord(u.Worker.CPU, u.Written)
		out = append(out, fmt.Sprintf("worker CPU ≤ %.0f µs per record (upsert at 0 ms): %s (%.1f µs)",
			TargetWorkerCPU, atMost(c, TargetWorkerCPU, " µs"), c))
	}
	if l := r.LowLoad; l != nil {
		ok := "met"
		if l.P99 > l.Bound() {
			ok = fmt.Sprintf("missed by %v", ms(l.P99-l.Bound()))
		}
		out = append(out, fmt.Sprintf("at low load a record reaches the target within -linger + one call (%v): %s (p50 %v, p99 %v, max %v)",
			l.Bound(), ok, ms(l.P50), ms(l.P99), ms(l.Max)))
	}
	if n := len(r.Memory); n >= 2 {
		// The measure is the heap (RssAnon: heap and stacks); the
		// bbolt ID map is mmap'ed file pages, reclaimable page cache that
		// grows with the records synced, reported per record.
		lo, hi := r.Memory[0], r.Memory[n-1]
		ga := float64(hi.Worker.PeakAnonKB) / float64(max(lo.Worker.PeakAnonKB, 1))
		g := float64(hi.Worker.PeakRSSKB) / float64(max(lo.Worker.PeakRSSKB, 1))
		out = append(out, fmt.Sprintf("worker heap flat from %s to %s events (peak RssAnon within ×%.2f): %s (RssAnon ×%.2f: %.1f → %.1f MiB; VmHWM with the ID map's pages ×%.2f)",
			thousands(float64(lo.Records)), thousands(float64(hi.Records)), TargetMemoryGrowth,
			atMost(ga, TargetMemoryGrowth, "×"), ga, mib(lo.Worker.PeakAnonKB), mib(hi.Worker.PeakAnonKB), g))
		if hi.Written > lo.Written {
			perRec := float64(hi.Worker.LastFileKB-lo.Worker.LastFileKB) * 1024 / float64(hi.Written-lo.Written)
			out = append(out, fmt.Sprintf("ID map page cache (RssFile at the end, mmap'ed bbolt file): %.0f bytes per record synced (%.1f → %.1f MiB)",
				perRec, mib(lo.Worker.LastFileKB), mib(hi.Worker.LastFileKB)))
		}
	}
	return out
}

// thousandsOrRatio formats a shortfall: with separators when large, one
// decimal when small.
func thousandsOrRatio(v float64) string {
	if v >= 100 {
		return thousands(v)
	}
	return fmt.Sprintf("%.1f", v)
}

func latencyString(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func perRecord(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(max(n, 1))
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
