package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/salesforce/pubsub"
	"orgsync/store"
)

// changeKeyOf is the change key of a change event's changes:
// "<transactionKey>:<sequenceNumber>".
func changeKeyOf(h pubsub.Header) string {
	return h.TransactionKey + ":" + strconv.FormatInt(h.SequenceNumber, 10)
}

// changeOut is one event built from a change event, with the fields whose
// values arrived as diffs (to read back whole).
type changeOut struct {
	o     outgoing
	diffs []string
}

// errBadChange marks a change event that cannot be turned into events.
var errBadChange = errors.New("capture: change event")

// changeEvents builds the events of an UPDATE, DELETE or UNDELETE change
// event, one per record it names: updated events carry the changed fields
// (changedFields and nulledFields) that are copied, with whole values in
// REST shape (a nulled field is null); an update that touched no copied
// field makes none and counts in skipped. Deleted events carry no fields;
// undeleted events the record's copied fields the event carries.
func (c *CDC) changeEvents(ev *pubsub.Event) (out []changeOut, skipped int, err error) {
	h := ev.Header
	if h.CommitTimestamp.IsZero() || h.TransactionKey == "" {
		return nil, 0, fmt.Errorf("%w %x: %s without commitTimestamp or transactionKey", errBadChange, ev.ReplayID, h.ChangeType)
	}
	key := changeKeyOf(h)
	typ := map[string]string{pubsub.ChangeUpdate: event.TypeAccountUpdated, pubsub.ChangeDelete: event.TypeAccountDeleted,
		pubsub.ChangeUndelete: event.TypeAccountUndeleted}[h.ChangeType]
	if typ == "" {
		return nil, 0, fmt.Errorf("%w %x: change type %s makes no event", errBadChange, ev.ReplayID, h.ChangeType)
	}
	for _, id := range h.RecordIDs {
		var (
			vals  map[string]any
			diffs []string
		)
		switch typ {
		case event.TypeAccountUpdated, event.TypeAccountUndeleted:
			rec, err := c.restShape(id, ev)
			if err != nil {
				return nil, 0, fmt.Errorf("%w %x: %w", errBadChange, ev.ReplayID, err)
			}
			if typ == event.TypeAccountUndeleted {
				vals = copiedValues(rec, c.cfg.Fields)
				delete(vals, "Id")
			} else {
				vals = c.changedValues(rec, h.ChangedFields, h.NulledFields)
				if len(vals) == 0 {
					skipped++
					continue
				}
			}
			for _, f := range h.DiffFields {
				if _, ok := vals[f]; ok && vals[f] != nil {
					diffs = append(diffs, f)
				}
			}
		}
		o, err := changeOutgoing(typ, c.sourceOrg, id, h.CommitTimestamp, key, vals, c.cfg.Fields)
		if err != nil {
			return nil, 0, fmt.Errorf("%w %x: record %s: %v", errBadChange, ev.ReplayID, clip(id), err)
		}
		out = append(out, changeOut{o: o, diffs: diffs})
	}
	return out, skipped, nil
}

// changedValues picks from rec (REST shape) the copied fields among the
// changed and nulled ones (change event names: BillingAddress.City is
// BillingCity, BillingAddress every Billing component); nulled ones are
// null.
func (c *CDC) changedValues(rec map[string]any, changed, nulled []string) map[string]any {
	vals := map[string]any{}
	for _, name := range changed {
		for _, n := range c.restNames(name) {
			if c.cfg.Fields.Has(n) {
				vals[n] = rec[n]
			}
		}
	}
	for _, name := range nulled {
		for _, n := range c.restNames(name) {
			if c.cfg.Fields.Has(n) {
				vals[n] = nil
			}
		}
	}
	return vals
}

// restNames maps a change event field name to the REST field names it
// stands for.
func (c *CDC) restNames(name string) []string {
	parent, comp, nested := strings.Cut(name, ".")
	if nested {
		return []string{strings.TrimSuffix(parent, "Address") + comp}
	}
	if c.types[strings.ToLower(name)] == "address" {
		prefix := strings.TrimSuffix(name, "Address")
		out := make([]string, len(addressComponents))
		for i, comp := range addressComponents {
			out[i] = prefix + comp
		}
		return out
	}
	return []string{name}
}

// catchUpChanges handles a GAP_UPDATE, GAP_DELETE or GAP_UNDELETE event:
// it re-reads its records and publishes each one's current state, as an
// update (an undelete for GAP_UNDELETE), or a delete when the record is
// deleted (the REST API answers ENTITY_IS_DELETED or NOT_FOUND for it).
func (c *CDC) catchUpChanges(ctx context.Context, h pubsub.Header) error {
	var clean []string
	for _, id := range h.RecordIDs {
		if n, err := salesforce.NormalizeIDWithPrefix(id, salesforce.PrefixAccount); err == nil {
			clean = append(clean, n)
		} else {
			c.log.Warn("cdc gap event names an ID that is not an Account ID; skipped", "id", clip(id))
		}
	}
	at := h.CommitTimestamp
	if at.IsZero() {
		at = time.Now().UTC()
	}
	key := changeKeyOf(h)
	if h.TransactionKey == "" {
		key = "gap:" + event.TimeKey(at)
	}
	live := event.TypeAccountUpdated
	if h.ChangeType == pubsub.ChangeGapUndelete {
		live = event.TypeAccountUndeleted
	}
	var out []outgoing
	for chunk := range slices.Chunk(clean, MaxRecords) {
		found := map[string]bool{}
		q := "SELECT " + c.selectList + " FROM Account WHERE Id IN ('" + strings.Join(chunk, "','") + "')"
		for r, err := range c.cfg.Client.Query(ctx, q) {
			if err != nil {
				return fmt.Errorf("capture: gap catch-up: %w", err)
			}
			id, err := salesforce.NormalizeIDWithPrefix(str(r["Id"]), salesforce.PrefixAccount)
			if err != nil {
				return fmt.Errorf("capture: gap catch-up: row Id: %w", err)
			}
			found[id] = true
			o, err := changeOutgoing(live, c.sourceOrg, id, at, key, copiedValues(r, c.cfg.Fields), c.cfg.Fields)
			if err != nil {
				return fmt.Errorf("capture: gap catch-up: record %s: %v", id, err)
			}
			out = append(out, o)
		}
		for _, id := range chunk {
			if found[id] {
				continue
			}
			_, err := c.cfg.Client.Get(ctx, "Account", id, "Id")
			var ae *salesforce.APIError
			switch {
			case err == nil:
				return fmt.Errorf("capture: gap catch-up: record %s: the query did not return it but GET does", id)
			case errors.As(err, &ae) && (ae.Code == salesforce.CodeEntityIsDeleted || ae.Code == salesforce.CodeNotFound):
			default:
				return fmt.Errorf("capture: gap catch-up: record %s: %w", id, err)
			}
			o, err := changeOutgoing(event.TypeAccountDeleted, c.sourceOrg, id, at, key, nil, c.cfg.Fields)
			if err != nil {
				return fmt.Errorf("capture: gap catch-up: record %s: %v", id, err)
			}
			out = append(out, o)
		}
	}
	if err := c.publishCounted(ctx, out); err != nil {
		return fmt.Errorf("capture: gap catch-up: %w", err)
	}
	c.count(func(t *CDCStats) { t.CatchUps[CauseGap]++ })
	c.cfg.CDCMetrics.catchUp(CauseGap)
	c.log.Warn("cdc catch-up done", "cause", CauseGap, "change_type", h.ChangeType, "ids", len(h.RecordIDs), "records", len(out))
	return nil
}

// catchUpDeletes publishes a deleted event for every Account the Get
// Deleted resource lists from from until now, and warns when the source's
// delete log starts after from. A delete older than the record's live state
// the catch-up's query just read (live: SystemModstamp by ID) was undone by
// an undelete and is left out.
//
// Get Deleted covers whole minutes only: what the answer does not cover yet
// (up to now) is left to a follow-up (followUpDeletes), saved in the store.
func (c *CDC) catchUpDeletes(ctx context.Context, cause string, from time.Time, live map[string]time.Time) (int, error) {
	now := c.cfg.Now().UTC()
	res, err := c.getDeleted(ctx, from, now)
	if deletesRefused(err) {
		c.log.Error(fmt.Sprintf("DELETES MAY HAVE BEEN MISSED: the %s catch-up could not list the records deleted since %s (%v); they are not captured: run `worker reconcile` to find them in the target",
			cause, from.Format(time.RFC3339), err), "from", from, "err", err)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !res.EarliestDateAvailable.IsZero() && from.Before(res.EarliestDateAvailable) {
		c.log.Error(fmt.Sprintf("DELETES MAY HAVE BEEN MISSED: the %s catch-up starts at %s, before the source's delete log, which starts at %s (earliestDateAvailable); records deleted in between are not captured: run `worker reconcile` to find them in the target",
			cause, from.Format(time.RFC3339), res.EarliestDateAvailable.Format(time.RFC3339)),
			"from", from, "earliest_date_available", res.EarliestDateAvailable)
	}
	var out []outgoing
	for _, d := range res.Records {
		if !strings.HasPrefix(d.ID, salesforce.PrefixAccount) {
			continue
		}
		if t, ok := live[d.ID]; ok && t.After(d.DeletedDate) {
			continue
		}
		o, err := changeOutgoing(event.TypeAccountDeleted, c.sourceOrg, d.ID, d.DeletedDate, event.TimeKey(d.DeletedDate), nil, c.cfg.Fields)
		if err != nil {
			return 0, fmt.Errorf("deleted record %s: %v", d.ID, err)
		}
		out = append(out, o)
	}
	if err := c.publishCounted(ctx, out); err != nil {
		return 0, err
	}
	if res.LatestDateCovered.Before(now) {
		f := c.delFollow
		if f.from.IsZero() || res.LatestDateCovered.Before(f.from) {
			f.from = res.LatestDateCovered
		}
		if now.After(f.until) {
			f.until = now
		}
		if err := c.setFollowUp(f); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// getDeleted asks Get Deleted for (from, now], at least a minute.
func (c *CDC) getDeleted(ctx context.Context, from, now time.Time) (salesforce.DeletedResult, error) {
	start := from.UTC()
	if m := now.Truncate(time.Minute).Add(-time.Minute); start.After(m) {
		start = m // Get Deleted needs a window of a minute at least
	}
	res, err := c.cfg.Client.GetDeleted(ctx, "Account", start, now)
	if err != nil {
		return res, fmt.Errorf("get deleted: %w", err)
	}
	return res, nil
}

// deleteFollowUp is the part of a catch-up's delete window that Get Deleted
// had not covered yet (the minute that was still running): from the
// answer's latestDateCovered until the catch-up's time.
type deleteFollowUp struct{ from, until time.Time }

// CDCDeletesCheckpointName is the store key of a pending delete follow-up
// of a source org and topic.
func CDCDeletesCheckpointName(sourceOrg, topic string) string {
	return "cdc-deleted:" + sourceOrg + ":" + topic
}

func (c *CDC) setFollowUp(f deleteFollowUp) error {
	cp := store.Checkpoint{}
	if !f.until.IsZero() {
		cp = store.Checkpoint{Time: f.from, ID: f.until.UTC().Format(time.RFC3339Nano)}
	}
	if err := c.cfg.Store.SetCheckpoint(CDCDeletesCheckpointName(c.sourceOrg, c.cfg.Topic), cp); err != nil {
		return fmt.Errorf("capture: save delete follow-up: %w", err)
	}
	c.delFollow = f
	return nil
}

// loadFollowUp reads a pending delete follow-up from the store.
func (c *CDC) loadFollowUp(org string) error {
	cp, err := c.cfg.Store.Checkpoint(CDCDeletesCheckpointName(org, c.cfg.Topic))
	if err != nil || cp.ID == "" {
		return err
	}
	until, err := time.Parse(time.RFC3339Nano, cp.ID)
	if err != nil {
		return fmt.Errorf("capture: delete follow-up: %w", err)
	}
	c.delFollow = deleteFollowUp{from: cp.Time, until: until}
	return nil
}

// followUpDeletes runs a pending delete follow-up once Get Deleted can
// cover it (the minute of its end is over): the deletes it lists are
// published, except those of records live again with a newer
// SystemModstamp (undeleted since, their undelete already published).
func (c *CDC) followUpDeletes(ctx context.Context) error {
	f := c.delFollow
	now := c.cfg.Now().UTC()
	if f.until.IsZero() || now.Before(f.until.Truncate(time.Minute).Add(time.Minute)) {
		return nil
	}
	res, err := c.getDeleted(ctx, f.from.Add(-c.cfg.Overlap), now)
	if deletesRefused(err) {
		c.log.Error(fmt.Sprintf("DELETES MAY HAVE BEEN MISSED: the source could not list the records deleted between %s and %s (%v); they are not captured: run `worker reconcile` to find them in the target",
			f.from.Format(time.RFC3339), f.until.Format(time.RFC3339), err), "err", err)
		return c.setFollowUp(deleteFollowUp{})
	}
	if err != nil {
		return fmt.Errorf("capture: delete follow-up: %w", err)
	}
	var ids []string
	for _, d := range res.Records {
		if strings.HasPrefix(d.ID, salesforce.PrefixAccount) {
			ids = append(ids, d.ID)
		}
	}
	live := map[string]time.Time{}
	for chunk := range slices.Chunk(ids, MaxRecords) {
		q := "SELECT Id, SystemModstamp FROM Account WHERE Id IN ('" + strings.Join(chunk, "','") + "')"
		for r, err := range c.cfg.Client.Query(ctx, q) {
			if err != nil {
				return fmt.Errorf("capture: delete follow-up: %w", err)
			}
			rp, err := rowPosition(r, "SystemModstamp")
			if err != nil {
				return fmt.Errorf("capture: delete follow-up: %w", err)
			}
			live[rp.id] = rp.t
		}
	}
	var out []outgoing
	for _, d := range res.Records {
		if t, ok := live[d.ID]; (ok && t.After(d.DeletedDate)) || !strings.HasPrefix(d.ID, salesforce.PrefixAccount) {
			continue
		}
		o, err := changeOutgoing(event.TypeAccountDeleted, c.sourceOrg, d.ID, d.DeletedDate, event.TimeKey(d.DeletedDate), nil, c.cfg.Fields)
		if err != nil {
			return fmt.Errorf("capture: delete follow-up: deleted record %s: %v", d.ID, err)
		}
		out = append(out, o)
	}
	if err := c.publishCounted(ctx, out); err != nil {
		return fmt.Errorf("capture: delete follow-up: %w", err)
	}
	next := deleteFollowUp{}
	if res.LatestDateCovered.Before(f.until) {
		next = deleteFollowUp{from: res.LatestDateCovered, until: f.until}
	}
	if err := c.setFollowUp(next); err != nil {
		return err
	}
	c.log.Info("cdc delete follow-up done", "from", f.from, "until", f.until, "deletes", len(out))
	return nil
}

// publishCounted publishes evs in order per record and counts them.
func (c *CDC) publishCounted(ctx context.Context, evs []outgoing) error {
	ps, err := publishOrdered(ctx, c.cfg.Queue, evs, c.cfg.Publishers)
	ps.Read = len(evs)
	c.cfg.Metrics.stats(PathCDC, ps)
	c.count(func(t *CDCStats) { t.Stats.add(ps) })
	if err != nil {
		c.cfg.Metrics.publishError(PathCDC)
	}
	return err
}

// publishOrdered publishes evs so that the events of one record are stored
// in their order in evs: in rounds, each holding at most one event per
// record, each round acknowledged before the next starts.
func publishOrdered(ctx context.Context, p Publisher, evs []outgoing, n int) (Stats, error) {
	var total Stats
	for len(evs) > 0 {
		var round, rest []outgoing
		in := map[string]bool{}
		for _, o := range evs {
			if in[o.ev.SourceID] {
				rest = append(rest, o)
				continue
			}
			in[o.ev.SourceID] = true
			round = append(round, o)
		}
		st, err := publishAll(ctx, p, round, n)
		total.add(st)
		if err != nil {
			return total, err
		}
		evs = rest
	}
	return total, nil
}
