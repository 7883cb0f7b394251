package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/sync/errgroup"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
)

const sobject = "Account"

// errOverBudget is returned instead of calling the target when the last
// Sforce-Limit-Info shows more than -api-budget of the daily limit used.
var errOverBudget = errors.New("replicate: target API usage is above the configured budget")

// callWithRetry runs one target call through the budget check, the rate
// limiter and the concurrency cap, retrying a transient failure of the whole
// call with exponential backoff and jitter for at most CallRetry.
func (w *Worker) callWithRetry(ctx context.Context, call func(context.Context) ([]outcome, error)) ([]outcome, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = w.cfg.CallRetry
	var outs []outcome
	op := func() error {
		var err error
		outs, err = w.call(ctx, call)
		if err == nil {
			return nil
		}
		if classOf(err) != classTransient || ctx.Err() != nil {
			return backoff.Permanent(err)
		}
		w.log.Info("target call failed; retrying", "err", err)
		return err
	}
	err := backoff.Retry(op, backoff.WithContext(b, ctx))
	return outs, err
}

// call makes one target call inside the limits.
func (w *Worker) call(ctx context.Context, call func(context.Context) ([]outcome, error)) ([]outcome, error) {
	if u, ok := w.cfg.Target.Usage(); ok && u.Max > 0 && u.Ratio() >= w.cfg.APIBudget {
		w.cfg.Metrics.usage(u.Ratio())
		return nil, fmt.Errorf("%w: %d of %d daily calls used, budget %.0f%%", errOverBudget, u.Used, u.Max, 100*w.cfg.APIBudget)
	}
	if w.limiter != nil {
		if err := w.limiter.Wait(ctx); err != nil {
			return nil, err
		}
	}
	select {
	case w.calls <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.calls }()
	countCall(ctx)
	outs, err := call(ctx)
	if u, ok := w.cfg.Target.Usage(); ok && u.Max > 0 {
		w.cfg.Metrics.usage(u.Ratio())
	}
	return outs, err
}

// writeCreated writes the records of created events in the worker's mode.
func (w *Worker) writeCreated(ctx context.Context, gs []*group) ([]outcome, error) {
	switch w.cfg.Mode {
	case ModeCreate:
		return w.createMany(ctx, gs)
	case ModeApexREST:
		return w.apexREST(ctx, gs)
	default:
		return w.upsertMany(ctx, gs)
	}
}

// upsertMany upserts the groups' records (at most one collections call's
// worth) by the external ID field. A record whose parent is referenced by
// external ID but not yet in the target is written again without the
// parent, and a link event follows.
//
// More than one collections call's worth goes in one composite call; a
// list of it refused as a whole is then the error of the whole call (the
// records of the other lists are written again by a retry: upserts are
// idempotent).
func (w *Worker) upsertMany(ctx context.Context, gs []*group) ([]outcome, error) {
	outs, listErrs, err := w.upsertPacked(ctx, gs, salesforce.MaxCollection)
	if err != nil {
		return nil, err
	}
	for _, lerr := range listErrs {
		if lerr != nil {
			return nil, lerr
		}
	}
	return outs, nil
}

// upsertPacked upserts the groups' records in lists of at most size
// records: one collections call for one list, one composite call for
// several. It returns one outcome per group, and per list the error of a
// list refused as a whole (its groups' outcomes are then unset); err is the
// failure of the call as a whole. Children whose parent is not in the
// target yet are written again without it in a second call (collections
// or composite), and their link events follow.
func (w *Worker) upsertPacked(ctx context.Context, gs []*group, size int) (outs []outcome, listErrs []error, err error) {
	ext := w.cfg.ExternalIDField
	recs, sameCall, err := w.rawRecords(gs)
	if err != nil {
		return nil, nil, err
	}
	res, err := w.upsertLists(ctx, chunks(recs, size))
	if err != nil {
		return nil, nil, err
	}
	outs = make([]outcome, len(gs))
	listErrs = make([]error, len(res))
	var orphans []int
	for l, lr := range res {
		if lr.Err != nil {
			listErrs[l] = lr.Err
			continue
		}
		for j, r := range lr.Results {
			i := l*size + j
			outs[i] = w.upsertOutcome(gs[i], r.ID, r.Success, r.Err(), sameCall[i])
			if outs[i].class == classParentMissing && decide(outs[i].class, gs[i].maxDelivered(), w.cfg.MaxDeliver, gs[i].isLink()) == actLinkLater {
				orphans = append(orphans, i)
			}
		}
	}
	if len(orphans) == 0 {
		return outs, listErrs, nil
	}
	// Second call for the children whose parent is not in the target yet.
	recs = recs[:0]
	var buf []byte
	for _, i := range orphans {
		start := len(buf)
		if buf, err = w.appendRecord(buf, gs[i].ev, false); err != nil {
			return nil, nil, err
		}
		recs = append(recs, buf[start:len(buf):len(buf)])
	}
	countCall(ctx)
	res, err = w.upsertLists(ctx, chunks(recs, size))
	for k, i := range orphans {
		l, j := k/size, k%size
		switch {
		case err != nil:
			outs[i] = failure(err)
		case l >= len(res) || res[l].Err == nil && j >= len(res[l].Results):
			outs[i] = failure(errors.New("replicate: target answered too few results"))
		case res[l].Err != nil:
			outs[i] = failure(res[l].Err)
		case res[l].Results[j].Success:
			outs[i] = writtenWithoutParent(res[l].Results[j].ID)
		default:
			outs[i] = recordFailure(res[l].Results[j].Err(), ext)
		}
	}
	return outs, listErrs, nil
}

// chunks splits recs in lists of at most size records.
func chunks[R any](recs []R, size int) [][]R {
	out := make([][]R, 0, (len(recs)+size-1)/size)
	for start := 0; start < len(recs); start += size {
		out = append(out, recs[start:min(start+size, len(recs))])
	}
	return out
}

// upsertLists writes one list with a collections call, several with one
// composite call. A single list refused as a whole is the call's error.
func (w *Worker) upsertLists(ctx context.Context, lists [][]salesforce.RawRecord) ([]salesforce.CollectionResult, error) {
	ext := w.cfg.ExternalIDField
	if len(lists) == 1 {
		res, err := w.cfg.Target.UpsertManyRaw(ctx, sobject, ext, lists[0], false)
		if err != nil {
			return nil, err
		}
		if len(res) != len(lists[0]) {
			return nil, fmt.Errorf("replicate: target answered %d results for %d records", len(res), len(lists[0]))
		}
		return []salesforce.CollectionResult{{Results: res}}, nil
	}
	start := time.Now()
	res, err := w.cfg.Target.UpsertCompositeRaw(ctx, sobject, ext, lists)
	w.observeComposite(time.Since(start), len(lists))
	return res, err
}

// writeOrphans writes the records gs[i] for i in orphans, whose parent is
// not in the target, again without the parent (in collections calls of at
// most 200), and sets their outcomes: written, with a link event to follow.
func (w *Worker) writeOrphans(ctx context.Context, gs []*group, orphans []int, outs []outcome) {
	ext := w.cfg.ExternalIDField
	for start := 0; start < len(orphans); start += salesforce.MaxCollection {
		chunk := orphans[start:min(start+salesforce.MaxCollection, len(orphans))]
		recs := make([]salesforce.Record, len(chunk))
		for j, i := range chunk {
			recs[j] = w.record(gs[i].ev, false)
		}
		res, err := w.callOnce(ctx, func(ctx context.Context) ([]salesforce.SaveResult, error) {
			return w.cfg.Target.UpsertMany(ctx, sobject, ext, recs, false)
		})
		for j, i := range chunk {
			switch {
			case err != nil:
				outs[i] = failure(err)
			case j >= len(res):
				outs[i] = failure(errors.New("replicate: target answered too few results"))
			case res[j].Success:
				outs[i] = writtenWithoutParent(res[j].ID)
			default:
				outs[i] = recordFailure(res[j].Err(), ext)
			}
		}
	}
}

// upsertOutcome is the outcome of one record of an upsert (collections or
// Bulk). sameCall: written without its parent, which is in the same call.
func (w *Worker) upsertOutcome(g *group, id string, success bool, re *salesforce.RecordError, sameCall bool) outcome {
	switch {
	case success && g.isLink():
		return ok("") // the record's mapping is unchanged
	case success && sameCall:
		return writtenWithoutParent(id)
	case success:
		return ok(id)
	}
	if re == nil {
		re = &salesforce.RecordError{Code: "UNKNOWN", Message: "failed without an error in the answer"}
	}
	o := recordFailure(re, w.cfg.ExternalIDField)
	if o.class == classParentMissing {
		o.code = CodeParentMissing
		if !g.isLink() && g.ev.ParentSourceID() == "" {
			o.class = classPermanent // a missing parent it did not ask for
		}
	}
	return o
}

// rawRecords writes the upsert records of gs (created and link events
// alike) for collections and composite calls, as records does, into one
// buffer.
func (w *Worker) rawRecords(gs []*group) (recs []salesforce.RawRecord, sameCall []bool, err error) {
	ext := w.cfg.ExternalIDField
	inBatch := make(map[string]bool, len(gs))
	size := 0
	for _, g := range gs {
		inBatch[g.sourceID] = true
		size += 2*len(ext) + 64
		if g.ev.Raw != nil {
			size += g.ev.Raw.Len()
		} else {
			size += 32 * len(g.ev.Fields)
		}
	}
	buf := make([]byte, 0, size)
	recs = make([]salesforce.RawRecord, len(gs))
	sameCall = make([]bool, len(gs))
	for i, g := range gs {
		start := len(buf)
		if g.isLink() {
			buf = appendExtID(buf, ext, g.sourceID)
			buf = appendParent(append(buf, ','), ext, g.ev.ParentID)
		} else {
			sameCall[i] = inBatch[g.ev.ParentSourceID()]
			if buf, err = w.appendRecord(buf, g.ev, !sameCall[i]); err != nil {
				return nil, nil, err
			}
		}
		recs[i] = buf[start:len(buf):len(buf)]
	}
	return recs, sameCall, nil
}

// appendRecord appends the members of record(ev, withParent). A created
// event whose fields are raw (event.DecodeRaw) has them copied as they
// came, without a map: the same record, its fields in the message's order.
func (w *Worker) appendRecord(b []byte, ev event.Event, withParent bool) ([]byte, error) {
	ext := w.cfg.ExternalIDField
	parent := ev.ParentSourceID()
	withParent = withParent && parent != ""
	if r := ev.Raw; r != nil && ext != "Parent" && !r.Has(ext) && !(withParent && r.Has("Parent")) {
		mark := len(b)
		b = r.AppendMembers(b)
		if len(b) > mark {
			b = append(b, ',')
		}
		b = appendExtID(b, ext, ev.SourceID)
		if withParent {
			b = appendParent(append(b, ','), ext, parent)
		}
		return b, nil
	}
	// A field named like the external ID field or Parent, which record
	// replaces (or an external ID field named Parent): the map path.
	return salesforce.AppendRecord(b, w.record(ev, withParent))
}

// appendExtID appends "<ext>":"<id>".
func appendExtID(b []byte, ext, id string) []byte {
	b = salesforce.AppendString(b, ext)
	b = append(b, ':')
	return salesforce.AppendString(b, id)
}

// appendParent appends "Parent":{"<ext>":"<id>"}.
func appendParent(b []byte, ext, id string) []byte {
	b = append(b, `"Parent":{`...)
	return append(appendExtID(b, ext, id), '}')
}

// records builds the upsert records of gs (created and link events alike,
// for collections and Bulk). A parent written in this same call cannot be
// referenced by it (references resolve before the records are saved): the
// child goes without it (sameCall) and a link event follows.
func (w *Worker) records(gs []*group) (recs []salesforce.Record, sameCall []bool) {
	ext := w.cfg.ExternalIDField
	inBatch := make(map[string]bool, len(gs))
	for _, g := range gs {
		inBatch[g.sourceID] = true
	}
	recs = make([]salesforce.Record, len(gs))
	sameCall = make([]bool, len(gs))
	for i, g := range gs {
		if g.isLink() {
			recs[i] = salesforce.Record{ext: g.sourceID, "Parent": map[string]any{ext: g.ev.ParentID}}
			continue
		}
		sameCall[i] = inBatch[g.ev.ParentSourceID()]
		recs[i] = w.record(g.ev, !sameCall[i])
	}
	return recs, sameCall
}

// callOnce is a follow-up call of a write in flight, counted like any call.
func (w *Worker) callOnce(ctx context.Context, call func(context.Context) ([]salesforce.SaveResult, error)) ([]salesforce.SaveResult, error) {
	countCall(ctx)
	return call(ctx)
}

// record builds the target record of a created event. In upsert mode the
// external ID field carries the source ID and the parent, if any, is a
// reference by external ID; withParent false leaves the parent out.
func (w *Worker) record(ev event.Event, withParent bool) salesforce.Record {
	ev.DecodeFields() // a copy: the group keeps its raw fields
	rec := make(salesforce.Record, len(ev.Fields)+2)
	for k, v := range ev.Fields {
		if strings.EqualFold(k, "ParentId") {
			continue
		}
		rec[k] = v
	}
	rec[w.cfg.ExternalIDField] = ev.SourceID
	if p := ev.ParentSourceID(); p != "" && withParent {
		rec["Parent"] = map[string]any{w.cfg.ExternalIDField: p}
	}
	return rec
}

// createMany creates the groups' records. A parent this worker has mapped
// is set by its target ID; otherwise the record is created without it and a
// link event follows.
func (w *Worker) createMany(ctx context.Context, gs []*group) ([]outcome, error) {
	var parents []string
	for _, g := range gs {
		if p := g.ev.ParentSourceID(); p != "" {
			parents = append(parents, p)
		}
	}
	known, err := w.cfg.Store.Lookup(parents)
	if err != nil {
		return nil, err
	}
	recs := make([]salesforce.Record, len(gs))
	deferred := make([]bool, len(gs))
	for i, g := range gs {
		rec := make(salesforce.Record, len(g.ev.Fields))
		for k, v := range g.ev.Fields {
			if !strings.EqualFold(k, "ParentId") {
				rec[k] = v
			}
		}
		if p := g.ev.ParentSourceID(); p != "" {
			if m, ok := known[p]; ok {
				rec["ParentId"] = m.TargetID
			} else {
				deferred[i] = true
			}
		}
		recs[i] = rec
	}
	res, err := w.cfg.Target.CreateMany(ctx, sobject, recs, false)
	if err != nil {
		return nil, err
	}
	if len(res) != len(gs) {
		return nil, fmt.Errorf("replicate: target answered %d results for %d records", len(res), len(gs))
	}
	outs := make([]outcome, len(gs))
	for i, r := range res {
		switch {
		case r.Success && deferred[i]:
			outs[i] = writtenWithoutParent(r.ID)
		case r.Success:
			outs[i] = ok(r.ID)
		default:
			outs[i] = recordFailure(r.Err(), "")
		}
	}
	return outs, nil
}

// apexREST posts each record to the seed's endpoint, one call per record,
// as the recipe orgsync replaces does. The calls of a batch run in parallel
// within the concurrency cap; each counts against the limits. Once a call
// fails for a cause that stops or pauses (budget, configuration,
// credentials), the records not yet sent take that outcome without a call;
// the records already written keep theirs, so none is written twice.
func (w *Worker) apexREST(ctx context.Context, gs []*group) ([]outcome, error) {
	outs := make([]outcome, len(gs))
	var stopped atomic.Pointer[error]
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.MaxCalls)
	for i, grp := range gs {
		g.Go(func() error {
			if errp := stopped.Load(); errp != nil {
				outs[i] = failure(*errp)
				return nil
			}
			var id string
			_, err := w.callWithRetry(gctx, func(ctx context.Context) ([]outcome, error) {
				var err error
				id, err = w.cfg.Target.PostApexAccount(ctx, ApexRESTPath, map[string]any{"Name": grp.ev.Fields["Name"]})
				return nil, err
			})
			if err == nil {
				outs[i] = ok(id)
				return nil
			}
			outs[i] = failure(err)
			if a := decide(outs[i].class, grp.maxDelivered(), w.cfg.MaxDeliver, false); a == actHold || a == actHandBack {
				stopped.CompareAndSwap(nil, &err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return outs, nil
}

// writeLinks sets the parent of records written before their parent: in
// upsert mode a link is an upsert of the child with its parent reference.
func (w *Worker) writeLinks(ctx context.Context, gs []*group) ([]outcome, error) {
	if w.cfg.Mode == ModeCreate {
		return w.linkByTargetID(ctx, gs)
	}
	return w.upsertMany(ctx, gs)
}

// parentMissing is the outcome of a link whose parent is still not in the
// target: retried with delay, dead-lettered as PARENT_MISSING at the limit.
func parentMissing(msg string) outcome {
	return outcome{err: errors.New(msg), class: classParentMissing, code: CodeParentMissing, message: msg}
}

// linkByTargetID links records in create mode, where the target has no
// external ID: both IDs must be in this worker's ID map.
func (w *Worker) linkByTargetID(ctx context.Context, gs []*group) ([]outcome, error) {
	ids := make([]string, 0, 2*len(gs))
	for _, g := range gs {
		ids = append(ids, g.sourceID, g.ev.ParentID)
	}
	known, err := w.cfg.Store.Lookup(ids)
	if err != nil {
		return nil, err
	}
	outs := make([]outcome, len(gs))
	for i, g := range gs {
		child, okc := known[g.sourceID]
		parent, okp := known[g.ev.ParentID]
		if !okc || !okp {
			outs[i] = parentMissing("parent or child not in this worker's id map")
			continue
		}
		countCall(ctx)
		err := w.cfg.Target.Update(ctx, sobject, child.TargetID, salesforce.Record{"ParentId": parent.TargetID})
		if err != nil {
			if classOf(err) != classPermanent {
				return nil, err
			}
			outs[i] = failure(err)
			continue
		}
		outs[i] = ok("")
	}
	return outs, nil
}

// publishLink publishes the follow-up event that sets ev's parent later.
func (w *Worker) publishLink(ctx context.Context, ev event.Event) error {
	if w.cfg.linkPublish != nil {
		if err := w.cfg.linkPublish(); err != nil {
			return err
		}
	}
	link, err := event.NewAccountLink(ev.SourceOrg, ev.SourceID, ev.ParentSourceID())
	if err != nil {
		return err
	}
	body, err := link.Encode()
	if err != nil {
		return err
	}
	_, err = w.cfg.Queue.Publish(ctx, queue.AccountSubject(event.ChangeLink, link.SourceID), link.MsgID(), body, nil)
	return err
}

// Composite packing (upsert mode): when more than -batch records are
// ready, up to -composite collections upserts of up to -batch records go
// in one POST /composite call, which Salesforce counts as one API request
// (at most 5 collections per composite).
const (
	DefaultComposite = 5
	// slowComposite: a composite call that took this long halves the
	// collections of the next ones, well short of the 20 s after which
	// Salesforce counts a request toward the org's concurrent long-running
	// requests; each call under a quarter of it adds one back.
	slowComposite = 10 * time.Second
)

// composite is the configured -composite (DefaultComposite for 0).
func (c *Config) composite() int {
	if c.Composite == 0 {
		return DefaultComposite
	}
	return c.Composite
}

func (c *Config) validateComposite() error {
	if n := c.composite(); n < 1 || n > salesforce.MaxCompositeCollections {
		return fmt.Errorf("replicate: composite %d out of range 1..%d", c.Composite, salesforce.MaxCompositeCollections)
	}
	return nil
}

// fetchSize is how many events one fetch takes: -bulk-batch while writing
// Bulk jobs, -batch × -composite in upsert mode, else -batch.
func (w *Worker) fetchSize() int {
	switch {
	case w.bulkActive():
		return w.cfg.BulkBatch
	case w.cfg.Mode == ModeUpsert:
		return w.cfg.Batch * w.cfg.composite()
	}
	return w.cfg.Batch
}

// packLimit is how many collections go in one composite call now.
func (w *Worker) packLimit() int {
	if n := int(w.packs.Load()); n > 0 {
		return n
	}
	return w.cfg.composite()
}

// observeComposite adapts packLimit to how long a composite call of lists
// collections took.
func (w *Worker) observeComposite(took time.Duration, lists int) {
	cur := w.packLimit()
	switch {
	case took >= slowComposite && cur > 1:
		next := max(1, min(cur, lists)/2)
		w.packs.Store(int32(next))
		w.log.Warn("slow composite call: fewer collections per call", "took", took.Round(time.Millisecond).String(),
			"collections", lists, "next", next)
	case took < slowComposite/4 && cur < w.cfg.composite():
		w.packs.Store(int32(cur + 1))
	}
}

// packed reports whether gs, creates (and links), is written by
// writePacked with composite calls of collections upserts. Changes pack
// their own calls (changes.go).
func (w *Worker) packed(gs []*group, bulk bool) bool {
	return !bulk && w.cfg.Mode == ModeUpsert && w.cfg.composite() > 1 && len(gs) > w.cfg.Batch && !w.hasChanges(gs)
}

// checksSource reports whether g is a replay applied as the source's
// current state (docs/ordering.md, "Writes"): writeChanges writes it, even
// a create.
func (w *Worker) checksSource(g *group) bool { return g.replay && w.cfg.Source != nil }

// hasChanges reports whether gs holds groups that writeChanges writes:
// updates, deletes, undeletes, and replayed creates checked against the
// source (see Worker.prepare).
func (w *Worker) hasChanges(gs []*group) bool {
	for _, g := range gs {
		switch g.op {
		case opUpdate, opDelete, opUndelete:
			return true
		case opCreate:
			if w.checksSource(g) {
				return true
			}
		}
	}
	return false
}
