package replicate

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	// CodeModeUnsupported: an update, delete or undelete reached a worker
	// whose -mode has no external ID field to find the target record by.
	CodeModeUnsupported = "MODE_UNSUPPORTED"
	// CodeSourceNeeded: the change needs a read of the source org (a
	// replayed change, an update of a record the target lacks) and the
	// worker has no -source-… flags.
	CodeSourceNeeded = "SOURCE_NEEDED"
)

// group is every delivery of one source ID in a batch, of one kind (the
// record's lifecycle events, or its link follow-ups): they share one write
// and one outcome.
type group struct {
	sourceID string
	// ev is the event to write: for a create, the created event with the
	// fields of the updates after it merged in; for an update or an
	// undelete, the latest event with the merged fields; for a link, the
	// latest link event.
	ev event.Event
	ds []*queue.Delivery
	op op
	// replay: a delivery is a replayed dead letter; its change is checked
	// against the source's current state before it is applied.
	replay bool
	// tries counts in-process attempts after transient failures: they
	// count as deliveries toward -max-deliver.
	tries int
	// pure: created events only (the ID map's word that the record was
	// written settles them).
	pure bool
}

// op is the one write a record's events in a batch amount to.
type op int

const (
	opNone     op = iota // nothing left to write: every event was stale or ignored
	opCreate             // upsert (or create) the record's whole state
	opUpdate             // update the target record by its ID
	opDelete             // delete the target record
	opUndelete           // undelete the target record, then update it
	opLink               // set the parent (a link follow-up)
)

// maxDelivered is the highest delivery count in the group, plus the
// in-process attempts.
func (g *group) maxDelivered() int {
	n := 0
	for _, d := range g.ds {
		n = max(n, d.NumDelivered)
	}
	return n + g.tries
}

func (g *group) isLink() bool { return g.op == opLink }

// collapse folds one record's events, in stream order, into the one write
// they amount to (docs/ordering.md, rule 5): updates merge into the state
// before them; a delete wins over earlier creates and updates; a create or
// update after a delete is stale; only an undelete brings the record back,
// and what follows it merges into it. With deletes off, a delete is
// ignored and an undelete is an update. The event returned carries the
// merged fields.
func collapse(evs []event.Event, deletes DeleteMode) (op, event.Event) {
	cur := opNone
	var out event.Event
	var fields map[string]any
	merge := func(e event.Event) {
		if fields == nil {
			fields = make(map[string]any, len(e.Fields))
		}
		for k, v := range e.Fields {
			fields[k] = v
		}
	}
	for _, e := range evs {
		switch e.Type {
		case event.TypeAccountCreated, event.TypeAccountUpdated:
			if cur == opDelete {
				continue // stale: a change after the record was deleted
			}
			if cur == opNone {
				cur, fields = opUpdate, nil
				if e.Type == event.TypeAccountCreated {
					cur = opCreate
				}
			}
			merge(e)
		case event.TypeAccountDeleted:
			if deletes == DeletesOff {
				continue
			}
			cur, fields = opDelete, nil
		case event.TypeAccountUndeleted:
			switch {
			case deletes == DeletesOff && cur == opNone:
				cur, fields = opUpdate, nil
			case cur == opDelete || cur == opNone:
				cur, fields = opUndelete, nil
			}
			merge(e)
		default:
			continue
		}
		created := out.CreatedAt
		out = e
		if out.CreatedAt.IsZero() {
			out.CreatedAt = created
		}
	}
	switch cur {
	case opCreate:
		out.Type = event.TypeAccountCreated
	case opUpdate:
		out.Type = event.TypeAccountUpdated
		if len(fields) == 0 {
			cur = opNone // an undelete without fields, with deletes off: nothing to write
		}
	case opUndelete:
		out.Type = event.TypeAccountUndeleted
	}
	out.Fields = fields
	return cur, out
}

// run is one batch's processing: when shutdown starts, and what it cost.
type run struct {
	shutdown <-chan struct{}
	// again are the records to write again in process (transient failures).
	mu    sync.Mutex
	again []*group
	// fenced reports whether this worker lost a lease of the batch's
	// partitions (nil: never).
	fenced func() bool
	calls  atomic.Int64 // target calls made for the batch
	// How the batch's messages were settled.
	written, known, deadLettered, retried atomic.Int64
}

// lost reports whether the batch's partitions went to another worker (see
// Lot.Fenced): its records must not be written any more.
func (r *run) lost() bool { return r.fenced != nil && r.fenced() }

// retryLater queues g to be written again in process.
func (r *run) retryLater(g *group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.again = append(r.again, g)
	r.retried.Add(int64(len(g.ds)))
}

// takeAgain returns and clears the records queued by retryLater.
func (r *run) takeAgain() []*group {
	r.mu.Lock()
	defer r.mu.Unlock()
	gs := r.again
	r.again = nil
	return gs
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
	changes        []*group // updates, deletes, undeletes, and replayed creates checked against the source
	stop           func()   // ends the InProgress heartbeat
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
	b.stop = queue.Hold(ds, w.holdEvery())

	var records, links []*group
	byID := make(map[string]*group, len(ds))
	linkByID := map[string]*group{}
	// A record's events: the first in g.ev, all of them here once there
	// are two or more. Groups and their first delivery come from one
	// allocation each for the batch.
	evs := map[*group][]event.Event{}
	groups := make([]group, 0, len(ds))
	firsts := make([]*queue.Delivery, len(ds))
	for _, d := range ds {
		ev, err := event.DecodeRaw(d.Data())
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
		if err == nil && !subjectMatches(d.Subject, ev) {
			err = fmt.Errorf("%w: %s event of %s on subject %s", event.ErrMalformed, ev.Type, ev.SourceID, d.Subject)
		}
		if err != nil {
			w.deadLetter(ctx, d, sourceID, CodeMalformedEvent, err.Error())
			continue
		}
		if ev.Ordered() && w.cfg.Mode != ModeUpsert {
			w.deadLetter(ctx, d, sourceID, CodeModeUnsupported, fmt.Sprintf(
				"an %s event needs -mode upsert: updates, deletes and undeletes find the target record by the external ID field", ev.Type))
			continue
		}
		index, list := byID, &records
		if ev.Type == event.TypeAccountLink {
			index, list = linkByID, &links
		}
		g := index[ev.SourceID]
		if g == nil {
			groups = append(groups, group{sourceID: ev.SourceID})
			g = &groups[len(groups)-1]
			index[ev.SourceID] = g
			*list = append(*list, g)
			n := len(groups) - 1
			g.ds = firsts[n : n : n+1]
		}
		g.ds = append(g.ds, d)
		g.replay = g.replay || d.Header(queue.HeaderReplayOf) != ""
		if ev.Type == event.TypeAccountLink {
			g.op, g.ev = opLink, ev // the latest link wins
			continue
		}
		switch es := evs[g]; {
		case len(g.ds) == 1:
			g.ev = ev
		case es == nil:
			evs[g] = []event.Event{g.ev, ev}
		default:
			evs[g] = append(es, ev)
		}
	}

	// Collapse each record's events, in stream order, into one write.
	var created, changes []*group
	for _, g := range records {
		es := evs[g]
		if es == nil && g.ev.Raw != nil && w.cfg.Mode == ModeUpsert && !w.checksSource(g) {
			// The hot path: one created event, upserted with its fields as
			// they came (appendRecord), never merged into a map.
			g.op, g.pure = opCreate, true
			created = append(created, g)
			continue
		}
		if es == nil {
			es = []event.Event{g.ev}
		}
		for i := range es {
			es[i].DecodeFields()
		}
		g.op, g.ev = collapse(es, w.cfg.Deletes)
		g.pure = true
		for _, e := range es {
			g.pure = g.pure && e.Type == event.TypeAccountCreated
		}
		switch {
		case g.op == opNone:
			w.ack(ctx, g) // stale or ignored events only
			if r := runOf(ctx); r != nil {
				r.known.Add(int64(len(g.ds)))
			}
		case g.op == opCreate && !w.checksSource(g):
			created = append(created, g)
		default:
			changes = append(changes, g)
		}
	}
	if len(links) > 0 && w.cfg.Source != nil {
		links = w.checkLinks(ctx, links)
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
	b.created, b.links, b.changes = created, links, changes
	return b
}

// handBackGroups gives records back to the queue unwritten (shutdown, or
// this worker stopped, before they got a batch slot).
func (w *Worker) handBackGroups(ctx context.Context, gs []*group, cause error) {
	for _, g := range gs {
		w.retryGroup(ctx, g, 0, cause)
	}
}

// write writes a prepared batch's records and settles their messages:
// creates first, then updates, deletes and undeletes, then links. Records
// that failed transiently are written again in process, their messages
// held, until they succeed or use up -max-deliver (docs/ordering.md, rule
// 4): a delayed redelivery would let the record's later events overtake
// them.
func (w *Worker) write(b *batch) {
	ctx, r := b.ctx, b.r
	records := len(b.created) + len(b.links) + len(b.changes)
	w.writeGroups(ctx, r, b.created, b.changes, b.links, b.bulk)
	for again := r.takeAgain(); len(again) > 0; again = r.takeAgain() {
		tries := 0
		for _, g := range again {
			tries = max(tries, g.maxDelivered())
		}
		if !w.waitRetry(r, min(queue.NakDelay(uint64(tries)), maxRetryDelay)) {
			w.handBackGroups(ctx, again, nil)
			break
		}
		if w.abandoned(r, again) {
			break
		}
		var created, changes, links []*group
		for _, g := range again {
			g.tries++
			switch g.op {
			case opCreate:
				if w.checksSource(g) {
					changes = append(changes, g)
				} else {
					created = append(created, g)
				}
			case opLink:
				links = append(links, g)
			default:
				changes = append(changes, g)
			}
		}
		if w.cfg.Mode == ModeUpsert {
			created, links = append(created, links...), nil
		}
		w.writeGroups(ctx, r, created, changes, links, false)
	}
	if records > 0 {
		w.log.Info("batch settled", "records", records, "messages", b.messages,
			"written", r.written.Load(), "known", r.known.Load(), "dead_lettered", r.deadLettered.Load(),
			"retried", r.retried.Load(), "calls", r.calls.Load(),
			"took", time.Since(b.start).Round(time.Millisecond).String())
	}
}

// maxRetryDelay bounds the wait before an in-process retry: the record's
// partition waits meanwhile.
const maxRetryDelay = 30 * time.Second

// waitRetry waits d before an in-process retry; false: shutdown started.
func (w *Worker) waitRetry(r *run, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.shutdown:
		return false
	case <-t.C:
		return true
	}
}

// writeGroups writes created records, then changes, then links.
func (w *Worker) writeGroups(ctx context.Context, r *run, created, changes, links []*group, bulk bool) {
	if len(created) > 0 {
		write, useBulk := w.writeCreated, false
		if bulk && len(created) > salesforce.MaxCollection {
			write, useBulk = w.writeBulk, true
		}
		w.writeAndSettle(ctx, r, created, write, useBulk)
	}
	// Changes go up to -batch × -composite at a time: their updates and
	// deletes are packed into composite calls (changes.go).
	cstep := salesforce.MaxCollection
	if w.cfg.Mode == ModeUpsert {
		cstep = w.cfg.Batch * w.packLimit()
	}
	for start := 0; start < len(changes); start += cstep {
		w.writeAndSettle(ctx, r, changes[start:min(start+cstep, len(changes))], w.writeChanges, false)
	}
	// After a Bulk batch there can be more links than one call takes.
	step := salesforce.MaxCollection
	if w.cfg.Mode == ModeUpsert {
		step = max(step, w.cfg.Batch*w.cfg.composite()) // packed when more than -batch
	}
	for start := 0; start < len(links); start += step {
		w.writeAndSettle(ctx, r, links[start:min(start+step, len(links))], w.writeLinks, false)
	}
}

// subjectMatches reports whether a message's subject is its event's:
// orgsync.account.<change>.<source_id>, with the partition ORGSYNC appends.
func subjectMatches(subject string, ev event.Event) bool {
	rest, ok := strings.CutPrefix(subject, "orgsync.account.")
	if !ok {
		return false
	}
	change, rest, ok := strings.Cut(rest, ".")
	if !ok || change != ev.Change() {
		return false
	}
	id, partition, _ := strings.Cut(rest, ".")
	if id != ev.SourceID {
		return false
	}
	for _, c := range []byte(partition) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
		if _, ok := known[g.sourceID]; ok && !g.repair() && g.pure {
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
		if crashed(ctx, w.cfg.beforeWrite, gs) || w.abandoned(r, gs) {
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
		if crashed(ctx, w.cfg.beforeWrite, gs) || w.abandoned(r, gs) {
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

// abandoned reports whether the batch's partitions went to another worker
// (their lease lost): then gs are left unsettled, for the new holder to get
// again once their ack wait ends, and nothing of them is written.
func (w *Worker) abandoned(r *run, gs []*group) bool {
	if !r.lost() {
		return false
	}
	n := 0
	for _, g := range gs {
		n += len(g.ds)
	}
	w.log.Warn("lease lost: leaving the batch's events to the partition's new holder", "messages", n)
	return true
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
			// itself: actLinkLater never reaches here.) A link waits for
			// its parent with a delayed redelivery (docs/ordering.md, rule
			// 6); anything else is retried in process, in order.
			cause := fmt.Errorf("%s: %s", o.code, o.message)
			if g.isLink() || w.cfg.unordered {
				w.retryGroup(ctx, g, queue.NakDelay(uint64(n)), cause)
			} else {
				for _, d := range g.ds {
					w.lastErr.set(d.Seq, cause.Error())
				}
				r.retryLater(g)
			}
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
		w.cfg.Metrics.synced(len(g.ds), g.ev.When())
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
	dl := queue.DeadLetter{Code: code, Message: message, SourceID: sourceID, Keep: !w.cfg.unordered}
	err := w.cfg.Queue.DeadLetterDelivery(ctx, d, dl)
	if err != nil && w.cfg.unordered {
		// DeadLetter nak'ed the message: it is not lost.
		w.log.Error("dead-letter publish failed; message nak'ed", "seq", d.Seq, "source_id", sourceID, "code", code, "err", err)
		return
	}
	if err != nil {
		// The message stays held, in order: publish it again until it
		// works; at shutdown, hand it back.
		r := runOf(ctx)
		if r == nil {
			// Outside a batch there is no shutdown to stop a retry loop:
			// hand it back at once.
			w.log.Error("dead-letter publish failed; message handed back", "seq", d.Seq, "source_id", sourceID, "code", code, "err", err)
			_ = d.Retry(0)
			return
		}
		err = w.untilDone(r, "dead letter", func() error { return w.cfg.Queue.DeadLetterDelivery(ctx, d, dl) })
		if err != nil {
			w.log.Error("dead-letter publish failed at shutdown; message handed back", "seq", d.Seq, "source_id", sourceID, "code", code, "err", err)
			_ = d.Retry(0)
			return
		}
	}
	w.lastErr.take(d.Seq)
	if r := runOf(ctx); r != nil {
		r.deadLettered.Add(1)
	}
	w.log.Warn("dead-lettered", "seq", d.Seq, "source_id", sourceID, "code", code, "message", message, "attempts", d.NumDelivered)
	w.cfg.Metrics.deadLettered(code)
}
