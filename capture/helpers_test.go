package capture_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/capture"
	"orgsync/event"
	"orgsync/internal/natsembed"
	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

// env is an embedded JetStream server with orgsync's streams and a fake
// source org behind an httptest server.
type env struct {
	t   *testing.T
	emb *natsembed.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	q   *queue.Queue
	org *fakeorg.Org
	srv *httptest.Server
}

func newEnv(t *testing.T, orgCfg fakeorg.Config) *env {
	t.Helper()
	ns := queuetest.Start(t, queuetest.Config{})
	q := ns.Queue(t, queue.Config{})
	if orgCfg.Seed == 0 {
		orgCfg.Seed = 1
	}
	org, err := fakeorg.New(orgCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	return &env{t: t, emb: ns.Server, nc: ns.Conn, js: ns.JS, q: q, org: org, srv: srv}
}

// client returns a client-credentials client of the fake source org.
func (e *env) client() *salesforce.Client {
	e.t.Helper()
	auth, err := salesforce.NewAuth(context.Background(), salesforce.AuthConfig{
		URL: e.srv.URL, ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: auth, CallOptions: "client=orgsync"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// poller builds a poller on a store at path; mutate adjusts its config.
// The store is closed when the test ends (or by the caller, to restart).
func (e *env) poller(path string, mutate func(*capture.PollerConfig)) (*capture.Poller, *store.Store) {
	e.t.Helper()
	st := openStore(e.t, path)
	e.t.Cleanup(func() { st.Close() })
	cfg := capture.PollerConfig{Client: e.client(), Queue: e.q, Store: st, RateLimit: -1,
		SkipField: capture.DefaultSkipField}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := capture.NewPoller(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p, st
}

// insert seeds n accounts named prefix-i created at at(i) and returns their IDs.
func (e *env) insert(prefix string, n int, at func(i int) time.Time, extra fakeorg.Record) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range n {
		rec := fakeorg.Record{"Name": fmt.Sprintf("%s-%05d", prefix, i), "Industry": "Testing", "Phone": "555-0100"}
		for k, v := range extra {
			rec[k] = v
		}
		id, err := e.org.InsertAccount(rec, at(i))
		if err != nil {
			e.t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// stored reads every message of ORGSYNC and returns the events by source
// ID, with how many messages each has.
func (e *env) stored() (map[string]event.Event, map[string]int) {
	e.t.Helper()
	ctx := e.t.Context()
	s, err := e.js.Stream(ctx, queue.Stream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	evs, counts := map[string]event.Event{}, map[string]int{}
	if info.State.Msgs == 0 {
		return evs, counts
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			e.t.Fatalf("seq %d: %v", seq, err)
		}
		if h := m.Header.Get(queue.HeaderSourceID); h != ev.SourceID {
			e.t.Errorf("seq %d: %s header %q, want %q", seq, queue.HeaderSourceID, h, ev.SourceID)
		}
		if h := m.Header.Get(queue.HeaderMsgID); h != ev.MsgID() {
			e.t.Errorf("seq %d: Nats-Msg-Id %q, want %q", seq, h, ev.MsgID())
		}
		evs[ev.SourceID] = ev
		counts[ev.SourceID]++
	}
	return evs, counts
}

// assertStored checks that ORGSYNC holds exactly one message for each of
// ids and nothing else.
func (e *env) assertStored(ids []string) {
	e.t.Helper()
	_, counts := e.stored()
	want := map[string]bool{}
	for _, id := range ids {
		n, err := salesforce.NormalizeID(id)
		if err != nil {
			e.t.Fatal(err)
		}
		want[n] = true
		if counts[n] != 1 {
			e.t.Errorf("source %s: %d messages, want 1", n, counts[n])
		}
	}
	extra := 0
	for id := range counts {
		if !want[id] {
			extra++
		}
	}
	if extra > 0 {
		e.t.Errorf("%d unexpected source IDs in the stream", extra)
	}
	if len(counts) != len(want) {
		e.t.Errorf("got %d distinct source IDs in the stream, want %d", len(counts), len(want))
	}
}

func (e *env) dbPath() string { return filepath.Join(e.t.TempDir(), "producer.db") }

// recorder is a Publisher that records publishes and can fail.
type recorder struct {
	mu      sync.Mutex
	msgs    map[string][]byte
	calls   int
	failAt  int // fail the failAt-th call and later ones (0: never)
	failErr error
}

func (r *recorder) Publish(_ context.Context, subject, msgID string, body []byte, hdr nats.Header) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failAt > 0 && r.calls >= r.failAt {
		return false, r.failErr
	}
	if !validPublish(subject, msgID, hdr) {
		return false, fmt.Errorf("bad publish: subject %q msg id %q", subject, msgID)
	}
	if r.msgs == nil {
		r.msgs = map[string][]byte{}
	}
	_, dup := r.msgs[msgID]
	r.msgs[msgID] = body
	return dup, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// validPublish reports whether a publish goes to the subject of its event,
// orgsync.account.<change>.<source_id>, with the source ID header and a
// dedup key of that change: "…:created", or "…:<change>:<change_key>".
func validPublish(subject, msgID string, hdr nats.Header) bool {
	id := hdr.Get(queue.HeaderSourceID)
	for _, change := range []string{event.ChangeCreated, event.ChangeUpdated, event.ChangeDeleted, event.ChangeUndeleted} {
		if id == "" || subject != queue.AccountSubject(change, id) {
			continue
		}
		if change == event.ChangeCreated {
			return strings.HasSuffix(msgID, ":"+id+":created")
		}
		return strings.Contains(msgID, ":"+id+":"+change+":")
	}
	return false
}
