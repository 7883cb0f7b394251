package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Short timings for the lease tests.
const (
	testAckWait  = 2 * time.Second
	testLeaseTTL = 2 * time.Second
)

// recordID is a Salesforce-like ID for record i.
func recordID(i int) string { return fmt.Sprintf("001x%014d", i) }

// headerIdx carries a test event's index among its record's events.
const headerIdx = "Test-Idx"

// publishEvents publishes perRecord updates of each record, interleaved
// (round by round), with headerIdx 0, 1, ….
func publishEvents(t *testing.T, q *Queue, records []string, from, perRecord int) {
	t.Helper()
	for k := from; k < from+perRecord; k++ {
		for _, id := range records {
			h := nats.Header{}
			h.Set(headerIdx, strconv.Itoa(k))
			mustPublish(t, q, AccountSubject("updated", id), id+":"+strconv.Itoa(k), event("00D", id, strconv.Itoa(k)), h)
		}
	}
}

// tracker checks, for every delivery handed out by any worker, that every
// earlier event of its record was acknowledged before (or precedes it in the
// same lot), and counts the hand-outs.
type tracker struct {
	mu     sync.Mutex
	acked  map[string]map[int]bool
	handed map[string]int // "<id>:<idx>" → hand-outs
	ackedN int
	errs   []string
}

func newTracker() *tracker {
	return &tracker{acked: map[string]map[int]bool{}, handed: map[string]int{}}
}

func recordOf(d *Delivery) (string, int) {
	tok := strings.Split(d.Subject, ".")
	idx, _ := strconv.Atoi(d.Header(headerIdx))
	if len(tok) < 4 {
		return d.Subject, idx
	}
	return tok[3], idx
}

// handOut checks a lot as the engine receives it.
func (tr *tracker) handOut(who string, lot *Lot) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	inLot := map[string]map[int]bool{}
	lastSeq := map[int]uint64{}
	for _, d := range lot.Deliveries {
		if d.Seq <= lastSeq[d.Partition] {
			tr.errs = append(tr.errs, fmt.Sprintf("%s: lot not in stream order in partition %d", who, d.Partition))
		}
		lastSeq[d.Partition] = d.Seq
		if !slices.Contains(lot.Partitions, d.Partition) {
			tr.errs = append(tr.errs, fmt.Sprintf("%s: delivery of partition %d in a lot of %v", who, d.Partition, lot.Partitions))
		}
		id, k := recordOf(d)
		for j := range k {
			if !tr.acked[id][j] && !inLot[id][j] {
				tr.errs = append(tr.errs, fmt.Sprintf("%s: %s event %d handed out before event %d was settled", who, id, k, j))
			}
		}
		if inLot[id] == nil {
			inLot[id] = map[int]bool{}
		}
		inLot[id][k] = true
		tr.handed[id+":"+strconv.Itoa(k)]++
	}
}

// ack acknowledges every delivery of a lot (AckSync) and records it.
func (tr *tracker) ack(t *testing.T, lot *Lot) error {
	for _, d := range lot.Deliveries {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := d.AckSync(ctx)
		cancel()
		if err != nil {
			return err
		}
		id, k := recordOf(d)
		tr.mu.Lock()
		if tr.acked[id] == nil {
			tr.acked[id] = map[int]bool{}
		}
		if !tr.acked[id][k] {
			tr.ackedN++
		}
		tr.acked[id][k] = true
		tr.mu.Unlock()
	}
	return nil
}

func (tr *tracker) ackedCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.ackedN
}

func (tr *tracker) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, e := range tr.errs[:min(len(tr.errs), 20)] {
		t.Error(e)
	}
}

// worker is a running Partitions with an engine loop that acks every lot.
type worker struct {
	ps      *Partitions
	cancel  context.CancelFunc
	runDone chan error
	engDone chan struct{}
	log     *logBuffer
}

// startWorker starts Partitions.Run for id on q and an engine loop that
// acks every lot; hold, when set, sees each lot first, and the loop stops
// (without acking or Done) when it returns false.
func startWorker(t *testing.T, q *Queue, id string, tr *tracker, hold func(*Lot) bool) *worker {
	t.Helper()
	log, buf := newLogger()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", id, buf)
		}
	})
	ps, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: id, Buffer: 50, Logger: log})
	if err != nil {
		t.Fatalf("Partitions(%s): %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{ps: ps, cancel: cancel, runDone: make(chan error, 1), engDone: make(chan struct{}), log: buf}
	go func() { w.runDone <- ps.Run(ctx) }()
	// Three engine loops, as an engine with -concurrency 3 runs.
	var engines sync.WaitGroup
	for range 3 {
		engines.Go(func() {
			for {
				lot, err := ps.Next(context.Background(), 20, 20*time.Millisecond)
				if err != nil {
					return // ErrStopped
				}
				tr.handOut(id, lot)
				if hold != nil && !hold(lot) {
					return
				}
				if err := tr.ack(t, lot); err != nil {
					t.Logf("%s: ack: %v", id, err)
				}
				lot.Done()
			}
		})
	}
	go func() {
		engines.Wait()
		close(w.engDone)
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop cancels Run and waits for it and the engine loop.
func (w *worker) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err := <-w.runDone:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		w.runDone <- nil
	case <-time.After(30 * time.Second):
		t.Errorf("Run did not return within 30s of its context's end")
	}
}

// partitionedQueue starts a server and opens a queue with n partitions and
// the test timings.
func partitionedQueue(t *testing.T, n int) (*testServer, *Queue) {
	t.Helper()
	ts := startServer(t, "")
	return ts, mustNew(t, ts.js, Config{Partitions: n, AckWait: testAckWait, LeaseTTL: testLeaseTTL})
}

// Ensure that PartitionOf computes the partition the server's subject
// transform stores an event in, for many IDs and partition counts.
func TestPartitionOf_MatchesServer(t *testing.T) {
	for _, n := range []int{16, 7, 1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			ts := startServer(t, "")
			q := mustNew(t, ts.js, Config{Partitions: n})
			if got := q.Config().Partitions; got != n {
				t.Fatalf("Config().Partitions = %d, want %d", got, n)
			}
			const count = 300
			ids := make([]string, count)
			for i := range ids {
				ids[i] = fmt.Sprintf("001%015X", uint64(i)*0x9E3779B97F4A7C15>>8)
				mustPublish(t, q, AccountSubject("created", ids[i]), "", []byte("{}"), nil)
			}
			s, err := ts.js.Stream(t.Context(), Stream)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for i, id := range ids {
				m, err := s.GetMsg(t.Context(), uint64(i+1))
				if err != nil {
					t.Fatalf("GetMsg(%d): %v", i+1, err)
				}
				want := PartitionedSubject("created", id, PartitionOf(id, n))
				if m.Subject != want {
					t.Fatalf("%s stored on %s, PartitionOf says %s", id, m.Subject, want)
				}
				seen[PartitionOf(id, n)] = true
			}
			if len(seen) != n {
				t.Errorf("%d IDs landed in %d of %d partitions", count, len(seen), n)
			}
		})
	}
}

// Ensure that Partitions creates one consumer per partition as
// docs/ordering.md specifies, and the lease bucket.
func TestPartitions_CreatesConsumers(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{Partitions: 3, AckWait: 40 * time.Second, MaxAckPending: 1000})
	if _, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: "w1"}); err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	s, err := ts.js.Stream(t.Context(), Stream)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.CachedInfo().Config.SubjectTransform
	if tr == nil || tr.Source != "orgsync.account.*.*" ||
		tr.Destination != "orgsync.account.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(3,2)}}" {
		t.Errorf("SubjectTransform = %+v", tr)
	}
	for p := range 3 {
		c, err := ts.js.Consumer(t.Context(), Stream, ConsumerFor(p))
		if err != nil {
			t.Fatalf("consumer %s: %v", ConsumerFor(p), err)
		}
		cc := c.CachedInfo().Config
		if cc.Durable != fmt.Sprintf("workers-%d", p) || cc.FilterSubject != fmt.Sprintf("orgsync.account.*.*.%d", p) ||
			cc.AckPolicy != jetstream.AckExplicitPolicy || cc.AckWait != 40*time.Second || cc.MaxDeliver != -1 ||
			cc.MaxAckPending != 334 || cc.DeliverPolicy != jetstream.DeliverAllPolicy {
			t.Errorf("consumer %d: %+v", p, cc)
		}
	}
	kv, err := ts.js.KeyValue(t.Context(), PartitionBucket)
	if err != nil {
		t.Fatalf("KeyValue: %v", err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != DefaultLeaseTTL || st.History() != 1 {
		t.Errorf("bucket TTL %v, history %d; want 15s, 1", st.TTL(), st.History())
	}
	// Backlog counts over the partition consumers.
	for _, id := range []string{recordID(1), recordID(2)} {
		mustPublish(t, q, AccountSubject("updated", id), id, []byte("{}"), nil)
	}
	if b, err := q.Backlog(t.Context()); err != nil || b.Pending != 2 || b.AckPending != 0 {
		t.Errorf("Backlog = %+v, %v; want 2 pending", b, err)
	}
	// Pause and Resume act on every partition consumer.
	if err := q.Pause(t.Context(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	for p := range 3 {
		c, _ := ts.js.Consumer(t.Context(), Stream, ConsumerFor(p))
		if !c.CachedInfo().Paused {
			t.Errorf("%s not paused", ConsumerFor(p))
		}
	}
	if paused, err := q.Paused(t.Context()); err != nil || !paused {
		t.Errorf("Paused = %v, %v; want true", paused, err)
	}
	if err := q.Resume(t.Context()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if paused, err := q.Paused(t.Context()); err != nil || paused {
		t.Errorf("after Resume Paused = %v, %v; want false", paused, err)
	}
	// The operator reset deletes them all.
	if err := q.DeleteConsumer(t.Context()); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	if _, err := q.Paused(t.Context()); !errors.Is(err, ErrNoConsumer) {
		t.Errorf("Paused after DeleteConsumer: %v, want ErrNoConsumer", err)
	}
}

// Ensure that Partitions refuses the legacy layout: the consumer "workers",
// or a stream without the transform.
func TestPartitions_LegacyLayout(t *testing.T) {
	t.Run("workers consumer", func(t *testing.T) {
		ts := startServer(t, "")
		q := mustNew(t, ts.js, Config{})
		mustConsumer(t, q)
		_, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: "w1"})
		if !errors.Is(err, ErrLegacyLayout) || !strings.Contains(err.Error(), "worker migrate") {
			t.Fatalf("Partitions = %v, want ErrLegacyLayout naming worker migrate", err)
		}
	})
	t.Run("no transform", func(t *testing.T) {
		ts := startServer(t, "")
		createLegacyStream(t, ts.js)
		log, buf := newLogger()
		q := mustNew(t, ts.js, Config{Logger: log})
		if !strings.Contains(buf.String(), "no partition transform") {
			t.Errorf("New logged no word of the missing transform:\n%s", buf)
		}
		s, _ := ts.js.Stream(t.Context(), Stream)
		if s.CachedInfo().Config.SubjectTransform != nil {
			t.Errorf("New changed the existing stream")
		}
		if _, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: "w1"}); !errors.Is(err, ErrLegacyLayout) {
			t.Fatalf("Partitions = %v, want ErrLegacyLayout", err)
		}
	})
}

// createLegacyStream creates ORGSYNC as orgsync created it before
// partitions.
func createLegacyStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: Stream, Subjects: []string{SubjectAccounts}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, Duplicates: time.Hour, AllowDirect: true,
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
}

// waitAcked waits until the tracker saw want distinct events acknowledged.
func waitAcked(t *testing.T, tr *tracker, want int, within time.Duration) {
	t.Helper()
	waitFor(t, within, func() error {
		if got := tr.ackedCount(); got != want {
			return fmt.Errorf("%d of %d events acknowledged", got, want)
		}
		return nil
	})
}

// Ensure that two workers split the partitions between them, that every
// event is handed out exactly once, and that a record's events come in
// order, while the second worker joins mid-way and partitions move.
func TestPartitions_TwoWorkersSplit(t *testing.T) {
	ts, q := partitionedQueue(t, 8)
	records := make([]string, 40)
	for i := range records {
		records[i] = recordID(i)
	}
	tr := newTracker()
	a := startWorker(t, q, "a", tr, nil)
	waitFor(t, 10*time.Second, func() error {
		if h := a.ps.Held(); len(h) != 8 {
			return fmt.Errorf("a holds %v", h)
		}
		return nil
	})
	publishEvents(t, q, records, 0, 5)
	bid := peerID(t, "a", 8)
	b := startWorker(t, q, bid, tr, nil)
	publishEvents(t, q, records, 5, 5)
	waitAssigned(t, map[string]*Partitions{"a": a.ps, bid: b.ps}, 8)
	publishEvents(t, q, records, 10, 5)
	waitAcked(t, tr, 40*15, 30*time.Second)
	tr.check(t)
	tr.mu.Lock()
	for k, n := range tr.handed {
		if n != 1 {
			t.Errorf("%s handed out %d times, want once", k, n)
		}
	}
	tr.mu.Unlock()
	waitStreamMsgs(t, ts.js, Stream, 0)
}

// Ensure that a worker stopping gracefully while it holds a lot finishes
// it, hands its partitions over and the other worker goes on in order
// without waiting for AckWait.
func TestPartitions_GracefulStopMidway(t *testing.T) {
	ts, q := partitionedQueue(t, 4)
	records := make([]string, 20)
	for i := range records {
		records[i] = recordID(i)
	}
	tr := newTracker()
	stopping := make(chan struct{})
	var once sync.Once
	var aps atomic.Pointer[Partitions]
	a := startWorker(t, q, "a", tr, func(*Lot) bool {
		once.Do(func() {
			close(stopping)
			// Hold this lot until a is shutting down.
			waitFor(t, 10*time.Second, func() error {
				ps := aps.Load()
				ps.mu.Lock()
				defer ps.mu.Unlock()
				if !ps.stopped {
					return errors.New("a is not stopping yet")
				}
				return nil
			})
		})
		return true
	})
	aps.Store(a.ps)
	publishEvents(t, q, records, 0, 10)
	b := startWorker(t, q, peerID(t, "a", 4), tr, nil)
	<-stopping
	a.stop(t)
	if h := a.ps.Held(); len(h) != 0 {
		t.Errorf("a still holds %v after Run returned", h)
	}
	waitFor(t, 10*time.Second, func() error {
		if h := b.ps.Held(); len(h) != 4 {
			return fmt.Errorf("b holds %v", h)
		}
		return nil
	})
	// b took a's partitions without waiting: a handed everything back.
	if l := b.log.String(); strings.Contains(l, "waits_ack_wait=true") || !strings.Contains(l, "clean_release=true") {
		t.Errorf("b waited for a gracefully released partition:\n%s", l)
	}
	publishEvents(t, q, records, 10, 5)
	waitAcked(t, tr, 20*15, 30*time.Second)
	tr.check(t)
	tr.mu.Lock()
	for k, n := range tr.handed {
		if n != 1 {
			t.Errorf("%s handed out %d times, want once (graceful hand-over)", k, n)
		}
	}
	tr.mu.Unlock()
	waitStreamMsgs(t, ts.js, Stream, 0)
}

// Ensure that when a worker dies holding a lot (its connection closed, no
// release), the survivor takes its partitions over after the TTL and gets
// the dead worker's events before later ones of the same records.
func TestPartitions_DeadWorkerTakeover(t *testing.T) {
	ts, q := partitionedQueue(t, 4)
	records := make([]string, 12)
	for i := range records {
		records[i] = recordID(i)
	}
	tr := newTracker()

	// a has a connection of its own, to close.
	nc, err := ts.e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	qa := mustNew(t, js, Config{Partitions: 4, AckWait: testAckWait, LeaseTTL: testLeaseTTL})
	var heldLot *Lot
	died := make(chan struct{})
	var once sync.Once
	a := startWorker(t, qa, "a", tr, func(l *Lot) bool {
		once.Do(func() {
			heldLot = l
			nc.Close() // dies holding the lot
			close(died)
		})
		return false // a dead worker acks nothing
	})
	waitFor(t, 10*time.Second, func() error {
		if h := a.ps.Held(); len(h) != 4 {
			return fmt.Errorf("a holds %v", h)
		}
		return nil
	})
	b := startWorker(t, q, peerID(t, "a", 4), tr, nil)
	publishEvents(t, q, records, 0, 6)
	select {
	case <-died:
	case <-time.After(20 * time.Second):
		t.Fatal("a handed out no lot")
	}
	if len(heldLot.Deliveries) == 0 {
		t.Fatal("a died with an empty lot")
	}
	waitAcked(t, tr, 12*6, 30*time.Second)
	publishEvents(t, q, records, 6, 2)
	waitAcked(t, tr, 12*8, 30*time.Second)
	tr.check(t)
	// Every event of the dead worker's lot reached b too.
	tr.mu.Lock()
	for _, d := range heldLot.Deliveries {
		id, k := recordOf(d)
		if n := tr.handed[id+":"+strconv.Itoa(k)]; n != 2 {
			t.Errorf("%s:%d of the dead lot handed out %d times, want 2", id, k, n)
		}
	}
	tr.mu.Unlock()
	// Rule 2: the partition of the dead lot was taken with a wait.
	waited := false
	for _, l := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(l, "acquired partition") && strings.Contains(l, fmt.Sprintf(" partition=%d ", heldLot.Partitions[0])) {
			waited = strings.Contains(l, "clean_release=false waits_ack_wait=true")
		}
	}
	if !waited {
		t.Errorf("b took the dead worker's partition %d without waiting:\n%s", heldLot.Partitions[0], b.log)
	}
	if !heldLot.Fenced() {
		t.Errorf("the dead worker's lot is not fenced")
	}
	if h := b.ps.Held(); len(h) != 4 {
		t.Errorf("b holds %v, want all 4", h)
	}
	waitStreamMsgs(t, ts.js, Stream, 0)
}

// Ensure that Suspend hands every partition back (the other worker takes
// them) and takes nothing until Resume.
func TestPartitions_SuspendResume(t *testing.T) {
	_, q := partitionedQueue(t, 4)
	records := make([]string, 10)
	for i := range records {
		records[i] = recordID(i)
	}
	tr := newTracker()
	a := startWorker(t, q, "a", tr, nil)
	bid := peerID(t, "a", 4)
	b := startWorker(t, q, bid, tr, nil)
	waitAssigned(t, map[string]*Partitions{"a": a.ps, bid: b.ps}, 4)
	publishEvents(t, q, records, 0, 3)
	if err := a.ps.Suspend(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
	if h := a.ps.Held(); len(h) != 0 {
		t.Fatalf("suspended a holds %v", h)
	}
	waitFor(t, 10*time.Second, func() error {
		if hb := b.ps.Held(); len(hb) != 4 {
			return fmt.Errorf("b holds %v", hb)
		}
		return nil
	})
	publishEvents(t, q, records, 3, 3)
	waitAcked(t, tr, 10*6, 30*time.Second)
	if h := a.ps.Held(); len(h) != 0 {
		t.Errorf("suspended a acquired %v", h)
	}
	a.ps.Resume()
	waitAssigned(t, map[string]*Partitions{"a": a.ps, bid: b.ps}, 4)
	tr.check(t)
}

// bufferedIn waits until partition n of ps has want buffered deliveries.
func bufferedIn(t *testing.T, ps *Partitions, n, want int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		pt := ps.parts[n]
		if pt == nil || len(pt.buf) != want {
			return fmt.Errorf("partition %d not buffered yet", n)
		}
		return nil
	})
}

// Ensure that Next takes whole partitions, splits one only at max, keeps a
// busy partition out of other lots until Done, and lingers for more.
func TestPartitions_NextMaxLinger(t *testing.T) {
	_, q := partitionedQueue(t, 4)
	ps, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ps.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, func() error {
		if h := ps.Held(); len(h) != 4 {
			return fmt.Errorf("holds %v", h)
		}
		return nil
	})
	x := recordID(1)
	px := PartitionOf(x, 4)
	publishEvents(t, q, []string{x}, 0, 5)
	bufferedIn(t, ps, px, 5)

	lot, err := ps.Next(ctxTimeout(t, 5*time.Second), 2, 0)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if len(lot.Deliveries) != 2 || !slices.Equal(lot.Partitions, []int{px}) {
		t.Fatalf("lot of %d deliveries of %v, want 2 of [%d]", len(lot.Deliveries), lot.Partitions, px)
	}
	for i, d := range lot.Deliveries {
		if _, k := recordOf(d); k != i {
			t.Errorf("delivery %d is event %d", i, k)
		}
	}
	// The rest of px waits for the lot.
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	if l, err := ps.Next(short, 10, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next while %d is busy = %v, %v; want DeadlineExceeded", px, l, err)
	}
	cancelShort()
	// Another partition is not held up by the busy one.
	var y string
	for i := 2; ; i++ {
		if y = recordID(i); PartitionOf(y, 4) != px {
			break
		}
	}
	publishEvents(t, q, []string{y}, 0, 1)
	ly, err := ps.Next(ctxTimeout(t, 5*time.Second), 10, 0)
	if err != nil || len(ly.Deliveries) != 1 || ly.Partitions[0] != PartitionOf(y, 4) {
		t.Fatalf("Next for another partition = %+v, %v", ly, err)
	}
	for _, l := range []*Lot{lot, ly} {
		for _, d := range l.Deliveries {
			if err := d.AckSync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		l.Done()
		l.Done() // idempotent
	}
	rest, err := ps.Next(ctxTimeout(t, 5*time.Second), 10, 0)
	if err != nil || len(rest.Deliveries) != 3 {
		t.Fatalf("Next after Done = %v, %v; want the 3 left", rest, err)
	}
	if _, k := recordOf(rest.Deliveries[0]); k != 2 {
		t.Errorf("the rest starts with event %d, want 2", k)
	}
	rest.Done()

	// Linger: the second event, published within the linger, joins the lot.
	z1, z2 := recordID(100), recordID(101)
	publishEvents(t, q, []string{z1}, 0, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // publish inside the linger window
		h := nats.Header{}
		h.Set(headerIdx, "0")
		_, _ = q.Publish(context.Background(), AccountSubject("updated", z2), "z2", []byte("{}"), h)
	}()
	ll, err := ps.Next(ctxTimeout(t, 10*time.Second), 2, 5*time.Second)
	if err != nil || len(ll.Deliveries) != 2 {
		t.Fatalf("Next with linger = %v, %v; want both events", ll, err)
	}
	ll.Done()

	if got := ps.Pending(); got != 0 {
		t.Errorf("Pending = %d, want 0", got)
	}
	cancel()
	<-done
	if _, err := ps.Next(t.Context(), 1, 0); !errors.Is(err, ErrStopped) {
		t.Errorf("Next after Run returned: %v, want ErrStopped", err)
	}
}

// Ensure that rendezvous hashing spreads partitions over members, and moves
// only the partitions of a member that joins or leaves.
func TestOwner_Balanced(t *testing.T) {
	const n = 64
	for _, members := range [][]string{{"a", "b"}, {"worker-1", "worker-2", "worker-3"}, {"w1", "w2", "w3", "w4"}} {
		count := map[string]int{}
		for p := range n {
			count[owner(members, p)]++
		}
		for _, m := range members {
			if c := count[m]; c < n/len(members)/2 {
				t.Errorf("members %v: %s owns %d of %d partitions", members, m, c, n)
			}
		}
		fewer := members[:len(members)-1]
		for p := range n {
			if o := owner(members, p); o != members[len(members)-1] && owner(fewer, p) != o {
				t.Errorf("members %v: partition %d moved from %s when %s left", members, p, o, members[len(members)-1])
			}
		}
	}
}

// waitAssigned waits until each worker holds exactly the partitions the
// rendezvous assignment gives it, none of them being released.
func waitAssigned(t *testing.T, workers map[string]*Partitions, n int) {
	t.Helper()
	var members []string
	for id := range workers {
		members = append(members, id)
	}
	waitFor(t, 15*time.Second, func() error {
		for id, ps := range workers {
			var want []int
			for p := range n {
				if owner(members, p) == id {
					want = append(want, p)
				}
			}
			ps.mu.Lock()
			var releasing []int
			for p, pt := range ps.parts {
				if pt.releasing {
					releasing = append(releasing, p)
				}
			}
			ps.mu.Unlock()
			if got := ps.Held(); !slices.Equal(got, want) || len(releasing) > 0 {
				return fmt.Errorf("%s holds %v (releasing %v), assigned %v", id, got, releasing, want)
			}
		}
		return nil
	})
}

// peerID returns a worker ID that shares n partitions with id (each holds
// at least one).
func peerID(t *testing.T, id string, n int) string {
	t.Helper()
	for i := range 100 {
		peer := "b" + strconv.Itoa(i)
		mine := 0
		for p := range n {
			if owner([]string{id, peer}, p) == id {
				mine++
			}
		}
		if mine > 0 && mine < n {
			return peer
		}
	}
	t.Fatal("no peer ID splits the partitions")
	return ""
}

// Ensure that partition consumers deleted under a running worker (an
// operator's reset) are created again and the worker goes on.
func TestPartitions_ConsumerDeletedUnderWorker(t *testing.T) {
	_, q := partitionedQueue(t, 2)
	tr := newTracker()
	w := startWorker(t, q, "w", tr, nil)
	records := []string{recordID(1), recordID(2), recordID(3)}
	publishEvents(t, q, records, 0, 2)
	waitAcked(t, tr, 6, 20*time.Second)
	if err := q.DeleteConsumer(t.Context()); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	publishEvents(t, q, records, 2, 2)
	waitAcked(t, tr, 12, 20*time.Second)
	tr.check(t)
	if h := w.ps.Held(); len(h) != 2 {
		t.Errorf("holds %v after the reset", h)
	}
	if !strings.Contains(w.log.String(), "re-created the partition's deleted consumer") {
		t.Errorf("the worker did not re-create the consumers:\n%s", w.log)
	}
}

// Ensure that Suspend waits for the lot in flight: the partition stays held
// (being released) until the lot is Done, and nothing else of it is handed
// out meanwhile.
func TestPartitions_SuspendWaitsForLot(t *testing.T) {
	_, q := partitionedQueue(t, 2)
	ps, err := q.Partitions(t.Context(), PartitionsConfig{WorkerID: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ps.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, func() error {
		if h := ps.Held(); len(h) != 2 {
			return fmt.Errorf("holds %v", h)
		}
		return nil
	})
	x := recordID(1)
	px := PartitionOf(x, 2)
	publishEvents(t, q, []string{x}, 0, 3)
	bufferedIn(t, ps, px, 3)
	lot, err := ps.Next(ctxTimeout(t, 5*time.Second), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	suspended := make(chan error, 1)
	go func() { suspended <- ps.Suspend(context.Background()) }()
	// The other partition goes at once; px waits for the lot.
	waitFor(t, 10*time.Second, func() error {
		if h := ps.Held(); !slices.Equal(h, []int{px}) {
			return fmt.Errorf("holds %v, want only %d", h, px)
		}
		return nil
	})
	select {
	case err := <-suspended:
		t.Fatalf("Suspend returned (%v) with a lot in flight", err)
	default:
	}
	if err := lot.Deliveries[0].AckSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	lot.Done()
	select {
	case err := <-suspended:
		if err != nil {
			t.Fatalf("Suspend: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Suspend did not return after the lot was Done")
	}
	if h := ps.Held(); len(h) != 0 {
		t.Errorf("suspended worker holds %v", h)
	}
	// The two events it had buffered were handed back, not lost.
	ps.Resume()
	// Each fetched message is buffered as it arrives: wait for both, or
	// Next may hand out the first alone.
	bufferedIn(t, ps, px, 2)
	rest, err := ps.Next(ctxTimeout(t, 15*time.Second), 10, 0)
	if err != nil || len(rest.Deliveries) != 2 {
		t.Fatalf("after Resume Next = %v, %v; want the 2 handed back", rest, err)
	}
	if _, k := recordOf(rest.Deliveries[0]); k != 1 {
		t.Errorf("after Resume the first event is %d, want 1", k)
	}
}

// Ensure that a partition handed on before its holder's first fetch (still
// waiting for a dead holder's messages) makes the next holder wait too, so
// the dead holder's events still come first.
func TestPartitions_HandOnDuringTakeoverWait(t *testing.T) {
	ts, q := partitionedQueue(t, 1)
	tr := newTracker()
	nc, err := ts.e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	qa := mustNew(t, js, Config{Partitions: 1, AckWait: testAckWait, LeaseTTL: testLeaseTTL})
	died := make(chan struct{})
	var once sync.Once
	a := startWorker(t, qa, "a", tr, func(*Lot) bool {
		once.Do(func() {
			nc.Close() // dies holding the lot
			close(died)
		})
		return false // a dead worker acks nothing
	})
	waitFor(t, 10*time.Second, func() error {
		if h := a.ps.Held(); len(h) != 1 {
			return fmt.Errorf("a holds %v", h)
		}
		return nil
	})
	x := recordID(1)
	publishEvents(t, q, []string{x}, 0, 4)
	<-died
	// b takes the partition over and waits AckWait before fetching.
	b := startWorker(t, q, "b", tr, nil)
	waitFor(t, 10*time.Second, func() error {
		if !strings.Contains(b.log.String(), "waits_ack_wait=true") {
			return errors.New("b has not taken the partition over yet")
		}
		return nil
	})
	// c joins at once and is assigned the partition: b hands it on before
	// its first fetch.
	var cid string
	for i := range 100 {
		if cid = "c" + strconv.Itoa(i); owner([]string{"b", cid}, 0) == cid {
			break
		}
	}
	c := startWorker(t, q, cid, tr, nil)
	waitAcked(t, tr, 4, 30*time.Second)
	tr.check(t)
	if l := c.log.String(); !strings.Contains(l, "clean_release=false waits_ack_wait=true") {
		t.Errorf("c took the partition without waiting:\n%s\nb:\n%s", l, b.log)
	}
}
