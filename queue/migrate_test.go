package queue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// legacyQueue starts a server with ORGSYNC as an older orgsync created it
// (no transform) and its consumer "workers".
func legacyQueue(t *testing.T) (*testServer, *Queue, *Consumer) {
	t.Helper()
	ts := startServer(t, "")
	createLegacyStream(t, ts.js)
	q := mustNew(t, ts.js, Config{Partitions: 4, AckWait: testAckWait, LeaseTTL: testLeaseTTL})
	return ts, q, mustConsumer(t, q)
}

// publishLegacy publishes, as an older producer and worker did, a create on
// orgsync.account.created and then updates on the 4-token subject stored
// without a partition, for each record, interleaved; headerIdx numbers each
// record's events.
func publishLegacy(t *testing.T, q *Queue, records []string, updates int) int {
	t.Helper()
	n := 0
	for k := 0; k <= updates; k++ {
		for _, id := range records {
			h := nats.Header{}
			h.Set(headerIdx, strconv.Itoa(k))
			subject := AccountSubject("updated", id)
			if k == 0 {
				subject = SubjectCreated
			}
			mustPublish(t, q, subject, id+":"+strconv.Itoa(k), event("00D", id, strconv.Itoa(k)), h)
			n++
		}
	}
	return n
}

// Ensure that Migrate refuses while an old worker has a pull request
// waiting on "workers", and changes nothing.
func TestMigrate_RefusesWhileOldWorkerPulls(t *testing.T) {
	ts, q, c := legacyQueue(t)
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		_, _ = c.Fetch(t.Context(), 1, 5*time.Second) // an old worker waiting for events
	}()
	waitFor(t, 5*time.Second, func() error {
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumWaiting == 0 {
			return errors.New("no pull request waiting yet")
		}
		return nil
	})
	_, err := q.Migrate(t.Context(), MigrateConfig{})
	if !errors.Is(err, ErrOldWorkersRunning) || !strings.Contains(err.Error(), "old worker") {
		t.Fatalf("Migrate = %v, want ErrOldWorkersRunning", err)
	}
	s, _ := ts.js.Stream(t.Context(), Stream)
	if s.CachedInfo().Config.SubjectTransform != nil {
		t.Errorf("a refused Migrate added the transform")
	}
	if _, err := ts.js.Consumer(t.Context(), Stream, ConsumerName); err != nil {
		t.Errorf("a refused Migrate deleted workers: %v", err)
	}
	mustPublish(t, q, SubjectCreated, "wake", event("00D", recordID(1), "x"), nil) // ends the pull
	<-fetched
}

// Ensure that Migrate moves a deployment whose stopped old worker left
// pending and unacknowledged events: nothing is lost, each record's events
// come in order, a malformed event is dead-lettered, and a second run is
// harmless.
func TestMigrate_MovesPendingAndAckPending(t *testing.T) {
	ts, q, c := legacyQueue(t)
	records := make([]string, 10)
	for i := range records {
		records[i] = recordID(i)
	}
	total := publishLegacy(t, q, records, 4)
	// Two old messages: junk naming its record in the header, and junk that
	// names none.
	h := nats.Header{}
	h.Set(HeaderSourceID, recordID(50))
	h.Set(headerIdx, "0")
	mustPublish(t, q, SubjectCreated, "junk-1", []byte("{not json"), h)
	mustPublish(t, q, SubjectLink, "junk-2", []byte("{not json"), nil)

	// The old worker applied two events, held three more, and stopped.
	tr := newTracker()
	msgs := fetchN(t, c, 5, 5*time.Second)
	for _, m := range msgs[:2] {
		d := newDelivery(m, time.Now())
		if err := d.AckSync(t.Context()); err != nil {
			t.Fatal(err)
		}
		id := bodyString(d.Data(), "source_id")
		k, _ := strconv.Atoi(d.Header(headerIdx))
		tr.acked[id] = map[int]bool{k: true}
		tr.ackedN++
	}

	dry, err := q.Migrate(t.Context(), MigrateConfig{DryRun: true})
	if err != nil {
		t.Fatalf("Migrate dry run: %v", err)
	}
	if !dry.AddedTransform || !dry.DeletedWorkers || dry.Moved != total {
		t.Errorf("dry run report %+v, want transform, delete and %d to move", dry, total)
	}
	if l, _ := q.Layout(t.Context()); !l.Legacy() {
		t.Fatalf("the dry run changed the layout: %+v", l)
	}

	r, err := q.Migrate(t.Context(), MigrateConfig{Partitions: 4})
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if r.AlreadyPartitioned || !r.AddedTransform || !r.DeletedWorkers || r.Partitions != 4 ||
		r.Moved != total-2+1 || r.DeadLettered != 1 {
		t.Errorf("report %+v, want transform added, workers deleted, %d moved, 1 dead-lettered", r, total-2+1)
	}
	if s := r.String(); !strings.Contains(s, fmt.Sprintf("moved %d messages to %d partitions", r.Moved, r.MovedPartitions)) ||
		!strings.Contains(s, "deleted consumer workers") {
		t.Errorf("report line %q", s)
	}
	if l, _ := q.Layout(t.Context()); l.Legacy() || l.Partitions != 4 {
		t.Fatalf("layout after Migrate: %+v", l)
	}
	dlq, err := q.ListDLQ(t.Context())
	if err != nil || len(dlq) != 1 || dlq[0].Code != CodeMalformedEvent {
		t.Fatalf("DLQ after Migrate: %+v, %v; want one MALFORMED_EVENT", dlq, err)
	}
	// Every message left is on a partitioned subject, in the order of its
	// record's events.
	s, _ := ts.js.Stream(t.Context(), Stream)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(SubjectAccounts))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		if len(strings.Split(subj, ".")) != 5 {
			t.Errorf("message left on %s", subj)
		}
	}

	// A second run finds nothing to do.
	again, err := q.Migrate(t.Context(), MigrateConfig{})
	if err != nil || !again.AlreadyPartitioned || again.DeletedWorkers || again.Moved != 0 {
		t.Errorf("second Migrate = %+v, %v", again, err)
	}
	if s := again.String(); !strings.Contains(s, "already has 4 partitions") {
		t.Errorf("second report line %q", s)
	}

	// New workers get every event, in order per record.
	w := startWorker(t, q, "new", tr, nil)
	waitAcked(t, tr, total+1, 30*time.Second)
	tr.check(t)
	_ = w
	waitStreamMsgs(t, ts.js, Stream, 0)
}

// Ensure that a running worker moves events an old producer still
// publishes on orgsync.account.created to their partition, in order.
func TestForwardLegacy_Continuous(t *testing.T) {
	ts, q := partitionedQueue(t, 4)
	tr := newTracker()
	startWorker(t, q, "w", tr, nil)
	id := recordID(7)
	for k := range 4 {
		h := nats.Header{}
		h.Set(headerIdx, strconv.Itoa(k))
		mustPublish(t, q, SubjectCreated, "c"+strconv.Itoa(k), event("00D", id, "x"), h)
	}
	waitAcked(t, tr, 4, 20*time.Second)
	tr.check(t)
	tr.mu.Lock()
	for k := range 4 {
		if n := tr.handed[id+":"+strconv.Itoa(k)]; n != 1 {
			t.Errorf("event %d handed out %d times", k, n)
		}
	}
	tr.mu.Unlock()
	waitStreamMsgs(t, ts.js, Stream, 0)
}
