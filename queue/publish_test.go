package queue

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ensure that a second publish with the same msgID is reported as duplicate
// and not stored.
func TestPublish_Dedup(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	body := event("00D000000000001AAA", "001000000000001AAA", "Acme")
	hdr := nats.Header{"X-Trace": []string{"abc"}}
	for i, wantDup := range []bool{false, true} {
		dup, err := q.Publish(t.Context(), SubjectCreated, "00D:001:created", body, hdr)
		if err != nil {
			t.Fatalf("Publish #%d: %v", i+1, err)
		}
		if dup != wantDup {
			t.Errorf("Publish #%d duplicate = %v, want %v", i+1, dup, wantDup)
		}
	}
	if got := streamMsgs(t, ts.js, Stream); got != 1 {
		t.Errorf("ORGSYNC holds %d messages, want 1", got)
	}
	if len(hdr) != 1 {
		t.Errorf("Publish modified the caller's header: %v", hdr)
	}
	// Without a msgID there is no dedup.
	for range 2 {
		mustPublish(t, q, SubjectLink, "", body, nil)
	}
	if got := streamMsgs(t, ts.js, Stream); got != 3 {
		t.Errorf("ORGSYNC holds %d messages, want 3", got)
	}
	// The message carries its headers and the dedup id.
	raw, err := mustStream(t, ts.js, Stream).GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatalf("GetMsg: %v", err)
	}
	if raw.Header.Get("X-Trace") != "abc" || raw.Header.Get(HeaderMsgID) != "00D:001:created" {
		t.Errorf("stored headers = %v", raw.Header)
	}
}

// Ensure that a full DiscardNew stream refuses a publish with ErrStreamFull.
func TestPublish_StreamFull(t *testing.T) {
	ts := startServer(t, "")
	createTinyStream(t, ts.js, 2)
	q := mustNew(t, ts.js, Config{})
	for i := range 2 {
		mustPublish(t, q, SubjectCreated, string(rune('a'+i)), []byte("x"), nil)
	}
	_, err := q.Publish(t.Context(), SubjectCreated, "c", []byte("x"), nil)
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("Publish to a full stream: err = %v, want ErrStreamFull", err)
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("error %v does not carry the server's APIError", err)
	}
	if got := streamMsgs(t, ts.js, Stream); got != 2 {
		t.Errorf("ORGSYNC holds %d messages, want the first 2 kept", got)
	}
}

// Ensure that a subject no stream listens on yields ErrNoStream.
func TestPublish_NoStream(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	if err := ts.js.DeleteStream(t.Context(), Stream); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	_, err := q.Publish(t.Context(), SubjectCreated, "a", []byte("x"), nil)
	if !errors.Is(err, ErrNoStream) {
		t.Fatalf("err = %v, want ErrNoStream", err)
	}
}

// createTinyStream creates ORGSYNC as New would, but holding at most maxMsgs.
func createTinyStream(t *testing.T, js jetstream.JetStream, maxMsgs int64) {
	t.Helper()
	cfg := (&Queue{cfg: Config{}.withDefaults()}).streamConfig()
	cfg.MaxMsgs = maxMsgs
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
}

// mustStream returns a stream handle.
func mustStream(t *testing.T, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("Stream(%s): %v", name, err)
	}
	return s
}

// Ensure that header values are made single-line and messages cut safely.
func TestHeaderHelpers(t *testing.T) {
	if got := headerValue("a\r\nb\tc"); got != "a  b c" {
		t.Errorf("headerValue = %q", got)
	}
	if got := truncateUTF8("héllo", 2); got != "h" {
		t.Errorf("truncateUTF8(héllo, 2) = %q, want h", got)
	}
	if got := truncateUTF8("abc", 5); got != "abc" {
		t.Errorf("truncateUTF8(abc, 5) = %q", got)
	}
	h := cloneHeader(nats.Header{
		"Nats-Msg-Id": {"x"}, "Nats-Expected-Stream": {"S"}, "Nats-TTL": {"1s"},
		"X-Keep": {"1", "2"}, HeaderErrorCode: {"E"},
	}, HeaderErrorCode)
	if len(h) != 1 || len(h["X-Keep"]) != 2 {
		t.Errorf("cloneHeader kept %v, want only X-Keep", h)
	}
	for subj, want := range map[string]string{
		"orgsync.account.created": "orgsync.dlq.account.created",
		"orgsync.account.link":    "orgsync.dlq.account.link",
	} {
		if got := dlqSubject(subj); got != want {
			t.Errorf("dlqSubject(%s) = %s, want %s", subj, got, want)
		}
		if back, ok := replaySubject(want); !ok || back != subj {
			t.Errorf("replaySubject(%s) = %s, %v, want %s", want, back, ok, subj)
		}
	}
}
