package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Ensure that Replay republishes with a fresh dedup key while the original
// key is still inside the duplicate window, and deletes the entries.
func TestReplay_RepublishesAndDeletes(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}})
	// A body that is not JSON: source_org "unknown".
	c := mustConsumer(t, q)
	mustPublish(t, q, SubjectLink, "raw", []byte("not json"), nats.Header{HeaderSourceID: {testID2}, "X-Keep": {"k"}})
	m := fetchN(t, c, 1, 5*time.Second)[0]
	if err := q.DeadLetter(t.Context(), m, DeadLetter{Code: "MALFORMED_EVENT", Message: "bad"}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	waitStreamMsgs(t, ts.js, Stream, 0)

	// The original key is inside the window: the same key would be dropped.
	origKey := testOrg + ":" + testID1 + ":created"
	if dup, err := q.Publish(t.Context(), SubjectCreated, origKey, []byte("x"), nil); err != nil || !dup {
		t.Fatalf("republish with the original key: duplicate %v, %v; want true", dup, err)
	}

	var seen []uint64
	res, err := q.Replay(t.Context(), ReplayOptions{Each: func(e Entry) error {
		seen = append(seen, e.Seq)
		return nil
	}})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if res.Matched != 2 || res.Replayed != 2 || fmt.Sprint(seen) != "[1 2]" {
		t.Fatalf("Replay = %+v, entries %v; want 2 matched and replayed, seqs 1 and 2", res, seen)
	}
	if n := streamMsgs(t, ts.js, DLQStream); n != 0 {
		t.Errorf("DLQ holds %d entries after replay, want 0", n)
	}
	got := fetchN(t, c, 2, 5*time.Second)
	want := []struct {
		subject, msgID, replayOf, body string
	}{
		// Legacy subjects go back with the record, and ORGSYNC partitions them.
		{PartitionedSubject("created", testID1, PartitionOf(testID1, DefaultPartitions)), testOrg + ":" + testID1 + ":replay:1", "1", string(event(testOrg, testID1, "N"))},
		{PartitionedSubject("link", testID2, PartitionOf(testID2, DefaultPartitions)), "unknown:" + testID2 + ":replay:2", "2", "not json"},
	}
	for i, w := range want {
		m := got[i]
		h := m.Headers()
		if m.Subject() != w.subject || h.Get(HeaderMsgID) != w.msgID || h.Get(HeaderReplayOf) != w.replayOf || string(m.Data()) != w.body {
			t.Errorf("replayed #%d: subject %s, msg id %q, replay-of %q, body %s; want %+v",
				i, m.Subject(), h.Get(HeaderMsgID), h.Get(HeaderReplayOf), m.Data(), w)
		}
		if h.Get(HeaderErrorCode) != "" || h.Get(HeaderAttempts) != "" || h.Get(HeaderOriginalSeq) != "" {
			t.Errorf("replayed #%d keeps dead-letter headers: %v", i, h)
		}
		if h.Get(HeaderSourceID) == "" {
			t.Errorf("replayed #%d lost %s: %v", i, HeaderSourceID, h)
		}
	}
	if got[1].Headers().Get("X-Keep") != "k" {
		t.Errorf("replayed message lost the original header X-Keep: %v", got[1].Headers())
	}
}

// Ensure that entries added while Replay runs (here: each replayed event
// failing again at once) are left for the next replay.
func TestReplay_Snapshot(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}, {testID2, "A"}})
	c := mustConsumer(t, q)
	again := func(Entry) error {
		m := fetchN(t, c, 1, 5*time.Second)[0]
		return q.DeadLetter(t.Context(), m, DeadLetter{Code: "A", Message: "again"})
	}
	res, err := q.Replay(t.Context(), ReplayOptions{Each: again})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if res.Matched != 2 || res.Replayed != 2 {
		t.Fatalf("Replay = %d matched, %d replayed; want 2, 2", res.Matched, res.Replayed)
	}
	entries, err := q.ListDLQ(t.Context())
	if err != nil {
		t.Fatalf("ListDLQ: %v", err)
	}
	if len(entries) != 2 || entries[0].Seq != 3 || entries[1].Seq != 4 {
		t.Fatalf("DLQ after replay = %+v, want the 2 new entries (seq 3, 4)", entries)
	}
	if entries[0].Header.Get(HeaderReplayOf) != "1" {
		t.Errorf("a re-dead-lettered replay keeps Orgsync-Replay-Of: got %q, want 1", entries[0].Header.Get(HeaderReplayOf))
	}
}

// Ensure that the code, source-ID and Match filters AND together.
func TestReplay_Filters(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}, {testID2, "B"}, {testID3, "A"}})

	tests := []struct {
		name     string
		opt      ReplayOptions
		wantSeqs []uint64
	}{
		{"code and id", ReplayOptions{Code: "a", SourceID: testID3}, []uint64{3}},
		{"code and other code's id", ReplayOptions{Code: "A", SourceID: testID2}, nil},
		{"15-char id is not the 18-char one", ReplayOptions{SourceID: testID1[:15]}, nil},
		{"match refuses", ReplayOptions{Code: "B", Match: func(Entry) bool { return false }}, nil},
		{"code", ReplayOptions{Code: " B "}, []uint64{2}},
		{"match", ReplayOptions{Match: func(e Entry) bool { return e.SourceID == testID1 }}, []uint64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seqs []uint64
			opt := tt.opt
			opt.Each = func(e Entry) error {
				seqs = append(seqs, e.Seq)
				return nil
			}
			res, err := q.Replay(t.Context(), opt)
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) || res.Replayed != len(tt.wantSeqs) {
				t.Errorf("replayed %v (%d), want %v", seqs, res.Replayed, tt.wantSeqs)
			}
		})
	}
	if n := streamMsgs(t, ts.js, DLQStream); n != 0 {
		t.Errorf("DLQ holds %d entries, want 0", n)
	}
	if n := streamMsgs(t, ts.js, Stream); n != 3 {
		t.Errorf("ORGSYNC holds %d messages, want 3", n)
	}
}

// Ensure that a dry run reports the matches and changes nothing.
func TestReplay_DryRun(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}, {testID2, "B"}})
	var codes []string
	res, err := q.Replay(t.Context(), ReplayOptions{DryRun: true, Each: func(e Entry) error {
		codes = append(codes, e.Code)
		return nil
	}})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if res.Matched != 2 || res.Replayed != 0 || fmt.Sprint(codes) != "[A B]" {
		t.Errorf("dry run = %+v, entries %v; want 2 matched (A, B), 0 replayed", res, codes)
	}
	if n := streamMsgs(t, ts.js, DLQStream); n != 2 {
		t.Errorf("DLQ holds %d entries, want 2", n)
	}
	if n := streamMsgs(t, ts.js, Stream); n != 0 {
		t.Errorf("ORGSYNC holds %d messages, want 0", n)
	}
}

// Ensure that a failed republish stops the replay and leaves its entry.
func TestReplay_FailureStops(t *testing.T) {
	ts := startServer(t, "")
	createTinyStream(t, ts.js, 1)
	q := mustNew(t, ts.js, Config{})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}, {testID2, "A"}, {testID3, "A"}})
	res, err := q.Replay(t.Context(), ReplayOptions{})
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("Replay into a full stream: err = %v, want ErrStreamFull", err)
	}
	if res.Replayed != 1 || res.Matched != 2 {
		t.Errorf("Replay = %d matched, %d replayed; want 2, 1", res.Matched, res.Replayed)
	}
	entries, err := q.ListDLQ(t.Context())
	if err != nil {
		t.Fatalf("ListDLQ: %v", err)
	}
	if len(entries) != 2 || entries[0].Seq != 2 || entries[1].Seq != 3 {
		t.Errorf("DLQ = %+v, want seqs 2 and 3 left", entries)
	}
}

// Ensure that Replay and ListDLQ report a missing DLQ.
func TestReplay_NoDLQ(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	if err := ts.js.DeleteStream(t.Context(), DLQStream); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if _, err := q.Replay(t.Context(), ReplayOptions{}); !errors.Is(err, ErrNoStream) {
		t.Errorf("Replay err = %v, want ErrNoStream", err)
	}
	if _, err := q.ListDLQ(t.Context()); !errors.Is(err, ErrNoStream) {
		t.Errorf("ListDLQ err = %v, want ErrNoStream", err)
	}
}

// Ensure that ScanDLQ streams more entries than one request asks for, in
// order, stops at fn's error, and leaves no consumer on ORGSYNC_DLQ.
func TestScanDLQ_StreamsAndStops(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	n := scanBatch*2 + 3
	for i := range n {
		m := nats.NewMsg(SubjectDLQCreated)
		m.Data = event(testOrg, testID1, "N")
		m.Header.Set(HeaderErrorCode, fmt.Sprint("C", i))
		if _, err := ts.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	var seqs []uint64
	err := q.ScanDLQ(t.Context(), func(e Entry) error {
		if e.Code != fmt.Sprint("C", e.Seq-1) {
			return fmt.Errorf("entry %d has code %s", e.Seq, e.Code)
		}
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil || len(seqs) != n || seqs[0] != 1 || seqs[n-1] != uint64(n) {
		t.Fatalf("ScanDLQ: %d entries (first/last %v), %v; want %d in order", len(seqs), seqs[:min(len(seqs), 1)], err, n)
	}
	for i := 1; i < n; i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("ScanDLQ order: %d after %d", seqs[i], seqs[i-1])
		}
	}
	stop := errors.New("stop")
	count := 0
	err = q.ScanDLQ(t.Context(), func(e Entry) error {
		count++
		if count == scanBatch+1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || count != scanBatch+1 {
		t.Errorf("ScanDLQ after fn's error: %d calls, %v; want %d, stop", count, err, scanBatch+1)
	}
	waitFor(t, 5*time.Second, func() error {
		s := mustStream(t, ts.js, DLQStream)
		info, err := s.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Consumers != 0 {
			return fmt.Errorf("%d consumers left on %s", info.State.Consumers, DLQStream)
		}
		return nil
	})
}

// Ensure that an error from Each stops the replay after the entry it was
// called for, which is already replayed.
func TestReplay_EachErrorStops(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	deadLetterAll(t, ts, q, []deadLetterCase{{testID1, "A"}, {testID2, "A"}, {testID3, "A"}})
	stop := errors.New("stop")
	res, err := q.Replay(t.Context(), ReplayOptions{Each: func(e Entry) error {
		if e.Seq == 2 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || res.Replayed != 2 || res.Matched != 2 {
		t.Fatalf("Replay = %+v, %v; want 2 matched and replayed, stop", res, err)
	}
	if n := streamMsgs(t, ts.js, DLQStream); n != 1 {
		t.Errorf("DLQ holds %d entries, want 1 (seq 3)", n)
	}
}

// Ensure that a dead letter keeps its partitioned subject in the DLQ, that
// replay strips the partition (the stream partitions it again), and what
// Change and ReplaySubject say for each kind of original subject.
func TestReplay_PartitionedSubject(t *testing.T) {
	ts, q := partitionedQueue(t, 4)
	ps, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ps.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	id := recordID(3)
	p := PartitionOf(id, 4)
	mustPublish(t, q, AccountSubject("deleted", id), "d1", []byte(`{"v":1,"type":"account.deleted","source_org":"00D","source_id":"`+id+`"}`), nil)
	lot, err := ps.Next(ctxTimeout(t, 10*time.Second), 10, 0)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if err := q.DeadLetterDelivery(t.Context(), lot.Deliveries[0], DeadLetter{Code: "ENTITY_IS_DELETED"}); err != nil {
		t.Fatalf("DeadLetterDelivery: %v", err)
	}
	lot.Done()
	entries, err := q.ListDLQ(t.Context())
	if err != nil || len(entries) != 1 {
		t.Fatalf("ListDLQ = %v, %v", entries, err)
	}
	e := entries[0]
	stored := PartitionedSubject("deleted", id, p)
	if e.Subject != "orgsync.dlq.account.deleted."+id+"."+strconv.Itoa(p) || e.OriginalSubject != stored ||
		e.ReplaySubject != AccountSubject("deleted", id) || e.Change != "deleted" || e.SourceID != id {
		t.Errorf("entry subject %s, original %s, replay %s, change %s, source %s", e.Subject, e.OriginalSubject, e.ReplaySubject, e.Change, e.SourceID)
	}
	if _, err := q.Replay(t.Context(), ReplayOptions{}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	s, _ := ts.js.Stream(t.Context(), Stream)
	m, err := s.GetLastMsgForSubject(t.Context(), stored)
	if err != nil || m.Header.Get(HeaderReplayOf) != "1" {
		t.Fatalf("replayed message on %s: %v, %v", stored, m, err)
	}

	tests := []struct {
		original, sourceID, body, change, replay string
	}{
		{"orgsync.account.updated.001A.7", "001A", "", "updated", "orgsync.account.updated.001A"},
		{"orgsync.account.undeleted.001A", "001A", "", "undeleted", "orgsync.account.undeleted.001A"},
		{"orgsync.account.created", "001A", "", "created", "orgsync.account.created.001A"},
		{"orgsync.account.link", "001A", "", "link", "orgsync.account.link.001A"},
		{"orgsync.account.created", "", "", "created", "orgsync.account.created"},
		{"orgsync.account.created", "bad id", "", "created", "orgsync.account.created"},
		{"orgsync.other.thing", "001A", `{"type":"account.updated"}`, "updated", "orgsync.other.thing"},
	}
	for _, tt := range tests {
		h := nats.Header{}
		h.Set(HeaderOriginalSubject, tt.original)
		h.Set(HeaderSourceID, tt.sourceID)
		e := entryFrom(1, "x.y", h, []byte(tt.body), time.Now())
		if e.Change != tt.change || e.ReplaySubject != tt.replay {
			t.Errorf("%s (source %q): change %q, replay %q; want %q, %q", tt.original, tt.sourceID, e.Change, e.ReplaySubject, tt.change, tt.replay)
		}
	}
}
