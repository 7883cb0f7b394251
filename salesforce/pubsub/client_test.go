package pubsub_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

func TestTopicAndSchema(t *testing.T) {
	f := startFake(t, eventbus.Config{})
	c := f.client(t, nil)
	ti, err := c.Topic(t.Context(), "/data/AccountChangeEvent")
	if err != nil {
		t.Fatal(err)
	}
	if !ti.GetCanSubscribe() || ti.GetSchemaId() == "" || ti.GetTenantGuid() != f.org.OrgID() {
		t.Fatalf("topic info %v", ti)
	}
	rec, err := c.Schema(t.Context(), ti.GetSchemaId())
	if err != nil {
		t.Fatal(err)
	}
	if rec.FullName() != "com.sforce.eventbus.AccountChangeEvent" || rec.Fields()[0].Name() != pubsub.HeaderField {
		t.Fatalf("schema %s, first field %s", rec.FullName(), rec.Fields()[0].Name())
	}
	_, err = c.Topic(t.Context(), "/data/NoSuchChangeEvent")
	var pe *pubsub.Error
	if !errors.As(err, &pe) || pe.ErrorCode == "" || pe.RPCID == "" {
		t.Fatalf("unknown topic: %v", err)
	}
}

// TestSubscribeDecodesChanges subscribes from the newest event and reads a
// create, an update and a delete made through REST, with 10-byte replay
// IDs, REST-independent Avro values and changed-field names.
func TestSubscribeDecodesChanges(t *testing.T) {
	f := startFake(t, eventbus.Config{})
	c := f.client(t, nil)
	s := f.subscribe(t, c, pubsub.Latest, nil)
	id := f.create(t, salesforce.Record{"Name": "Acme", "Phone": "555", "BillingCity": "Paris", "BillingStreet": "1 Rue"})
	if err := f.rest.Update(t.Context(), "Account", id, salesforce.Record{"Phone": nil, "BillingCity": "Lyon", "Industry": "Energy"}); err != nil {
		t.Fatal(err)
	}
	if err := f.rest.Delete(t.Context(), "Account", id); err != nil {
		t.Fatal(err)
	}
	evs := recvEvents(t, s, 3)
	for _, e := range evs {
		if len(e.ReplayID) != 10 {
			t.Errorf("replay id %x: %d bytes, want 10", e.ReplayID, len(e.ReplayID))
		}
		if !slices.Equal(e.Header.RecordIDs, []string{id}) || e.Header.EntityName != "Account" {
			t.Errorf("header %+v", e.Header)
		}
	}
	if n := f.bus.Calls("GetSchema"); n != 1 {
		t.Errorf("GetSchema called %d times for 3 events of one schema, want 1 (cached)", n)
	}
	cr, up, del := evs[0], evs[1], evs[2]
	if cr.Header.ChangeType != pubsub.ChangeCreate || cr.Fields["Name"] != "Acme" || cr.Fields["Phone"] != "555" {
		t.Errorf("create: %s %v", cr.Header.ChangeType, cr.Fields)
	}
	addr, _ := cr.Fields["BillingAddress"].(map[string]any)
	if addr["City"] != "Paris" || addr["Street"] != "1 Rue" {
		t.Errorf("create BillingAddress %v", cr.Fields["BillingAddress"])
	}
	if _, ok := cr.Fields["CreatedDate"].(int64); !ok {
		t.Errorf("CreatedDate %T, want epoch milliseconds", cr.Fields["CreatedDate"])
	}
	if cr.Header.CommitTimestamp.IsZero() {
		t.Error("no commitTimestamp")
	}
	if up.Header.ChangeType != pubsub.ChangeUpdate {
		t.Fatalf("second event %s", up.Header.ChangeType)
	}
	for _, want := range []string{"BillingAddress.City", "Industry", "Phone", "LastModifiedDate"} {
		if !slices.Contains(up.Header.ChangedFields, want) {
			t.Errorf("changedFields %v lacks %s", up.Header.ChangedFields, want)
		}
	}
	if slices.Contains(up.Header.ChangedFields, "Name") {
		t.Errorf("changedFields %v has the unchanged Name", up.Header.ChangedFields)
	}
	if !slices.Equal(up.Header.NulledFields, []string{"Phone"}) {
		t.Errorf("nulledFields %v, want [Phone]", up.Header.NulledFields)
	}
	if up.Fields["Name"] != nil {
		t.Errorf("update carries unchanged Name %v", up.Fields["Name"])
	}
	if del.Header.ChangeType != pubsub.ChangeDelete || del.Fields["Name"] != nil {
		t.Errorf("delete %s %v", del.Header.ChangeType, del.Fields["Name"])
	}
}

// TestReplay resumes after a stored 10-byte replay ID, after its 8-byte
// prefix, and from the earliest event; a replay ID the server never issued
// or one past retention is an ErrReplayInvalid error, never events.
func TestReplay(t *testing.T) {
	f := startFake(t, eventbus.Config{Retention: time.Hour})
	c := f.client(t, nil)
	var ids []string
	for _, n := range []string{"A", "B", "C"} {
		ids = append(ids, f.create(t, salesforce.Record{"Name": n}))
	}
	s, err := c.Subscribe(t.Context(), "/data/AccountChangeEvent", pubsub.Earliest, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := recvEvents(t, s, 3)
	s.Close()
	for i, e := range all {
		if e.Header.RecordIDs[0] != ids[i] {
			t.Fatalf("earliest: event %d is %v, want %s", i, e.Header.RecordIDs, ids[i])
		}
	}
	first := all[0].ReplayID
	for name, rid := range map[string][]byte{"10 bytes": first, "8-byte prefix": first[:8]} {
		t.Run(name, func(t *testing.T) {
			s, err := c.Subscribe(t.Context(), "/data/AccountChangeEvent", pubsub.Custom, rid)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := recvEvents(t, s, 2)
			if got[0].Header.RecordIDs[0] != ids[1] || got[1].Header.RecordIDs[0] != ids[2] {
				t.Fatalf("resumed at %v, %v; want %s, %s", got[0].Header.RecordIDs, got[1].Header.RecordIDs, ids[1], ids[2])
			}
			if !bytes.Equal(got[1].ReplayID, all[2].ReplayID) {
				t.Errorf("replay ids differ between subscriptions")
			}
		})
	}
	future := append([]byte(nil), all[2].ReplayID...)
	binary.BigEndian.PutUint64(future, binary.BigEndian.Uint64(future)+1000)
	for name, rid := range map[string][]byte{"unknown": future, "garbage": []byte("xyz"), "cometd -2": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}} {
		t.Run(name, func(t *testing.T) {
			assertReplayInvalid(t, c, rid)
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.clock.Add(2 * time.Hour)
		assertReplayInvalid(t, c, first)
	})
}

func assertReplayInvalid(t *testing.T, c *pubsub.Client, rid []byte) {
	t.Helper()
	s, err := c.Subscribe(t.Context(), "/data/AccountChangeEvent", pubsub.Custom, rid)
	if err == nil {
		defer s.Close()
		var b *pubsub.Batch
		b, err = s.Recv()
		if err == nil {
			t.Fatalf("replay id %x: got %d events, want an error", rid, len(b.Events))
		}
	}
	if !errors.Is(err, pubsub.ErrReplayInvalid) {
		t.Fatalf("replay id %x: %v, want ErrReplayInvalid", rid, err)
	}
	var pe *pubsub.Error
	if !errors.As(err, &pe) || pe.ErrorCode != pubsub.CodeReplayCorrupted || !strings.Contains(pe.Message, "rpcId: ") {
		t.Fatalf("error %#v", pe)
	}
}

// badFirst hands out a revoked token first, then the real ones, and counts
// invalidations.
type badFirst struct {
	pubsub.TokenSource
	bad         *salesforce.Token
	invalidated atomic.Int32
}

func (b *badFirst) Token(ctx context.Context) (*salesforce.Token, error) {
	if b.invalidated.Load() == 0 {
		return b.bad, nil
	}
	return b.TokenSource.Token(ctx)
}

func (b *badFirst) Invalidate(t *salesforce.Token) {
	if t == b.bad {
		b.invalidated.Add(1)
	}
	b.TokenSource.Invalidate(t)
}

func TestUnauthenticatedDropsToken(t *testing.T) {
	f := startFake(t, eventbus.Config{})
	good, err := f.auth.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bad := *good
	bad.AccessToken = "00Dexpired!token"
	src := &badFirst{TokenSource: f.auth, bad: &bad}
	c := f.client(t, func(cfg *pubsub.Config) { cfg.Tokens = src })
	s, err := c.Subscribe(t.Context(), "/data/AccountChangeEvent", pubsub.Latest, nil)
	if err == nil {
		_, err = s.Recv()
		s.Close()
	}
	var pe *pubsub.Error
	if !errors.Is(err, pubsub.ErrUnauthenticated) || !errors.As(err, &pe) || pe.ErrorCode != pubsub.CodeAuthError {
		t.Fatalf("bad token: %v, want UNAUTHENTICATED with %s", err, pubsub.CodeAuthError)
	}
	if strings.Contains(err.Error(), bad.AccessToken) {
		t.Fatal("error shows the token")
	}
	if src.invalidated.Load() != 1 {
		t.Fatalf("bad token invalidated %d times, want 1", src.invalidated.Load())
	}
	if _, err := c.Topic(t.Context(), "/data/AccountChangeEvent"); err != nil {
		t.Fatalf("after invalidation: %v", err)
	}
}

// TestWatchdog: a stream that sends neither events nor keepalives fails
// Recv with ErrStalled.
func TestWatchdog(t *testing.T) {
	f := startFake(t, eventbus.Config{Keepalive: time.Hour})
	f.bus.Configure(eventbus.Settings{Stall: true})
	c := f.client(t, func(cfg *pubsub.Config) { cfg.IdleTimeout = 100 * time.Millisecond })
	s := f.subscribe(t, c, pubsub.Latest, nil)
	f.create(t, salesforce.Record{"Name": "unseen"})
	if _, err := s.Recv(); !errors.Is(err, pubsub.ErrStalled) {
		t.Fatalf("Recv: %v, want ErrStalled", err)
	}
}

// TestFlowControl: the stream never has more than the batch size requested
// or held; releasing events requests more.
func TestFlowControl(t *testing.T) {
	f := startFake(t, eventbus.Config{Keepalive: 20 * time.Millisecond})
	c := f.client(t, func(cfg *pubsub.Config) { cfg.BatchSize = 4 })
	for i := range 10 {
		f.create(t, salesforce.Record{"Name": "n" + string(rune('a'+i))})
	}
	s, err := c.Subscribe(t.Context(), "/data/AccountChangeEvent", pubsub.Earliest, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := recvEvents(t, s, 4)
	out, held := s.Requested()
	if out != 0 || held != 4 {
		t.Fatalf("after 4 events: outstanding %d, held %d; want 0, 4", out, held)
	}
	// Nothing is requested, so the next answer is a keepalive, not events.
	b, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 0 || len(b.LatestReplayID) != 10 {
		t.Fatalf("with nothing requested got %d events, latest %x", len(b.Events), b.LatestReplayID)
	}
	if err := s.Release(4); err != nil {
		t.Fatal(err)
	}
	got = append(got, recvEvents(t, s, 4)...)
	if err := s.Release(4); err != nil {
		t.Fatal(err)
	}
	got = append(got, recvEvents(t, s, 2)...)
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.Header.RecordIDs[0]] = true
	}
	if len(seen) != 10 {
		t.Fatalf("%d distinct records, want 10", len(seen))
	}
}

func TestDialRejectsBadBatch(t *testing.T) {
	_, err := pubsub.Dial(pubsub.Config{Addr: "x:1", Tokens: &badFirst{}, BatchSize: 101})
	if err == nil {
		t.Fatal("batch size 101 accepted")
	}
}
