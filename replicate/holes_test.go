package replicate

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

// flakyMap is an ID map whose writes fail while fail is set.
type flakyMap struct {
	IDMap
	fail     atomic.Bool
	failures atomic.Int64
}

func (f *flakyMap) PutMappings(ms []store.Mapping) error {
	if f.fail.Load() {
		f.failures.Add(1)
		return errors.New("bbolt: disk full")
	}
	return f.IDMap.PutMappings(ms)
}

// A record the target accepted is never written again because of a local
// failure: with the ID map failing after a create, the records are held,
// the worker says why it is not ready, and nothing is created twice.
func TestIDMapFailureDoesNotRewrite(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	ns := names("Held", 20)
	h.publish(0, ns...)
	fm := &flakyMap{}
	fm.fail.Store(true)
	w := h.startWorker("a", func(c *Config) { c.Mode = ModeCreate; fm.IDMap = c.Store; c.Store = fm })
	h.waitFor("several failed map writes", 30*time.Second, func() bool { return fm.failures.Load() >= 3 })
	if err := w.w.Ready(); err == nil || !strings.Contains(err.Error(), "id map") {
		t.Errorf("Ready() = %v, want the id map named", err)
	}
	// The events of a batch's partitions are written once and held; other
	// partitions' events wait (a held worker takes no new batch).
	if n := h.org.Stats().Records["Account"]; n == 0 || n > len(ns) {
		t.Errorf("%d records in the target while the map fails, want 1..%d (each once)", n, len(ns))
	}
	fm.fail.Store(false)
	h.waitFor("settled", 30*time.Second, h.settled)
	if n := h.org.Stats().Records["Account"]; n != len(ns) {
		t.Errorf("%d records in the target, want %d", n, len(ns))
	}
	if err := w.w.Ready(); err != nil {
		t.Errorf("Ready() = %v after the map recovered", err)
	}
	known, err := w.store.Lookup([]string{sourceID(0), sourceID(19)})
	if err != nil || len(known) != 2 {
		t.Errorf("id map has %d of 2 (%v)", len(known), err)
	}
}

// A link event that cannot be published after a create holds the record
// instead of writing it again.
func TestLinkPublishFailureDoesNotRewrite(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	parent := sourceID(900)
	h.publishEvent(h.created(sourceID(1), "Child", parent), "")
	var fail atomic.Bool
	var failures atomic.Int64
	fail.Store(true)
	h.startWorker("a", func(c *Config) {
		c.Mode = ModeCreate
		c.linkPublish = func() error {
			if fail.Load() {
				failures.Add(1)
				return errors.New("nats: timeout")
			}
			return nil
		}
	})
	h.waitFor("failed link publishes", 30*time.Second, func() bool { return failures.Load() >= 3 })
	if n := h.org.Stats().Records["Account"]; n != 1 {
		t.Errorf("%d records while the link cannot be published, want 1", n)
	}
	fail.Store(false)
	h.publishEvent(h.created(parent, "Parent", ""), "")
	h.waitFor("child linked", 30*time.Second, func() bool {
		for _, r := range h.org.Accounts() {
			if r["Name"] == "Child" && r["ParentId"] != nil {
				return h.settled()
			}
		}
		return false
	})
	if n := h.org.Stats().Records["Account"]; n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

// A Bulk job refused at creation (the external ID field missing) pauses
// the pool like any configuration error: one job creation, no bisecting
// into more jobs, nothing dead-lettered however long it lasts.
func TestBulkJobRefusedPauses(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.publish(0, names("Bulk refused", 400)...)
	w := h.startWorker("a", func(c *Config) {
		c.ExternalIDField = "Missing_Id__c"
		c.BulkThreshold, c.BulkBatch, c.MaxDeliver = 100, 400, 2
	})
	h.waitFor("ten probes of the field", 30*time.Second, func() bool {
		return h.org.Stats().ByRoute["GET /sobjects/Account/describe"] >= 10
	})
	st := h.org.Stats()
	if jobs := st.ByRoute["POST /jobs/ingest"]; jobs != 1 {
		t.Errorf("%d bulk jobs created, want 1 (then pause)", jobs)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
	if err := w.w.Ready(); err == nil || !strings.Contains(err.Error(), "external_id_field") {
		t.Errorf("Ready() = %v, want the cause", err)
	}
}

// A Bulk job that fails as a whole (a column the target does not know)
// falls back to collections calls: the good records land, the bad ones are
// dead-lettered with the record's own error, not as MAX_DELIVERIES.
func TestBulkJobFailedFallsBack(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	good := names("Good", 300)
	h.publish(0, good...)
	bad := h.created(sourceID(5000), "Bad column", "")
	bad.Fields["Bogus__c"] = "x"
	h.publishEvent(bad, "")
	h.startWorker("a", func(c *Config) { c.BulkThreshold, c.BulkBatch, c.MaxDeliver = 100, 400, 3 })
	h.waitFor("settled", 60*time.Second, h.settled)
	h.assertExactlyOnce(wantNames(0, good))
	d := h.dlq()
	if len(d) != 1 || d[0].SourceID != sourceID(5000) || d[0].Code != "INVALID_FIELD" {
		t.Errorf("DLQ = %+v, want the bad record alone as INVALID_FIELD", d)
	}
	if jobs := h.org.Stats().ByRoute["POST /jobs/ingest"]; jobs != 1 {
		t.Errorf("%d bulk jobs, want 1 (then collections)", jobs)
	}
}

// A write answered by a redirect (the seed's 302s) pauses the pool; the
// probe checks the write URL without following the redirect, so the pool
// stays paused while it lasts, and the held messages use up no deliveries:
// once the URL works, everything lands and nothing is dead-lettered.
func TestRedirectPauseUsesNoDeliveries(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	var probes atomic.Int64
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/composite/sobjects/Account/Source_Id__c") {
			probes.Add(1)
		}
		h.org.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	oldHost := strings.TrimPrefix(old.URL, "http://")
	if err := h.org.Configure(fakeorg.ConfigPatch{RedirectHosts: map[string]string{oldHost: h.srv.URL}}); err != nil {
		t.Fatal(err)
	}
	ns := names("Redirected", 30)
	h.publish(0, ns...)
	w := h.startWorkerAuth("a", salesforce.AuthConfig{AccessToken: h.org.IssueAccessToken(), InstanceURL: old.URL},
		func(c *Config) { c.MaxDeliver = 2 })
	h.waitFor("twenty probes of the write URL", 30*time.Second, func() bool { return probes.Load() >= 20 })
	if p, err := h.q.PoolState(t.Context()); err != nil || len(p.Causes) != 1 || p.Causes[0].Kind != "redirect" || p.Causes[0].Worker != "a" {
		t.Errorf("pool state = %+v, %v; want one redirect cause set by a", p, err)
	}
	if err := w.w.Ready(); err == nil || !strings.Contains(err.Error(), "configure") {
		t.Errorf("Ready() = %v, want the URL to configure", err)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("DLQ has %d entries during the pause", len(d))
	}
	if err := h.org.Configure(fakeorg.ConfigPatch{RedirectHosts: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("settled", 30*time.Second, h.settled)
	h.assertExactlyOnce(wantNames(0, ns))
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0: %+v", len(d), d[0])
	}
}

// Probes during a budget pause do not log in: only an auth stop needs a
// fresh token (Salesforce limits logins per user).
func TestBudgetProbesDoNotLogIn(t *testing.T) {
	h := newHarness(t, fakeorg.Config{DailyAPILimit: 10}, queue.Config{})
	h.publish(0, names("Budget", 50)...)
	h.startWorker("a", func(c *Config) { c.APIBudget = 0.5; c.Batch = 5; c.Composite = 1; c.Concurrency = 1 })
	h.waitFor("twenty limit probes", 30*time.Second, func() bool { return h.org.Stats().ByRoute["GET /limits"] >= 20 })
	if n := h.tokens.Load(); n > 2 {
		t.Errorf("%d token requests during a budget pause of 20 probes, want at most 2", n)
	}
}

// Pause causes are kept apart: a later cause does not hide an earlier one,
// and each ends only by its own probe.
func TestPauseCausesKeptApart(t *testing.T) {
	h := newHarness(t, fakeorg.Config{DailyAPILimit: 100}, queue.Config{})
	h.publish(0, "Waiting")
	rw := h.startWorker("a", func(c *Config) { c.ExternalIDField = "Missing_Id__c"; c.APIBudget = 0.5 })
	w := rw.w
	h.waitFor("a pause for the field", 10*time.Second, func() bool {
		p, err := h.q.PoolState(t.Context())
		return err == nil && len(p.Causes) == 1 && p.Causes[0].Kind == "external_id_field"
	})
	// A budget cause on top of it (as if a usage header had crossed the
	// budget): its probe passes (the fake's usage is low), the field's does not.
	w.pausePool(t.Context(), kindBudget, errors.New("60 of 100 daily calls used"))
	h.waitFor("the budget cause cleared", 10*time.Second, func() bool {
		p, err := h.q.PoolState(t.Context())
		return err == nil && len(p.Causes) == 1 && !strings.Contains(w.Ready().Error(), "budget")
	})
	p, err := h.q.PoolState(t.Context())
	if err != nil || !p.Paused || p.Causes[0].Kind != "external_id_field" {
		t.Errorf("pool = %+v, %v; want still paused for the field", p, err)
	}
	if err := w.Ready(); err == nil || !strings.Contains(err.Error(), "external_id_field") {
		t.Errorf("Ready() = %v", err)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
}

// One misconfigured worker (a wrong client secret) stops itself and leaves
// the pool running: the good workers sync everything, the pool is never
// paused, and the bad worker says why it is not ready.
func TestBadCredentialsStopOnlyThatWorker(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	bad := h.startWorkerAuth("bad", salesforce.AuthConfig{URL: h.srv.URL, ClientID: "demo", ClientSecret: "wrong"}, nil)
	h.waitFor("the bad worker stopped", 10*time.Second, func() bool { return bad.w.Ready() != nil })
	good1 := h.startWorker("good1", nil)
	good2 := h.startWorker("good2", nil)
	ns := names("Pool", 200)
	h.publish(0, ns...)
	h.waitFor("settled", 30*time.Second, h.settled)
	h.assertExactlyOnce(wantNames(0, ns))
	if p, err := h.q.PoolState(t.Context()); err != nil || p.Paused || len(p.Causes) != 0 {
		t.Errorf("pool state = %+v, %v; want running", p, err)
	}
	if err := bad.w.Ready(); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Errorf("bad worker Ready() = %v, want its auth failure", err)
	}
	for _, g := range []*runningWorker{good1, good2} {
		if err := g.w.Ready(); err != nil {
			t.Errorf("good worker Ready() = %v", err)
		}
	}
}

// A target that cannot be reached (a wrong port) is reported as such, not
// as an auth failure.
func TestUnreachableTargetIsNotAuth(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	closed := httptest.NewServer(h.org)
	url := closed.URL
	closed.Close()
	w := h.startWorkerAuth("a", salesforce.AuthConfig{URL: url, ClientID: "demo", ClientSecret: "demo-secret"}, nil)
	h.waitFor("not ready", 10*time.Second, func() bool { return w.w.Ready() != nil })
	err := w.w.Ready()
	if !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "auth") {
		t.Errorf("Ready() = %v, want unreachable and not auth", err)
	}
}

// A deleted consumer is created again by a running pool, which goes on
// syncing.
func TestDeletedConsumerRecreated(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.startWorker("a", nil)
	h.startWorker("b", nil)
	first := names("Before", 20)
	h.publish(0, first...)
	h.waitFor("first settled", 30*time.Second, func() bool { return h.org.Stats().Records["Account"] == len(first) && h.settled() })
	if err := h.q.DeleteConsumer(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := names("After", 20)
	h.publish(100, second...)
	h.waitFor("second batch synced", 30*time.Second, func() bool {
		return h.org.Stats().Records["Account"] == len(first)+len(second)
	})
	want := wantNames(0, first)
	for k, v := range wantNames(100, second) {
		want[k] = v
	}
	h.waitFor("settled", 30*time.Second, h.settled)
	h.assertExactlyOnce(want)
}

// A pool pause names the worker that set it, every worker shows it, and
// when that worker is gone the survivors probe its cause themselves and
// clear it once their probe passes.
func TestSurvivorClearsPauseOfGoneWorker(t *testing.T) {
	h := newHarness(t, fakeorg.Config{}, queue.Config{})
	h.publish(0, "Stranded")
	a := h.startWorker("a", func(c *Config) { c.ExternalIDField = "Missing_Id__c" })
	h.waitFor("a's pause", 10*time.Second, func() bool {
		p, err := h.q.PoolState(t.Context())
		return err == nil && len(p.Causes) == 1 && p.Causes[0].Worker == "a"
	})
	b := h.startWorker("b", nil)
	h.waitFor("b holding back for a's cause", 10*time.Second, func() bool {
		err := b.w.Ready()
		return err != nil && strings.Contains(err.Error(), "set by a")
	})
	a.stop(t) // a is gone; its cause stays recorded
	h.waitFor("b clears the cause and syncs", 30*time.Second, func() bool {
		return h.org.Stats().Records["Account"] == 1 && h.settled()
	})
	h.assertExactlyOnce(wantNames(0, []string{"Stranded"}))
	if p, err := h.q.PoolState(t.Context()); err != nil || p.Paused || len(p.Causes) != 0 {
		t.Errorf("pool state = %+v, %v; want running", p, err)
	}
	if err := b.w.Ready(); err != nil {
		t.Errorf("b: Ready() = %v", err)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ has %d entries, want 0", len(d))
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The worker logs one INFO line per batch that says how its messages were
// settled: written, dead-lettered, retried — not every record as written.
func TestBatchLogLineCountsOutcomes(t *testing.T) {
	h := newHarness(t, fakeorg.Config{RejectName: "^Reject"}, queue.Config{})
	h.publish(0, "Good 1", "Good 2", "Reject me", "Good 3")
	var logs syncBuffer
	h.startWorker("a", func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	counts := func() (written, dead int64) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct {
				Msg          string `json:"msg"`
				Written      int64  `json:"written"`
				DeadLettered int64  `json:"dead_lettered"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "batch settled" {
				continue
			}
			written += rec.Written
			dead += rec.DeadLettered
		}
		return written, dead
	}
	// The line follows the acks: wait for it, not only for the queue.
	h.waitFor("the batch lines", 30*time.Second, func() bool { w, d := counts(); return h.settled() && w+d >= 4 })
	written, dead := counts()
	if written != 3 || dead != 1 {
		t.Errorf("batch settled lines say %d written, %d dead-lettered; want 3 and 1\n%s", written, dead, logs.String())
	}
}
