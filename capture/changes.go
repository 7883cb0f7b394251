package capture

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/store"
)

// What a poller captures (PollerConfig.Changes, `producer poll -changes`).
const (
	// ChangesCreated captures new records, on a CreatedDate keyset.
	ChangesCreated = "created"
	// ChangesAll captures creates and updates on a SystemModstamp keyset,
	// and deletes from the Get Deleted resource.
	ChangesAll = "all"
)

const (
	// DefaultHashRetention is how long a record's hash is kept after its
	// last change (PollerConfig.HashRetention).
	DefaultHashRetention = 30 * 24 * time.Hour
	// hashPruneEvery is how often the poller drops expired hashes.
	hashPruneEvery = time.Hour
	// getDeletedWindow is how far back the Get Deleted resource reaches.
	getDeletedWindow = 30 * 24 * time.Hour
)

// allState is what a ChangesAll poller keeps between cycles.
//
// producer.db holds, per source record, the SystemModstamp and a hash of
// the copied values it last published (store.RecordHash): a row whose
// copied values hash the same is not published again (system work and
// changes of other fields move SystemModstamp too), and a record with a hash
// is known to have been published, so it is never taken for a create.
type allState struct {
	hashSet string // store set of the hashes
	delName string // store checkpoint of the deletes: latestDateCovered of the last Get Deleted
	delTo   time.Time
	// trusted: the hashes cover everything this process published, which
	// holds once a cycle completed. Until then (a start, or after a failed
	// cycle) a publish may have been acknowledged without its hash being
	// saved, so a row taken for a create that changed since its creation
	// is followed by an update: the create's dedup key may drop it as a
	// repeat of the one already published.
	trusted   bool
	lastPrune time.Time
	// deleted holds the deletes this process published, by record, while
	// the overlap may list them again.
	deleted map[string]time.Time
	// live holds the SystemModstamp of every row the cycle read: a delete
	// older than that was undone by an undelete.
	live map[string]time.Time
}

// keyField is the keyset's time field.
func (p *Poller) keyField() string {
	if p.cfg.Changes == ChangesAll {
		return "SystemModstamp"
	}
	return "CreatedDate"
}

// DeletesCheckpointName is the store key of a ChangesAll poller's delete
// position (the latestDateCovered of its last Get Deleted call).
func DeletesCheckpointName(sourceOrg string) string { return "poll-deleted:" + sourceOrg }

// initAll checks that the source has the fields ChangesAll needs and loads
// the delete position.
func (p *Poller) initAll(_ context.Context, org string, d *salesforce.Describe) error {
	for _, f := range []string{"SystemModstamp", "LastModifiedById"} {
		if _, ok := d.Field(f); !ok {
			return fmt.Errorf("capture: -changes all: the source's Account has no %s field", f)
		}
	}
	delName := DeletesCheckpointName(org)
	dcp, err := p.cfg.Store.Checkpoint(delName)
	if err != nil {
		return fmt.Errorf("capture: read checkpoint: %w", err)
	}
	p.all = allState{hashSet: CheckpointName(org), delName: delName, delTo: dcp.Time, deleted: map[string]time.Time{}}
	if p.cfg.SkipUser != "" {
		p.log.Info("rows last modified by the skip user are not captured", "skip_user", p.cfg.SkipUser)
	}
	return nil
}

// captureAll publishes the rows of one SystemModstamp keyset query: a row
// is a create when its CreatedDate is at or after prev (the checkpoint the
// cycle started from) and the record was never published, an update
// carrying the whole copied state otherwise (and after such a create when
// the hashes are not trusted yet, see allState); rows whose copied values
// did not change, and rows last modified by SkipUser, are skipped. Once
// all are acknowledged it saves their hashes and advances the checkpoint.
// A record's events are published in order.
func (p *Poller) captureAll(ctx context.Context, rows []salesforce.Record, prev store.Checkpoint, st *Stats) (position, error) {
	var last position
	ids := make([]string, 0, len(rows))
	pos := make([]position, len(rows))
	for i, r := range rows {
		rp, err := rowPosition(r, "SystemModstamp")
		if err != nil {
			return last, err
		}
		pos[i] = rp
		ids = append(ids, rp.id)
	}
	known, err := p.cfg.Store.RecordHashes(p.all.hashSet, ids)
	if err != nil {
		return last, fmt.Errorf("capture: %w", err)
	}
	out := make([]outgoing, 0, len(rows))
	put := make(map[string]store.RecordHash, len(rows))
	for i, r := range rows {
		st.Read++
		rp := pos[i]
		last = rp
		p.all.live[rp.id] = rp.t
		vals := copiedValues(r, p.cfg.Fields)
		hash, err := event.ValuesHash(vals)
		if err != nil {
			return last, fmt.Errorf("capture: record %s: %w", rp.id, err)
		}
		h, _ := strconv.ParseUint(hash, 16, 64)
		old, had := known[rp.id]
		if had && old.Hash == h {
			st.Skipped++ // nothing copied changed
			if rp.t.After(old.Stamp) {
				put[rp.id] = store.RecordHash{Stamp: rp.t, Hash: h}
			}
			continue
		}
		put[rp.id] = store.RecordHash{Stamp: rp.t, Hash: h}
		if p.cfg.SkipUser != "" && lastModifiedBy(r) == p.cfg.SkipUser {
			st.Skipped++ // orgsync's own write; its hash is kept so a later system change does not echo it
			continue
		}
		created, err := event.ParseTime(str(r["CreatedDate"]))
		if err != nil {
			return last, fmt.Errorf("capture: record %s: CreatedDate: %w", rp.id, err)
		}
		isCreate := !had && !created.Before(prev.Time)
		if isCreate {
			o, _, err := prepare(p.sourceOrg, r, p.cfg.Fields, "")
			if err != nil {
				return last, fmt.Errorf("capture: record %s: %v", rp.id, err)
			}
			out = append(out, o)
		}
		if !isCreate || (!p.all.trusted && !prev.IsZero() && !created.Equal(rp.t)) {
			// A live row of a record this poller published as deleted
			// (its tombstone) was undeleted: an update would be dropped
			// as stale behind the delete (docs/ordering.md, rule 5).
			typ := event.TypeAccountUpdated
			if had && old.Hash == 0 {
				typ = event.TypeAccountUndeleted
			}
			o, err := changeOutgoing(typ, p.sourceOrg, rp.id, rp.t, event.TimeKey(rp.t)+":"+hash, vals, p.cfg.Fields)
			if err != nil {
				return last, fmt.Errorf("capture: record %s: %v", rp.id, err)
			}
			out = append(out, o)
		}
	}
	if err := p.publish(ctx, publishOrdered, out, st); err != nil {
		return last, err
	}
	if err := p.cfg.Store.UpdateRecordHashes(p.all.hashSet, put, nil); err != nil {
		return last, fmt.Errorf("capture: %w", err)
	}
	if len(rows) == 0 {
		return last, nil
	}
	_, _, err = p.advance(last)
	return last, err
}

// afterKeyset ends a ChangesAll cycle whose keyset reads succeeded: it
// captures the deletes since the previous checkpoint and prunes old hashes.
func (p *Poller) afterKeyset(ctx context.Context, prev store.Checkpoint, st *Stats) error {
	if err := p.pollDeletes(ctx, prev, st); err != nil {
		return err
	}
	if time.Since(p.all.lastPrune) >= hashPruneEvery {
		p.mu.Lock()
		cp := p.cp
		p.mu.Unlock()
		if !cp.IsZero() {
			removed, left, err := p.cfg.Store.PruneRecordHashes(p.all.hashSet, cp.Time.Add(-p.cfg.HashRetention))
			if err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			p.log.Debug("record hashes pruned", "removed", removed, "kept", left, "retention", p.cfg.HashRetention)
		}
		p.all.lastPrune = time.Now()
	}
	p.all.trusted = true
	return nil
}

// pollDeletes publishes a deleted event for every Account the Get Deleted
// resource lists from Overlap before the last covered time (on the first
// call, the previous checkpoint) until now, then saves the covered time. A
// first cycle (no previous checkpoint) has published nothing that could
// have been deleted, and asks nothing.
func (p *Poller) pollDeletes(ctx context.Context, prev store.Checkpoint, st *Stats) error {
	from := p.all.delTo
	if from.IsZero() {
		if prev.IsZero() {
			return nil
		}
		from = prev.Time
	}
	from = from.UTC()
	start := from.Add(-p.cfg.Overlap)
	now := p.cfg.Now().UTC()
	if oldest := now.Add(-getDeletedWindow).Truncate(time.Minute).Add(2 * time.Minute); start.Before(oldest) {
		if from.Before(oldest) {
			p.log.Error(fmt.Sprintf("DELETES MAY HAVE BEEN MISSED: the poller's position (%s) is more than 30 days old, farther back than the Get Deleted resource reaches; records deleted in the source before %s are not captured: run `worker reconcile` to find them in the target",
				from.Format(time.RFC3339), oldest.Format(time.RFC3339)), "from", from, "earliest_date_available", oldest)
		}
		start = oldest
	}
	if now.Truncate(time.Minute).Sub(start.Truncate(time.Minute)) < time.Minute {
		return nil // Get Deleted needs a window of a minute at least; the next cycle asks
	}
	if err := p.beforeCall(ctx, st); err != nil {
		return err
	}
	res, err := p.cfg.Client.GetDeleted(ctx, "Account", start, now)
	st.APICalls++
	if deletesRefused(err) {
		// Asking again would fail the same way: say so and move on.
		p.log.Error(fmt.Sprintf("DELETES MAY HAVE BEEN MISSED: the source refused to list the records deleted since %s (%v); they are not captured: run `worker reconcile` to find them in the target",
			from.Format(time.RFC3339), err), "from", from, "err", err)
		covered := now.Truncate(time.Minute)
		if err := p.cfg.Store.SetCheckpoint(p.all.delName, store.Checkpoint{Time: covered}); err != nil {
			return fmt.Errorf("capture: save checkpoint: %w", err)
		}
		p.all.delTo = covered
		return nil
	}
	if err != nil {
		return fmt.Errorf("capture: get deleted: %w", err)
	}
	// Only the part of the window past the last covered time is new: the
	// overlap was asked before.
	if !res.EarliestDateAvailable.IsZero() && from.Before(res.EarliestDateAvailable) {
		p.log.Error(fmt.Sprintf("DELETES MAY HAVE BEEN MISSED: the poller's position (%s) is older than the source's delete log, which starts at %s (earliestDateAvailable); records deleted in between are not captured: run `worker reconcile` to find them in the target",
			from.Format(time.RFC3339), res.EarliestDateAvailable.Format(time.RFC3339)),
			"from", from, "earliest_date_available", res.EarliestDateAvailable)
	}
	out := make([]outgoing, 0, len(res.Records))
	for _, d := range res.Records {
		if !strings.HasPrefix(d.ID, salesforce.PrefixAccount) {
			continue
		}
		st.Read++
		if t, ok := p.all.live[d.ID]; ok && t.After(d.DeletedDate) {
			st.Skipped++ // undeleted since: this cycle read it live
			continue
		}
		if at, ok := p.all.deleted[d.ID]; ok && at.Equal(d.DeletedDate) {
			st.Skipped++ // published by this process, listed again by the overlap
			continue
		}
		o, err := changeOutgoing(event.TypeAccountDeleted, p.sourceOrg, d.ID, d.DeletedDate, event.TimeKey(d.DeletedDate), nil, p.cfg.Fields)
		if err != nil {
			return fmt.Errorf("capture: deleted record %s: %v", d.ID, err)
		}
		out = append(out, o)
	}
	if err := p.publish(ctx, publishAll, out, st); err != nil {
		return err
	}
	// A deleted record keeps a tombstone (hash 0; a real hash is 0 once in
	// 2^64) instead of its hash, so that its undelete is an update (never a
	// create, whose dedup key may drop it) even when its values are the
	// same.
	tombs := make(map[string]store.RecordHash, len(out))
	for _, o := range out {
		tombs[o.ev.SourceID] = store.RecordHash{Stamp: o.ev.ChangedAt, Hash: 0}
	}
	if err := p.cfg.Store.UpdateRecordHashes(p.all.hashSet, tombs, nil); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	for _, o := range out {
		p.all.deleted[o.ev.SourceID] = o.ev.ChangedAt
	}
	for id, at := range p.all.deleted {
		if at.Before(start) {
			delete(p.all.deleted, id)
		}
	}
	if res.LatestDateCovered.After(p.all.delTo) {
		if err := p.cfg.Store.SetCheckpoint(p.all.delName, store.Checkpoint{Time: res.LatestDateCovered}); err != nil {
			return fmt.Errorf("capture: save checkpoint: %w", err)
		}
		p.all.delTo = res.LatestDateCovered
	}
	return nil
}

// deletesRefused reports whether a Get Deleted call failed in a way no retry
// cures (the resource is missing, the window is refused, more than 600,000
// records: EXCEEDED_ID_LIMIT).
func deletesRefused(err error) bool {
	var ae *salesforce.APIError
	return errors.As(err, &ae) && salesforce.Classify(err) == salesforce.Permanent
}

// changeOutgoing builds and encodes an updated, deleted or undeleted event.
func changeOutgoing(typ, sourceOrg, id string, at time.Time, key string, vals map[string]any, fields event.Fields) (outgoing, error) {
	ev, err := event.NewAccountChange(typ, sourceOrg, id, at, key, vals, fields)
	if err != nil {
		return outgoing{}, errors.New(strings.TrimPrefix(err.Error(), event.ErrMalformed.Error()+": "))
	}
	body, err := ev.Encode()
	if err != nil {
		return outgoing{}, err
	}
	return outgoing{ev: ev, body: body}, nil
}

// copiedValues are the allow-listed fields of a query row.
func copiedValues(r salesforce.Record, fields event.Fields) map[string]any {
	out := make(map[string]any, len(r))
	for k, v := range r {
		if fields.Has(k) {
			out[k] = v
		}
	}
	return out
}

// lastModifiedBy is a row's LastModifiedById, 18 characters ("" if absent
// or malformed).
func lastModifiedBy(r salesforce.Record) string {
	id, err := salesforce.NormalizeID(str(r["LastModifiedById"]))
	if err != nil {
		return ""
	}
	return id
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
