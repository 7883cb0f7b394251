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

	"golang.org/x/time/rate"

	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/store"
)

// Defaults of PollerConfig.
const (
	DefaultInterval      = 5 * time.Second
	DefaultOverlap       = 2 * time.Minute
	DefaultPageLimit     = 2000 // LIMIT of one keyset query; Salesforce's largest query batch
	DefaultAPIBudget     = 0.5  // share of the source's daily API limit the poller may use
	DefaultRateLimit     = 5.0  // source calls per second
	DefaultProbeInterval = time.Minute
)

// ErrOverBudget is returned (wrapped) by Poller.Once when the source org's
// daily API usage is at or above PollerConfig.APIBudget: no call is made
// until a GET /limits probe (at most one per ProbeInterval) shows usage
// below the budget again.
var ErrOverBudget = errors.New("capture: source API usage is at or above the configured budget")

// PollerConfig configures a Poller. Zero values mean the documented defaults.
type PollerConfig struct {
	Client *salesforce.Client // the source org (required)
	Queue  Publisher          // required
	Store  *store.Store       // holds the checkpoint (required)

	// SourceOrg is the source's Organization ID; when empty it is learned
	// from the token's identity URL (Client.Identity).
	SourceOrg string
	// Fields is the -fields allow-list; the zero value means
	// event.DefaultFields. Only those the source's describe knows are
	// selected.
	Fields event.Fields
	// Interval is the pause between two cycles of Run (default 5s).
	Interval time.Duration
	// Overlap is how far behind the checkpoint each cycle starts reading
	// again (default 2m), for rows that long transactions commit with a
	// CreatedDate already behind it. Negative means no overlap.
	Overlap time.Duration
	// Changes is what the poller captures: ChangesCreated (the default,
	// new records by CreatedDate) or ChangesAll (creates, updates and
	// deletes by SystemModstamp and Get Deleted; changes.go).
	Changes string
	// SkipField: with ChangesCreated, records with this field set are not
	// captured (orgsync's own writes in a two-way setup), if the source has
	// the field. Empty means none is skipped. ChangesAll ignores it.
	SkipField string
	// SkipUser: with ChangesAll, rows last modified by this user
	// (LastModifiedById, the orgsync user of a two-way setup) are not
	// captured. Empty means none is skipped.
	SkipUser string
	// HashRetention is how long, with ChangesAll, the hash of a record's
	// copied values is kept after its last change (default 30 days).
	HashRetention time.Duration
	// PageLimit is the LIMIT of one keyset query, 1..2000 (default 2000).
	PageLimit int
	// APIBudget is the share of the source's daily API limit the poller may
	// use, in (0, 1] (default 0.5).
	APIBudget float64
	// RateLimit caps source calls per second (default 5; negative: no cap).
	RateLimit float64
	// Publishers is how many publishes wait for their ack at once (default 32).
	Publishers int
	// ProbeInterval is how often a poller over budget asks GET /limits
	// whether usage fell below the budget (default 1m).
	ProbeInterval time.Duration
	// Now is the clock that ends the windows of Get Deleted calls
	// (ChangesAll; default time.Now).
	Now     func() time.Time
	Metrics *Metrics
	Logger  *slog.Logger // nil discards
}

func (c *PollerConfig) defaults() error {
	if c.Client == nil || c.Queue == nil || c.Store == nil {
		return errors.New("capture: PollerConfig needs Client, Queue and Store")
	}
	if len(c.Fields.Names()) == 0 {
		f, err := event.ParseFields("")
		if err != nil {
			return err
		}
		c.Fields = f
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Changes == "" {
		c.Changes = ChangesCreated
	}
	if c.HashRetention <= 0 {
		c.HashRetention = DefaultHashRetention
	}
	switch {
	case c.Overlap == 0:
		c.Overlap = DefaultOverlap
	case c.Overlap < 0:
		c.Overlap = 0
	}
	if c.PageLimit == 0 {
		c.PageLimit = DefaultPageLimit
	}
	if c.APIBudget == 0 {
		c.APIBudget = DefaultAPIBudget
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.Publishers == 0 {
		c.Publishers = DefaultPublishers
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.Interval < 0:
		return fmt.Errorf("capture: interval %v must be positive", c.Interval)
	case c.PageLimit < 1 || c.PageLimit > 2000:
		return fmt.Errorf("capture: page limit %d must be in 1..2000", c.PageLimit)
	case c.APIBudget < 0 || c.APIBudget > 1:
		return fmt.Errorf("capture: api-budget %v must be in (0, 1]", c.APIBudget)
	case c.Publishers < 0:
		return fmt.Errorf("capture: publishers %d must be positive", c.Publishers)
	case c.SkipField != "" && !event.ValidFieldName(c.SkipField):
		return fmt.Errorf("capture: skip field %q is not a field name", clip(c.SkipField))
	case c.Changes != ChangesCreated && c.Changes != ChangesAll:
		return fmt.Errorf("capture: changes %q: want %q or %q", clip(c.Changes), ChangesCreated, ChangesAll)
	case c.SkipUser != "" && c.Changes != ChangesAll:
		return fmt.Errorf("capture: a skip user needs changes %q (with %q the skip field applies)", ChangesAll, ChangesCreated)
	}
	if c.SkipUser != "" {
		u, err := salesforce.NormalizeIDWithPrefix(c.SkipUser, salesforce.PrefixUser)
		if err != nil {
			return fmt.Errorf("capture: skip user: %w", err)
		}
		c.SkipUser = u
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

// position is a place in the (CreatedDate, Id) order, or with ChangesAll
// the (SystemModstamp, Id) order.
type position struct {
	t  time.Time
	id string // 18 characters; "" sorts before every record of t
}

func (a position) less(b position) bool {
	if c := a.t.Compare(b.t); c != 0 {
		return c < 0
	}
	return a.id < b.id
}

// Poller captures the source's new Accounts by SOQL polling. Run and Once
// may be called from one goroutine at a time; Ready, Checkpoint and Totals
// from any.
type Poller struct {
	cfg     PollerConfig
	log     *slog.Logger
	limiter *rate.Limiter
	runMu   sync.Mutex // one cycle at a time

	// set by init, guarded by runMu
	sourceOrg  string
	selectList string
	skipWhere  string
	cpName     string
	seen       map[string]time.Time // published and acked by this process, within the overlap
	all        allState             // ChangesAll only (changes.go)
	lastProbe  time.Time
	clearedAt  time.Time // a probe found usage below the budget at this time

	mu     sync.Mutex
	cp     store.Checkpoint
	ready  bool
	err    error
	totals Stats
}

// NewPoller checks cfg and returns a Poller. It makes no call.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := &Poller{cfg: cfg, log: cfg.Logger, seen: map[string]time.Time{}}
	if cfg.RateLimit > 0 {
		p.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(1, int(cfg.RateLimit)))
	}
	return p, nil
}

// SourceOrg returns the source org's ID once known ("" before the first
// cycle when it comes from the identity URL).
func (p *Poller) SourceOrg() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sourceOrg
}

// Checkpoint returns the position the poller has captured up to.
func (p *Poller) Checkpoint() store.Checkpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cp
}

// Totals returns what every cycle so far did.
func (p *Poller) Totals() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.totals
}

// Ready reports nil once a cycle has completed and the last one succeeded.
func (p *Poller) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err != nil:
		return p.err
	case !p.ready:
		return errors.New("no poll cycle has completed yet")
	}
	return nil
}

// CheckpointName is the store key of the poller's checkpoint for a source org.
func CheckpointName(sourceOrg string) string { return "poll:" + sourceOrg }

// Run polls every Interval until ctx is cancelled, then returns nil. A
// failed cycle is logged and retried at the next interval; it never moves
// the checkpoint past a record that was not acknowledged.
func (p *Poller) Run(ctx context.Context) error {
	p.log.Info("poller started", "interval", p.cfg.Interval, "overlap", p.cfg.Overlap,
		"page_limit", p.cfg.PageLimit, "api_budget", p.cfg.APIBudget, "rate_limit", p.cfg.RateLimit)
	overBudget, budgetChecked := false, false
	for {
		st, err := p.Once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			if !budgetChecked {
				budgetChecked = p.warnBudget()
			}
			if overBudget {
				p.log.Info("source API usage is below the budget again; polling resumed")
				overBudget = false
				p.cfg.Metrics.setPaused(false)
			}
		case errors.Is(err, ErrOverBudget):
			if !overBudget {
				p.log.Warn("POLLING PAUSED: the source org's API usage is at or above -api-budget; probing GET /limits until it frees",
					"err", err, "probe_every", p.cfg.ProbeInterval)
				overBudget = true
				p.cfg.Metrics.setPaused(true)
			}
		default:
			p.log.Error("poll cycle failed; the checkpoint stays at the last acknowledged record and the next cycle retries",
				"err", err, "class", salesforce.Classify(err).String(), "captured", st.Captured())
		}
		t := time.NewTimer(p.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// warnBudget warns when polling every Interval alone would use more than
// APIBudget of the source's daily API limit: each cycle makes at least one
// call, so -interval 1s costs about 86,400 calls a day. It reports whether
// the limit was known (the check is then done).
func (p *Poller) warnBudget() bool {
	u, ok := p.cfg.Client.Usage()
	if !ok || u.Max <= 0 {
		return false
	}
	perDay := int64(24 * time.Hour / p.cfg.Interval)
	allowed := int64(p.cfg.APIBudget * float64(u.Max))
	if perDay > allowed {
		p.log.Warn(fmt.Sprintf("at -interval %v the poller makes at least %d source API calls a day, more than -api-budget %g of the org's daily limit of %d calls (%d): it will pause when usage reaches the budget; raise -interval",
			p.cfg.Interval, perDay, p.cfg.APIBudget, u.Max, allowed),
			"interval", p.cfg.Interval, "calls_per_day", perDay, "api_budget", p.cfg.APIBudget, "daily_limit", u.Max)
	}
	return true
}

// Once runs one cycle: it reads from Overlap behind the checkpoint up to the
// newest record, publishes every record not yet published by this process,
// and advances the checkpoint after each acknowledged page. It returns what
// it did; after an error the records published so far stay published and
// the checkpoint covers only acknowledged pages.
func (p *Poller) Once(ctx context.Context) (Stats, error) {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	var st Stats
	err := p.cycle(ctx, &st)
	if err != nil {
		p.all.trusted = false // see allState
	}
	now := time.Now()
	p.mu.Lock()
	p.totals.add(st)
	p.err = err
	if err == nil {
		p.ready = true
	}
	cp := p.cp
	p.mu.Unlock()
	if u, ok := p.cfg.Client.Usage(); ok {
		p.cfg.Metrics.usage(u.Ratio())
	}
	if err == nil {
		p.cfg.Metrics.cycleDone(now)
	}
	// A cycle that found nothing new (the overlap re-reads records already
	// published) is DEBUG: at -interval 1s INFO would be a line a second.
	lvl := slog.LevelDebug
	if st.Published > 0 || st.Duplicates > 0 || err != nil {
		lvl = slog.LevelInfo
	}
	attrs := []any{"read", st.Read, "published", st.Published, "duplicates", st.Duplicates,
		"already_published", st.Skipped, "api_calls", st.APICalls, "checkpoint_time", cp.Time, "checkpoint_id", cp.ID}
	if u, ok := p.cfg.Client.Usage(); ok {
		attrs = append(attrs, "api_usage", u.Used, "api_max", u.Max)
	}
	p.log.Log(ctx, lvl, "poll cycle", attrs...)
	return st, err
}

func (p *Poller) cycle(ctx context.Context, st *Stats) error {
	if err := p.init(ctx, st); err != nil {
		return err
	}
	p.mu.Lock()
	cp := p.cp
	p.mu.Unlock()
	var from position
	if !cp.IsZero() {
		from.t = cp.Time.Add(-p.cfg.Overlap)
	}
	capture := p.capture
	if p.cfg.Changes == ChangesAll {
		p.all.live = map[string]time.Time{}
		capture = func(ctx context.Context, rows []salesforce.Record, st *Stats) (position, error) {
			return p.captureAll(ctx, rows, cp, st)
		}
	}
	first := true
	for {
		rows, err := p.query(ctx, p.soql(from, first), st)
		if err != nil {
			return err
		}
		last, err := capture(ctx, rows, st)
		if err != nil {
			return err
		}
		if len(rows) < p.cfg.PageLimit {
			if p.cfg.Changes == ChangesAll {
				return p.afterKeyset(ctx, cp, st)
			}
			return nil
		}
		if !from.less(last) { // cannot happen with a strict keyset; never loop
			return fmt.Errorf("capture: keyset query did not advance past %s %s", last.t.Format(time.RFC3339Nano), last.id)
		}
		from, first = last, false
	}
}

// capture publishes the rows of one keyset query and, once all are
// acknowledged, advances the checkpoint to the last one.
func (p *Poller) capture(ctx context.Context, rows []salesforce.Record, st *Stats) (position, error) {
	var (
		last position
		out  = make([]outgoing, 0, len(rows))
		pos  = make([]position, 0, len(rows))
	)
	for _, r := range rows {
		st.Read++
		rp, err := rowPosition(r, "CreatedDate")
		if err != nil {
			return last, err
		}
		last = rp
		if _, ok := p.seen[rp.id]; ok {
			st.Skipped++
			continue
		}
		o, _, err := prepare(p.sourceOrg, r, p.cfg.Fields, "")
		if err != nil {
			return last, fmt.Errorf("capture: record %s: %v", rp.id, err)
		}
		out = append(out, o)
		pos = append(pos, rp)
	}
	if err := p.publish(ctx, publishAll, out, st); err != nil {
		return last, err
	}
	for _, rp := range pos {
		p.seen[rp.id] = rp.t
	}
	if len(rows) == 0 {
		return last, nil
	}
	cp, moved, err := p.advance(last)
	if err != nil || !moved {
		return last, err
	}
	cutoff := cp.Time.Add(-p.cfg.Overlap)
	for id, t := range p.seen {
		if t.Before(cutoff) {
			delete(p.seen, id)
		}
	}
	return last, nil
}

// advance moves the checkpoint to last, once everything up to it is
// acknowledged; it never moves back (a re-read of the overlap).
func (p *Poller) advance(last position) (store.Checkpoint, bool, error) {
	p.mu.Lock()
	cur := position{t: p.cp.Time, id: p.cp.ID}
	p.mu.Unlock()
	if !cur.less(last) {
		return store.Checkpoint{}, false, nil
	}
	cp := store.Checkpoint{Time: last.t, ID: last.id}
	if err := p.cfg.Store.SetCheckpoint(p.cpName, cp); err != nil {
		return cp, false, fmt.Errorf("capture: save checkpoint: %w", err)
	}
	p.mu.Lock()
	p.cp = cp
	p.mu.Unlock()
	p.cfg.Metrics.setCheckpoint(cp.Time)
	return cp, true, nil
}

// rowPosition is a query row's place in the (field, Id) order, field being
// CreatedDate or SystemModstamp.
func rowPosition(r salesforce.Record, field string) (position, error) {
	id, _ := r["Id"].(string)
	id18, err := salesforce.NormalizeIDWithPrefix(id, salesforce.PrefixAccount)
	if err != nil {
		return position{}, fmt.Errorf("capture: query row: Id: %w", err)
	}
	cd, _ := r[field].(string)
	t, err := event.ParseTime(cd)
	if err != nil {
		return position{}, fmt.Errorf("capture: record %s: %s: %w", id18, field, err)
	}
	return position{t: t, id: id18}, nil
}

// soql is the keyset query from position from: on the first query of a
// cycle every record at or after from.t, then strictly after from. The
// keyset is on CreatedDate, or SystemModstamp with ChangesAll.
func (p *Poller) soql(from position, first bool) string {
	var where []string
	key := p.keyField()
	switch {
	case first && from.t.IsZero():
	case first:
		where = append(where, key+" >= "+soqlTime(from.t))
	default:
		ts := soqlTime(from.t)
		where = append(where, fmt.Sprintf("(%s > %s OR (%s = %s AND Id > '%s'))", key, ts, key, ts, from.id))
	}
	if p.skipWhere != "" {
		where = append(where, p.skipWhere)
	}
	q := "SELECT " + p.selectList + " FROM Account"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + fmt.Sprintf(" ORDER BY %s, Id LIMIT %d", key, p.cfg.PageLimit)
}

// soqlTime writes a SOQL dateTime literal (unquoted, UTC). Salesforce
// stores CreatedDate to the second; milliseconds are written only when set.
func soqlTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000Z")
}

// publish publishes out with publishFn (publishAll, or publishOrdered for
// the events of one record in order), adds its counts to st and the
// metrics, and counts a failure in the publish-error metric.
func (p *Poller) publish(ctx context.Context, publishFn func(context.Context, Publisher, []outgoing, int) (Stats, error), out []outgoing, st *Stats) error {
	ps, err := publishFn(ctx, p.cfg.Queue, out, p.cfg.Publishers)
	st.Published += ps.Published
	st.Duplicates += ps.Duplicates
	p.cfg.Metrics.stats(PathPoll, ps)
	if err != nil {
		p.cfg.Metrics.publishError(PathPoll)
	}
	return err
}

// query runs one SOQL query and follows its nextRecordsUrl pages, each call
// inside the budget and the rate limit.
func (p *Poller) query(ctx context.Context, soql string, st *Stats) ([]salesforce.Record, error) {
	var rows []salesforce.Record
	next := soql
	for range 1000 {
		if err := p.beforeCall(ctx, st); err != nil {
			return nil, err
		}
		page, err := p.cfg.Client.QueryPage(ctx, next)
		st.APICalls++
		if err != nil {
			return nil, fmt.Errorf("capture: query: %w", err)
		}
		rows = append(rows, page.Records...)
		if page.Done || page.NextRecordsURL == "" {
			return rows, nil
		}
		next = page.NextRecordsURL
	}
	return nil, errors.New("capture: query: more than 1000 pages for one keyset query")
}

// beforeCall waits for the rate limiter and refuses a call while the
// source's daily usage is at or above the budget.
func (p *Poller) beforeCall(ctx context.Context, st *Stats) error {
	if u, ok := p.cfg.Client.Usage(); ok && u.Max > 0 && u.Ratio() >= p.cfg.APIBudget && u.At.After(p.clearedAt) {
		p.cfg.Metrics.usage(u.Ratio())
		if time.Since(p.lastProbe) < p.cfg.ProbeInterval {
			return fmt.Errorf("%w: %d of %d daily calls used, budget %.0f%%", ErrOverBudget, u.Used, u.Max, 100*p.cfg.APIBudget)
		}
		if err := p.probe(ctx, st); err != nil {
			return err
		}
	}
	return p.wait(ctx)
}

func (p *Poller) wait(ctx context.Context) error {
	if p.limiter == nil {
		return nil
	}
	return p.limiter.Wait(ctx)
}

// probe asks GET /limits whether the daily usage is below the budget.
func (p *Poller) probe(ctx context.Context, st *Stats) error {
	p.lastProbe = time.Now()
	if err := p.wait(ctx); err != nil {
		return err
	}
	limits, err := p.cfg.Client.Limits(ctx)
	st.APICalls++
	if err != nil {
		return fmt.Errorf("capture: limits: %w", err)
	}
	d, ok := limits["DailyApiRequests"]
	if ok && d.Max > 0 {
		used := d.Max - d.Remaining
		if r := float64(used) / float64(d.Max); r >= p.cfg.APIBudget {
			p.cfg.Metrics.usage(r)
			return fmt.Errorf("%w: %d of %d daily calls used, budget %.0f%%", ErrOverBudget, used, d.Max, 100*p.cfg.APIBudget)
		}
	}
	p.clearedAt = time.Now()
	return nil
}

// errOrgMismatch: a configured -source-org-id is not the token's org.
var errOrgMismatch = errors.New("checkpoints and dedup keys would belong to another org")

// sourceOrgOf is the source org: the token's (from its identity URL), which
// a configured ID must equal, or checkpoint and dedup keys would belong to
// another org; the configured one when the token has no identity (a static
// token).
func sourceOrgOf(ctx context.Context, client *salesforce.Client, configured string) (string, error) {
	id, _, err := client.Identity(ctx)
	switch {
	case err != nil && configured == "":
		return "", fmt.Errorf("capture: learn the source org from the token's identity URL: %w", err)
	case err != nil:
		return configured, nil
	}
	known, err := salesforce.NormalizeIDWithPrefix(id, salesforce.PrefixOrganization)
	if err != nil {
		return "", fmt.Errorf("capture: identity URL: org id: %w", err)
	}
	if configured != "" && configured != known {
		return "", fmt.Errorf("capture: -source-org-id %s is not the token's org %s: %w", configured, known, errOrgMismatch)
	}
	return known, nil
}

// init learns the source org, loads the checkpoint and describes Account,
// once; a failure is retried by the next cycle.
func (p *Poller) init(ctx context.Context, st *Stats) error {
	if p.selectList != "" {
		return nil
	}
	org, err := sourceOrgOf(ctx, p.cfg.Client, p.cfg.SourceOrg)
	if err != nil {
		return err
	}
	name := CheckpointName(org)
	cp, err := p.cfg.Store.Checkpoint(name)
	if err != nil {
		return fmt.Errorf("capture: read checkpoint: %w", err)
	}
	if err := p.beforeCall(ctx, st); err != nil {
		return err
	}
	d, err := p.cfg.Client.Describe(ctx, "Account")
	st.APICalls++
	if err != nil {
		return fmt.Errorf("capture: describe Account: %w", err)
	}
	cols := []string{"Id", "CreatedDate"}
	if p.cfg.Changes == ChangesAll {
		cols = append(cols, "SystemModstamp", "LastModifiedById")
	}
	var missing []string
	for _, f := range p.cfg.Fields.Names() {
		df, ok := d.Field(f)
		if !ok {
			missing = append(missing, f)
			continue
		}
		if !slices.ContainsFunc(cols, func(c string) bool { return strings.EqualFold(c, df.Name) }) {
			cols = append(cols, df.Name)
		}
	}
	if len(missing) > 0 {
		p.log.Warn("the source org has no such Account fields; they are not copied", "fields", missing)
	}
	skipWhere := ""
	if p.cfg.SkipField != "" && p.cfg.Changes == ChangesCreated {
		if df, ok := d.Field(p.cfg.SkipField); ok {
			skipWhere = df.Name + " = null"
			p.log.Info("records with the skip field set are not captured", "skip_field", df.Name)
		} else {
			p.log.Info("the source org has no skip field; every record is captured", "skip_field", p.cfg.SkipField)
		}
	}
	if p.cfg.Changes == ChangesAll {
		if err := p.initAll(ctx, org, d); err != nil {
			return err
		}
	}
	p.cpName, p.skipWhere, p.selectList = name, skipWhere, strings.Join(cols, ", ")
	p.mu.Lock()
	p.sourceOrg, p.cp = org, cp
	p.mu.Unlock()
	p.cfg.Metrics.setCheckpoint(cp.Time)
	p.log.Info("polling the source org", "source_org", org, "changes", p.cfg.Changes,
		"checkpoint_time", cp.Time, "checkpoint_id", cp.ID, "fields", len(p.cfg.Fields.Names())-len(missing))
	return nil
}
