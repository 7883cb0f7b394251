// Package reconcile compares the source org's Accounts with the records
// orgsync wrote to the target org and reports, record by record, where they
// differ: missing (in the source, not in the target), extra (in the target,
// pointing at a source record that is deleted or never existed) and
// different (a copied field differs). With a Publisher it sends repairs
// through the normal pipeline: the same account.created event `producer
// poll` would publish, under a dedup key of its own.
//
// The engine talks to the orgs through small interfaces (Source, Target,
// IDMap, Publisher), so it can be tested without servers; Org, SourceOrg
// and TargetOrg implement them over the Salesforce REST API.
//
// Memory stays bounded by one page whatever the org's size: the source is
// read in Id order by keyset pages and each page is looked up in the target
// by external ID; extra records are found by a second pass over the target
// in external-ID order, whose pages are looked up in the source by Id.
//
// Above Config.BulkThreshold source records (bulk.go), each org is read by
// one Bulk API 2.0 query job instead, both scans are sorted by source ID
// through temporary files, and the sorted scans are merged: memory is then
// bounded by the sorter's run while reading and by one page while merging.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"orgsync/event"
	"orgsync/store"
)

// Kind is the kind of a difference.
type Kind string

// The kinds of difference.
const (
	// Missing: a source record with no target record carrying its ID.
	Missing Kind = "missing"
	// Extra: a target record whose external ID names a source record that
	// is deleted or never existed.
	Extra Kind = "extra"
	// Different: both exist and a copied field differs.
	Different Kind = "different"
	// StaleMapping: the ID map (-data-dir) maps the source record to a
	// target ID that is not the target record carrying its ID.
	StaleMapping Kind = "stale_mapping"
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{Missing, Extra, Different, StaleMapping}

// Values is a field's value on both sides, as the orgs returned them.
type Values struct {
	Source any `json:"source"`
	Target any `json:"target"`
}

// Difference is one record on which the orgs disagree.
type Difference struct {
	SourceID string `json:"source_id"`
	TargetID string `json:"target_id,omitempty"`
	Kind     Kind   `json:"kind"`
	// Fields names the copied fields that differ (kind different), with
	// both values.
	Fields map[string]Values `json:"fields,omitempty"`
	// MapTargetID is the target ID the ID map holds (kind stale_mapping;
	// TargetID is then the target record's actual ID, "" when there is none).
	MapTargetID string `json:"map_target_id,omitempty"`
	// Repair says what -repair did about it: "published", "would publish"
	// (-dry-run), "mapping corrected", "would correct mapping", or "" for
	// nothing (extra records are only reported).
	Repair string `json:"repair,omitempty"`
}

// Record is one record as the engine sees it: its ID in its own org, the
// source ID it carries (the target's external ID field; the source's own Id)
// and the compared fields. A target record's ParentId holds the parent's
// source ID when the parent carries one.
type Record struct {
	ID       string
	SourceID string
	Fields   map[string]any
}

// Source reads the source org.
type Source interface {
	// Count returns how many records Page will yield in all, for progress
	// (-1 when unknown).
	Count(ctx context.Context) (int, error)
	// Page returns up to limit records whose Id is greater than after ("":
	// from the start), in Id order, each with the compared fields.
	Page(ctx context.Context, after string, limit int) ([]Record, error)
	// Live returns which of ids (18-character source IDs) are records in
	// the source that are not deleted.
	Live(ctx context.Context, ids []string) (map[string]bool, error)
}

// Target reads the target org.
type Target interface {
	// Count returns how many target records carry an external ID (-1 when
	// unknown).
	Count(ctx context.Context) (int, error)
	// BySourceID returns the target records whose external ID is one of
	// ids, keyed by that source ID, with the compared fields.
	BySourceID(ctx context.Context, ids []string) (map[string]Record, error)
	// Page returns up to limit target records that carry an external ID
	// greater than after ("": from the start), in external-ID order, with
	// ID and SourceID only.
	Page(ctx context.Context, after string, limit int) ([]Record, error)
}

// IDMap is a worker's ID map (*store.Store implements it).
type IDMap interface {
	Lookup(sourceIDs []string) (map[string]store.Mapping, error)
	PutMappings(ms []store.Mapping) error
}

var _ IDMap = (*store.Store)(nil)

// Publisher publishes a repair event. It must wait for the queue's ack.
type Publisher interface {
	Publish(ctx context.Context, ev event.Event) error
}

// Defaults of Config.
const (
	DefaultPageSize   = 2000 // records per source (and target) page: Salesforce's largest query batch
	DefaultPublishers = 32   // repairs waiting for their ack at once
)

// Config configures a Reconciler. Zero values mean the documented defaults.
type Config struct {
	Source Source // required
	Target Target // required
	// Fields are the compared fields (required): the -fields allow-list as
	// both orgs know it. See ResolveFields.
	Fields []Field
	// SourceOrg is the source's 18-character Organization ID, the
	// source_org of repair events (required with Publisher).
	SourceOrg string
	// Publisher, when set, receives a repair event for every missing and
	// different record (-repair, or a dry-run Publisher).
	Publisher Publisher
	// DryRun marks repairs "would publish" instead of "published" (the
	// Publisher then only says what it would do) and leaves the ID map alone.
	DryRun bool
	// IDMap, when set, is checked for entries that disagree with the
	// target; with Publisher and not DryRun they are corrected.
	IDMap IDMap
	// PageSize is the number of records per page, 1..2000 (default 2000).
	PageSize int
	// Publishers is how many repairs wait for their ack at once (default 32).
	Publishers int
	// Report is called with every difference, in the order found (source
	// pass in Id order, then extras in external-ID order; on the Bulk path
	// in source ID order, extras among the others). It may be nil.
	Report func(Difference)
	// BulkThreshold switches to the Bulk path when the source has at least
	// this many records to compare and Source and Target are Scanners: each
	// side is read by one Bulk API 2.0 query job, the two scans are sorted
	// by source ID on disk (in runs of SortRun records) and merged. 0 means
	// never.
	BulkThreshold int
	// SortRun is the number of records the Bulk path's sorter holds in
	// memory (default DefaultSortRun).
	SortRun int
	// TempDir holds the Bulk path's sort runs (default os.TempDir()).
	TempDir string
	// Progress is called after every page. It may be nil.
	Progress func(Progress)
	Logger   *slog.Logger // nil discards
}

// Phase is the pass a run is in.
type Phase string

// Phases of a run.
const (
	PhaseSource Phase = "source" // reading the source, looking each page up in the target
	PhaseTarget Phase = "target" // reading the target's records, looking each page up in the source
)

// Progress is where a run is.
type Progress struct {
	Phase Phase
	Done  int // records of this phase read
	Total int // records this phase will read (-1: unknown)
	Result
}

// Result counts what a run found.
type Result struct {
	SourceRecords int // source records read
	TargetRecords int // target records read in the extras pass
	Missing       int
	Extra         int
	Different     int
	StaleMappings int
	Repairs       int  // repair events published (or, with DryRun, that would be)
	MapFixes      int  // ID map entries corrected (or that would be)
	Bulk          bool // read by Bulk API 2.0 query jobs (Config.BulkThreshold)
}

// Count returns the number of differences of kind k.
func (r Result) Count(k Kind) int {
	switch k {
	case Missing:
		return r.Missing
	case Extra:
		return r.Extra
	case Different:
		return r.Different
	case StaleMapping:
		return r.StaleMappings
	}
	return 0
}

// Clean reports whether the orgs agree: no missing, extra or different
// record and no stale ID map entry.
func (r Result) Clean() bool {
	return r.Missing == 0 && r.Extra == 0 && r.Different == 0 && r.StaleMappings == 0
}

// Summary is the line the command prints last:
// "missing N, extra N, different N".
func (r Result) Summary() string {
	return fmt.Sprintf("missing %d, extra %d, different %d", r.Missing, r.Extra, r.Different)
}

// Reconciler compares the orgs. Build one with New; Run may be called once
// at a time.
type Reconciler struct {
	cfg   Config
	allow event.Fields
	log   *slog.Logger
}

// New checks cfg and returns a Reconciler. It makes no call.
func New(cfg Config) (*Reconciler, error) {
	switch {
	case cfg.Source == nil || cfg.Target == nil:
		return nil, errors.New("reconcile: Config needs Source and Target")
	case len(cfg.Fields) == 0:
		return nil, errors.New("reconcile: no field to compare")
	case cfg.Publisher != nil && cfg.SourceOrg == "":
		return nil, errors.New("reconcile: repairs need the source org ID")
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.PageSize < 1 || cfg.PageSize > 2000 {
		return nil, fmt.Errorf("reconcile: page size %d must be in 1..2000", cfg.PageSize)
	}
	if cfg.BulkThreshold < 0 {
		return nil, fmt.Errorf("reconcile: bulk threshold %d must not be negative", cfg.BulkThreshold)
	}
	if cfg.SortRun <= 0 {
		cfg.SortRun = DefaultSortRun
	}
	if cfg.Publishers <= 0 {
		cfg.Publishers = DefaultPublishers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	names := make([]string, len(cfg.Fields))
	for i, f := range cfg.Fields {
		names[i] = f.Name
	}
	allow, err := event.ParseFields(strings.Join(names, ","))
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	return &Reconciler{cfg: cfg, allow: allow, log: cfg.Logger}, nil
}

// Run compares the orgs: the source pass (missing, different and the ID
// map) and then the extras pass. It returns what it found; after an error
// the result covers the pages done so far.
func (r *Reconciler) Run(ctx context.Context) (Result, error) {
	var res Result
	total, err := r.cfg.Source.Count(ctx)
	if err != nil {
		return res, fmt.Errorf("reconcile: count source records: %w", err)
	}
	if r.useBulk(total) {
		res.Bulk = true
		r.log.Info("reading both orgs with Bulk API 2.0 query jobs", "source_records", total, "bulk_threshold", r.cfg.BulkThreshold)
		err := r.bulkPass(ctx, total, &res)
		return res, err
	}
	if err := r.sourcePass(ctx, total, &res); err != nil {
		return res, err
	}
	if err := r.targetPass(ctx, &res); err != nil {
		return res, err
	}
	return res, nil
}

func (r *Reconciler) report(res *Result, d Difference) {
	switch d.Kind {
	case Missing:
		res.Missing++
	case Extra:
		res.Extra++
	case Different:
		res.Different++
	case StaleMapping:
		res.StaleMappings++
	}
	if r.cfg.Report != nil {
		r.cfg.Report(d)
	}
}

func (r *Reconciler) progress(p Phase, done, total int, res *Result) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(Progress{Phase: p, Done: done, Total: total, Result: *res})
	}
}

// sourcePass reads the source page by page in Id order and looks each page
// up in the target (and the ID map).
func (r *Reconciler) sourcePass(ctx context.Context, total int, res *Result) error {
	r.progress(PhaseSource, 0, total, res)
	after := ""
	for {
		page, err := r.cfg.Source.Page(ctx, after, r.cfg.PageSize)
		if err != nil {
			return fmt.Errorf("reconcile: read source after %q: %w", after, err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := r.sourcePage(ctx, page, res); err != nil {
			return err
		}
		res.SourceRecords += len(page)
		r.progress(PhaseSource, res.SourceRecords, total, res)
		last := page[len(page)-1].ID
		if last <= after && after != "" {
			return fmt.Errorf("reconcile: source page did not advance past %s", after)
		}
		after = last
		if len(page) < r.cfg.PageSize {
			return nil
		}
	}
}

// repair is one event to publish and the index of its difference.
type repair struct {
	ev   event.Event
	diff int
}

func (r *Reconciler) sourcePage(ctx context.Context, page []Record, res *Result) error {
	ids := make([]string, len(page))
	for i, rec := range page {
		ids[i] = rec.ID
	}
	found, err := r.cfg.Target.BySourceID(ctx, ids)
	if err != nil {
		return fmt.Errorf("reconcile: look up %d source IDs in the target: %w", len(ids), err)
	}
	return r.comparePage(ctx, page, ids, found, res)
}

// comparePage reports the differences of a page of source records (ids
// are their IDs) with found, their target records by source ID.
func (r *Reconciler) comparePage(ctx context.Context, page []Record, ids []string, found map[string]Record, res *Result) (err error) {
	var mapped map[string]store.Mapping
	if r.cfg.IDMap != nil {
		if mapped, err = r.cfg.IDMap.Lookup(ids); err != nil {
			return fmt.Errorf("reconcile: read the ID map: %w", err)
		}
	}
	diffs := make([]Difference, 0, 8)
	var repairs []repair
	var fixes []store.Mapping
	for _, src := range page {
		t, ok := found[src.ID]
		differs := false
		switch {
		case !ok:
			diffs = append(diffs, Difference{SourceID: src.ID, Kind: Missing})
			differs = true
		default:
			if fields := Compare(r.cfg.Fields, src.Fields, t.Fields); len(fields) > 0 {
				diffs = append(diffs, Difference{SourceID: src.ID, TargetID: t.ID, Kind: Different, Fields: fields})
				differs = true
			}
		}
		if differs && r.cfg.Publisher != nil {
			ev, err := r.repairEvent(src)
			if err != nil {
				return err
			}
			repairs = append(repairs, repair{ev: ev, diff: len(diffs) - 1})
		}
		if m, has := mapped[src.ID]; has && (!ok || m.TargetID != t.ID) {
			sd := Difference{SourceID: src.ID, TargetID: t.ID, Kind: StaleMapping, MapTargetID: m.TargetID}
			if ok && r.cfg.Publisher != nil {
				fixes = append(fixes, store.Mapping{SourceID: src.ID, TargetID: t.ID})
				sd.Repair = "mapping corrected"
				if r.cfg.DryRun {
					sd.Repair = "would correct mapping"
				}
			}
			diffs = append(diffs, sd)
		}
	}
	if err := r.publish(ctx, repairs, diffs, res); err != nil {
		return err
	}
	if len(fixes) > 0 {
		res.MapFixes += len(fixes)
		if !r.cfg.DryRun {
			if err := r.cfg.IDMap.PutMappings(fixes); err != nil {
				return fmt.Errorf("reconcile: correct the ID map: %w", err)
			}
		}
	}
	for _, d := range diffs {
		r.report(res, d)
	}
	return nil
}

// repairEvent is the event `producer poll` would publish for src.
func (r *Reconciler) repairEvent(src Record) (event.Event, error) {
	rec := make(map[string]any, len(src.Fields)+1)
	for k, v := range src.Fields {
		rec[k] = v
	}
	rec["Id"] = src.ID
	ev, err := event.NewAccountCreated(r.cfg.SourceOrg, rec, r.allow)
	if err != nil {
		return event.Event{}, fmt.Errorf("reconcile: repair event of %s: %w", src.ID, err)
	}
	return ev, nil
}

// publish sends the page's repairs, at most Publishers at once, and marks
// their differences.
func (r *Reconciler) publish(ctx context.Context, repairs []repair, diffs []Difference, res *Result) error {
	if len(repairs) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Publishers)
	var mu sync.Mutex
	for _, rp := range repairs {
		g.Go(func() error {
			if err := r.cfg.Publisher.Publish(gctx, rp.ev); err != nil {
				return fmt.Errorf("reconcile: publish the repair of %s: %w", rp.ev.SourceID, err)
			}
			mu.Lock()
			res.Repairs++
			mu.Unlock()
			if r.cfg.DryRun {
				diffs[rp.diff].Repair = "would publish"
			} else {
				diffs[rp.diff].Repair = "published"
			}
			return nil
		})
	}
	return g.Wait()
}

// targetPass reads the target's records that carry an external ID, in
// external-ID order, and reports those whose source record is not live.
func (r *Reconciler) targetPass(ctx context.Context, res *Result) error {
	total, err := r.cfg.Target.Count(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: count target records: %w", err)
	}
	r.progress(PhaseTarget, 0, total, res)
	after := ""
	for {
		page, err := r.cfg.Target.Page(ctx, after, r.cfg.PageSize)
		if err != nil {
			return fmt.Errorf("reconcile: read target after %q: %w", after, err)
		}
		if len(page) == 0 {
			return nil
		}
		ids := make([]string, 0, len(page))
		for _, t := range page {
			if t.SourceID != "" {
				ids = append(ids, t.SourceID)
			}
		}
		live, err := r.cfg.Source.Live(ctx, ids)
		if err != nil {
			return fmt.Errorf("reconcile: look up %d target records in the source: %w", len(ids), err)
		}
		for _, t := range page {
			if !live[t.SourceID] {
				r.report(res, Difference{SourceID: t.SourceID, TargetID: t.ID, Kind: Extra})
			}
		}
		res.TargetRecords += len(page)
		r.progress(PhaseTarget, res.TargetRecords, total, res)
		if len(page) < r.cfg.PageSize {
			return nil
		}
		after = page[len(page)-1].SourceID
	}
}

// SortedFieldNames returns the names of d's differing fields in order.
func (d Difference) SortedFieldNames() []string {
	names := make([]string, 0, len(d.Fields))
	for n := range d.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
