package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PartitionBucket is the JetStream key-value bucket of partition leases
// (partition.<p>, whose value is the holder's worker ID) and members
// (member.<worker-id>). Its keys expire LeaseTTL after their last write.
const PartitionBucket = "ORGSYNC_PARTITIONS"

// DefaultPartitionBuffer is PartitionsConfig.Buffer's default.
const DefaultPartitionBuffer = 1000

// Keys of PartitionBucket.
const (
	memberKeyPrefix    = "member."
	partitionKeyPrefix = "partition."
	// headerReleased marks a lease deleted by a graceful release: its holder
	// settled or handed back everything it held (docs/ordering.md, rule 2).
	headerReleased = "Orgsync-Released"
	kvOperation    = "KV-Operation"
)

// PartitionsConfig configures Queue.Partitions.
type PartitionsConfig struct {
	// WorkerID names this worker in the lease bucket (letters, digits, '-',
	// '_', '.'). Required; unique in the pool.
	WorkerID string
	// Logger receives lease changes and fetch problems. Nil discards.
	Logger *slog.Logger
	// Buffer is how many messages a held partition prefetches. Default 1000.
	Buffer int
}

var workerIDRE = regexp.MustCompile(`^[-_.a-zA-Z0-9]+$`)

// Partitions is a worker's source of deliveries on the partitioned layout:
// it holds partition leases, balances partitions over the live workers,
// fetches from the partitions it holds and hands out Lots that never hold
// two batches of one partition at once (docs/ordering.md). Run drives it;
// Next, Held, Pending, Suspend and Resume are safe for concurrent use.
type Partitions struct {
	q       *Queue
	id      string
	log     *slog.Logger
	n       int
	bufSize int
	ttl     time.Duration
	kv      jetstream.KeyValue
	kvs     jetstream.Stream // the bucket's stream, to read release markers

	running atomic.Bool
	wake    chan struct{} // wakes the balancer

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	parts     map[int]*part // partitions whose lease this worker holds
	lost      map[int]*part // lost leases whose lot is still in flight
	lots      int           // lots handed out and not Done
	suspended bool
	stopped   bool
	rr        int           // next partition Next starts from
	ackWait   time.Duration // the shortest AckWait of the held consumers
	releases  sync.WaitGroup
}

// part is one held partition.
type part struct {
	p         int
	key       string
	cons      jetstream.Consumer
	ackWait   time.Duration
	rev       uint64    // KV revision of the lease
	renewed   time.Time // last successful write of the lease
	fence     *atomic.Bool
	buf       []*Delivery
	busy      bool // a lot holds messages of this partition
	releasing bool
	pending   uint64
	notBefore time.Time // rule 2: first fetch not before
	stop      chan struct{}
	stopOnce  sync.Once
	pulled    chan struct{} // closed when the puller returned
}

func (pt *part) stopFetching() { pt.stopOnce.Do(func() { close(pt.stop) }) }

// Lot is a batch of deliveries handed out by Partitions.Next: every
// buffered delivery of each of its partitions (up to Next's max), in stream
// order per partition. No other lot holds messages of these partitions until
// Done.
type Lot struct {
	Deliveries []*Delivery
	Partitions []int

	ps    *Partitions
	parts []*part
	once  sync.Once
}

// Done tells the Partitions that every delivery of the lot is settled
// (acked or dead-lettered): its partitions may be handed out again. It is
// idempotent.
func (l *Lot) Done() {
	l.once.Do(func() { l.ps.lotDone(l) })
}

// Fenced reports whether this worker lost the lease of one of the lot's
// partitions (it could not renew it for two thirds of the lease TTL): the
// engine should not start writes for the lot, and its deliveries are no
// longer kept alive (another worker will get them).
func (l *Lot) Fenced() bool {
	for _, pt := range l.parts {
		if pt.fence.Load() {
			return true
		}
	}
	return false
}

// Partitions prepares this worker's partition source: it checks the layout
// (an error wrapping ErrLegacyLayout when ORGSYNC still has the consumer
// "workers" or no partition transform), creates the missing partition
// consumers workers-<p> (paused when the pool is) and the lease bucket
// ORGSYNC_PARTITIONS (TTL Config.LeaseTTL, history 1; an existing bucket's
// TTL is used as it is). Call Run to start it.
func (q *Queue) Partitions(ctx context.Context, cfg PartitionsConfig) (*Partitions, error) {
	if !workerIDRE.MatchString(cfg.WorkerID) {
		return nil, fmt.Errorf("%w: worker ID %q (want letters, digits, '-', '_', '.')", ErrInvalidConfig, cfg.WorkerID)
	}
	if cfg.Buffer < 0 {
		return nil, fmt.Errorf("%w: Buffer %d is negative", ErrInvalidConfig, cfg.Buffer)
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultPartitionBuffer
	}
	log := cfg.Logger
	if log == nil {
		log = q.log
	}
	l, err := q.Layout(ctx)
	if err != nil {
		return nil, err
	}
	if l.Legacy() {
		return nil, ErrLegacyLayout
	}
	var until time.Time
	if infos, err := q.poolConsumers(ctx); err != nil {
		return nil, err
	} else {
		for _, info := range infos {
			if u := time.Now().Add(info.PauseRemaining); info.Paused && u.After(until) {
				until = u
			}
		}
	}
	for p := range l.Partitions {
		if _, err := q.ensurePartitionConsumer(ctx, p, l.Partitions, until); err != nil {
			return nil, err
		}
	}
	kv, ttl, err := q.partitionKV(ctx)
	if err != nil {
		return nil, err
	}
	kvs, err := q.js.Stream(ctx, "KV_"+PartitionBucket)
	if err != nil {
		return nil, streamErr("partition leases", "KV_"+PartitionBucket, err)
	}
	return &Partitions{
		q: q, id: cfg.WorkerID, log: log.With("worker_id", cfg.WorkerID), n: l.Partitions, bufSize: cfg.Buffer,
		ttl: ttl, kv: kv, kvs: kvs, wake: make(chan struct{}, 1),
		changed: make(chan struct{}), parts: map[int]*part{}, lost: map[int]*part{}, ackWait: q.cfg.AckWait,
	}, nil
}

// partitionKV opens the lease bucket, creating it when missing, and returns
// its TTL.
func (q *Queue) partitionKV(ctx context.Context) (jetstream.KeyValue, time.Duration, error) {
	kv, err := q.js.KeyValue(ctx, PartitionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = q.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      PartitionBucket,
			Description: "orgsync: partition leases and live workers",
			History:     1,
			TTL:         q.cfg.LeaseTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    q.cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = q.js.KeyValue(ctx, PartitionBucket)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("queue: partition leases %s: %w", PartitionBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("queue: partition leases %s: %w", PartitionBucket, err)
	}
	ttl := st.TTL()
	if ttl <= 0 {
		return nil, 0, fmt.Errorf("queue: partition leases %s: the bucket has no TTL: delete it (running workers re-create it)", PartitionBucket)
	}
	if ttl != q.cfg.LeaseTTL {
		q.log.Warn("queue: the lease bucket's TTL differs from -lease-ttl; using the bucket's",
			"bucket", PartitionBucket, "bucket_ttl", ttl, "configured", q.cfg.LeaseTTL)
	}
	return kv, ttl, nil
}

// Count is the stream's partition count.
func (p *Partitions) Count() int { return p.n }

// LeaseTTL is the lease bucket's TTL.
func (p *Partitions) LeaseTTL() time.Duration { return p.ttl }

// AckWait is the shortest ack wait of the consumers this worker has held:
// keep handed-out deliveries alive well inside it (Hold at a third).
func (p *Partitions) AckWait() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ackWait
}

// Held lists the partitions whose lease this worker holds, in order.
func (p *Partitions) Held() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.parts))
	for n := range p.parts {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// Pending is the number of messages waiting for this worker over the held
// partitions: those the consumers have not delivered yet (from the last
// fetched metadata) and those buffered here, not yet in a lot.
func (p *Partitions) Pending() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, pt := range p.parts {
		n += pt.pending + uint64(len(pt.buf))
	}
	return n
}

// broadcastLocked wakes everything waiting for a change. p.mu is held.
func (p *Partitions) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// poke wakes the balancer.
func (p *Partitions) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Next waits until at least one delivery is buffered in a held partition
// with no lot in flight, then up to linger for more (returning as soon as
// max are ready), and returns a Lot of every buffered delivery of each
// chosen partition, up to max in all (a partition is split only when max is
// reached; the rest stays buffered and waits for the lot to be Done). The
// lot's partitions are busy until Done. It returns ctx's error when ctx
// ends first, and ErrStopped once Run is shutting down.
func (p *Partitions) Next(ctx context.Context, max int, linger time.Duration) (*Lot, error) {
	if max <= 0 {
		max = 1
	}
	var lingerEnd time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil, ErrStopped
		}
		count := p.readyLocked()
		now := time.Now()
		if count > 0 && lingerEnd.IsZero() {
			lingerEnd = now.Add(linger)
		}
		if count > 0 && (count >= max || !now.Before(lingerEnd)) {
			lot := p.takeLocked(max)
			p.mu.Unlock()
			return lot, nil
		}
		if count == 0 {
			lingerEnd = time.Time{}
		}
		ch := p.changed
		p.mu.Unlock()
		var tc <-chan time.Time
		if !lingerEnd.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(lingerEnd))
			} else {
				timer.Reset(time.Until(lingerEnd))
			}
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-tc:
		}
	}
}

// available reports whether Next may take from pt. p.mu is held.
func (pt *part) available() bool {
	return !pt.busy && !pt.releasing && len(pt.buf) > 0 && !pt.fence.Load()
}

// readyLocked counts the deliveries Next could take now. p.mu is held.
func (p *Partitions) readyLocked() int {
	n := 0
	for _, pt := range p.parts {
		if pt.available() {
			n += len(pt.buf)
		}
	}
	return n
}

// takeLocked builds a lot of up to max deliveries, whole partitions first
// come (round robin from p.rr). p.mu is held.
func (p *Partitions) takeLocked(max int) *Lot {
	ids := make([]int, 0, len(p.parts))
	for n, pt := range p.parts {
		if pt.available() {
			ids = append(ids, n)
		}
	}
	sort.Ints(ids)
	start := sort.SearchInts(ids, p.rr)
	lot := &Lot{ps: p}
	for i := range ids {
		n := ids[(start+i)%len(ids)]
		pt := p.parts[n]
		take := min(len(pt.buf), max-len(lot.Deliveries))
		lot.Deliveries = append(lot.Deliveries, pt.buf[:take]...)
		pt.buf = slices.Clone(pt.buf[take:])
		pt.busy = true
		lot.Partitions = append(lot.Partitions, n)
		lot.parts = append(lot.parts, pt)
		p.rr = n + 1
		if len(lot.Deliveries) >= max {
			break
		}
	}
	p.lots++
	p.broadcastLocked() // the pullers may have room again
	return lot
}

// lotDone frees the lot's partitions.
func (p *Partitions) lotDone(l *Lot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pt := range l.parts {
		pt.busy = false
		if p.lost[pt.p] == pt {
			delete(p.lost, pt.p)
		}
	}
	p.lots--
	p.broadcastLocked()
}

// Run holds leases and fetches until ctx ends: it registers the worker
// (member.<id>), renews its keys every third of the TTL from a goroutine of
// its own, balances partitions over the live workers (rendezvous hashing),
// fetches from each held partition into a bounded buffer kept alive with
// InProgress, and moves messages on legacy subjects to their partitions.
//
// When ctx ends it stops fetching, waits (at most AckWait) for the lots in
// flight to be Done, naks the buffered messages, deletes its lease and
// member keys and returns nil. A partition whose lot is still not Done is
// not released: its lease expires.
func (p *Partitions) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("queue: Partitions.Run called twice")
	}
	keepCtx, stopKeep := context.WithCancel(context.WithoutCancel(ctx))
	var keep, work sync.WaitGroup
	keep.Go(func() { p.renewLoop(keepCtx) })
	keep.Go(func() { p.keepAliveLoop(keepCtx) })
	keep.Go(func() { p.fenceLoop(keepCtx) })
	work.Go(func() { p.balanceLoop(ctx) })
	work.Go(func() { p.watchLoop(ctx) })
	work.Go(func() { p.forwardLoop(ctx) })
	p.putMember(ctx)
	p.poke()

	<-ctx.Done()
	work.Wait()
	p.shutdown(keepCtx)
	stopKeep()
	keep.Wait()
	return nil
}

// releaseAllLocked marks every held partition releasing, stops its
// fetching and returns them. p.mu is held.
func (p *Partitions) releaseAllLocked() []*part {
	parts := make([]*part, 0, len(p.parts))
	for _, pt := range p.parts {
		pt.releasing = true
		pt.stopFetching()
		parts = append(parts, pt)
	}
	p.broadcastLocked()
	return parts
}

// shutdown hands everything back: see Run.
func (p *Partitions) shutdown(ctx context.Context) {
	p.mu.Lock()
	p.stopped = true
	parts := p.releaseAllLocked()
	ackWait := p.ackWait
	p.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, ackWait)
	defer cancel()
	for _, pt := range parts {
		p.release(dctx, pt, "shutdown")
	}
	p.releases.Wait()
	p.deleteMember(ctx)
}

// release stops fetching pt, waits for its lot to be Done (until ctx ends),
// naks its buffer at once and deletes its lease with the release marker.
// When ctx ends first, the lease is left to expire and pt is fenced.
func (p *Partitions) release(ctx context.Context, pt *part, why string) {
	p.mu.Lock()
	pt.releasing = true
	pt.stopFetching()
	p.broadcastLocked()
	p.mu.Unlock()
	<-pt.pulled
	for {
		p.mu.Lock()
		if p.parts[pt.p] != pt {
			p.mu.Unlock()
			return // lost meanwhile
		}
		if !pt.busy {
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
			continue
		case <-ctx.Done():
		}
		p.lose(pt, "its lot was not done in time ("+why+")")
		return
	}
	buf := pt.buf
	pt.buf = nil
	delete(p.parts, pt.p)
	rev := pt.rev
	// Released before its first fetch: a dead holder's messages may still be
	// pending, so the next holder must wait for them too.
	clean := !time.Now().Before(pt.notBefore)
	p.broadcastLocked()
	p.mu.Unlock()

	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.ttl/3)
	defer cancel()
	nakErr := false
	for _, d := range buf {
		if err := d.msg.Nak(); err != nil {
			nakErr = true
		}
	}
	if nakErr {
		// A message not handed back stays pending until its AckWait: do not
		// say the release was clean, so the next holder waits for it.
		p.log.Warn("queue: could not hand back every buffered message of a released partition", "partition", pt.p)
		pt.fence.Store(true)
		p.poke()
		return
	}
	m := nats.NewMsg("$KV." + PartitionBucket + "." + pt.key)
	m.Header.Set(kvOperation, "DEL")
	if clean {
		m.Header.Set(headerReleased, p.id)
	}
	if _, err := p.q.js.PublishMsg(kctx, m, jetstream.WithExpectLastSequencePerSubject(rev)); err != nil {
		p.log.Warn("queue: could not delete a released lease; it expires", "partition", pt.p, logKeyErr, err)
	} else {
		p.log.Info("queue: released partition", "partition", pt.p, "reason", why, "handed_back", len(buf))
	}
	pt.fence.Store(true) // nothing of it is ours any more
	p.poke()
}

// lose drops pt at once: this worker no longer holds its lease. Its buffer is
// dropped (the messages become redeliverable after their AckWait) and its
// deliveries are no longer kept alive.
func (p *Partitions) lose(pt *part, why string) {
	p.mu.Lock()
	if p.parts[pt.p] != pt {
		p.mu.Unlock()
		return
	}
	delete(p.parts, pt.p)
	pt.fence.Store(true)
	pt.stopFetching()
	pt.buf = nil
	if pt.busy {
		p.lost[pt.p] = pt
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Warn("queue: lost the lease of a partition; stopped fetching it", "partition", pt.p, "reason", why)
	p.poke()
}

// Suspend stops this worker taking part (its own credentials failed): it
// leaves the member list, stops fetching, waits for the lots in flight to be
// Done, naks what is buffered and releases every lease; it acquires nothing
// until Resume. It returns ctx's error when ctx ends before everything was
// released (the rest is released when its lots are Done).
func (p *Partitions) Suspend(ctx context.Context) error {
	p.mu.Lock()
	p.suspended = true
	parts := p.releaseAllLocked()
	p.mu.Unlock()
	p.deleteMember(ctx)
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, pt := range parts {
			wg.Go(func() { p.release(context.Background(), pt, "suspended") })
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Resume ends a Suspend: the worker registers again and acquires the
// partitions assigned to it.
func (p *Partitions) Resume() {
	p.mu.Lock()
	p.suspended = false
	p.mu.Unlock()
	if p.running.Load() {
		p.putMember(context.Background())
	}
	p.poke()
}

func (p *Partitions) memberKey() string { return memberKeyPrefix + p.id }

func (p *Partitions) putMember(ctx context.Context) {
	p.mu.Lock()
	skip := p.suspended || p.stopped
	p.mu.Unlock()
	if skip {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, p.ttl/3)
	defer cancel()
	if _, err := p.kv.Put(cctx, p.memberKey(), []byte(p.id)); err != nil && ctx.Err() == nil {
		p.log.Warn("queue: could not renew membership", logKeyErr, err)
	}
}

func (p *Partitions) deleteMember(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.ttl/3)
	defer cancel()
	if err := p.kv.Delete(cctx, p.memberKey()); err != nil {
		p.log.Warn("queue: could not delete membership; it expires", logKeyErr, err)
	}
}

// renewLoop renews the member key and every held lease each third of the
// TTL, and fences a partition whose lease could not be renewed for two
// thirds of it (rule 1).
func (p *Partitions) renewLoop(ctx context.Context) {
	t := time.NewTicker(p.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		parts := make([]*part, 0, len(p.parts))
		for _, pt := range p.parts {
			parts = append(parts, pt)
		}
		p.mu.Unlock()
		// In parallel: one slow write must not hold the others back.
		var wg sync.WaitGroup
		wg.Go(func() { p.putMember(ctx) })
		for _, pt := range parts {
			wg.Go(func() { p.renew(ctx, pt) })
		}
		wg.Wait()
	}
}

// fenceLoop drops every partition whose lease was not renewed for two
// thirds of the TTL (rule 1), whatever the renewals are doing.
func (p *Partitions) fenceLoop(ctx context.Context) {
	t := time.NewTicker(max(p.ttl/12, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		p.mu.Lock()
		var late []*part
		for _, pt := range p.parts {
			if now.Sub(pt.renewed) > 2*p.ttl/3 {
				late = append(late, pt)
			}
		}
		p.mu.Unlock()
		for _, pt := range late {
			p.lose(pt, "could not renew the lease for 2/3 of its TTL")
		}
	}
}

// renew rewrites pt's lease (compare-and-set on its revision).
func (p *Partitions) renew(ctx context.Context, pt *part) {
	p.mu.Lock()
	rev := pt.rev
	held := p.parts[pt.p] == pt
	p.mu.Unlock()
	if !held {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, p.ttl/3)
	defer cancel()
	nrev, err := p.kv.Update(cctx, pt.key, []byte(p.id), rev)
	now := time.Now()
	switch {
	case err == nil:
		p.mu.Lock()
		if p.parts[pt.p] == pt {
			pt.rev, pt.renewed = nrev, now
		}
		p.mu.Unlock()
	case errors.Is(err, jetstream.ErrKeyExists):
		p.lose(pt, "the lease changed under this worker")
	default:
		p.mu.Lock()
		late := now.Sub(pt.renewed) > 2*p.ttl/3
		p.mu.Unlock()
		if late {
			p.lose(pt, "could not renew the lease for 2/3 of its TTL: "+err.Error())
		} else if ctx.Err() == nil {
			p.log.Warn("queue: could not renew a lease", "partition", pt.p, logKeyErr, err)
		}
	}
}

// keepAliveLoop sends InProgress for the buffered messages (not handed out)
// every third of the AckWait.
func (p *Partitions) keepAliveLoop(ctx context.Context) {
	for {
		p.mu.Lock()
		every := p.ackWait / 3
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		p.mu.Lock()
		var ds []*Delivery
		for _, pt := range p.parts {
			ds = append(ds, pt.buf...)
		}
		p.mu.Unlock()
		for _, d := range ds {
			if !d.fenced() {
				_ = d.msg.InProgress()
			}
		}
	}
}

// watchLoop wakes the balancer when the assignment may have changed: a
// worker joined or left, or a lease was released. (Renewals, which rewrite
// every key each third of the TTL, do not wake it; expiries produce no
// event at all, hence the balancer's ticker.)
func (p *Partitions) watchLoop(ctx context.Context) {
	known := map[string]bool{}
	for ctx.Err() == nil {
		w, err := p.kv.WatchAll(ctx, jetstream.MetaOnly())
		if err != nil {
			if !sleepCtx(ctx, p.ttl/3) {
				return
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			deleted := e.Operation() != jetstream.KeyValuePut
			switch {
			case strings.HasPrefix(e.Key(), memberKeyPrefix) && deleted:
				delete(known, e.Key())
				p.poke()
			case strings.HasPrefix(e.Key(), memberKeyPrefix) && !known[e.Key()]:
				known[e.Key()] = true
				p.poke()
			case strings.HasPrefix(e.Key(), partitionKeyPrefix) && deleted:
				p.poke()
			}
		}
		_ = w.Stop()
		if !sleepCtx(ctx, p.ttl/3) {
			return
		}
	}
}

// forwardLoop moves messages on legacy subjects to their partitions.
func (p *Partitions) forwardLoop(ctx context.Context) {
	for ctx.Err() == nil {
		moved, err := p.q.ForwardLegacy(ctx, false)
		if moved > 0 {
			p.log.Info("queue: moved messages from legacy subjects to their partitions", logKeyCount, moved)
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("queue: moving legacy messages failed; retrying", logKeyErr, err)
		}
		if !sleepCtx(ctx, p.ttl/3) {
			return
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// balanceLoop re-evaluates the assignment on every wake and every third of
// the TTL.
func (p *Partitions) balanceLoop(ctx context.Context) {
	t := time.NewTicker(p.ttl / 3)
	defer t.Stop()
	for {
		p.balance(ctx)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// score is partition n's rendezvous weight for member m: FNV-64a of both,
// through a finalizer (murmur3's fmix64), since FNV alone ranks IDs that
// differ in one byte the same way for every partition.
func score(m string, n int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(m))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.Itoa(n)))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// owner is the member partition n is assigned to (highest score).
func owner(members []string, n int) string {
	var best string
	var bestScore uint64
	for _, m := range members {
		if s := score(m, n); best == "" || s > bestScore || s == bestScore && m < best {
			best, bestScore = m, s
		}
	}
	return best
}

// members lists the live workers (with this one unless suspended).
func (p *Partitions) members(ctx context.Context) ([]string, error) {
	l, err := p.kv.ListKeysFiltered(ctx, memberKeyPrefix+">")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	var out []string
	if l != nil {
		for k := range l.Keys() {
			out = append(out, strings.TrimPrefix(k, memberKeyPrefix))
		}
	}
	if !slices.Contains(out, p.id) {
		out = append(out, p.id)
	}
	sort.Strings(out)
	return out, nil
}

// balance releases the partitions assigned to other members and acquires
// the free ones assigned to this worker.
func (p *Partitions) balance(ctx context.Context) {
	p.mu.Lock()
	skip := p.suspended || p.stopped
	p.mu.Unlock()
	if skip || ctx.Err() != nil {
		return
	}
	members, err := p.members(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("queue: could not list the workers", logKeyErr, err)
		}
		return
	}
	for n := range p.n {
		mine := owner(members, n) == p.id
		p.mu.Lock()
		pt, held := p.parts[n]
		_, lostBusy := p.lost[n]
		releasing := held && pt.releasing
		stop := p.suspended || p.stopped
		p.mu.Unlock()
		switch {
		case stop || ctx.Err() != nil:
			return
		case held && !mine && !releasing:
			// Not ctx: a shutdown meanwhile takes the release over.
			p.releases.Go(func() { p.release(context.WithoutCancel(ctx), pt, "assigned to another worker") })
		case !held && mine && !lostBusy:
			p.acquire(ctx, n)
		}
	}
}

// acquire tries to take partition n's lease and starts fetching it.
func (p *Partitions) acquire(ctx context.Context, n int) {
	key := partitionKeyPrefix + strconv.Itoa(n)
	cctx, cancel := context.WithTimeout(ctx, p.ttl/3)
	defer cancel()
	var last uint64
	clean := false
	raw, err := p.kvs.GetLastMsgForSubject(cctx, "$KV."+PartitionBucket+"."+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		p.log.Debug("queue: could not read a lease", "partition", n, logKeyErr, err)
		return
	default:
		op := raw.Header.Get(kvOperation)
		if op != "DEL" && op != "PURGE" {
			return // held by another worker
		}
		last = raw.Sequence
		clean = raw.Header.Get(headerReleased) != ""
	}
	rev, err := p.kv.Update(cctx, key, []byte(p.id), last)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			p.log.Debug("queue: could not take a lease", "partition", n, logKeyErr, err)
		}
		return
	}
	acquired := time.Now()
	pt := &part{p: n, key: key, rev: rev, renewed: acquired, fence: &atomic.Bool{},
		stop: make(chan struct{}), pulled: make(chan struct{})}
	cons, err := p.q.ensurePartitionConsumer(cctx, n, p.n, time.Time{})
	var info *jetstream.ConsumerInfo
	if err == nil {
		info, err = cons.Info(cctx)
	}
	if err != nil {
		p.log.Warn("queue: could not read a partition's consumer; giving its lease back", "partition", n, logKeyErr, err)
		_ = p.kv.Delete(context.WithoutCancel(cctx), key, jetstream.LastRevision(rev))
		close(pt.pulled)
		return
	}
	pt.cons = cons
	pt.ackWait = info.Config.AckWait
	if pt.ackWait <= 0 {
		pt.ackWait = 30 * time.Second // the server's default
	}
	pt.pending = info.NumPending
	if info.NumAckPending > 0 && !clean {
		// Rule 2: the previous holder died holding messages; they are
		// redeliverable AckWait after its last InProgress, which came before
		// its lease expired.
		pt.notBefore = acquired.Add(pt.ackWait)
	}
	p.mu.Lock()
	if p.stopped || p.suspended {
		p.mu.Unlock()
		_ = p.kv.Delete(context.WithoutCancel(cctx), key, jetstream.LastRevision(rev))
		close(pt.pulled)
		return
	}
	p.parts[n] = pt
	p.ackWait = min(p.ackWait, pt.ackWait)
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Info("queue: acquired partition", "partition", n, "ack_pending", info.NumAckPending,
		"clean_release", clean, "waits_ack_wait", !pt.notBefore.IsZero())
	go p.pull(pt)
}

// pull fetches partition pt into its buffer until told to stop.
func (p *Partitions) pull(pt *part) {
	defer close(pt.pulled)
	if wait := time.Until(pt.notBefore); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-pt.stop:
			t.Stop()
			return
		}
	}
	fetchWait := min(time.Second, p.ttl/3, pt.ackWait/3)
	failures := 0
	seen := p.reconnects()
	for {
		select {
		case <-pt.stop:
			return
		default:
		}
		p.mu.Lock()
		room := p.bufSize - len(pt.buf)
		ch := p.changed
		p.mu.Unlock()
		if room <= 0 {
			select {
			case <-pt.stop:
				return
			case <-ch:
			}
			continue
		}
		if r := p.reconnects(); r != seen {
			// The connection broke since the last fetch began: the server
			// may have delivered messages to that fetch which never
			// arrived. They become redeliverable AckWait after their
			// delivery and then come before anything newer: wait that long
			// before fetching again, as a takeover does (rule 2).
			seen = r
			if !p.waitLost(pt) {
				return
			}
			continue
		}
		msgs, err := p.fetchInto(pt, min(room, 1000), fetchWait, seen)
		if err != nil {
			failures++
			if errors.Is(err, ErrNoConsumer) {
				p.recreate(pt)
			} else {
				p.log.Warn("queue: fetch failed", "partition", pt.p, logKeyErr, err)
			}
			select {
			case <-pt.stop:
				return
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, fetchWait)):
			}
			continue
		}
		failures = 0
		p.mu.Lock()
		lost := p.parts[pt.p] != pt || pt.fence.Load()
		if msgs == 0 && !lost {
			pt.pending = 0
		}
		p.mu.Unlock()
		if lost {
			return // lost: the messages become redeliverable after AckWait
		}
	}
}

// fetchInto pulls up to batch messages of pt, waiting at most wait, and
// buffers each as it arrives, so that Next sees it at once rather than when
// the request ends (at low load a lone event would otherwise wait for the
// whole fetch wait). Once pt is lost, the rest of the request is left
// unbuffered: those messages become redeliverable after AckWait. It returns
// how many arrived; an error wraps ErrNoConsumer when the consumer is gone.
//
// A message that arrives after the connection reconnected (its reconnection
// count is no longer seen) is not buffered: it may be newer than one lost on
// the broken connection. Left unacknowledged, it is redelivered in stream
// order with the lost ones after pull's wait.
func (p *Partitions) fetchInto(pt *part, batch int, wait time.Duration, seen uint64) (int, error) {
	b, err := pt.cons.Fetch(batch, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, consumerNamedErr("fetch", pt.cons.CachedInfo().Name, err)
	}
	n := 0
	for m := range b.Messages() {
		n++
		if p.reconnects() != seen {
			continue
		}
		d := newDelivery(m, time.Now())
		d.Partition, d.fence = pt.p, pt.fence
		p.mu.Lock()
		if p.parts[pt.p] == pt && !pt.fence.Load() {
			pt.buf = insertBySeq(pt.buf, d)
			pt.pending = d.Pending
			p.broadcastLocked()
		}
		p.mu.Unlock()
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && n == 0 {
		return 0, consumerNamedErr("fetch", pt.cons.CachedInfo().Name, err)
	}
	return n, nil
}

// waitLost waits pt's AckWait after a reconnection (see pull); false when
// told to stop meanwhile.
func (p *Partitions) waitLost(pt *part) bool {
	p.log.Info("queue: reconnected to NATS; waiting for deliveries lost on the broken connection before fetching again",
		"partition", pt.p, "wait", pt.ackWait.String())
	t := time.NewTimer(pt.ackWait)
	defer t.Stop()
	select {
	case <-pt.stop:
		return false
	case <-t.C:
		return true
	}
}

// reconnects is how many times this worker's NATS connection reconnected.
func (p *Partitions) reconnects() uint64 {
	if nc := p.q.js.Conn(); nc != nil {
		return nc.Stats().Reconnects
	}
	return 0
}

// recreate replaces pt's consumer, deleted under this worker (an operator's
// reset): the buffered messages came from the old consumer and are dropped
// (the new one delivers them again); a lot in flight keeps the partition
// busy until Done, so nothing overtakes it.
func (p *Partitions) recreate(pt *part) {
	p.mu.Lock()
	pt.buf = nil
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.ttl/3)
	defer cancel()
	// While the pool is paused, the new consumer is paused as long.
	_, until, _ := p.q.pausedUntil(ctx, "re-create consumer")
	cons, err := p.q.ensurePartitionConsumer(ctx, pt.p, p.n, until)
	if err != nil {
		p.log.Warn("queue: the partition's consumer is gone and could not be re-created", "partition", pt.p, logKeyErr, err)
		return
	}
	p.log.Warn("queue: re-created the partition's deleted consumer", "partition", pt.p)
	pt.cons = cons
}

// insertBySeq inserts d into buf, kept in stream order; a redelivery of a
// buffered message replaces it.
func insertBySeq(buf []*Delivery, d *Delivery) []*Delivery {
	if len(buf) == 0 || buf[len(buf)-1].Seq < d.Seq {
		return append(buf, d)
	}
	i := sort.Search(len(buf), func(i int) bool { return buf[i].Seq >= d.Seq })
	if i < len(buf) && buf[i].Seq == d.Seq {
		buf[i] = d
		return buf
	}
	return slices.Insert(buf, i, d)
}

// fetchAll pulls up to batch messages, waiting at most wait, and returns
// every message of the request (none is abandoned). An error wraps
// ErrNoConsumer when the consumer is gone.
func fetchAll(c jetstream.Consumer, batch int, wait time.Duration) ([]jetstream.Msg, error) {
	b, err := c.Fetch(batch, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, consumerNamedErr("fetch", c.CachedInfo().Name, err)
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(out) == 0 {
		return nil, consumerNamedErr("fetch", c.CachedInfo().Name, err)
	}
	return out, nil
}
