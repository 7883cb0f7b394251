package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestChaosBudget: a target with a small daily API limit; the pool pauses
// before exceeding its share and resumes when the limit is raised, losing
// nothing.
func TestChaosBudget(t *testing.T) {
	skipShort(t)
	// Mostly idle (it waits for the probe and the nak delay): it runs
	// alongside the other chaos tests (go test's -parallel, GOMAXPROCS).
	t.Parallel()
	const (
		n           = 600
		limit       = 60
		budget      = 0.5
		batch       = 10
		concurrency = 1
		workers     = 3
	)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	e := newEnv(t)
	e.startNATS(1)
	e.source = e.startFakeOrg("source")
	e.target = e.startFakeOrg("target", "-daily-api-limit", fmt.Sprint(limit))
	var rs sourceRecords
	if err := e.createSource(ctx, n, 0, 0, &rs); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= workers; i++ {
		// Small calls (no composite packing), so that the budget is reached
		// long before the backlog is written.
		w := e.addWorker(fmt.Sprintf("w%d", i), "-api-budget", fmt.Sprint(budget),
			"-batch", fmt.Sprint(batch), "-composite", "1", "-concurrency", fmt.Sprint(concurrency))
		if err := e.startWorker(w, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e.startProducer()

	// The pool pauses: some worker's /readyz answers 503 …
	pausedAt := time.Duration(0)
	if !eventually(ctx, 60*time.Second, 100*time.Millisecond, func() bool {
		for _, w := range e.workers {
			if httpStatus(w.readyURL()) == 503 {
				pausedAt = time.Since(began)
				return true
			}
		}
		return false
	}) {
		st, _ := e.target.stats(ctx)
		t.Fatalf("the pool never paused: target usage %d/%d, %d records", st.APIUsage, st.DailyAPILimit, st.Records["Account"])
	}
	// … and progress stops once the calls in flight have landed.
	var before fakeStats
	if !eventually(ctx, 15*time.Second, time.Second, func() bool {
		st, err := e.target.stats(ctx)
		if err != nil {
			return false
		}
		same := st.APIUsage == before.APIUsage && st.Records["Account"] == before.Records["Account"]
		before = st
		return same
	}) {
		t.Fatalf("progress did not stop after the pause: %+v", before)
	}
	// Nothing may happen while paused, not even when the workers look again:
	// wait for the next budget probe (GET /limits, which uses no API
	// budget) and compare after it.
	probes := before.ByRoute["GET /limits"]
	if !eventually(ctx, 45*time.Second, 250*time.Millisecond, func() bool {
		st, err := e.target.stats(ctx)
		return err == nil && st.ByRoute["GET /limits"] > probes
	}) {
		t.Fatalf("no budget probe (GET /limits) within 45s of the pause")
	}
	after, err := e.target.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	share := int(float64(limit) * budget)
	bound := share + workers*concurrency
	if after.APIUsage != before.APIUsage || after.Records["Account"] != before.Records["Account"] {
		t.Errorf("the paused pool kept writing: usage %d → %d, records %d → %d",
			before.APIUsage, after.APIUsage, before.Records["Account"], after.Records["Account"])
	}
	if after.APIUsage > bound {
		t.Errorf("target API usage %d exceeds the budget share %d plus the %d calls that can be in flight", after.APIUsage, share, workers*concurrency)
	}
	if got := after.Records["Account"]; got >= n {
		t.Errorf("every record arrived (%d) although the pool paused", got)
	}
	for _, w := range e.workers {
		if c := httpStatus(w.readyURL()); c != 503 {
			t.Errorf("worker %s /readyz answers %d while the pool is paused, want 503", w.id, c)
		}
	}
	if qs, err := e.queueState(ctx); err != nil || qs.dlq != 0 {
		t.Errorf("DLQ while paused: %d entries (err %v), want 0", qs.dlq, err)
	}
	pausedUsage, pausedRecords := after.APIUsage, after.Records["Account"]

	// Raise the limit: the pool resumes and everything arrives.
	raisedAt := time.Now()
	if err := e.target.configure(ctx, map[string]any{"daily_api_limit": 100000}); err != nil {
		t.Fatal(err)
	}
	all, _ := rs.snapshot()
	var firstProgress time.Duration
	if eventually(ctx, 60*time.Second, 100*time.Millisecond, func() bool {
		st, err := e.target.stats(ctx)
		return err == nil && st.Records["Account"] > pausedRecords
	}) {
		firstProgress = time.Since(raisedAt)
	} else {
		t.Errorf("no progress within 60s of raising the limit")
	}
	// What arrives promptly, and what waits for the nak delay of the
	// batches in flight when the pool paused.
	var prompt int
	eventually(ctx, 5*time.Second, 250*time.Millisecond, func() bool {
		st, err := e.target.stats(ctx)
		if err == nil {
			prompt = st.Records["Account"]
		}
		return prompt >= len(all)
	})
	promptWall := time.Since(raisedAt)
	ok, state := e.waitConverged(ctx, len(all), 0, 90*time.Second)
	if !ok {
		t.Errorf("did not converge after the limit was raised: %s", state)
	}
	resumeWall := time.Since(raisedAt)
	for _, w := range e.workers {
		if err := waitHTTP(w.p, w.readyURL(), 30*time.Second); err != nil {
			t.Errorf("worker %s not ready after the resume: %v", w.id, err)
		}
	}
	tl, err := e.accountTarget(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	tl.check(t, "budget")
	final, _ := e.target.stats(ctx)

	var f figures
	f.add("events (source records)", "%d", len(all))
	f.add("target daily API limit", "%d, -api-budget %.1f → share %d; %d workers × %d batch in flight", limit, budget, share, workers, concurrency)
	f.add("paused", "after %s at usage %d with %d records written", pausedAt.Round(time.Millisecond), pausedUsage, pausedRecords)
	f.add("resumed", "first new record %s after the limit was raised; %d/%d records %s after; all %s after",
		firstProgress.Round(time.Millisecond), prompt, len(all), promptWall.Round(time.Millisecond), resumeWall.Round(time.Millisecond))
	f.add("target API calls (total)", "%d", final.APICalls)
	f.add("lost", "%d", len(tl.lost))
	f.add("duplicated", "%d", len(tl.duplicated))
	f.add("wall time", "%s", time.Since(began).Round(time.Millisecond))
	f.print(t, t.Name())
}
