package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"

	"orgsync/salesforce"
)

// Defaults of OrgConfig.
const (
	DefaultAPIBudget     = 0.5 // share of each org's daily API limit a run may use
	DefaultRateLimit     = 5.0 // calls per second to each org
	DefaultProbeInterval = time.Minute
	DefaultCallRetry     = 30 * time.Second

	// MaxIDsPerQuery is the most IDs one "IN (…)" query carries. A quoted
	// 18-character ID and its separator take 28 characters once
	// URL-encoded, so 400 of them keep the query's URL near 11 KB, well
	// under the 16 KB Salesforce accepts for a request line (and the SOQL
	// text far under its 100,000-character limit).
	MaxIDsPerQuery = 400
)

// ErrFieldMissing is returned when an org lacks a field the run needs (the
// target's external ID field).
var ErrFieldMissing = errors.New("reconcile: field missing")

// OrgConfig configures an Org. Zero values mean the documented defaults.
type OrgConfig struct {
	Client *salesforce.Client // required
	// Name is "source" or "target", for logs.
	Name string
	// APIBudget is the share of the org's daily API limit, in (0, 1], at or
	// above which the run pauses (default 0.5): it probes GET /limits every
	// ProbeInterval and goes on once usage is below again.
	APIBudget float64
	// RateLimit caps calls per second (default 5; negative: no cap).
	RateLimit float64
	// ProbeInterval is the pause between two GET /limits probes while over
	// the budget (default 1m).
	ProbeInterval time.Duration
	// CallRetry bounds the retries of a call that failed transiently
	// (default 30s).
	CallRetry time.Duration
	// BulkPoll is the first pause between two polls of a Bulk query job
	// (default 500ms); it doubles up to MaxBulkPoll.
	BulkPoll time.Duration
	// OnPause, when set, is called with true when the run pauses for the
	// budget and with false when it goes on.
	OnPause func(paused bool)
	Logger  *slog.Logger // nil discards
}

// Org is one org's REST API as a run uses it: every call waits for the rate
// limiter, pauses while the org's daily usage is at or above the budget,
// retries transient failures, and is counted.
type Org struct {
	cfg     OrgConfig
	log     *slog.Logger
	limiter *rate.Limiter
	calls   atomic.Int64

	mu        sync.Mutex // one budget check at a time
	clearedAt time.Time  // a probe found usage below the budget at this time
}

// NewOrg checks cfg and returns an Org. It makes no call.
func NewOrg(cfg OrgConfig) (*Org, error) {
	if cfg.Client == nil {
		return nil, errors.New("reconcile: OrgConfig needs a Client")
	}
	if cfg.APIBudget == 0 {
		cfg.APIBudget = DefaultAPIBudget
	}
	if cfg.APIBudget <= 0 || cfg.APIBudget > 1 || cfg.APIBudget != cfg.APIBudget {
		return nil, fmt.Errorf("reconcile: api-budget %v must be in (0, 1]", cfg.APIBudget)
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.BulkPoll <= 0 {
		cfg.BulkPoll = DefaultBulkPoll
	}
	if cfg.CallRetry <= 0 {
		cfg.CallRetry = DefaultCallRetry
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	o := &Org{cfg: cfg, log: cfg.Logger.With("org", cfg.Name)}
	if cfg.RateLimit > 0 {
		o.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), max(1, int(cfg.RateLimit)))
	}
	return o, nil
}

// Calls returns the API calls this Org made (probes included).
func (o *Org) Calls() int64 { return o.calls.Load() }

// Client returns the org's client.
func (o *Org) Client() *salesforce.Client { return o.cfg.Client }

// gate waits until a call may be made: below the budget, and allowed by
// the rate limiter.
func (o *Org) gate(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	paused := false
	for {
		u, ok := o.cfg.Client.Usage()
		if !ok || u.Max <= 0 || u.Ratio() < o.cfg.APIBudget || !u.At.After(o.clearedAt) {
			break
		}
		if !paused {
			paused = true
			o.log.Warn("RECONCILE PAUSED: the org's API usage is at or above -api-budget; probing GET /limits until it frees",
				"used", u.Used, "max", u.Max, "budget", o.cfg.APIBudget, "probe_every", o.cfg.ProbeInterval)
			if o.cfg.OnPause != nil {
				o.cfg.OnPause(true)
			}
		}
		t := time.NewTimer(o.cfg.ProbeInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if err := o.wait(ctx); err != nil {
			return err
		}
		limits, err := o.cfg.Client.Limits(ctx)
		o.calls.Add(1)
		if err != nil {
			if salesforce.Classify(err) == salesforce.Transient || salesforce.Classify(err) == salesforce.Budget {
				o.log.Info("limits probe failed; probing again", "err", err)
				continue
			}
			return fmt.Errorf("limits: %w", err)
		}
		if d, ok := limits["DailyApiRequests"]; ok && d.Max > 0 {
			if float64(d.Max-d.Remaining)/float64(d.Max) >= o.cfg.APIBudget {
				continue
			}
		}
		o.clearedAt = time.Now()
	}
	if paused {
		o.log.Info("the org's API usage is below the budget again; reconcile goes on")
		if o.cfg.OnPause != nil {
			o.cfg.OnPause(false)
		}
	}
	return o.wait(ctx)
}

func (o *Org) wait(ctx context.Context) error {
	if o.limiter == nil {
		return nil
	}
	return o.limiter.Wait(ctx)
}

// do makes one call through the gate, retrying transient failures.
func (o *Org) do(ctx context.Context, call func(context.Context) error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = o.cfg.CallRetry
	op := func() error {
		if err := o.gate(ctx); err != nil {
			return backoff.Permanent(err)
		}
		err := call(ctx)
		o.calls.Add(1)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || salesforce.Classify(err) != salesforce.Transient {
			return backoff.Permanent(err)
		}
		o.log.Info("call failed; retrying", "err", err)
		return err
	}
	return backoff.Retry(op, backoff.WithContext(b, ctx))
}

// Describe returns the Account describe.
func (o *Org) Describe(ctx context.Context) (*salesforce.Describe, error) {
	var d *salesforce.Describe
	err := o.do(ctx, func(ctx context.Context) error {
		var err error
		d, err = o.cfg.Client.Describe(ctx, "Account")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: describe Account: %w", o.cfg.Name, err)
	}
	return d, nil
}

// query runs a SOQL query and returns every record, following
// nextRecordsUrl; callers bound the result with LIMIT or an IN list.
func (o *Org) query(ctx context.Context, soql string) ([]salesforce.Record, error) {
	var rows []salesforce.Record
	next := soql
	for range 1000 {
		var page *salesforce.QueryResult
		err := o.do(ctx, func(ctx context.Context) error {
			var err error
			page, err = o.cfg.Client.QueryPage(ctx, next)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: query: %w", o.cfg.Name, err)
		}
		rows = append(rows, page.Records...)
		if page.Done || page.NextRecordsURL == "" {
			return rows, nil
		}
		next = page.NextRecordsURL
	}
	return nil, fmt.Errorf("%s: query: more than 1000 pages", o.cfg.Name)
}

// count runs a SELECT COUNT() query.
func (o *Org) count(ctx context.Context, soql string) (int, error) {
	var n int
	err := o.do(ctx, func(ctx context.Context) error {
		var err error
		n, err = o.cfg.Client.Count(ctx, soql)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("%s: count: %w", o.cfg.Name, err)
	}
	return n, nil
}

// chunks splits ids into slices of at most MaxIDsPerQuery.
func chunks(ids []string) [][]string {
	var out [][]string
	for len(ids) > 0 {
		n := min(len(ids), MaxIDsPerQuery)
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	return out
}

// SourceOrg is the source org as a Source.
type SourceOrg struct {
	Org    *Org
	Fields []Field
	// Where narrows the records compared (-where): a SOQL condition.
	Where string
}

var _ Source = (*SourceOrg)(nil)

// selectList is Id, CreatedDate (the repair event's created_at, as poll
// sends it) and the compared fields.
func (s *SourceOrg) selectList() string {
	cols := []string{"Id", "CreatedDate"}
	for _, f := range s.Fields {
		cols = append(cols, f.Name)
	}
	return strings.Join(cols, ", ")
}

// Count counts the records the run compares.
func (s *SourceOrg) Count(ctx context.Context) (int, error) {
	q := "SELECT COUNT() FROM Account"
	if s.Where != "" {
		q += " WHERE (" + s.Where + ")"
	}
	return s.Org.count(ctx, q)
}

// Page reads one keyset page in Id order.
func (s *SourceOrg) Page(ctx context.Context, after string, limit int) ([]Record, error) {
	var where []string
	if s.Where != "" {
		where = append(where, "("+s.Where+")")
	}
	if after != "" {
		where = append(where, "Id > "+salesforce.SOQLString(after))
	}
	q := "SELECT " + s.selectList() + " FROM Account"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY Id LIMIT %d", limit)
	rows, err := s.Org.query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(rows))
	for _, r := range rows {
		raw, _ := r["Id"].(string)
		id, err := salesforce.NormalizeIDWithPrefix(raw, salesforce.PrefixAccount)
		if err != nil {
			return nil, fmt.Errorf("source: query row: Id: %w", err)
		}
		delete(r, "Id")
		out = append(out, Record{ID: id, SourceID: id, Fields: r})
	}
	return out, nil
}

// Live looks ids up by Id (deleted records are not returned by query).
// IDs that are not Account IDs are never live.
func (s *SourceOrg) Live(ctx context.Context, ids []string) (map[string]bool, error) {
	live := make(map[string]bool, len(ids))
	byNorm := make(map[string][]string, len(ids))
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		n, err := salesforce.NormalizeIDWithPrefix(id, salesforce.PrefixAccount)
		if err != nil {
			continue
		}
		if _, seen := byNorm[n]; !seen {
			valid = append(valid, n)
		}
		byNorm[n] = append(byNorm[n], id)
	}
	for _, c := range chunks(valid) {
		rows, err := s.Org.query(ctx, "SELECT Id FROM Account WHERE Id IN "+salesforce.SOQLList(c))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			raw, _ := r["Id"].(string)
			n, err := salesforce.NormalizeID(raw)
			if err != nil {
				continue
			}
			for _, id := range byNorm[n] {
				live[id] = true
			}
		}
	}
	return live, nil
}

// TargetOrg is the target org as a Target.
type TargetOrg struct {
	Org             *Org
	Fields          []Field
	ExternalIDField string
}

var _ Target = (*TargetOrg)(nil)

// Check makes sure the target has the external ID field; d is its describe.
func (t *TargetOrg) Check(d *salesforce.Describe) error {
	f, ok := d.Field(t.ExternalIDField)
	if !ok {
		return fmt.Errorf("%w: the target's Account has no field %s (-external-id-field)", ErrFieldMissing, t.ExternalIDField)
	}
	t.ExternalIDField = f.Name
	return nil
}

// Count counts the target records that carry an external ID.
func (t *TargetOrg) Count(ctx context.Context) (int, error) {
	return t.Org.count(ctx, "SELECT COUNT() FROM Account WHERE "+t.ExternalIDField+" != null")
}

// BySourceID looks ids up by external ID, in queries of at most
// MaxIDsPerQuery IDs. A record's ParentId is replaced by the parent's
// external ID when the parent has one (one more query for parents outside
// the page).
func (t *TargetOrg) BySourceID(ctx context.Context, ids []string) (map[string]Record, error) {
	cols := []string{"Id", t.ExternalIDField}
	parent := ""
	for _, f := range t.Fields {
		if !strings.EqualFold(f.Name, t.ExternalIDField) {
			cols = append(cols, f.Name)
		}
		if strings.EqualFold(f.Name, "ParentId") {
			parent = f.Name
		}
	}
	sel := "SELECT " + strings.Join(cols, ", ") + " FROM Account WHERE " + t.ExternalIDField + " IN "
	out := make(map[string]Record, len(ids))
	sourceOf := make(map[string]string, len(ids)) // target ID → source ID, for parents
	for _, c := range chunks(ids) {
		rows, err := t.Org.query(ctx, sel+salesforce.SOQLList(c))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			tid, _ := r["Id"].(string)
			ext, _ := r[t.ExternalIDField].(string)
			sid, err := salesforce.NormalizeID(ext)
			if err != nil {
				continue
			}
			if n, err := salesforce.NormalizeID(tid); err == nil {
				tid = n
			}
			delete(r, "Id")
			delete(r, t.ExternalIDField)
			if _, dup := out[sid]; !dup {
				out[sid] = Record{ID: tid, SourceID: sid, Fields: r}
			}
			sourceOf[tid] = sid
		}
	}
	if parent == "" {
		return out, nil
	}
	if err := t.translateParents(ctx, out, parent, sourceOf); err != nil {
		return nil, err
	}
	return out, nil
}

// translateParents replaces each record's target ParentId by the parent's
// source ID where the parent carries one.
func (t *TargetOrg) translateParents(ctx context.Context, recs map[string]Record, field string, sourceOf map[string]string) error {
	var unknown []string
	seen := map[string]bool{}
	for _, r := range recs {
		p, _ := r.Fields[field].(string)
		n, err := salesforce.NormalizeID(p)
		if err != nil {
			continue
		}
		if _, ok := sourceOf[n]; !ok && !seen[n] {
			seen[n] = true
			unknown = append(unknown, n)
		}
	}
	for _, c := range chunks(unknown) {
		rows, err := t.Org.query(ctx, "SELECT Id, "+t.ExternalIDField+" FROM Account WHERE Id IN "+salesforce.SOQLList(c))
		if err != nil {
			return err
		}
		for _, r := range rows {
			tid, _ := r["Id"].(string)
			ext, _ := r[t.ExternalIDField].(string)
			n, err1 := salesforce.NormalizeID(tid)
			sid, err2 := salesforce.NormalizeID(ext)
			if err1 == nil && err2 == nil {
				sourceOf[n] = sid
			}
		}
	}
	for _, r := range recs {
		p, _ := r.Fields[field].(string)
		if n, err := salesforce.NormalizeID(p); err == nil {
			if sid, ok := sourceOf[n]; ok {
				r.Fields[field] = sid
			}
		}
	}
	return nil
}

// Page reads one keyset page of the records that carry an external ID, in
// external-ID order. SourceID is the field's value as stored.
func (t *TargetOrg) Page(ctx context.Context, after string, limit int) ([]Record, error) {
	q := "SELECT Id, " + t.ExternalIDField + " FROM Account WHERE " + t.ExternalIDField + " != null"
	if after != "" {
		q += " AND " + t.ExternalIDField + " > " + salesforce.SOQLString(after)
	}
	q += fmt.Sprintf(" ORDER BY %s LIMIT %d", t.ExternalIDField, limit)
	rows, err := t.Org.query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(rows))
	for _, r := range rows {
		tid, _ := r["Id"].(string)
		ext, _ := r[t.ExternalIDField].(string)
		out = append(out, Record{ID: tid, SourceID: ext})
	}
	return out, nil
}
