package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/salesforce/pubsub"
	pb "orgsync/salesforce/pubsub/proto"
	"orgsync/store"
)

// PathCDC is the "path" label of Change Data Capture.
const PathCDC = "cdc"

// Defaults of CDCConfig.
const (
	DefaultTopic      = "/data/AccountChangeEvent"
	DefaultSettle     = 5 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// OwnOrigin marks orgsync's own writes in a change event's changeOrigin
	// (the source client sends Sforce-Call-Options: client=orgsync).
	OwnOrigin = "client=orgsync"
)

// Catch-up causes, the "cause" label of the catch-up metric.
const (
	CauseSince         = "since"          // first start with -since
	CauseReplayInvalid = "replay_invalid" // the stored replay ID expired or was refused
	CauseGap           = "gap"            // a gap event: its records read by ID
	CauseOverflow      = "overflow"       // an overflow event: SOQL over its window
	// CauseNoCheckpoint: a first start's stream ended before it gave a
	// replay ID; the next one reads from when the first one began.
	CauseNoCheckpoint = "no_checkpoint"
)

// Reconnect causes, the "cause" label of the reconnect metric.
const (
	ReconnectStalled = "stalled" // neither events nor keepalives within the idle timeout
	ReconnectError   = "error"   // the stream failed; resumed from the checkpoint
)

// Subscriber opens Pub/Sub API streams; *pubsub.Client is one.
type Subscriber interface {
	Topic(ctx context.Context, name string) (*pb.TopicInfo, error)
	Subscribe(ctx context.Context, topic string, preset pubsub.Preset, replayID []byte) (*pubsub.Stream, error)
}

// CDCConfig configures a CDC capture. Zero values mean the documented defaults.
type CDCConfig struct {
	Client *salesforce.Client // the source's REST API: identity, describe, catch-up queries (required)
	PubSub Subscriber         // the source's Pub/Sub API (required)
	Queue  Publisher          // required
	Store  *store.Store       // holds the checkpoint (required)

	// SourceOrg is the source's Organization ID; when empty it is learned
	// from the token's identity URL.
	SourceOrg string
	// Topic is the change event channel (default /data/AccountChangeEvent).
	Topic string
	// Fields is the -fields allow-list (default event.DefaultFields).
	Fields event.Fields
	// SkipField: records with this field set are not captured (orgsync's
	// own writes), if the source has the field.
	SkipField string
	// Overlap is how far before the checkpoint's commitTimestamp a catch-up
	// reads (default 2m; negative: none).
	Overlap time.Duration
	// Since, on a first start without a checkpoint, adds a SOQL catch-up
	// of the records created since then. Zero: none.
	Since time.Time
	// Settle is how long a new subscription may take to answer before a
	// catch-up starts anyway (default 5s): Salesforce positions a
	// subscription when it reads the first request, and the first answer
	// proves it did.
	Settle time.Duration
	// MinBackoff and MaxBackoff bound the wait before resubscribing after
	// an error (default 1s and 1m, doubling).
	MinBackoff, MaxBackoff time.Duration
	// Publishers is how many publishes wait for their ack at once (default 32).
	Publishers int
	// Now is the clock of the Get Deleted calls of catch-ups (default
	// time.Now).
	Now        func() time.Time
	Metrics    *Metrics
	CDCMetrics *CDCMetrics
	Logger     *slog.Logger // nil discards
}

func (c *CDCConfig) defaults() error {
	if c.Client == nil || c.PubSub == nil || c.Queue == nil || c.Store == nil {
		return errors.New("capture: CDCConfig needs Client, PubSub, Queue and Store")
	}
	if len(c.Fields.Names()) == 0 {
		f, err := event.ParseFields("")
		if err != nil {
			return err
		}
		c.Fields = f
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	switch {
	case c.Overlap == 0:
		c.Overlap = DefaultOverlap
	case c.Overlap < 0:
		c.Overlap = 0
	}
	if c.Settle <= 0 {
		c.Settle = DefaultSettle
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Publishers <= 0 {
		c.Publishers = DefaultPublishers
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SkipField != "" && !event.ValidFieldName(c.SkipField) {
		return fmt.Errorf("capture: skip field %q is not a field name", clip(c.SkipField))
	}
	if c.SourceOrg != "" {
		org, err := salesforce.NormalizeIDWithPrefix(c.SourceOrg, salesforce.PrefixOrganization)
		if err != nil {
			return fmt.Errorf("capture: source org: %w", err)
		}
		c.SourceOrg = org
	}
	return nil
}

// errSetup marks a configuration error no retry can cure.
var errSetup = errors.New("capture: cdc setup")

// CDCStats counts what a CDC capture did.
type CDCStats struct {
	Stats
	Events     map[string]int // change events by change type
	OwnChanges int            // events skipped for changeOrigin client=orgsync
	CatchUps   map[string]int // catch-ups by cause
	Reconnects map[string]int // resubscriptions by cause
}

// CDC captures the source's new Accounts from Change Data Capture events.
// Run must be called once; Ready, Checkpoint and Totals may be called from
// any goroutine.
type CDC struct {
	cfg CDCConfig
	log *slog.Logger

	// set by init
	sourceOrg  string
	cpName     string
	selectList string // catch-up and read-back columns
	skipWhere  string
	skipField  string            // the source's spelling, "" when absent
	hasStamp   bool              // the source's Account has SystemModstamp
	delFollow  deleteFollowUp    // used by the session goroutine only
	types      map[string]string // field name (lower case) → describe type

	mu        sync.Mutex
	cp        store.Checkpoint // ID holds the replay ID bytes
	connected bool
	catching  bool
	totals    CDCStats
}

// NewCDC checks cfg and returns a CDC capture. It makes no call.
func NewCDC(cfg CDCConfig) (*CDC, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &CDC{cfg: cfg, log: cfg.Logger, totals: CDCStats{Events: map[string]int{},
		CatchUps: map[string]int{}, Reconnects: map[string]int{}}}, nil
}

// CDCCheckpointName is the store key of the CDC checkpoint of a source org
// and topic.
func CDCCheckpointName(sourceOrg, topic string) string { return "cdc:" + sourceOrg + ":" + topic }

// Checkpoint returns the stored position: the replay ID (opaque bytes) and
// the commit time it stands for.
func (c *CDC) Checkpoint() (replayID []byte, commit time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cp.ID == "" {
		return nil, c.cp.Time
	}
	return []byte(c.cp.ID), c.cp.Time
}

// Totals returns what the capture did so far (copies).
func (c *CDC) Totals() CDCStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.totals
	t.Events, t.CatchUps, t.Reconnects = cloneCounts(t.Events), cloneCounts(t.CatchUps), cloneCounts(t.Reconnects)
	return t
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Ready reports nil while a subscription is answering and no catch-up runs.
func (c *CDC) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.connected:
		return errors.New("not subscribed to the change events")
	case c.catching:
		return errors.New("catching up")
	}
	return nil
}

func (c *CDC) setState(connected, catching bool) {
	c.mu.Lock()
	c.connected, c.catching = connected, catching
	c.mu.Unlock()
	c.cfg.CDCMetrics.state(connected, catching)
}

// Run subscribes and captures until ctx is cancelled, then returns nil. It
// returns an error only when the source cannot be set up (identity,
// describe, checkpoint); stream errors are retried with backoff from the
// checkpoint, never from the newest event.
func (c *CDC) Run(ctx context.Context) error {
	var pending *catchUp
	for wait := c.cfg.MinBackoff; ; wait = min(2*wait, c.cfg.MaxBackoff) {
		err := c.init(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errSetup) || salesforce.Classify(err) == salesforce.Permanent {
			return err
		}
		c.log.Error("cdc: cannot set up the source; retrying", "err", err, "backoff", wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
	if rid, _ := c.Checkpoint(); rid == nil && !c.cfg.Since.IsZero() {
		pending = &catchUp{cause: CauseSince, from: c.cfg.Since}
	}
	backoff := c.cfg.MinBackoff
	var firstStart time.Time // set while no checkpoint exists
	for {
		if rid, _ := c.Checkpoint(); rid == nil {
			if firstStart.IsZero() {
				firstStart = time.Now()
			} else if pending == nil {
				// Subscribing at the newest event again would skip what was
				// committed since the first subscription.
				pending = &catchUp{cause: CauseNoCheckpoint, from: firstStart.Add(-c.cfg.Overlap)}
			}
		}
		fresh := pending != nil && pending.cause == CauseReplayInvalid
		got, err := c.session(ctx, &pending, fresh)
		c.setState(false, false)
		if ctx.Err() != nil {
			return nil
		}
		if got {
			backoff = c.cfg.MinBackoff
		}
		_, cpTime := c.Checkpoint()
		switch {
		case errors.Is(err, pubsub.ErrReplayInvalid):
			from := cpTime.Add(-c.cfg.Overlap)
			c.log.Warn("CDC REPLAY ID REFUSED (expired or invalid): subscribing afresh, then catching up by SOQL from the checkpoint's commit time",
				"err", err, "catch_up_from", from)
			pending = &catchUp{cause: CauseReplayInvalid, from: from}
			if !fresh {
				continue // a fresh subscription needs no backoff (but never twice in a row)
			}
		case errors.Is(err, pubsub.ErrStalled):
			c.count(func(t *CDCStats) { t.Reconnects[ReconnectStalled]++ })
			c.cfg.CDCMetrics.reconnect(ReconnectStalled)
			c.log.Warn("CDC STREAM STALLED (no events, no keepalives): resubscribing from the checkpoint", "err", err)
		default:
			c.count(func(t *CDCStats) { t.Reconnects[ReconnectError]++ })
			c.cfg.CDCMetrics.reconnect(ReconnectError)
			c.log.Warn("cdc stream failed; resubscribing from the checkpoint after a backoff", "err", err,
				"backoff", backoff)
		}
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *CDC) count(f func(*CDCStats)) {
	c.mu.Lock()
	f(&c.totals)
	c.mu.Unlock()
}

// catchUp is a SOQL catch-up to run once the new subscription is positioned.
type catchUp struct {
	cause string
	from  time.Time
}

type received struct {
	b   *pubsub.Batch
	err error
}

// session runs one subscription until it fails. got reports whether it
// received anything. A pending catch-up runs once the stream answered or
// Settle passed, and is cleared when done.
func (c *CDC) session(ctx context.Context, pending **catchUp, fresh bool) (got bool, err error) {
	rid, _ := c.Checkpoint()
	preset := pubsub.Custom
	if rid == nil || fresh {
		preset, rid = pubsub.Latest, nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.cfg.PubSub.Subscribe(sctx, c.cfg.Topic, preset, rid)
	if err != nil {
		return false, err
	}
	defer st.Close()
	c.log.Info("cdc subscribed", "topic", c.cfg.Topic, "from", presetName(preset), "replay_id", fmt.Sprintf("%x", rid))
	ch := make(chan received)
	go func() {
		for {
			b, err := st.Recv()
			select {
			case ch <- received{b, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	settleTimer := time.NewTimer(c.cfg.Settle)
	defer settleTimer.Stop()
	settle := settleTimer.C
	c.setState(false, *pending != nil)
	runPending := func() error {
		if *pending == nil {
			return nil
		}
		if err := c.catchUpSOQL(ctx, (*pending).cause, (*pending).from); err != nil {
			return err
		}
		*pending = nil
		settle = nil
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-settle:
			// No answer yet, but no error either: count as connected.
			if err := runPending(); err != nil {
				return got, err
			}
			settle = nil
			c.setState(true, false)
		case r := <-ch:
			if r.err != nil {
				return got, r.err
			}
			got = true
			if err := runPending(); err != nil {
				return got, err
			}
			settle = nil
			c.setState(true, false)
			if err := c.handle(ctx, st, r.b); err != nil {
				return got, err
			}
		}
	}
}

// publishGrace bounds how long a batch's publishes may go on after
// shutdown started.
const publishGrace = 30 * time.Second

func presetName(p pubsub.Preset) string { return strings.ToLower(p.String()) }

// handle publishes a batch's changes in order: creates, updates, deletes
// and undeletes as events, the catch-ups its gap and overflow events call
// for (after what came before them is published), and then moves the
// checkpoint past it.
func (c *CDC) handle(ctx context.Context, st releaser, b *pubsub.Batch) error {
	if err := c.followUpDeletes(ctx); err != nil {
		return err
	}
	if len(b.Events) == 0 {
		// A keepalive: with events still requested, everything up to the
		// latest replay ID was delivered (and, since batches are handled
		// one at a time, acknowledged).
		if b.PendingRequested > 0 && len(b.LatestReplayID) > 0 {
			return c.setCheckpoint(b.LatestReplayID, time.Now().UTC())
		}
		return nil
	}
	var (
		pending []outgoing
		diffs   = map[int][]string{} // index in pending → fields sent as diffs
		stats   Stats
	)
	// A batch whose publishes started finishes them even when shutdown
	// starts (bounded), so their acks are counted and the checkpoint moves
	// past them instead of leaving repeats for the next start.
	flush := func() error {
		if len(diffs) > 0 {
			if err := c.readBack(ctx, pending, diffs); err != nil {
				return err
			}
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishGrace)
		ps, err := publishOrdered(pctx, c.cfg.Queue, pending, c.cfg.Publishers)
		cancel()
		stats.Published += ps.Published
		stats.Duplicates += ps.Duplicates
		pending = pending[:0]
		clear(diffs)
		if err != nil {
			c.cfg.Metrics.publishError(PathCDC)
		}
		return err
	}
	err := c.handleEvents(ctx, b, &pending, diffs, &stats, flush)
	if err == nil {
		err = flush()
	}
	c.cfg.Metrics.stats(PathCDC, stats)
	c.count(func(t *CDCStats) { t.Stats.add(stats) })
	if err != nil {
		return err
	}
	now := time.Now()
	for _, ev := range b.Events {
		switch ev.Header.ChangeType {
		case pubsub.ChangeCreate, pubsub.ChangeUpdate, pubsub.ChangeDelete, pubsub.ChangeUndelete:
			if !ev.Header.CommitTimestamp.IsZero() {
				c.cfg.CDCMetrics.lag(now.Sub(ev.Header.CommitTimestamp))
			}
		}
	}
	last := b.Events[len(b.Events)-1]
	if err := c.setCheckpoint(last.ReplayID, last.Header.CommitTimestamp); err != nil {
		return err
	}
	return st.Release(len(b.Events))
}

// handleEvents turns a batch's change events into pending events; before a
// catch-up it flushes what is pending, so a record's events stay in order.
func (c *CDC) handleEvents(ctx context.Context, b *pubsub.Batch, pending *[]outgoing, diffs map[int][]string,
	stats *Stats, flush func() error) error {
	for _, ev := range b.Events {
		h := ev.Header
		c.count(func(t *CDCStats) { t.Events[h.ChangeType]++ })
		c.cfg.CDCMetrics.event(h.ChangeType)
		if h.EntityName != "" && h.EntityName != "Account" {
			// /data/ChangeEvents carries every selected entity: only
			// Accounts are replicated.
			continue
		}
		if strings.Contains(h.ChangeOrigin, OwnOrigin) {
			c.count(func(t *CDCStats) { t.OwnChanges++ })
			stats.Skipped += len(h.RecordIDs)
			continue
		}
		switch {
		case h.ChangeType == pubsub.ChangeCreate:
			for _, id := range h.RecordIDs {
				stats.Read++
				rec, err := c.restShape(id, ev)
				if err != nil {
					return fmt.Errorf("capture: change event %x: %w", ev.ReplayID, err)
				}
				o, skip, err := prepare(c.sourceOrg, rec, c.cfg.Fields, c.skipField)
				if err != nil {
					return fmt.Errorf("capture: change event %x: record %s: %v", ev.ReplayID, id, err)
				}
				if skip {
					stats.Skipped++
					continue
				}
				if len(h.DiffFields) > 0 {
					diffs[len(*pending)] = h.DiffFields
				}
				*pending = append(*pending, o)
			}
		case h.ChangeType == pubsub.ChangeUpdate, h.ChangeType == pubsub.ChangeDelete, h.ChangeType == pubsub.ChangeUndelete:
			stats.Read += len(h.RecordIDs)
			outs, skipped, err := c.changeEvents(ev)
			if errors.Is(err, errBadChange) {
				// Retrying would meet the same event again: count it and go on.
				stats.Bad += len(h.RecordIDs)
				c.log.Error("cdc change event cannot be turned into events; skipped", "err", err)
				continue
			}
			if err != nil {
				return err
			}
			stats.Skipped += skipped
			for _, co := range outs {
				if len(co.diffs) > 0 {
					diffs[len(*pending)] = co.diffs
				}
				*pending = append(*pending, co.o)
			}
		case h.ChangeType == pubsub.ChangeGapCreate:
			if err := flush(); err != nil {
				return err
			}
			c.log.Warn("CDC GAP EVENT: reading its records by ID", "change_type", h.ChangeType, "records", len(h.RecordIDs))
			if err := c.catchUpIDs(ctx, h.RecordIDs); err != nil {
				return err
			}
		case h.IsGap():
			if err := flush(); err != nil {
				return err
			}
			c.log.Warn("CDC GAP EVENT: reading its records by ID", "change_type", h.ChangeType, "records", len(h.RecordIDs))
			if err := c.catchUpChanges(ctx, h); err != nil {
				return err
			}
		case h.ChangeType == pubsub.ChangeGapOverflow:
			if err := flush(); err != nil {
				return err
			}
			from := h.CommitTimestamp.Add(-c.cfg.Overlap)
			c.log.Warn("CDC OVERFLOW EVENT: changes were not sent one by one; catching up by SOQL and Get Deleted over its window",
				"entity", h.EntityName, "commit_time", h.CommitTimestamp, "catch_up_from", from)
			if err := c.catchUpSOQL(ctx, CauseOverflow, from); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *CDC) setCheckpoint(rid []byte, commit time.Time) error {
	cp := store.Checkpoint{Time: commit, ID: string(rid)}
	if err := c.cfg.Store.SetCheckpoint(c.cpName, cp); err != nil {
		return fmt.Errorf("capture: save checkpoint: %w", err)
	}
	c.mu.Lock()
	c.cp = cp
	c.mu.Unlock()
	c.cfg.CDCMetrics.checkpoint(commit)
	return nil
}

// releaser is the flow-control side of a stream (*pubsub.Stream).
type releaser interface{ Release(n int) error }

// restShape turns a CREATE event's values into a record as the REST API
// returns it: Id, ISO datetimes, BillingStreet-style address fields.
func (c *CDC) restShape(id string, ev *pubsub.Event) (map[string]any, error) {
	rec := map[string]any{"Id": id}
	for name, v := range ev.Fields {
		if c.types[strings.ToLower(name)] == "address" {
			prefix := strings.TrimSuffix(name, "Address")
			addr, _ := v.(map[string]any)
			for _, comp := range addressComponents {
				rec[prefix+comp] = addr[comp] // a null address: every component null
			}
			continue
		}
		if v == nil {
			rec[name] = nil
			continue
		}
		switch c.types[strings.ToLower(name)] {
		case "datetime":
			ms, ok := asMillis(v)
			if !ok {
				return nil, fmt.Errorf("%s: %T is not epoch milliseconds", name, v)
			}
			rec[name] = time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000+0000")
		case "date":
			ms, ok := asMillis(v)
			if !ok {
				return nil, fmt.Errorf("%s: %T is not an epoch date", name, v)
			}
			rec[name] = time.UnixMilli(ms).UTC().Format("2006-01-02")
		default:
			switch n := v.(type) {
			case int32:
				rec[name] = int64(n)
			case float32:
				rec[name] = float64(n)
			default:
				rec[name] = v
			}
		}
	}
	return rec, nil
}

// addressComponents are the parts of a compound address field, as change
// events name them (BillingAddress.City is BillingCity).
var addressComponents = []string{"Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude", "GeocodeAccuracy"}

func asMillis(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}

// readBack replaces fields that arrived as diffs (by index in evs) with
// their whole values, read from the source in one query per 200 records.
func (c *CDC) readBack(ctx context.Context, evs []outgoing, diffs map[int][]string) error {
	var ids []string
	names := map[string]bool{}
	for i, fs := range diffs {
		if !slices.Contains(ids, evs[i].ev.SourceID) {
			ids = append(ids, evs[i].ev.SourceID)
		}
		for _, f := range fs {
			if !strings.Contains(f, ".") && c.cfg.Fields.Has(f) {
				names[f] = true
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	cols := []string{"Id"}
	for n := range names {
		cols = append(cols, n)
	}
	slices.Sort(cols[1:])
	slices.Sort(ids)
	values := map[string]salesforce.Record{}
	for chunk := range slices.Chunk(ids, MaxRecords) {
		q := "SELECT " + strings.Join(cols, ", ") + " FROM Account WHERE Id IN ('" + strings.Join(chunk, "','") + "')"
		for r, err := range c.cfg.Client.Query(ctx, q) {
			if err != nil {
				return fmt.Errorf("capture: read back diff fields: %w", err)
			}
			id, _ := r["Id"].(string)
			if n, err := salesforce.NormalizeID(id); err == nil {
				values[n] = r
			}
		}
	}
	for i, fs := range diffs {
		o := &evs[i]
		r, found := values[o.ev.SourceID]
		for _, f := range fs {
			if !names[f] {
				continue
			}
			if !found {
				// Deleted since: the diff is not a value; leave the field out.
				delete(o.ev.Fields, f)
				continue
			}
			o.ev.Fields[f] = r[f]
		}
		body, err := o.ev.Encode()
		if err != nil {
			return err
		}
		o.body = body
	}
	return nil
}

// catchUpSOQL publishes, counted as a catch-up of cause, every record
// created since from (SOQL, in CreatedDate order) and, except for a first
// start's -since, every change since from: the records whose
// SystemModstamp is at or after from (SOQL, in SystemModstamp order; one
// created before from is an update carrying its whole copied state, keyed
// like polling's) and the records the Get Deleted resource lists.
func (c *CDC) catchUpSOQL(ctx context.Context, cause string, from time.Time) error {
	c.mu.Lock()
	wasConnected := c.connected
	c.mu.Unlock()
	c.setState(wasConnected, true)
	n, deleted, err := c.catchUpQuery(ctx, cause, from)
	c.setState(wasConnected, false)
	if err != nil {
		return fmt.Errorf("capture: %s catch-up: %w", cause, err)
	}
	c.count(func(t *CDCStats) { t.CatchUps[cause]++ })
	c.cfg.CDCMetrics.catchUp(cause)
	c.log.Warn("cdc catch-up done", "cause", cause, "from", from, "records", n, "deletes", deleted)
	return nil
}

func (c *CDC) catchUpQuery(ctx context.Context, cause string, from time.Time) (n, deleted int, err error) {
	if cause == CauseSince || !c.hasStamp {
		where := []string{"CreatedDate >= " + soqlTime(from)}
		if c.skipWhere != "" {
			where = append(where, c.skipWhere)
		}
		q := "SELECT " + c.selectList + " FROM Account WHERE " + strings.Join(where, " AND ") + " ORDER BY CreatedDate, Id"
		n, err = c.publishQuery(ctx, q, nil)
		return n, 0, err
	}
	live := map[string]time.Time{}
	q := "SELECT " + c.selectList + " FROM Account WHERE SystemModstamp >= " + soqlTime(from) + " ORDER BY SystemModstamp, Id"
	n, err = c.publishQuery(ctx, q, func(r salesforce.Record) ([]outgoing, error) {
		rp, err := rowPosition(r, "SystemModstamp")
		if err != nil {
			return nil, err
		}
		live[rp.id] = rp.t
		created, err := event.ParseTime(str(r["CreatedDate"]))
		if err != nil {
			return nil, fmt.Errorf("record %s: CreatedDate: %w", rp.id, err)
		}
		var out []outgoing
		if !created.Before(from) {
			o, skip, err := prepare(c.sourceOrg, r, c.cfg.Fields, c.skipField)
			if err != nil || skip {
				return nil, err
			}
			out = append(out, o)
			if created.Equal(rp.t) {
				return out, nil
			}
			// Changed since its creation: the create may already be in
			// the stream (its dedup key would drop this one), so the
			// update follows it.
		}
		vals := copiedValues(r, c.cfg.Fields)
		hash, err := event.ValuesHash(vals)
		if err != nil {
			return nil, err
		}
		o, err := changeOutgoing(event.TypeAccountUpdated, c.sourceOrg, rp.id, rp.t, event.TimeKey(rp.t)+":"+hash, vals, c.cfg.Fields)
		return append(out, o), err
	})
	if err != nil {
		return n, 0, err
	}
	deleted, err = c.catchUpDeletes(ctx, cause, from, live)
	return n, deleted, err
}

// catchUpIDs publishes the given records, read by ID.
func (c *CDC) catchUpIDs(ctx context.Context, ids []string) error {
	var clean []string
	for _, id := range ids {
		if n, err := salesforce.NormalizeIDWithPrefix(id, salesforce.PrefixAccount); err == nil {
			clean = append(clean, n)
		} else {
			c.log.Warn("cdc gap event names an ID that is not an Account ID; skipped", "id", clip(id))
		}
	}
	total := 0
	for chunk := range slices.Chunk(clean, MaxRecords) {
		q := "SELECT " + c.selectList + " FROM Account WHERE Id IN ('" + strings.Join(chunk, "','") + "')"
		if c.skipWhere != "" {
			q += " AND " + c.skipWhere
		}
		n, err := c.publishQuery(ctx, q, nil)
		if err != nil {
			return fmt.Errorf("capture: gap catch-up: %w", err)
		}
		total += n
	}
	c.count(func(t *CDCStats) { t.CatchUps[CauseGap]++ })
	c.cfg.CDCMetrics.catchUp(CauseGap)
	c.log.Warn("cdc catch-up done", "cause", CauseGap, "ids", len(ids), "records", total)
	return nil
}

// publishQuery publishes the events build makes of every row of a query
// (nil: its created event), about 200 at a time, a record's in order, and
// returns how many it published.
func (c *CDC) publishQuery(ctx context.Context, q string, build func(salesforce.Record) ([]outgoing, error)) (int, error) {
	if build == nil {
		build = func(r salesforce.Record) ([]outgoing, error) {
			o, _, err := prepare(c.sourceOrg, r, c.cfg.Fields, "")
			return []outgoing{o}, err
		}
	}
	var batch []outgoing
	total := 0
	flush := func() error {
		ps, err := publishOrdered(ctx, c.cfg.Queue, batch, c.cfg.Publishers)
		c.cfg.Metrics.stats(PathCDC, ps)
		ps.Read = len(batch)
		c.count(func(t *CDCStats) { t.Stats.add(ps) })
		total += len(batch)
		batch = batch[:0]
		if err != nil {
			c.cfg.Metrics.publishError(PathCDC)
		}
		return err
	}
	for r, err := range c.cfg.Client.Query(ctx, q) {
		if err != nil {
			return total, err
		}
		evs, err := build(r)
		if err != nil {
			return total, fmt.Errorf("record: %v", err)
		}
		batch = append(batch, evs...)
		if len(batch) >= MaxRecords {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return total, err
		}
	}
	return total, nil
}

// init learns the source org, loads the checkpoint and describes Account.
func (c *CDC) init(ctx context.Context) error {
	if c.cpName != "" {
		return nil
	}
	org, err := sourceOrgOf(ctx, c.cfg.Client, c.cfg.SourceOrg)
	if errors.Is(err, errOrgMismatch) {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	if err != nil {
		return err
	}
	ti, err := c.cfg.PubSub.Topic(ctx, c.cfg.Topic)
	var pe *pubsub.Error
	switch {
	case errors.As(err, &pe) && (pe.Code == codes.NotFound || pe.Code == codes.PermissionDenied):
		return fmt.Errorf("%w: topic %s: %w (is Change Data Capture enabled for it, and may the user see it?)", errSetup, c.cfg.Topic, err)
	case err != nil:
		return fmt.Errorf("capture: topic %s: %w", c.cfg.Topic, err)
	case !ti.GetCanSubscribe():
		return fmt.Errorf("%w: topic %s: the integration user may not subscribe to it", errSetup, c.cfg.Topic)
	}
	name := CDCCheckpointName(org, c.cfg.Topic)
	cp, err := c.cfg.Store.Checkpoint(name)
	if err != nil {
		return fmt.Errorf("capture: read checkpoint: %w", err)
	}
	if err := c.loadFollowUp(org); err != nil {
		return fmt.Errorf("capture: read checkpoint: %w", err)
	}
	d, err := c.cfg.Client.Describe(ctx, "Account")
	if err != nil {
		return fmt.Errorf("capture: describe Account: %w", err)
	}
	types := map[string]string{}
	for _, f := range d.Fields {
		types[strings.ToLower(f.Name)] = f.Type
	}
	cols := []string{"Id", "CreatedDate"}
	var missing []string
	for _, f := range c.cfg.Fields.Names() {
		df, ok := d.Field(f)
		if !ok {
			missing = append(missing, f)
			continue
		}
		if !strings.EqualFold(df.Name, "Id") && !strings.EqualFold(df.Name, "CreatedDate") {
			cols = append(cols, df.Name)
		}
	}
	if len(missing) > 0 {
		c.log.Warn("the source org has no such Account fields; they are not copied", "fields", missing)
	}
	if c.cfg.SkipField != "" {
		if df, ok := d.Field(c.cfg.SkipField); ok {
			c.skipField, c.skipWhere = df.Name, df.Name+" = null"
			if !slices.ContainsFunc(cols, func(s string) bool { return strings.EqualFold(s, df.Name) }) {
				cols = append(cols, df.Name) // catch-ups skip creates with it set
			}
		}
	}
	if _, ok := d.Field("SystemModstamp"); ok {
		c.hasStamp = true
		if !slices.Contains(cols, "SystemModstamp") {
			cols = append(cols, "SystemModstamp")
		}
	}
	c.selectList, c.types, c.sourceOrg = strings.Join(cols, ", "), types, org
	c.mu.Lock()
	c.cp = cp
	c.mu.Unlock()
	c.cpName = name
	c.cfg.CDCMetrics.checkpoint(cp.Time)
	c.log.Info("capturing change events", "source_org", org, "topic", c.cfg.Topic,
		"checkpoint_replay_id", fmt.Sprintf("%x", cp.ID), "checkpoint_time", cp.Time)
	return nil
}
