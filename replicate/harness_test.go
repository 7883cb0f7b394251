package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

// harness is an embedded JetStream server, a fake target org behind an
// httptest server, and workers started on them.
type harness struct {
	t      testing.TB
	q      *queue.Queue
	org    *fakeorg.Org
	srv    *httptest.Server
	srcOrg string
	// tokens counts requests to the fake's token endpoint (logins).
	tokens atomic.Int64
	// composite is the workers' -composite (0: the default).
	composite int
	// src is the source org of withSource, if any.
	src *sourceOrg
	// middleware, when set, stands between the workers and the target.
	middleware func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

// bothPackings runs an exactness test with composite packing off (1) and
// at its default (5).
func bothPackings(t *testing.T, test func(t *testing.T, composite int)) {
	for _, c := range []int{1, DefaultComposite} {
		t.Run(fmt.Sprintf("composite=%d", c), func(t *testing.T) { test(t, c) })
	}
}

func newHarness(t testing.TB, orgCfg fakeorg.Config, qcfg queue.Config) *harness {
	t.Helper()
	ns := queuetest.Start(t, queuetest.Config{})
	if orgCfg.Seed == 0 {
		orgCfg.Seed = 1
	}
	org, err := fakeorg.New(orgCfg)
	if err != nil {
		t.Fatal(err)
	}
	q := ns.Queue(t, qcfg)
	h := &harness{t: t, q: q, org: org, srcOrg: salesforce.ID18("00D0000000SRC01")}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			h.tokens.Add(1)
		}
		if h.middleware != nil {
			h.middleware(w, r, org)
			return
		}
		org.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// sourceID returns the i-th source Account ID of the test's source org.
func sourceID(i int) string {
	return salesforce.ID18(fmt.Sprintf("001SRC%09d", i))
}

// publish publishes a created event for each name, with source IDs from
// sourceID(first…), and returns the events.
func (h *harness) publish(first int, names ...string) []event.Event {
	h.t.Helper()
	evs := make([]event.Event, len(names))
	for i, n := range names {
		evs[i] = h.created(sourceID(first+i), n, "")
		h.publishEvent(evs[i], "")
	}
	return evs
}

func (h *harness) created(id, name, parent string) event.Event {
	fields := map[string]any{"Name": name, "Industry": "Testing"}
	if parent != "" {
		fields["ParentId"] = parent
	}
	return event.Event{V: 1, Type: event.TypeAccountCreated, SourceOrg: h.srcOrg, SourceID: id,
		CreatedAt: time.Now().UTC(), Fields: fields}
}

// publishEvent publishes ev; msgID "" means the event's own dedup key.
func (h *harness) publishEvent(ev event.Event, msgID string) {
	h.t.Helper()
	body, err := ev.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	if msgID == "" {
		msgID = ev.MsgID()
	}
	if _, err := h.q.Publish(h.t.Context(), queue.AccountSubject(ev.Change(), ev.SourceID), msgID, body, nil); err != nil {
		h.t.Fatal(err)
	}
}

// runningWorker is a worker started by the harness.
type runningWorker struct {
	w      *Worker
	parts  *queue.Partitions
	store  *store.Store
	cancel context.CancelFunc
	done   chan error
	// stopParts ends the partitions' Run (after the engine's), partsDone
	// receives its result.
	stopParts context.CancelFunc
	partsDone chan error
	once      sync.Once
}

// stop shuts the worker down gracefully and closes its store.
func (rw *runningWorker) stop(t testing.TB) {
	rw.once.Do(func() {
		rw.cancel()
		select {
		case err := <-rw.done:
			if err != nil {
				t.Errorf("worker Run: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("worker did not stop")
		}
		rw.stopParts()
		select {
		case err := <-rw.partsDone:
			if err != nil {
				t.Errorf("partitions Run: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("the worker's partitions did not stop")
		}
		rw.store.Close()
	})
}

// startWorker starts a worker named id with good credentials; mutate
// adjusts its config.
func (h *harness) startWorker(id string, mutate func(*Config)) *runningWorker {
	h.t.Helper()
	return h.startWorkerAuth(id, salesforce.AuthConfig{URL: h.srv.URL, ClientID: "demo", ClientSecret: "demo-secret"}, mutate)
}

// startWorkerAuth starts a worker named id with the given credentials.
func (h *harness) startWorkerAuth(id string, ac salesforce.AuthConfig, mutate func(*Config)) *runningWorker {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	auth, err := salesforce.NewAuth(ctx, ac)
	if err != nil {
		h.t.Fatal(err)
	}
	client, err := salesforce.NewClient(salesforce.Config{Auth: auth, CallOptions: "client=orgsync"})
	if err != nil {
		h.t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(h.t.TempDir(), "worker-"+id+".db"), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	parts, err := h.q.Partitions(ctx, queue.PartitionsConfig{WorkerID: id})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := Config{
		Queue: h.q, Feed: PartitionFeed(parts), Target: client, Auth: auth, Store: st,
		Linger: 50 * time.Millisecond, AckWait: h.q.Config().AckWait, WorkerID: id,
		CallRetry: 2 * time.Second, PauseFor: 2 * time.Second, ProbeInterval: 100 * time.Millisecond,
		Composite: h.composite,
	}
	if os.Getenv("ORGSYNC_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("worker", id)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	pctx, stopParts := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, parts: parts, store: st, cancel: cancel, done: make(chan error, 1),
		stopParts: stopParts, partsDone: make(chan error, 1)}
	go func() { rw.partsDone <- parts.Run(pctx) }()
	go func() { rw.done <- w.Run(ctx) }()
	h.t.Cleanup(func() { rw.stop(h.t) })
	return rw
}

// waitFor polls cond until it holds or the deadline passes.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// targetBySource groups the target's Accounts by external ID.
func (h *harness) targetBySource() map[string][]fakeorg.Record {
	out := map[string][]fakeorg.Record{}
	for _, r := range h.org.Accounts() {
		id, _ := r["Source_Id__c"].(string)
		out[strings.ToUpper(id)] = append(out[strings.ToUpper(id)], r)
	}
	return out
}

// dlq lists the dead letters.
func (h *harness) dlq() []queue.Entry {
	h.t.Helper()
	es, err := h.q.ListDLQ(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

// settled reports whether the work queue is empty: every event acked or
// dead-lettered.
func (h *harness) settled() bool {
	b, err := h.q.Backlog(h.t.Context())
	return err == nil && b.Pending == 0 && b.AckPending == 0 && b.Oldest.IsZero()
}

// assertExactlyOnce checks that every source ID in want is in the target
// exactly once with the wanted name, and nothing else is.
func (h *harness) assertExactlyOnce(want map[string]string) {
	h.t.Helper()
	got := h.targetBySource()
	for id, name := range want {
		recs := got[strings.ToUpper(id)]
		if len(recs) != 1 {
			h.t.Errorf("source %s: %d records in the target, want 1", id, len(recs))
			continue
		}
		if recs[0]["Name"] != name {
			h.t.Errorf("source %s: Name = %v, want %q", id, recs[0]["Name"], name)
		}
	}
	for id, recs := range got {
		if _, ok := want[id]; !ok {
			h.t.Errorf("unexpected target record(s) for source %q: %d", id, len(recs))
		}
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %04d", prefix, i)
	}
	return out
}
