package queue

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	testOrg = "00D000000000001AAA"
	testID1 = "001000000000001AAA"
	testID2 = "001000000000002AAA"
	testID3 = "001000000000003AAA"
)

// Ensure that DeadLetter copies body and headers to the DLQ with the error
// headers, then terminates the original.
func TestDeadLetter_CopiesAndTerms(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	body := event(testOrg, testID1, "Acme")
	mustPublish(t, q, SubjectCreated, testOrg+":"+testID1+":created", body, nats.Header{"X-Trace": {"t1"}})
	m := fetchN(t, c, 1, 5*time.Second)[0]
	md, _ := m.Metadata()

	long := strings.Repeat("é", 700) // 1400 bytes
	before := time.Now().UTC()
	err := q.DeadLetter(t.Context(), m, DeadLetter{Code: "REQUIRED_FIELD_MISSING", Message: "line1\nline2 " + long, SourceID: testID1, Attempts: 3})
	if err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	waitStreamMsgs(t, ts.js, Stream, 0)

	raw, err := mustStream(t, ts.js, DLQStream).GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatalf("GetMsg: %v", err)
	}
	if raw.Subject != SubjectDLQCreated {
		t.Errorf("DLQ subject = %s, want %s", raw.Subject, SubjectDLQCreated)
	}
	if string(raw.Data) != string(body) {
		t.Errorf("DLQ body = %s, want %s", raw.Data, body)
	}
	h := raw.Header
	for k, want := range map[string]string{
		"X-Trace":             "t1",
		HeaderMsgID:           "ORGSYNC:1",
		HeaderErrorCode:       "REQUIRED_FIELD_MISSING",
		HeaderAttempts:        "3",
		HeaderSourceID:        testID1,
		HeaderOriginalSubject: SubjectCreated,
		HeaderOriginalSeq:     "1",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	msg := h.Get(HeaderErrorMessage)
	if len(msg) > MaxErrorMessage || len(msg) < MaxErrorMessage-3 || !strings.HasPrefix(msg, "line1 line2 é") {
		t.Errorf("error message (%d bytes) = %q…, want single-line, cut to %d bytes", len(msg), msg[:min(len(msg), 20)], MaxErrorMessage)
	}
	failedAt, err := time.Parse(time.RFC3339Nano, h.Get(HeaderFailedAt))
	if err != nil || failedAt.Before(before) || failedAt.Location() != time.UTC {
		t.Errorf("failed-at %q (%v), want RFC3339Nano UTC after %v", h.Get(HeaderFailedAt), err, before)
	}
	if md.Sequence.Stream != 1 {
		t.Errorf("original seq = %d, want 1", md.Sequence.Stream)
	}

	// ListDLQ decodes it.
	entries, err := q.ListDLQ(t.Context())
	if err != nil {
		t.Fatalf("ListDLQ: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("ListDLQ = %d entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Seq != 1 || e.SourceID != testID1 || e.SourceOrg != testOrg || e.Code != "REQUIRED_FIELD_MISSING" ||
		e.Attempts != 3 || !e.FailedAt.Equal(failedAt) || e.OriginalSubject != SubjectCreated || e.OriginalSeq != 1 ||
		string(e.Data) != string(body) {
		t.Errorf("entry = %+v", e)
	}
}

// Ensure that a second dead-lettering of the same message (a crash between
// publish and term) stores one copy, and that defaults fill in.
func TestDeadLetter_IdempotentAndDefaults(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	mustPublish(t, q, SubjectLink, "", event(testOrg, testID2, "B"), nil)
	m := fetchN(t, c, 1, 5*time.Second)[0]
	if err := Nak(m, 0); err != nil {
		t.Fatalf("Nak: %v", err)
	}
	m = fetchN(t, c, 1, 5*time.Second)[0]
	if err := q.DeadLetter(t.Context(), m, DeadLetter{Code: "MAX_DELIVERIES"}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	// Again, as after a crash before the term: the DLQ drops the copy (the
	// term itself fails here only because this handle already sent one).
	if err := q.DeadLetter(t.Context(), m, DeadLetter{Code: "MAX_DELIVERIES"}); err == nil || !strings.Contains(err.Error(), "stored in ORGSYNC_DLQ") {
		t.Errorf("second DeadLetter err = %v, want stored-but-term-failed", err)
	}
	entries, err := q.ListDLQ(t.Context())
	if err != nil || len(entries) != 1 {
		t.Fatalf("ListDLQ = %d, %v; want 1 entry", len(entries), err)
	}
	e := entries[0]
	if e.Subject != "orgsync.dlq.account.link" || e.OriginalSubject != SubjectLink {
		t.Errorf("subjects = %s, %s", e.Subject, e.OriginalSubject)
	}
	if e.Attempts != 2 || e.SourceID != testID2 {
		t.Errorf("defaults: Attempts %d, SourceID %q; want 2 (NumDelivered), %s (body)", e.Attempts, e.SourceID, testID2)
	}
}

// Ensure that after ORGSYNC is re-created (its sequences start again) a dead
// letter whose key an older, different dead letter holds is still stored.
func TestDeadLetter_KeyClashAfterStreamRecreated(t *testing.T) {
	ts := startServer(t, "")
	log, buf := newLogger()
	q := mustNew(t, ts.js, Config{Logger: log})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}})
	if err := ts.js.DeleteStream(t.Context(), Stream); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	q = mustNew(t, ts.js, Config{Logger: log})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID2, "B"}})
	entries, err := q.ListDLQ(t.Context())
	if err != nil {
		t.Fatalf("ListDLQ: %v", err)
	}
	if len(entries) != 2 || entries[1].SourceID != testID2 || entries[1].OriginalSeq != 1 {
		t.Fatalf("DLQ = %+v, want both dead letters", entries)
	}
	if id := entries[1].Header.Get(HeaderMsgID); !strings.HasPrefix(id, "ORGSYNC:1:") {
		t.Errorf("second key = %q, want ORGSYNC:1:<timestamp>", id)
	}
	if !strings.Contains(buf.String(), "already used by another message") {
		t.Errorf("clash not logged:\n%s", buf)
	}
}

// Ensure that when the DLQ publish fails the original is nak'ed, kept in
// ORGSYNC and redelivered.
func TestDeadLetter_DLQFailureNaks(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{DeadLetterNakDelay: 300 * time.Millisecond})
	c := mustConsumer(t, q)
	mustPublish(t, q, SubjectCreated, "a", event(testOrg, testID1, "A"), nil)
	m := fetchN(t, c, 1, 5*time.Second)[0]
	if err := ts.js.DeleteStream(t.Context(), DLQStream); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	err := q.DeadLetter(t.Context(), m, DeadLetter{Code: "X", Message: "boom"})
	if err == nil {
		t.Fatal("DeadLetter without a DLQ succeeded")
	}
	if !errors.Is(err, ErrNoStream) {
		t.Errorf("err = %v, want ErrNoStream", err)
	}
	if got := streamMsgs(t, ts.js, Stream); got != 1 {
		t.Fatalf("ORGSYNC holds %d messages, want the original kept", got)
	}
	again := fetchN(t, c, 1, 5*time.Second)[0]
	if md, _ := again.Metadata(); md == nil || md.NumDelivered != 2 {
		t.Errorf("redelivery metadata %+v, want NumDelivered 2", md)
	}
}

// Ensure ListDLQ's order and JSON form.
func TestListDLQ(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	if got, err := q.ListDLQ(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("empty ListDLQ = %v, %v", got, err)
	}
	deadLetterAll(t, ts, q, []deadLetterCase{
		{testID1, "A"}, {testID2, "B"}, {testID3, "C"},
	})
	// A hole in the middle.
	if err := mustStream(t, ts.js, DLQStream).DeleteMsg(t.Context(), 2); err != nil {
		t.Fatalf("DeleteMsg: %v", err)
	}
	entries, err := q.ListDLQ(t.Context())
	if err != nil {
		t.Fatalf("ListDLQ: %v", err)
	}
	if len(entries) != 2 || entries[0].Seq != 1 || entries[1].Seq != 3 || entries[1].Code != "C" {
		t.Fatalf("ListDLQ = %+v, want seqs 1 and 3", entries)
	}
	b, err := json.Marshal(entries[0])
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := []string{"attempts", "change", "code", "failed_at", "message", "source_id", "stream_seq"}
	if len(obj) != len(want) {
		t.Errorf("JSON = %s, want exactly the keys %v", b, want)
	}
	for _, k := range want {
		if _, ok := obj[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
}

type deadLetterCase struct{ sourceID, code string }

// deadLetterAll publishes one event per case and dead-letters each with its
// code, in order.
func deadLetterAll(t *testing.T, ts *testServer, q *Queue, cases []deadLetterCase) {
	t.Helper()
	c := mustConsumer(t, q)
	for _, dc := range cases {
		mustPublish(t, q, SubjectCreated, testOrg+":"+dc.sourceID+":created", event(testOrg, dc.sourceID, "N"),
			nats.Header{HeaderSourceID: {dc.sourceID}})
		m := fetchN(t, c, 1, 5*time.Second)[0]
		if err := q.DeadLetter(t.Context(), m, DeadLetter{Code: dc.code, Message: "failed " + dc.code, SourceID: dc.sourceID, Attempts: 1}); err != nil {
			t.Fatalf("DeadLetter: %v", err)
		}
		waitStreamMsgs(t, ts.js, Stream, 0)
	}
}
