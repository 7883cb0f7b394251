package replicate

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

// Dead-letter codes orgsync sets itself; the others are Salesforce's.
const (
	CodeMalformedEvent = "MALFORMED_EVENT"
	CodeMaxDeliveries  = "MAX_DELIVERIES"
	CodeParentMissing  = "PARENT_MISSING"
)

// group is every delivery of one source ID in a batch: they share one
// record and one outcome.
type group struct {
	sourceID string
	ev       event.Event // the latest event of the group
	ds       []*queue.Delivery
}

// maxDelivered is the highest delivery count in the group.
func (g *group) maxDelivered() int {
	n := 0
	for _, d := range g.ds {
		n = max(n, d.NumDelivered)
	}
	return n
}

func (g *group) isLink() bool { return g.ev.Type == event.TypeAccountLink }

// run is one batch's processing: when shutdown starts, and what it cost.
type run struct {
	shutdown <-chan struct{}
	calls    atomic.Int64 // target calls made for the batch
	// How the batch's messages were settled.
	written, known, deadLettered, retried atomic.Int64
}

type runKey struct{}

// runOf is the batch of ctx, or nil.
func runOf(ctx context.Context) *run {
	r, _ := ctx.Value(runKey{}).(*run)
	return r
}

// countCall counts a target call against the batch of ctx, if any.
func countCall(ctx context.Context) {
	if r, ok := ctx.Value(runKey{}).(*run); ok {
		r.calls.Add(1)
	}
}

// batch is a fetched batch, decoded and grouped, waiting for a batch slot
// (see Worker.loop): its messages are kept alive (InProgress) from the
// fetch on.
type batch struct {
	r              *run
	ctx            context.Context // carries r; not cancelled at shutdown
	start          time.Time
	messages       int
	bulk           bool
	created, links []*group
	stop           func() // ends the InProgress heartbeat
}

// prepare decodes and groups a fetched batch (the first half of its
// processing; write is the second). Every message ends acked, retried,
// handed back or dead-lettered (or, when NATS itself is gone, left to be
// redelivered after the ack wait). ctx is not cancelled at shutdown (a
// write in flight finishes); shutdown is. In prepare, malformed and too-often
// delivered messages are dead-lettered and records this worker's ID map
// already knows are acked here, without a call; the rest wait in the batch
// for write. The caller must call b.stop once the batch is settled.
func (w *Worker) prepare(ctx context.Context, shutdown <-chan struct{}, ds []*queue.Delivery, bulk bool) *batch {
	r := &run{shutdown: shutdown}
	b := &batch{r: r, ctx: context.WithValue(ctx, runKey{}, r), start: time.Now(), messages: len(ds), bulk: bulk}
	ctx = b.ctx
	w.cfg.Metrics.batch(len(ds))
	b.stop = queue.Hold(ds, w.cfg.AckWait/3)

	var created, links []*group
	byID := map[string]*group{}
	linkByID := map[string]*group{}
	for _, d := range ds {
		ev, err := event.Decode(d.Data())
		sourceID := ev.SourceID
		if err != nil {
			sourceID = d.Header(queue.HeaderSourceID)
		}
		if receivedTooOften(d.NumDelivered, w.cfg.MaxDeliver) {
			reason := w.lastErr.take(d.Seq)
			if reason == "" {
				reason = "no error recorded by this worker (a worker may have crashed or timed out on it)"
			}
			w.deadLetter(ctx, d, sourceID, CodeMaxDeliveries,
				fmt.Sprintf("delivered %d times (max-deliver %d); last error: %s", d.NumDelivered, w.cfg.MaxDeliver, reason))
			continue
		}
		if err == nil && !subjectMatches(d.Subject, ev.Type) {
			err = fmt.Errorf("%w: %s event on subject %s", event.ErrMalformed, ev.Type, d.Subject)
		}
		if err != nil {
			w.deadLetter(ctx, d, sourceID, CodeMalformedEvent, err.Error())
			continue
		}
		index, list := byID, &created
		if ev.Type == event.TypeAccountLink {
			index, list = linkByID, &links
		}
		g := index[ev.SourceID]
		if g == nil {
			g = &group{sourceID: ev.SourceID}
			index[ev.SourceID] = g
			*list = append(*list, g)
		}
		g.ds = append(g.ds, d)
		if g.ev.CreatedAt.IsZero() || !ev.CreatedAt.Before(g.ev.CreatedAt) {
			g.ev = ev
		}
	}

	if len(created) > 0 {
		created = w.skipKnown(ctx, created)
	}
	if w.cfg.Mode == ModeUpsert {
		// Links are records of the same upsert call, except a link whose
		// child is created in this batch: it follows in a second call.
		var later []*group
		for _, g := range links {
			if byID[g.sourceID] != nil {
				later = append(later, g)
			} else {
				created = append(created, g)
			}
		}
		links = later
	}
	b.created, b.links = created, links
	return b
}

// handBackGroups gives records back to the queue unwritten (shutdown, or
// this worker stopped, before they got a batch slot).
func (w *Worker) handBackGroups(ctx context.Context, gs []*group, cause error) {
	for _, g := range gs {
		w.retryGroup(ctx, g, 0, cause)
	}
}

// write writes a prepared batch's records and settles their messages.
func (w *Worker) write(b *batch) {
	ctx, r, created, links := b.ctx, b.r, b.created, b.links
	records := len(created) + len(links)
	if len(created) > 0 {
		write, useBulk := w.writeCreated, false
		if b.bulk && len(created) > salesforce.MaxCollection {
			write, useBulk = w.writeBulk, true
		}
		w.writeAndSettle(ctx, r, created, write, useBulk)
	}
	// After a Bulk batch there can be more links than one call takes.
	step := salesforce.MaxCollection
	if w.cfg.Mode == ModeUpsert {
		step = max(step, w.cfg.Batch*w.cfg.composite()) // packed when more than -batch
	}
	for start := 0; start < len(links); start += step {
		w.writeAndSettle(ctx, r, links[start:min(start+step, len(links))], w.writeLinks, false)
	}
	if records > 0 {
		w.log.Info("batch settled", "records", records, "messages", b.messages,
			"written", r.written.Load(), "known", r.known.Load(), "dead_lettered", r.deadLettered.Load(),
			"retried", r.retried.Load(), "calls", r.calls.Load(),
			"took", time.Since(b.start).Round(time.Millisecond).String())
	}
}

func subjectMatches(subject, typ string) bool {
	switch typ {
	case event.TypeAccountCreated:
		return subject == queue.SubjectCreated
	case event.TypeAccountLink:
		return subject == queue.SubjectLink
	}
	return false
}

// repair reports whether a delivery of the group is a repair from `worker
// reconcile -repair` (queue.HeaderRepair): the target disagrees with the
// source, so the ID map's word that the record was written does not count.
func (g *group) repair() bool {
	for _, d := range g.ds {
		if d.Header(queue.HeaderRepair) != "" {
			return true
		}
	}
	return false
}

// skipKnown acks the groups whose source ID is already in this worker's ID
// map, without an API call, and returns the rest (repairs are never skipped).
func (w *Worker) skipKnown(ctx context.Context, gs []*group) []*group {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.sourceID
	}
	known, err := w.cfg.Store.Lookup(ids)
	if err != nil {
		w.log.Warn("id map lookup failed; writing the whole batch", "err", err)
		return gs
	}
	rest := gs[:0]
	for _, g := range gs {
		if _, ok := known[g.sourceID]; ok && !g.repair() {
			w.ack(ctx, g)
			if r := runOf(ctx); r != nil {
				r.known.Add(int64(len(g.ds)))
			}
			w.cfg.Metrics.skipped(len(g.ds))
			continue
		}
		rest = append(rest, g)
	}
	return rest
}

// writeFunc writes the groups' records and returns one outcome per group,
// or an error when the whole call failed.
type writeFunc func(ctx context.Context, gs []*group) ([]outcome, error)

// writeAndSettle writes gs and settles every message by its outcome
// (outcome.go). Records held through a pool pause are written again when
// the pool resumes.
func (w *Worker) writeAndSettle(ctx context.Context, r *run, gs []*group, write writeFunc, bulk bool) {
	if w.packed(gs, bulk) {
		n := w.cfg.Batch * w.packLimit()
		for start := 0; start < len(gs); start += n {
			w.writePacked(ctx, r, gs[start:min(start+n, len(gs))])
		}
		return
	}
	for len(gs) > 0 {
		if crashed(ctx, w.cfg.beforeWrite, gs) {
			return
		}
		deadline := w.cfg.AckWait
		if bulk {
			deadline = bulkDeadline // InProgress keeps the job's messages alive
		}
		release, ok, why := w.takeSlot(r)
		if !ok {
			w.handBackGroups(ctx, gs, why)
			return
		}
		wctx, cancel := context.WithTimeout(ctx, deadline)
		var outs []outcome
		var err error
		if w.cfg.Mode == ModeApexREST || bulk {
			// Apex REST: one call per record, each through the limits and
			// retries itself, so the batch holds no call slot. Bulk: a job
			// is several calls, each through the limits.
			outs, err = write(wctx, gs)
		} else {
			outs, err = w.callWithRetry(wctx, func(ctx context.Context) ([]outcome, error) { return write(ctx, gs) })
		}
		cancel()
		release()
		if err != nil {
			again, perRecord := w.callFailed(ctx, r, gs, err, write, bulk)
			if again {
				continue // the pool resumed: write them again
			}
			if perRecord == nil {
				return
			}
			outs = perRecord
		}
		if crashed(ctx, w.cfg.afterWrite, gs) {
			return
		}
		held, c, cause := w.settle(ctx, r, gs, outs)
		if len(held) == 0 || !w.hold(ctx, r, held, c, cause) {
			return
		}
		gs = held
	}
}

// callFailed applies decideCall to a call that failed as a whole. again:
// the pool paused and resumed, write gs again. perRecord: the failure is
// every record's own, settle these outcomes. Neither: gs are handled
// (handed back, or written again in halves or by collections calls).
func (w *Worker) callFailed(ctx context.Context, r *run, gs []*group, err error, write writeFunc, bulk bool) (again bool, perRecord []outcome) {
	c := classOf(err)
	if c == classTransient && salesforce.IsNetwork(err) {
		c = classUnreachable
	}
	switch decideCall(c, len(gs), bulk) {
	case callHold:
		return w.hold(ctx, r, gs, c, err), nil
	case callHandBack:
		w.handBack(ctx, gs, c, err)
		return false, nil
	case callSplit:
		half := len(gs) / 2
		w.log.Warn("target rejected the whole call; splitting the batch", "records", len(gs), "err", err)
		w.writeAndSettle(ctx, r, gs[:half], write, false)
		w.writeAndSettle(ctx, r, gs[half:], write, false)
		return false, nil
	case callFallBack:
		w.log.Warn("bulk job failed as a whole; writing its records with collections calls", "records", len(gs), "err", err)
		for start := 0; start < len(gs); start += salesforce.MaxCollection {
			w.writeAndSettle(ctx, r, gs[start:min(start+salesforce.MaxCollection, len(gs))], w.writeCreated, false)
		}
		return false, nil
	}
	outs := make([]outcome, len(gs))
	for i := range outs {
		outs[i] = failure(err)
	}
	return false, outs
}

// writePacked writes gs (more than -batch upsert records) with one
// composite call of collections upserts of -batch records, and settles
// every message as writeAndSettle does. A failure of the composite as a
// whole is decided for all of gs; a collections subrequest refused as a
// whole is decided for its own records, exactly as a collections call
// refused as a whole would be.
func (w *Worker) writePacked(ctx context.Context, r *run, gs []*group) {
	if len(gs) <= w.cfg.Batch {
		w.writeAndSettle(ctx, r, gs, w.writeCreated, false)
		return
	}
	for len(gs) > 0 {
		if crashed(ctx, w.cfg.beforeWrite, gs) {
			return
		}
		release, ok, why := w.takeSlot(r)
		if !ok {
			w.handBackGroups(ctx, gs, why)
			return
		}
		wctx, cancel := context.WithTimeout(ctx, w.cfg.AckWait)
		var listErrs []error
		outs, err := w.callWithRetry(wctx, func(ctx context.Context) ([]outcome, error) {
			outs, errs, err := w.upsertPacked(ctx, gs, w.cfg.Batch)
			listErrs = errs
			return outs, err
		})
		cancel()
		release()
		if err != nil {
			again, perRecord := w.callFailed(ctx, r, gs, err, w.writeCreated, false)
			if again {
				continue
			}
			if perRecord == nil {
				return
			}
			outs, listErrs = perRecord, nil
		}
		// Lists refused as a whole: a failure every record shares stays
		// with the others; split, hold and hand back wait until the rest
		// is settled.
		var later [][]*group
		var laterErrs []error
		settled, settledOuts := gs, outs
		if hasError(listErrs) {
			settled, settledOuts = nil, nil
			for l, lerr := range listErrs {
				list := gs[l*w.cfg.Batch : min((l+1)*w.cfg.Batch, len(gs))]
				if lerr == nil {
					settled = append(settled, list...)
					settledOuts = append(settledOuts, outs[l*w.cfg.Batch:l*w.cfg.Batch+len(list)]...)
					continue
				}
				c := classOf(lerr)
				if decideCall(c, len(list), false) == callPerRecord {
					settled = append(settled, list...)
					for range list {
						settledOuts = append(settledOuts, failure(lerr))
					}
					continue
				}
				later, laterErrs = append(later, list), append(laterErrs, lerr)
			}
		}
		if crashed(ctx, w.cfg.afterWrite, gs) {
			return
		}
		held, c, cause := w.settle(ctx, r, settled, settledOuts)
		for i, list := range later {
			if again, _ := w.callFailed(ctx, r, list, laterErrs[i], w.writeCreated, false); again {
				w.writeAndSettle(ctx, r, list, w.writeCreated, false)
			}
		}
		if len(held) == 0 || !w.hold(ctx, r, held, c, cause) {
			return
		}
		gs = held
		if len(gs) <= w.cfg.Batch {
			w.writeAndSettle(ctx, r, gs, w.writeCreated, false)
			return
		}
	}
}

func hasError(errs []error) bool {
	for _, err := range errs {
		if err != nil {
			return true
		}
	}
	return false
}

// hold pauses the pool for an org cause and waits, holding gs's messages,
// until the pool runs again (true). At shutdown it hands them back (false).
func (w *Worker) hold(ctx context.Context, r *run, gs []*group, c class, cause error) bool {
	w.pausePool(ctx, kindOf(c, cause), cause)
	if w.waitPool(r.shutdown) {
		return true
	}
	// Shutting down while the pool is paused: let the queue have them.
	for _, g := range gs {
		w.retryGroup(ctx, g, 0, nil)
	}
	return false
}

// handBack stops this worker for a local cause and hands gs back at once.
func (w *Worker) handBack(ctx context.Context, gs []*group, c class, cause error) {
	w.stopWorker(kindOf(c, cause), cause)
	for _, g := range gs {
		w.retryGroup(ctx, g, 0, cause)
	}
}

// crashed runs a test hook; true means "the process died here".
func crashed(ctx context.Context, hook func(context.Context, []string) error, gs []*group) bool {
	if hook == nil {
		return false
	}
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.sourceID
	}
	return hook(ctx, ids) != nil
}

// settle applies the outcome table to each record. It returns the groups
// to hold through a pool pause, with the cause.
func (w *Worker) settle(ctx context.Context, r *run, gs []*group, outs []outcome) (held []*group, heldClass class, cause error) {
	var done []*group
	var doneOut []outcome
	for i, g := range gs {
		o := outs[i]
		n := g.maxDelivered()
		switch decide(o.class, n, w.cfg.MaxDeliver, g.isLink()) {
		case actAck:
			done, doneOut = append(done, g), append(doneOut, o)
		case actHold:
			if cause == nil {
				cause, heldClass = o.err, o.class
			}
			held = append(held, g)
		case actHandBack:
			w.handBack(ctx, []*group{g}, o.class, o.err)
		case actDeadLetter:
			code, msg := o.code, o.message
			switch {
			case o.class == classParentMissing:
				code, msg = CodeParentMissing, fmt.Sprintf("parent %s not in the target after %d deliveries: %s", g.ev.ParentID, n, o.message)
			case o.class != classPermanent:
				msg = fmt.Sprintf("%s (after %d deliveries)", o.message, n)
			}
			for _, d := range g.ds {
				w.deadLetter(ctx, d, g.sourceID, code, msg)
			}
		case actRetryLater, actLinkLater:
			// (A created record is written without its parent by the write
			// itself: actLinkLater never reaches here.)
			w.retryGroup(ctx, g, queue.NakDelay(uint64(n)), fmt.Errorf("%s: %s", o.code, o.message))
		}
	}
	w.settleWritten(ctx, r, done, doneOut)
	return held, heldClass, cause
}

// settleWritten settles records the target accepted. A record in the
// target is never written again because of a local failure: link events and
// ID-map writes are retried in process, the messages held, until they work
// or the worker shuts down.
func (w *Worker) settleWritten(ctx context.Context, r *run, gs []*group, outs []outcome) {
	if len(gs) == 0 {
		return
	}
	idempotent := w.cfg.Mode == ModeUpsert
	now := time.Now().UTC()
	var maps []store.Mapping
	keep := gs[:0:0]
	for i, g := range gs {
		o := outs[i]
		if o.parentDeferred {
			err := w.untilDone(r, "link events", func() error { return w.publishLink(ctx, g.ev) })
			if err != nil {
				if idempotent {
					// Shutting down without the link: the record is written
					// again (idempotently) on redelivery, with a new link.
					w.retryGroup(ctx, g, 0, err)
					continue
				}
				w.log.Error("LINK LOST: shutting down before the link event could be published; set the parent by hand",
					"source_id", g.sourceID, "parent_source_id", g.ev.ParentSourceID(), "target_id", o.targetID, "err", err)
			}
		}
		if o.targetID != "" {
			maps = append(maps, store.Mapping{SourceID: g.sourceID, TargetID: o.targetID, WrittenAt: now})
		}
		keep = append(keep, g)
	}
	if len(maps) > 0 {
		if err := w.untilDone(r, "id map", func() error { return w.cfg.Store.PutMappings(maps) }); err != nil {
			w.log.Error("ID MAP WRITE LOST: shutting down before the id map could be written; the records are in the target",
				"records", len(maps), "first_source_id", maps[0].SourceID, "first_target_id", maps[0].TargetID, "err", err)
		}
	}
	for _, g := range keep {
		w.ack(ctx, g)
		if r := runOf(ctx); r != nil {
			r.written.Add(int64(len(g.ds)))
		}
		w.cfg.Metrics.synced(len(g.ds), g.ev.CreatedAt)
	}
}

// untilDone runs fn until it succeeds, with backoff up to 5 s; meanwhile
// the worker is not ready and fetches nothing. It gives up only at
// shutdown, returning the last error.
func (w *Worker) untilDone(r *run, what string, fn func() error) error {
	err := fn()
	if err == nil {
		return nil
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0
	w.log.Error("local write failed after the target accepted the records; holding them and retrying",
		"what", what, "err", err)
	for {
		w.state.setHeld(what, err)
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-r.shutdown:
			t.Stop()
			w.state.setHeld(what, nil)
			return err
		case <-t.C:
		}
		if err = fn(); err == nil {
			w.state.setHeld(what, nil)
			w.log.Info("local write works again", "what", what)
			return nil
		}
	}
}

// ack acknowledges a group's messages: with a confirmed (double) ack in the
// modes where a redelivery would write the record again.
func (w *Worker) ack(ctx context.Context, g *group) {
	for _, d := range g.ds {
		var err error
		if w.cfg.Mode == ModeUpsert {
			err = d.Ack()
		} else {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = d.AckSync(actx)
			cancel()
		}
		if err != nil {
			w.log.Warn("ack failed; the message will be redelivered", "seq", d.Seq, "err", err)
		}
		w.lastErr.take(d.Seq)
	}
}

func (w *Worker) retryGroup(ctx context.Context, g *group, delay time.Duration, cause error) {
	if r := runOf(ctx); r != nil {
		r.retried.Add(int64(len(g.ds)))
	}
	for _, d := range g.ds {
		if cause != nil {
			w.lastErr.set(d.Seq, cause.Error())
		}
		if err := d.Retry(delay); err != nil {
			w.log.Warn("nak failed; the message will be redelivered after the ack wait", "seq", d.Seq, "err", err)
		}
		w.cfg.Metrics.retried(1)
	}
}

func (w *Worker) deadLetter(ctx context.Context, d *queue.Delivery, sourceID, code, message string) {
	err := w.cfg.Queue.DeadLetterDelivery(ctx, d, queue.DeadLetter{Code: code, Message: message, SourceID: sourceID})
	if err != nil {
		// DeadLetter nak'ed the message: it is not lost.
		w.log.Error("dead-letter publish failed; message nak'ed", "seq", d.Seq, "source_id", sourceID, "code", code, "err", err)
		return
	}
	w.lastErr.take(d.Seq)
	if r := runOf(ctx); r != nil {
		r.deadLettered.Add(1)
	}
	w.log.Warn("dead-lettered", "seq", d.Seq, "source_id", sourceID, "code", code, "message", message, "attempts", d.NumDelivered)
	w.cfg.Metrics.deadLettered(code)
}
