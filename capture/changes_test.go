package capture_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/capture"
	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

// clock is a settable clock shared by a fake org and a poller.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0.Add(time.Hour)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// streamed is one message of ORGSYNC, decoded.
type streamed struct {
	subject string
	msgID   string
	ev      event.Event
}

// messages returns every message of ORGSYNC in stream order.
func (e *env) messages() []streamed {
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
	var out []streamed
	if info.State.Msgs == 0 {
		return nil
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
		out = append(out, streamed{subject: m.Subject, msgID: m.Header.Get(queue.HeaderMsgID), ev: ev})
	}
	return out
}

// allPoller is a -changes all poller copying Name, Phone and Industry.
func (e *env) allPoller(path string, mutate func(*capture.PollerConfig)) (*capture.Poller, *store.Store) {
	e.t.Helper()
	fields, err := event.ParseFields("Name,Phone,Industry")
	if err != nil {
		e.t.Fatal(err)
	}
	return e.poller(path, func(c *capture.PollerConfig) {
		c.Changes, c.Fields = capture.ChangesAll, fields
		if mutate != nil {
			mutate(c)
		}
	})
}

func once(t *testing.T, p *capture.Poller) capture.Stats {
	t.Helper()
	st, err := p.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A record's lifecycle through `-changes all`: created, updated, deleted;
// another's change of a field that is not copied publishes nothing. Each
// change is one event on its record's subject, with a dedup key of its own;
// a poll that re-reads the overlap without the hashes (a crash before they
// were saved) publishes duplicates that JetStream drops.
func TestPollerAll_Lifecycle(t *testing.T) {
	clk := newClock()
	e := newEnv(t, fakeorg.Config{Now: clk.Now})
	c := e.client()
	ctx := t.Context()
	a := e.insert("a", 1, func(int) time.Time { return clk.Now().Add(-10 * time.Minute) }, nil)[0]
	path := e.dbPath()
	p, st := e.allPoller(path, func(c *capture.PollerConfig) { c.Now = clk.Now })

	if got := once(t, p); got.Published != 1 {
		t.Fatalf("first cycle: %+v, want 1 published (the create)", got)
	}
	clk.Advance(time.Second)
	if err := c.Update(ctx, "Account", a, salesforce.Record{"Name": "a renamed", "Phone": nil}); err != nil {
		t.Fatal(err)
	}
	if got := once(t, p); got.Published != 1 {
		t.Fatalf("after the update: %+v, want 1 published", got)
	}

	// A poller that lost its hashes re-reads the overlap: duplicates only.
	st2 := openStore(t, e.dbPath())
	t.Cleanup(func() { st2.Close() })
	if err := st2.SetCheckpoint(capture.CheckpointName(e.org.OrgID()), p.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	fields, _ := event.ParseFields("Name,Phone,Industry")
	again, err := capture.NewPoller(capture.PollerConfig{Client: c, Queue: e.q, Store: st2, RateLimit: -1,
		Changes: capture.ChangesAll, Fields: fields, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := once(t, again); got.Published != 0 || got.Duplicates != 1 {
		t.Errorf("re-read of the overlap without hashes: %+v, want 0 published and 1 duplicate", got)
	}

	clk.Advance(time.Second)
	if err := c.Delete(ctx, "Account", a); err != nil {
		t.Fatal(err)
	}
	b := e.insert("b", 1, func(int) time.Time { return time.Time{} }, nil)[0]
	// Get Deleted covers whole minutes: the delete's minute must be over.
	clk.Advance(time.Minute)
	if got := once(t, p); got.Published != 2 {
		t.Fatalf("after the delete and a create: %+v, want 2 published", got)
	}
	clk.Advance(time.Second)
	if err := c.Update(ctx, "Account", b, salesforce.Record{"Website": "https://b.example"}); err != nil {
		t.Fatal(err)
	}
	if got := once(t, p); got.Published != 0 || got.Duplicates != 0 {
		t.Errorf("after a change of a field not copied: %+v, want nothing published", got)
	}
	clk.Advance(time.Minute)
	if got := once(t, p); got.Published != 0 || got.Duplicates != 0 {
		t.Errorf("a quiet cycle: %+v, want nothing published", got)
	}
	st.Close()

	msgs := e.messages()
	want := []struct{ typ, id string }{
		{event.TypeAccountCreated, a}, {event.TypeAccountUpdated, a},
		{event.TypeAccountCreated, b}, {event.TypeAccountDeleted, a},
	}
	if len(msgs) != len(want) {
		for _, m := range msgs {
			t.Logf("%s %s", m.subject, m.msgID)
		}
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(want))
	}
	keys := map[string]bool{}
	for i, m := range msgs {
		if m.ev.Type != want[i].typ || m.ev.SourceID != want[i].id {
			t.Errorf("message %d: %s of %s, want %s of %s", i, m.ev.Type, m.ev.SourceID, want[i].typ, want[i].id)
		}
		if m.subject != queue.PartitionedSubject(m.ev.Change(), m.ev.SourceID, queue.PartitionOf(m.ev.SourceID, queue.DefaultPartitions)) || m.msgID != m.ev.MsgID() {
			t.Errorf("message %d: subject %s, msg id %s", i, m.subject, m.msgID)
		}
		if keys[m.msgID] {
			t.Errorf("message %d: dedup key %s used twice", i, m.msgID)
		}
		keys[m.msgID] = true
	}
	up := msgs[1].ev
	if len(up.Fields) != 3 || up.Fields["Name"] != "a renamed" || up.Fields["Phone"] != nil || up.Fields["Industry"] != "Testing" {
		t.Errorf("update fields %v, want the whole copied state (Name renamed, Phone blanked, Industry)", up.Fields)
	}
	if up.ChangedAt.IsZero() || !strings.HasPrefix(up.ChangeKey, event.TimeKey(up.ChangedAt)+":") || len(up.ChangeKey) != len(event.TimeKey(up.ChangedAt))+17 {
		t.Errorf("update changed_at %v change_key %q, want <SystemModstamp>:<16 hex>", up.ChangedAt, up.ChangeKey)
	}
	if del := msgs[3].ev; del.ChangeKey != event.TimeKey(del.ChangedAt) || len(del.Fields) != 0 {
		t.Errorf("delete: change_key %q changed_at %v fields %v", del.ChangeKey, del.ChangedAt, del.Fields)
	}
}

// With -skip-user, rows last modified by orgsync's user are not captured
// (their values are remembered, so a later system change does not echo
// them), while people's later edits of the same records are.
func TestPollerAll_SkipUser(t *testing.T) {
	clk := newClock()
	e := newEnv(t, fakeorg.Config{Now: clk.Now})
	c := e.client()
	person := salesforce.ID18("005000000000777")
	ids := e.insert("s", 2, func(int) time.Time { return clk.Now().Add(-10 * time.Minute) }, nil)
	x, y := ids[0], ids[1]
	for _, id := range ids {
		if err := e.org.UpdateAccountAs(person, id, fakeorg.Record{"Industry": "People"}); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := e.allPoller(e.dbPath(), func(c *capture.PollerConfig) { c.SkipUser, c.Now = e.org.UserID(), clk.Now })
	if got := once(t, p); got.Published != 2 {
		t.Fatalf("first cycle: %+v, want the 2 creates", got)
	}
	// orgsync (the API user) writes x; a person edits y.
	clk.Advance(time.Second)
	if err := c.Update(t.Context(), "Account", x, salesforce.Record{"Name": "from the other org"}); err != nil {
		t.Fatal(err)
	}
	if err := e.org.UpdateAccountAs(person, y, fakeorg.Record{"Phone": "555-0199"}); err != nil {
		t.Fatal(err)
	}
	if got := once(t, p); got.Published != 1 || got.Skipped != 1 {
		t.Errorf("cycle after the writes: %+v, want 1 published (y) and 1 skipped (x)", got)
	}
	// A person then changes a field of x that is not copied: x's copied
	// values are orgsync's own write, not echoed back.
	clk.Advance(time.Second)
	if err := e.org.UpdateAccountAs(person, x, fakeorg.Record{"Website": "https://x.example"}); err != nil {
		t.Fatal(err)
	}
	if got := once(t, p); got.Published != 0 {
		t.Errorf("cycle after a person's change of a field not copied: %+v, want nothing published", got)
	}
	var updates []event.Event
	for _, m := range e.messages() {
		if m.ev.Type == event.TypeAccountUpdated {
			updates = append(updates, m.ev)
		}
	}
	if len(updates) != 1 || updates[0].SourceID != y || updates[0].Fields["Phone"] != "555-0199" {
		t.Errorf("updates %+v, want y's phone change only", updates)
	}
}

// A poller whose checkpoint is older than the source's delete log warns at
// ERROR, saying to run a reconcile, and goes on.
func TestPollerAll_WarnsWhenDeleteLogIsNewer(t *testing.T) {
	clk := newClock()
	e := newEnv(t, fakeorg.Config{Now: clk.Now}) // the delete log starts now
	e.insert("old", 2, func(i int) time.Time { return clk.Now().Add(-3*time.Hour + time.Duration(i)*time.Second) }, nil)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, _ := e.allPoller(e.dbPath(), func(c *capture.PollerConfig) { c.Logger, c.Now = log, clk.Now })
	for range 3 {
		clk.Advance(time.Minute)
		once(t, p)
	}
	var warned []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "DELETES MAY HAVE BEEN MISSED") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 {
		t.Fatalf("got %d delete-log warnings, want 1 (the cycle after the first):\n%s", len(warned), logs.String())
	}
	if !strings.Contains(warned[0], "level=ERROR") || !strings.Contains(warned[0], "run `worker reconcile`") ||
		!strings.Contains(warned[0], "earliestDateAvailable") {
		t.Errorf("warning %s: want an ERROR naming earliestDateAvailable and `worker reconcile`", warned[0])
	}
	if got := len(e.messages()); got != 2 {
		t.Errorf("stream holds %d messages, want the 2 creates", got)
	}
}

// The configuration's rules of -changes and -skip-user.
func TestPollerConfig_Changes(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	st := openStore(t, e.dbPath())
	t.Cleanup(func() { st.Close() })
	for _, tt := range []struct {
		name    string
		changes string
		user    string
		err     string
	}{
		{name: "default", changes: ""},
		{name: "all", changes: capture.ChangesAll},
		{name: "all with a 15-character user", changes: capture.ChangesAll, user: "005000000000777"},
		{name: "unknown", changes: "updated", err: `changes "updated": want "created" or "all"`},
		{name: "skip user needs all", changes: capture.ChangesCreated, user: e.org.UserID(), err: "a skip user needs changes"},
		{name: "not a user ID", changes: capture.ChangesAll, user: "001000000000001", err: "skip user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := capture.NewPoller(capture.PollerConfig{Client: e.client(), Queue: e.q, Store: st,
				Changes: tt.changes, SkipUser: tt.user})
			switch {
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// A poller that lost a record's hash (a crash between JetStream's ack and
// saving it) takes the record, created after its checkpoint, for a create
// again: as the record changed since its creation, an update follows the
// create, whose dedup key JetStream drops as a repeat.
func TestPollerAll_LostHashPublishesTheUpdate(t *testing.T) {
	clk := newClock()
	e := newEnv(t, fakeorg.Config{Now: clk.Now})
	id := e.insert("r", 1, func(int) time.Time { return time.Time{} }, nil)[0]
	p, _ := e.allPoller(e.dbPath(), func(c *capture.PollerConfig) { c.Now = clk.Now })
	once(t, p)
	clk.Advance(time.Second)
	if err := e.client().Update(t.Context(), "Account", id, salesforce.Record{"Phone": "555-0123"}); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, e.dbPath())
	t.Cleanup(func() { st.Close() })
	if err := st.SetCheckpoint(capture.CheckpointName(e.org.OrgID()), p.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	fields, _ := event.ParseFields("Name,Phone,Industry")
	restarted, err := capture.NewPoller(capture.PollerConfig{Client: e.client(), Queue: e.q, Store: st, RateLimit: -1,
		Changes: capture.ChangesAll, Fields: fields, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := once(t, restarted); got.Published != 1 || got.Duplicates != 1 {
		t.Errorf("restarted cycle: %+v, want the create as a duplicate and the update published", got)
	}
	if got := kinds(e.changesOf()[id]); got != "created,updated" {
		t.Errorf("%s: %s, want created,updated", id, got)
	}
}

// A record this poller published as deleted and that shows up live again was
// undeleted: it is published as account.undeleted (an update would be
// dropped as stale behind the delete), even when its values are what they
// were before the delete.
func TestPollerAll_UndeleteAfterAPublishedDelete(t *testing.T) {
	clk := newClock()
	e := newEnv(t, fakeorg.Config{Now: clk.Now})
	id := e.insert("u", 1, func(int) time.Time { return clk.Now().Add(-10 * time.Minute) }, nil)[0]
	p, _ := e.allPoller(e.dbPath(), func(c *capture.PollerConfig) { c.Now = clk.Now })
	once(t, p)
	clk.Advance(time.Second)
	if err := e.client().Delete(t.Context(), "Account", id); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	once(t, p)
	clk.Advance(time.Second)
	if res := e.org.Undelete([]string{id}, ""); !res[0].Success {
		t.Fatalf("undelete: %+v", res)
	}
	clk.Advance(time.Minute)
	if got := once(t, p); got.Published != 1 {
		t.Errorf("cycle after the undelete: %+v, want 1 published", got)
	}
	evs := e.changesOf()[id]
	if kinds(evs) != "created,deleted,undeleted" {
		t.Fatalf("%s: %s, want created,deleted,undeleted", id, kinds(evs))
	}
	if up := evs[2]; up.Fields["Name"] != "u-00000" {
		t.Errorf("undelete's fields %v, want the whole state", up.Fields)
	}
}

// A Get Deleted call the source refuses for good (here the resource does
// not exist in API version 28.0) is logged at ERROR, saying to reconcile;
// the cycle goes on and its creates and updates are captured.
func TestPollerAll_DeletesRefused(t *testing.T) {
	clk := newClock()
	e := newEnv(t, fakeorg.Config{Now: clk.Now})
	id := e.insert("old", 1, func(int) time.Time { return clk.Now().Add(-10 * time.Minute) }, nil)[0]
	auth, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: e.srv.URL,
		ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	v28, err := salesforce.NewClient(salesforce.Config{Auth: auth, APIVersion: "28.0"})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p, _ := e.allPoller(e.dbPath(), func(c *capture.PollerConfig) { c.Client, c.Now, c.Logger = v28, clk.Now, log })
	once(t, p)
	clk.Advance(time.Second)
	if err := e.client().Update(t.Context(), "Account", id, salesforce.Record{"Phone": "555-0111"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if got := once(t, p); got.Published != 1 {
		t.Errorf("cycle: %+v, want the update published", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "DELETES MAY HAVE BEEN MISSED: the source refused") ||
		!strings.Contains(logs.String(), "run `worker reconcile`") {
		t.Errorf("log:\n%s\nwant an ERROR saying deletes may have been missed and to run worker reconcile", logs.String())
	}
	if err := p.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}
