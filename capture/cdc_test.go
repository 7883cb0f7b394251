package capture_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"orgsync/capture"
	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

// storedBodies returns the message bodies of ORGSYNC by Nats-Msg-Id.
func (e *cdcEnv) storedBodies() map[string][]byte {
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
	out := map[string][]byte{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		out[m.Header.Get(queue.HeaderMsgID)] = m.Data
	}
	return out
}

// TestCDCPublishesCreatesLikePoll: every CREATE event's records are
// published once with the same dedup key and body as poll would publish;
// an update and a delete follow their record's create on its subjects;
// the checkpoint holds the last replay ID as received.
func TestCDCPublishesCreatesLikePoll(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	ids := e.createREST("cdc", 3)
	res, err := e.userClient().CreateMany(t.Context(), "Account", []salesforce.Record{
		{"Name": "many-1", "Phone": "555", "NumberOfEmployees": 12, "AnnualRevenue": 1500.5, "Website": "https://x.example"},
		{"Name": "many-2", "ShippingCity": "Oslo", "ShippingLatitude": 59.91}}, true)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, res[0].ID, res[1].ID)
	if err := e.userClient().Update(t.Context(), "Account", ids[0], salesforce.Record{"Phone": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.userClient().Delete(t.Context(), "Account", ids[1]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "7 events handled", func() bool {
		tot := r.cdc.Totals()
		return tot.Events[pubsub.ChangeCreate] == 5 && tot.Events[pubsub.ChangeUpdate] == 1 && tot.Events[pubsub.ChangeDelete] == 1
	})
	r.stop()
	changes := map[string][]string{} // by record, in stream order
	for _, m := range e.messages() {
		changes[m.ev.SourceID] = append(changes[m.ev.SourceID], m.ev.Change())
		if m.subject != queue.PartitionedSubject(m.ev.Change(), m.ev.SourceID, queue.PartitionOf(m.ev.SourceID, queue.DefaultPartitions)) {
			t.Errorf("%s %s on subject %s", m.ev.Type, m.ev.SourceID, m.subject)
		}
		if m.ev.Type == event.TypeAccountUpdated && (len(m.ev.Fields) != 1 || m.ev.Fields["Phone"] != "1") {
			t.Errorf("update fields %v, want the changed Phone only", m.ev.Fields)
		}
	}
	for i, id := range ids {
		want := "created"
		switch i {
		case 0:
			want = "created,updated"
		case 1:
			want = "created,deleted"
		}
		if got := strings.Join(changes[id], ","); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if len(changes) != len(ids) {
		t.Errorf("%d records in the stream, want %d", len(changes), len(ids))
	}

	// poll over the same org publishes the same keys and bodies.
	rec := &recorder{}
	p, _ := e.poller(e.dbPath(), func(c *capture.PollerConfig) { c.Queue = rec })
	if _, err := p.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	cdcBodies := e.storedBodies()
	for _, id := range ids {
		if id == ids[0] || id == ids[1] {
			continue // updated or deleted since: poll reads what is there now
		}
		key := e.org.OrgID() + ":" + id + ":created"
		want, ok := rec.msgs[key]
		if !ok {
			t.Fatalf("poll did not publish %s", key)
		}
		got := cdcBodies[key]
		if !sameEvent(t, got, want) {
			t.Errorf("%s:\ncdc  %s\npoll %s", id, got, want)
		}
	}
	rid, commit := r.cdc.Checkpoint()
	if len(rid) != 10 || commit.IsZero() {
		t.Fatalf("checkpoint %x %v", rid, commit)
	}
}

// sameEvent compares two event bodies after decoding (numbers compare by
// value).
func sameEvent(t *testing.T, a, b []byte) bool {
	t.Helper()
	if bytes.Equal(a, b) {
		return true
	}
	ea, err := event.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if ea.MsgID() != eb.MsgID() || !ea.CreatedAt.Equal(eb.CreatedAt) || len(ea.Fields) != len(eb.Fields) {
		return false
	}
	for k, va := range ea.Fields {
		vb, ok := eb.Fields[k]
		if !ok || jsonNum(va) != jsonNum(vb) {
			return false
		}
	}
	return true
}

func jsonNum(v any) any {
	if n, ok := v.(interface{ Float64() (float64, error) }); ok {
		f, _ := n.Float64()
		return f
	}
	return v
}

// TestCDCCheckpointMovesOnlyAfterAck: while JetStream refuses the events
// the checkpoint stays; a restart resumes from it and loses nothing.
func TestCDCCheckpointMovesOnlyAfterAck(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{Keepalive: 20 * time.Millisecond})
	path := e.dbPath()
	r := e.start(path, nil)
	e.ready(r)
	first := e.createREST("before", 1)
	eventually(t, "first create", func() bool { return e.storedCount() == 1 })
	eventually(t, "keepalive checkpoint", func() bool {
		rid, _ := r.cdc.Checkpoint()
		return bytes.Equal(rid, e.bus.LatestReplayID())
	})
	cpBefore, _ := r.cdc.Checkpoint()
	r.stop()

	rec := &recorder{failAt: 1, failErr: errors.New("jetstream down")}
	r = e.start(path, func(c *capture.CDCConfig, _ *pubsub.Config) { c.Queue = rec })
	e.ready(r)
	more := e.createREST("while-down", 3)
	eventually(t, "publish attempts and a retry", func() bool { return r.cdc.Totals().Reconnects[capture.ReconnectError] >= 2 })
	if cp, _ := r.cdc.Checkpoint(); !bytes.Equal(cp, cpBefore) {
		t.Fatalf("checkpoint moved to %x without acks (was %x)", cp, cpBefore)
	}
	r.stop()

	r = e.start(path, nil)
	eventually(t, "all published after restart", func() bool { return e.storedCount() == 4 })
	e.assertStored(append(first, more...))
}

// TestCDCFirstStart: without a checkpoint a capture starts at the newest
// event; -since adds a SOQL catch-up of older creates.
func TestCDCFirstStart(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	old := e.createREST("old", 2)
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	newer := e.createREST("new", 1)
	eventually(t, "new create", func() bool { return e.storedCount() == 1 })
	r.stop()
	e.assertStored(newer)

	r = e.start(e.dbPath(), func(c *capture.CDCConfig, _ *pubsub.Config) { c.Since = time.Now().Add(-time.Hour) })
	e.ready(r)
	eventually(t, "since catch-up", func() bool {
		return e.storedCount() == 3 && r.cdc.Totals().CatchUps[capture.CauseSince] >= 1
	})
	if n := r.cdc.Totals().CatchUps[capture.CauseSince]; n != 1 {
		t.Fatalf("since catch-ups %d, want 1", n)
	}
	e.assertStored(append(old, newer...))
}

// TestCDCExpiredReplayCatchesUp: a replay ID past retention leads to a
// fresh subscription and a SOQL catch-up from the checkpoint, never to a
// silent jump past the records created meanwhile.
func TestCDCExpiredReplayCatchesUp(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{Keepalive: time.Hour})
	path := e.dbPath()
	r := e.start(path, nil)
	e.ready(r)
	first := e.createREST("first", 1)
	eventually(t, "first create", func() bool { return e.storedCount() == 1 })
	r.stop()
	down := e.createREST("down", 3)
	st := e.bus.Settings()
	st.Retention = time.Nanosecond // every stored event expires
	e.bus.Configure(st)

	r = e.start(path, nil)
	e.ready(r)
	eventually(t, "catch-up", func() bool {
		return e.storedCount() == 4 && r.cdc.Totals().CatchUps[capture.CauseReplayInvalid] >= 1
	})
	if n := r.cdc.Totals().CatchUps[capture.CauseReplayInvalid]; n != 1 {
		t.Fatalf("replay_invalid catch-ups %d, want 1", n)
	}
	st.Retention = time.Hour
	e.bus.Configure(st)
	after := e.createREST("after", 1)
	eventually(t, "stream resumed", func() bool { return e.storedCount() == 5 })
	e.assertStored(slices.Concat(first, down, after))
}

// TestCDCGapEventReadsRecords: the records of a gap event are read by ID
// and published.
func TestCDCGapEventReadsRecords(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	reg := prometheus.NewRegistry()
	metrics := capture.NewCDCMetrics(reg)
	r := e.start(e.dbPath(), func(c *capture.CDCConfig, _ *pubsub.Config) { c.CDCMetrics = metrics })
	e.ready(r)
	e.bus.Configure(eventbus.Settings{Suppress: true})
	ids := e.createREST("gap", 2)
	e.bus.Configure(eventbus.Settings{})
	if err := e.bus.Gap(pubsub.ChangeGapCreate, ids); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gap records and the catch-up", func() bool {
		return e.storedCount() == 2 && r.cdc.Totals().CatchUps[capture.CauseGap] >= 1 &&
			counterValue(t, reg, "orgsync_cdc_catchups_total", "gap") >= 1
	})
	if n := r.cdc.Totals().CatchUps[capture.CauseGap]; n != 1 {
		t.Fatalf("gap catch-ups %d, want 1", n)
	}
	e.assertStored(ids)
	if got := counterValue(t, reg, "orgsync_cdc_catchups_total", "gap"); got != 1 {
		t.Errorf("catchups_total{cause=gap} %v, want 1", got)
	}
	if got := counterValue(t, reg, "orgsync_cdc_events_total", "GAP_CREATE"); got != 1 {
		t.Errorf("events_total{change_type=GAP_CREATE} %v, want 1", got)
	}
}

// counterValue reads the series of a counter whose one label has value.
func counterValue(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestCDCReadyzFollowsTheStream: ready once subscribed, not ready once the
// Pub/Sub API is gone.
func TestCDCReadyzFollowsTheStream(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	reg := prometheus.NewRegistry()
	metrics := capture.NewCDCMetrics(reg)
	r := e.start(e.dbPath(), func(c *capture.CDCConfig, _ *pubsub.Config) { c.CDCMetrics = metrics })
	e.ready(r)
	eventually(t, "connected gauge 1", func() bool { return gaugeValue(t, reg, "orgsync_cdc_connected") == 1 })
	e.bus.Stop()
	eventually(t, "not ready", func() bool { return r.cdc.Ready() != nil })
	eventually(t, "connected gauge 0", func() bool { return gaugeValue(t, reg, "orgsync_cdc_connected") == 0 })
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestCDCOverflowCatchesUp: an overflow event leads to a SOQL catch-up over
// its window.
func TestCDCOverflowCatchesUp(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	e.bus.Configure(eventbus.Settings{Suppress: true})
	ids := e.createREST("overflow", 3)
	e.bus.Configure(eventbus.Settings{})
	e.bus.Overflow()
	// The catch-up is counted when it ends, which may be just after its
	// records are stored: wait for both.
	eventually(t, "overflow records and the catch-up", func() bool {
		return e.storedCount() == 3 && r.cdc.Totals().CatchUps[capture.CauseOverflow] >= 1
	})
	if n := r.cdc.Totals().CatchUps[capture.CauseOverflow]; n != 1 {
		t.Fatalf("overflow catch-ups %d, want 1", n)
	}
	e.assertStored(ids)
}

// TestCDCStalledStreamReconnects: a stream that sends nothing, not even
// keepalives, is left and resubscribed from the checkpoint.
func TestCDCStalledStreamReconnects(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{Keepalive: time.Hour})
	r := e.start(e.dbPath(), func(_ *capture.CDCConfig, p *pubsub.Config) { p.IdleTimeout = 200 * time.Millisecond })
	e.ready(r)
	e.bus.Configure(eventbus.Settings{Stall: true})
	ids := e.createREST("stalled", 2)
	eventually(t, "a stalled reconnect", func() bool { return r.cdc.Totals().Reconnects[capture.ReconnectStalled] >= 1 })
	e.bus.Configure(eventbus.Settings{})
	eventually(t, "records after the reconnect", func() bool { return e.storedCount() == 2 })
	e.assertStored(ids)
}

func TestCDCReadyzFalseUntilSubscribed(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	c, err := capture.NewCDC(capture.CDCConfig{Client: e.client(), PubSub: &pubsub.Client{}, Queue: e.q, Store: openStore(t, e.dbPath())})
	if err != nil {
		t.Fatal(err)
	}
	if c.Ready() == nil {
		t.Fatal("ready before Run")
	}
}

// TestCDCSkipsOwnChanges: changes whose changeOrigin carries
// client=orgsync, which the fake sets from the writing request's
// Sforce-Call-Options as Salesforce does, are not published (two-way
// setups), but still move the checkpoint; another client's are.
func TestCDCSkipsOwnChanges(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	own := e.client() // sends Sforce-Call-Options: client=orgsync, as orgsync's own clients do
	for _, name := range []string{"own-1", "own-2"} {
		if _, err := own.Create(t.Context(), "Account", salesforce.Record{"Name": name}); err != nil {
			t.Fatal(err)
		}
	}
	// The fake's admin override replaces the origin of later events; ""
	// gives the writes their own back.
	e.bus.Configure(eventbus.Settings{Origin: "com/salesforce/api/soap/66.0;" + capture.OwnOrigin})
	e.createREST("overridden", 1)
	e.bus.Configure(eventbus.Settings{})
	theirs := e.createREST("theirs", 1)
	eventually(t, "4 creates handled", func() bool { return r.cdc.Totals().Events[pubsub.ChangeCreate] == 4 })
	eventually(t, "the checkpoint at the last event", func() bool {
		rid, _ := r.cdc.Checkpoint()
		return bytes.Equal(rid, e.bus.LatestReplayID())
	})
	if n := r.cdc.Totals().OwnChanges; n != 3 {
		t.Fatalf("own changes %d, want 3", n)
	}
	e.assertStored(theirs) // the checkpoint moves after the acks: everything is in
}

// TestCDCPublishesUndeletes: UNDELETE change events (the fake's
// POST /_fake/undelete, standing for SOAP undelete()) are published as
// account.undeleted with the record's copied fields, after the record's
// delete, and move the checkpoint.
func TestCDCPublishesUndeletes(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	ids := e.createREST("undeleted", 2)
	for _, id := range ids {
		if err := e.userClient().Delete(t.Context(), "Account", id); err != nil {
			t.Fatal(err)
		}
	}
	if res := e.org.Undelete(ids, ""); !res[0].Success || !res[1].Success {
		t.Fatalf("undelete: %+v", res)
	}
	eventually(t, "2 undeletes counted", func() bool { return r.cdc.Totals().Events[pubsub.ChangeUndelete] == 2 })
	eventually(t, "the checkpoint at the last event", func() bool {
		rid, _ := r.cdc.Checkpoint()
		return bytes.Equal(rid, e.bus.LatestReplayID())
	})
	tot := r.cdc.Totals()
	if tot.Events[pubsub.ChangeCreate] != 2 || tot.Events[pubsub.ChangeDelete] != 2 {
		t.Fatalf("events %v, want 2 creates, 2 deletes, 2 undeletes", tot.Events)
	}
	if tot.Published != 6 {
		t.Fatalf("published %d, want 2 creates, 2 deletes and 2 undeletes", tot.Published)
	}
	changes := map[string][]string{}
	for _, m := range e.messages() {
		changes[m.ev.SourceID] = append(changes[m.ev.SourceID], m.ev.Change())
		if m.ev.Type == event.TypeAccountUndeleted && (m.ev.Fields["Name"] == nil || m.ev.Fields["BillingCity"] != "Paris") {
			t.Errorf("undeleted fields %v, want the record's copied fields", m.ev.Fields)
		}
	}
	for _, id := range ids {
		if got := strings.Join(changes[id], ","); got != "created,deleted,undeleted" {
			t.Errorf("%s: %s, want created,deleted,undeleted", id, got)
		}
	}
}

// TestCDCNotReadyWhileCatchingUp: /readyz (Ready) is false while a
// catch-up's SOQL runs on a live subscription, and true again after.
func TestCDCNotReadyWhileCatchingUp(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	defer open()
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/query") && strings.Contains(req.URL.Query().Get("q"), "SystemModstamp >=") {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-req.Context().Done():
				return
			}
		}
		e.org.ServeHTTP(w, req)
	}))
	defer gated.Close()
	auth, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: gated.URL,
		ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := salesforce.NewClient(salesforce.Config{Auth: auth, CallOptions: "client=orgsync"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := capture.NewCDCMetrics(reg)
	r := e.start(e.dbPath(), func(c *capture.CDCConfig, _ *pubsub.Config) { c.Client, c.CDCMetrics = slow, metrics })
	e.ready(r)
	e.bus.Configure(eventbus.Settings{Suppress: true})
	ids := e.createREST("caught-up", 1)
	e.bus.Configure(eventbus.Settings{})
	e.bus.Overflow()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the catch-up never queried")
	}
	if err := r.cdc.Ready(); err == nil || !strings.Contains(err.Error(), "catching up") {
		t.Fatalf("Ready() = %v during the catch-up, want catching up", err)
	}
	if g := gaugeValue(t, reg, "orgsync_cdc_catching_up"); g != 1 {
		t.Fatalf("catching_up gauge %v during the catch-up, want 1", g)
	}
	if e.bus.Subscribers() != 1 {
		t.Fatal("the subscription went away during the catch-up")
	}
	open()
	eventually(t, "ready after the catch-up", func() bool { return r.cdc.Ready() == nil })
	if g := gaugeValue(t, reg, "orgsync_cdc_catching_up"); g != 0 {
		t.Fatalf("catching_up gauge %v after the catch-up, want 0", g)
	}
	eventually(t, "the caught-up record", func() bool { return e.storedCount() == 1 })
	e.assertStored(ids)
}

// TestCDCReadsDiffFieldsBack: a long text field that arrives as a diff is
// published with its whole value, read from the source.
func TestCDCReadsDiffFieldsBack(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	r := e.start(e.dbPath(), nil)
	e.ready(r)
	e.bus.Configure(eventbus.Settings{DiffCreates: true})
	long := strings.Repeat("long text ", 150)
	res, err := e.userClient().Create(t.Context(), "Account", salesforce.Record{"Name": "diff", "Description": long})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the create", func() bool { return e.storedCount() == 1 })
	evs, _ := e.stored()
	if got := evs[res.ID].Fields["Description"]; got != long {
		t.Fatalf("Description %.60q…, want the whole value", got)
	}
}

// TestCDCUnknownTopicFails: a topic that does not exist is a setup error,
// not an endless resubscription.
func TestCDCUnknownTopicFails(t *testing.T) {
	e := newCDCEnv(t, eventbus.Config{})
	ps, err := pubsub.Dial(pubsub.Config{Addr: e.addr, Tokens: restAuth(e), TLS: e.tls})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	st := openStore(t, e.dbPath())
	defer st.Close()
	c, err := capture.NewCDC(capture.CDCConfig{Client: e.client(), PubSub: ps, Queue: e.q, Store: st,
		Topic: "/data/NoSuchChangeEvent"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "/data/NoSuchChangeEvent") {
		t.Fatalf("Run: %v, want a setup error naming the topic", err)
	}
}
