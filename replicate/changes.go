package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"orgsync/event"
	"orgsync/salesforce"
)

// This file writes a record's lifecycle beyond its creation
// (docs/ordering.md, "Writes"): an update by target ID, a delete by the
// target ID found by external ID, an undelete over SOAP, and the reads of
// the source that keep a replay from moving a record back in time.

// writeChanges writes the updates, deletes and undeletes of gs (up to
// -batch × -composite, each group one record), and the replayed creates
// checked against the source. Updates and deletes of more than -batch
// records go in composite calls of collections calls, like creates. It is
// a writeFunc: one outcome per group, or an error when a call failed as a
// whole (the writes it already made are idempotent: a retry finds them
// done).
func (w *Worker) writeChanges(ctx context.Context, gs []*group) ([]outcome, error) {
	c := &changeWrite{w: w, gs: gs, outs: make([]outcome, len(gs)), settled: make([]bool, len(gs))}
	steps := []func(context.Context) error{c.checkReplays, c.findTargets, c.undelete, c.update, c.delete, c.recreate}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return c.outs, nil
}

// changeWrite is one writeChanges call's state.
type changeWrite struct {
	w       *Worker
	gs      []*group
	outs    []outcome
	settled []bool
	// live and deleted map a source ID to its target record's ID, live or
	// in the recycle bin.
	live, deleted map[string]string
	// missing: updates whose record the target lacks, to re-create from
	// the source (whole).
	missing []int
}

func (c *changeWrite) settle(i int, o outcome) {
	c.outs[i], c.settled[i] = o, true
}

// pending returns the indexes of the groups with op that are not settled.
func (c *changeWrite) pending(op op) []int {
	var out []int
	for i, g := range c.gs {
		if !c.settled[i] && g.op == op {
			out = append(out, i)
		}
	}
	return out
}

// sourceNeeded is the outcome of a change that needs the source org when
// the worker has none.
func sourceNeeded(why string) outcome {
	msg := why + "; give the worker the source org's -source-… flags"
	return outcome{err: errors.New(msg), class: classPermanent, code: CodeSourceNeeded, message: msg}
}

// checkReplays applies the source's current state to replayed changes
// (and replayed creates): a replay never moves a record back in time.
// A record deleted in the source is deleted in the target; a live one gets
// its whole current state (undeleted first if the replay is an undelete),
// whatever the replayed change was (a replayed delete of a record that
// lives again included).
func (c *changeWrite) checkReplays(ctx context.Context) error {
	var idx []int
	for i, g := range c.gs {
		if g.replay || g.op == opCreate {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if c.w.cfg.Source == nil {
		for _, i := range idx {
			c.settle(i, sourceNeeded(fmt.Sprintf("a replayed %s is checked against the source's current state first", c.gs[i].ev.Type)))
		}
		return nil
	}
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = c.gs[i].sourceID
	}
	now, err := c.w.readSource(ctx, c.gs[idx[0]].ev.SourceOrg, ids)
	if err != nil {
		return err
	}
	for _, i := range idx {
		g := c.gs[i]
		cur, live := now[g.sourceID]
		switch {
		case !live && g.op == opDelete:
		case !live:
			if c.w.cfg.Deletes == DeletesOff {
				c.settle(i, ok(""))
				continue
			}
			g.op = opDelete
		case g.op == opUndelete:
			g.ev.Fields = cur.Fields
		default:
			g.op, g.ev.Fields = opUpdate, cur.Fields
			c.missing = append(c.missing, i) // written whole: an upsert
			c.settled[i] = true
		}
	}
	return nil
}

// findTargets finds the target records of the changes, and of the parents
// their updates name. Updates and parents may come from this worker's ID
// map (a stale entry shows as ENTITY_IS_DELETED and the record is
// re-created); deletes and undeletes are always found by external ID, deleted
// rows included, in one query.
func (c *changeWrite) findTargets(ctx context.Context) error {
	c.live, c.deleted = map[string]string{}, map[string]string{}
	var maybe []string // looked up in the ID map first
	var ids []string   // queried
	for i, g := range c.gs {
		if c.settled[i] {
			continue
		}
		if g.op == opUpdate {
			maybe = append(maybe, g.sourceID)
		} else {
			ids = append(ids, g.sourceID)
		}
		if p, isStr := g.ev.Fields["ParentId"].(string); isStr && p != "" {
			maybe = append(maybe, p)
		}
	}
	if len(maybe) > 0 {
		known, err := c.w.cfg.Store.Lookup(maybe)
		if err != nil {
			known = nil // the query below finds them all
		}
		for _, id := range maybe {
			if m, found := known[id]; found {
				c.live[id] = m.TargetID
			} else {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ext := c.w.cfg.ExternalIDField
	var soqls []string
	for _, part := range chunks(ids, maxINList) {
		soqls = append(soqls, fmt.Sprintf("SELECT Id, %s, IsDeleted FROM Account WHERE %s IN %s", ext, ext, salesforce.SOQLList(part)))
	}
	add := func(rec salesforce.Record) {
		src, _ := rec[ext].(string)
		id, _ := rec["Id"].(string)
		if src == "" || id == "" {
			return
		}
		src = normalizeID(src)
		if del, _ := rec["IsDeleted"].(bool); del {
			c.deleted[src] = id
		} else {
			c.live[src] = id
		}
	}
	// One query: a plain queryAll; several: composite calls of up to the
	// pack limit of queries, one counted call each.
	for _, group := range chunks(soqls, max(1, c.w.packLimit())) {
		countCall(ctx)
		if len(group) == 1 {
			for rec, err := range c.w.cfg.Target.QueryAll(ctx, group[0]) {
				if err != nil {
					return err
				}
				add(rec)
			}
			continue
		}
		res, err := c.w.cfg.Target.QueryAllComposite(ctx, group)
		if err != nil {
			return err
		}
		for _, recs := range res {
			for _, rec := range recs {
				add(rec)
			}
		}
	}
	return nil
}

// maxINList is the most IDs one SOQL IN list holds: a query by 200 IDs is
// about 4,500 characters of URL, well inside the limits of a query URL.
const maxINList = 200

// undelete brings deleted target records back over SOAP; each then gets the
// undelete's fields as an update. A record not in the recycle bin that
// lives in the target is updated; one the target lacks is re-created from
// the source.
func (c *changeWrite) undelete(ctx context.Context) error {
	var idx []int
	var ids []string
	for _, i := range c.pending(opUndelete) {
		g := c.gs[i]
		if _, found := c.live[g.sourceID]; found {
			g.op = opUpdate
			continue
		}
		id, found := c.deleted[g.sourceID]
		if !found {
			g.op = opUpdate // the update finds no target: re-created from the source
			continue
		}
		idx, ids = append(idx, i), append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	var res []salesforce.SaveResult
	for _, part := range chunks(ids, salesforce.MaxCollection) { // undelete() takes at most 200 IDs
		countCall(ctx)
		pr, err := c.w.cfg.Target.Undelete(ctx, part)
		if err != nil {
			return err
		}
		if len(pr) != len(part) {
			return fmt.Errorf("replicate: target answered %d undelete results for %d records", len(pr), len(part))
		}
		res = append(res, pr...)
	}
	for k, i := range idx {
		g := c.gs[i]
		g.op = opUpdate
		if res[k].Success {
			c.live[g.sourceID] = ids[k]
			continue
		}
		// Not in the recycle bin any more (purged): re-create it.
		c.w.log.Info("undelete refused; re-creating the record from the source", "source_id", g.sourceID, "err", res[k].Err())
	}
	return nil
}

// update writes the updates by target ID. A parent the target lacks is left
// out and a link event follows; a record the target lacks (or that was
// deleted there) is re-created from the source.
func (c *changeWrite) update(ctx context.Context) error {
	var idx []int
	var recs []salesforce.Record
	var deferred []bool
	for _, i := range c.pending(opUpdate) {
		g := c.gs[i]
		id, found := c.live[g.sourceID]
		if !found {
			c.missing = append(c.missing, i)
			c.settled[i] = true
			continue
		}
		rec := salesforce.Record{"attributes": map[string]any{"type": sobject}, "Id": id}
		later := false
		for k, v := range g.ev.Fields {
			if !strings.EqualFold(k, "ParentId") {
				rec[k] = v
				continue
			}
			p, _ := v.(string)
			switch pid, found := c.live[p]; {
			case p == "":
				rec["ParentId"] = nil
			case found:
				rec["ParentId"] = pid
			default:
				later = true
			}
		}
		if len(rec) == 2 && !later {
			c.settle(i, ok(id)) // nothing to set (an undelete without fields)
			continue
		}
		idx, recs, deferred = append(idx, i), append(recs, rec), append(deferred, later)
	}
	if len(recs) == 0 {
		return nil
	}
	res, err := c.w.collections(ctx, "updates", len(recs), func(ctx context.Context, lo, hi, size int) ([]salesforce.CollectionResult, error) {
		part := recs[lo:hi]
		lists := chunks(part, size)
		if len(lists) == 1 {
			r, err := c.w.cfg.Target.UpdateMany(ctx, sobject, part, false)
			return []salesforce.CollectionResult{{Results: r}}, err
		}
		return c.w.cfg.Target.UpdateComposite(ctx, sobject, lists)
	})
	if err != nil {
		return err
	}
	for k, i := range idx {
		r := res[k]
		switch {
		case r.Success && deferred[k]:
			c.settle(i, writtenWithoutParent(recs[k]["Id"].(string)))
		case r.Success:
			c.settle(i, ok(recs[k]["Id"].(string)))
		case salesforce.IsEntityDeleted(r.Err()):
			c.missing = append(c.missing, i)
			c.settled[i] = true
		default:
			c.settle(i, recordFailure(r.Err(), c.w.cfg.ExternalIDField))
		}
	}
	return nil
}

// delete deletes the live target records of the deletes; a record already
// gone counts as deleted.
func (c *changeWrite) delete(ctx context.Context) error {
	var idx []int
	var ids []string
	for _, i := range c.pending(opDelete) {
		id, found := c.live[c.gs[i].sourceID]
		if !found {
			c.settle(i, ok(""))
			continue
		}
		idx, ids = append(idx, i), append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	res, err := c.w.collections(ctx, "deletes", len(ids), func(ctx context.Context, lo, hi, size int) ([]salesforce.CollectionResult, error) {
		part := ids[lo:hi]
		lists := chunks(part, size)
		if len(lists) == 1 {
			r, err := c.w.cfg.Target.DeleteMany(ctx, part, false)
			return []salesforce.CollectionResult{{Results: r}}, err
		}
		return c.w.cfg.Target.DeleteComposite(ctx, lists)
	})
	if err != nil {
		return err
	}
	for k, i := range idx {
		if r := res[k]; r.Success || salesforce.IsEntityDeleted(r.Err()) {
			c.settle(i, ok(""))
		} else {
			c.settle(i, recordFailure(r.Err(), c.w.cfg.ExternalIDField))
		}
	}
	return nil
}

// recreate writes the records the target lacks with their whole state
// from the source, by upsert: a record deleted in the source since is left
// alone (its delete event follows, or was applied).
func (c *changeWrite) recreate(ctx context.Context) error {
	if len(c.missing) == 0 {
		return nil
	}
	var need []string
	org := ""
	for _, i := range c.missing {
		if !c.gs[i].replay {
			need, org = append(need, c.gs[i].sourceID), c.gs[i].ev.SourceOrg
		}
	}
	var now map[string]event.Event
	if len(need) > 0 {
		if c.w.cfg.Source == nil {
			for _, i := range c.missing {
				if !c.gs[i].replay {
					c.settle(i, sourceNeeded(fmt.Sprintf("the target has no record with %s = %s to update", c.w.cfg.ExternalIDField, c.gs[i].sourceID)))
				}
			}
		} else {
			var err error
			if now, err = c.w.readSource(ctx, org, need); err != nil {
				return err
			}
		}
	}
	var up []*group
	var idx []int
	for _, i := range c.missing {
		g := c.gs[i]
		if !g.replay {
			if c.w.cfg.Source == nil {
				continue
			}
			cur, live := now[g.sourceID]
			if !live {
				c.settle(i, ok(""))
				continue
			}
			g.ev.Fields = cur.Fields
		}
		// An upsert of the whole record, as a create.
		ev := g.ev
		ev.Type = event.TypeAccountCreated
		up = append(up, &group{sourceID: g.sourceID, ev: ev, ds: g.ds, op: opCreate, tries: g.tries})
		idx = append(idx, i)
	}
	if len(up) == 0 {
		return nil
	}
	countCall(ctx)
	outs, err := c.w.upsertMany(ctx, up)
	if err != nil {
		return err
	}
	for k, i := range idx {
		c.settle(i, outs[k])
	}
	return nil
}

// collections makes the calls that write n records of a change step in
// lists of -batch: one collections call for one list, composite calls of up
// to the current pack limit of lists for more (each one counted API call,
// timed like the composite upserts). It returns every record's result in
// order. A list refused as a whole is the error of the whole step: the
// engine decides it for every record of the batch (split, hold, hand
// back, retry), and a retry finds the other lists' writes done (an update
// sets the same values again; a deleted record counts as deleted).
func (w *Worker) collections(ctx context.Context, what string, n int, call func(ctx context.Context, lo, hi, size int) ([]salesforce.CollectionResult, error)) ([]salesforce.SaveResult, error) {
	size := w.cfg.Batch
	per := size * max(1, w.packLimit())
	out := make([]salesforce.SaveResult, 0, n)
	for start := 0; start < n; start += per {
		m := min(per, n-start)
		countCall(ctx)
		began := time.Now()
		res, err := call(ctx, start, start+m, size)
		if m > size {
			w.observeComposite(time.Since(began), (m+size-1)/size)
		}
		if err != nil {
			return nil, err
		}
		got := 0
		for _, lr := range res {
			if lr.Err != nil {
				return nil, lr.Err
			}
			got += len(lr.Results)
			out = append(out, lr.Results...)
		}
		if got != m {
			return nil, fmt.Errorf("replicate: target answered %d results for %d %s", got, m, what)
		}
	}
	return out, nil
}

// readSource reads the records' copied fields from the source org, deleted
// rows included; the result holds the live ones only, as created events
// carrying the whole state. A failure is transient for the engine: the
// source's trouble is not the target's.
func (w *Worker) readSource(ctx context.Context, org string, ids []string) (map[string]event.Event, error) {
	cols, err := w.sourceColumns(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]event.Event, len(ids))
	for _, part := range chunks(ids, maxINList) {
		soql := fmt.Sprintf("SELECT %s FROM Account WHERE Id IN %s", cols, salesforce.SOQLList(part))
		for rec, err := range w.cfg.Source.QueryAll(ctx, soql) {
			if err != nil {
				return nil, fmt.Errorf("replicate: reading the source org: %v", err) // not wrapped: transient here
			}
			if del, _ := rec["IsDeleted"].(bool); del {
				continue
			}
			delete(rec, "IsDeleted")
			ev, err := event.NewAccountCreated(org, rec, w.cfg.Fields)
			if err != nil {
				return nil, fmt.Errorf("replicate: a source record: %v", err)
			}
			out[ev.SourceID] = ev
		}
	}
	return out, nil
}

// sourceColumns is the select list of the source reads: Id, IsDeleted and
// the copied fields (-fields) that the source's Account has, as the
// producer copies them. It describes the source's Account once (a failure
// is transient: the next read tries again) and logs the fields the source
// lacks, which are not copied, instead of failing every read with "No such
// column".
func (w *Worker) sourceColumns(ctx context.Context) (string, error) {
	w.srcMu.Lock()
	defer w.srcMu.Unlock()
	if w.srcCols != "" {
		return w.srcCols, nil
	}
	d, err := w.cfg.Source.Describe(ctx, "Account")
	if err != nil {
		return "", fmt.Errorf("replicate: describing the source org's Account: %v", err) // not wrapped: transient here
	}
	cols := []string{"Id", "IsDeleted"}
	var missing []string
	for _, f := range w.cfg.Fields.Names() {
		df, ok := d.Field(f)
		switch {
		case !ok:
			missing = append(missing, f)
		case !slices.ContainsFunc(cols, func(c string) bool { return strings.EqualFold(c, df.Name) }):
			cols = append(cols, df.Name)
		}
	}
	if len(missing) > 0 {
		w.log.Warn("the source org has no such Account fields; the worker's reads of the source leave them out", "fields", missing)
	}
	w.srcCols = strings.Join(cols, ", ")
	return w.srcCols, nil
}

// checkLinks drops the links whose child no longer names that parent in the
// source (docs/ordering.md, rule 6): a later change of the child overtook
// the link while it waited for its parent.
func (w *Worker) checkLinks(ctx context.Context, links []*group) []*group {
	ids := make([]string, len(links))
	for i, g := range links {
		ids[i] = g.sourceID
	}
	now, err := w.readSource(ctx, links[0].ev.SourceOrg, ids)
	if err != nil {
		w.log.Warn("checking links against the source failed; applying them unchecked", "err", err)
		return links
	}
	keep := links[:0]
	for _, g := range links {
		if cur, live := now[g.sourceID]; live && cur.ParentSourceID() == g.ev.ParentID {
			keep = append(keep, g)
			continue
		}
		w.ack(ctx, g)
		if r := runOf(ctx); r != nil {
			r.known.Add(int64(len(g.ds)))
		}
		w.log.Info("link dropped: the child no longer names that parent in the source",
			"source_id", g.sourceID, "parent_source_id", g.ev.ParentID)
	}
	return keep
}

// normalizeID returns the 18-character form of a record ID, or s.
func normalizeID(s string) string {
	if id, err := salesforce.NormalizeID(s); err == nil {
		return id
	}
	return s
}
