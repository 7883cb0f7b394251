package reconcile

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"orgsync/salesforce"
)

// Defaults of the Bulk path.
const (
	// DefaultBulkThreshold is -bulk-threshold's default: the source size
	// from which the Bulk path costs fewer calls and less time than REST
	// paging (docs/reconcile.md has the measurement).
	DefaultBulkThreshold = 20000
	// BulkResultRecords is the maxRecords of each set of a query job's
	// results read at once: with the run of the sorter, what bounds the
	// memory of the Bulk path.
	BulkResultRecords = 20000
	// DefaultSortRun is the records the sorter holds in memory before it
	// writes a sorted run to a temporary file.
	DefaultSortRun = 20000
	// DefaultBulkPoll is the first pause between two polls of a query job;
	// it doubles up to MaxBulkPoll.
	DefaultBulkPoll = 500 * time.Millisecond
	// MaxBulkPoll is the longest pause between two polls of a query job.
	MaxBulkPoll = 10 * time.Second
)

// Scanner reads every record of one side in one pass, in no particular
// order (a Bulk API 2.0 query job). A Source and a Target that are both
// Scanners can be compared by the Bulk path (Config.BulkThreshold).
type Scanner interface {
	Scan(ctx context.Context, fn func(Record) error) error
}

// Preparer readies a batch of scanned target records for comparison, as
// Target.BySourceID would have returned them (TargetOrg translates
// ParentId into the parent's source ID).
type Preparer interface {
	Prepare(ctx context.Context, recs map[string]Record) error
}

// PhaseCompare is the Bulk path's merge of the two sorted scans.
const PhaseCompare Phase = "compare"

// bulkQuery runs soql as a query job through the gate and calls fn with
// every row. Every request (create, each poll, each set of results, the
// delete) is one call, counted and rate limited like the others. The job
// is aborted or deleted however the run ends.
func (o *Org) bulkQuery(ctx context.Context, soql string, fn func(map[string]string) error) error {
	c := o.cfg.Client
	var job *salesforce.BulkJob
	if err := o.do(ctx, func(ctx context.Context) error {
		var err error
		job, err = c.CreateQueryJob(ctx, salesforce.BulkQuery, soql)
		return err
	}); err != nil {
		return fmt.Errorf("%s: create a bulk query job: %w", o.cfg.Name, err)
	}
	id := job.ID
	finished := false // JobComplete, Failed or Aborted: delete it; otherwise abort it
	defer func() {
		// Clean up even when ctx has ended; a failure here only leaves a
		// job Salesforce deletes after 7 days.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var cerr error
		if finished {
			cerr = c.DeleteQueryJob(cctx, id)
		} else {
			_, cerr = c.AbortQueryJob(cctx, id)
		}
		o.calls.Add(1)
		if cerr != nil {
			o.log.Info("bulk query job not cleaned up", "job", id, "err", cerr)
		}
	}()
	pause := o.cfg.BulkPoll
	for !job.Done() {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(pause*2, MaxBulkPoll)
		if err := o.do(ctx, func(ctx context.Context) error {
			var err error
			job, err = c.QueryJob(ctx, id)
			return err
		}); err != nil {
			return fmt.Errorf("%s: bulk query job %s: %w", o.cfg.Name, id, err)
		}
	}
	finished = true
	if job.State != salesforce.JobStateJobComplete {
		return fmt.Errorf("%s: bulk query job %s ended %s: %s", o.cfg.Name, id, job.State, job.ErrorMessage)
	}
	locator := ""
	for {
		var set *salesforce.QueryResults
		if err := o.do(ctx, func(ctx context.Context) error {
			var err error
			set, err = c.QueryJobResults(ctx, id, locator, BulkResultRecords)
			return err
		}); err != nil {
			return fmt.Errorf("%s: bulk query job %s results: %w", o.cfg.Name, id, err)
		}
		for _, row := range set.Rows {
			rec := make(map[string]string, len(set.Header))
			for i, h := range set.Header {
				rec[h] = row[i]
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if set.Locator == "" {
			return nil
		}
		locator = set.Locator
	}
}

// typed converts a Bulk CSV value to what the REST API would have returned
// for a field of kind k: "" is null, numbers json.Number, booleans bool.
func typed(k FieldKind, v string) any {
	if v == "" {
		return nil
	}
	switch k {
	case KindNumber:
		return json.Number(v)
	case KindBool:
		return strings.EqualFold(v, "true")
	}
	return v
}

// csvField finds a column without regard to case.
func csvField(row map[string]string, name string) string {
	if v, ok := row[name]; ok {
		return v
	}
	for k, v := range row {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Scan reads every source record (Id, CreatedDate and the compared
// fields) with one Bulk API 2.0 query job.
func (s *SourceOrg) Scan(ctx context.Context, fn func(Record) error) error {
	q := "SELECT " + s.selectList() + " FROM Account"
	if s.Where != "" {
		q += " WHERE (" + s.Where + ")"
	}
	return s.Org.bulkQuery(ctx, q, func(row map[string]string) error {
		id, err := salesforce.NormalizeIDWithPrefix(csvField(row, "Id"), salesforce.PrefixAccount)
		if err != nil {
			return fmt.Errorf("source: bulk query row: Id: %w", err)
		}
		f := make(map[string]any, len(s.Fields)+1)
		f["CreatedDate"] = typed(KindDateTime, csvField(row, "CreatedDate"))
		for _, fd := range s.Fields {
			f[fd.Name] = typed(fd.Kind, csvField(row, fd.Name))
		}
		return fn(Record{ID: id, SourceID: id, Fields: f})
	})
}

// Scan reads every target record that carries an external ID (Id, the
// external ID and the compared fields) with one Bulk API 2.0 query job.
// SourceID is the external ID normalised to 18 characters when it is an
// ID; ParentId is the target's (see Prepare).
func (t *TargetOrg) Scan(ctx context.Context, fn func(Record) error) error {
	cols := []string{"Id", t.ExternalIDField}
	for _, f := range t.Fields {
		if !strings.EqualFold(f.Name, t.ExternalIDField) {
			cols = append(cols, f.Name)
		}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM Account WHERE " + t.ExternalIDField + " != null"
	return t.Org.bulkQuery(ctx, q, func(row map[string]string) error {
		tid := csvField(row, "Id")
		if n, err := salesforce.NormalizeID(tid); err == nil {
			tid = n
		}
		sid := csvField(row, t.ExternalIDField)
		if n, err := salesforce.NormalizeID(sid); err == nil {
			sid = n
		}
		f := make(map[string]any, len(t.Fields))
		for _, fd := range t.Fields {
			if !strings.EqualFold(fd.Name, t.ExternalIDField) {
				f[fd.Name] = typed(fd.Kind, csvField(row, fd.Name))
			}
		}
		return fn(Record{ID: tid, SourceID: sid, Fields: f})
	})
}

// Prepare replaces each record's ParentId by the parent's source ID, as
// BySourceID does.
func (t *TargetOrg) Prepare(ctx context.Context, recs map[string]Record) error {
	parent := ""
	for _, f := range t.Fields {
		if strings.EqualFold(f.Name, "ParentId") {
			parent = f.Name
		}
	}
	if parent == "" || len(recs) == 0 {
		return nil
	}
	sourceOf := make(map[string]string, len(recs))
	for sid, r := range recs {
		sourceOf[r.ID] = sid
	}
	return t.translateParents(ctx, recs, parent, sourceOf)
}

var (
	_ Scanner  = (*SourceOrg)(nil)
	_ Scanner  = (*TargetOrg)(nil)
	_ Preparer = (*TargetOrg)(nil)
)

// sorted is one record of a scan on its way through the sorter.
type sorted struct {
	Key string         `json:"k"`
	ID  string         `json:"i"`
	SID string         `json:"s"`
	F   map[string]any `json:"f"`
}

func (s sorted) record() Record { return Record{ID: s.ID, SourceID: s.SID, Fields: s.F} }

// sorter is an external merge sort: it holds up to run records, writes
// each full run sorted to a temporary file, and merges the runs.
type sorter struct {
	dir   string
	run   int
	buf   []sorted
	files []*os.File
}

func (s *sorter) add(key string, r Record) error {
	s.buf = append(s.buf, sorted{Key: key, ID: r.ID, SID: r.SourceID, F: r.Fields})
	if len(s.buf) >= s.run {
		return s.spill()
	}
	return nil
}

func sortRun(b []sorted) {
	slices.SortStableFunc(b, func(x, y sorted) int { return strings.Compare(x.Key, y.Key) })
}

func (s *sorter) spill() error {
	sortRun(s.buf)
	f, err := os.CreateTemp(s.dir, "orgsync-reconcile-*.jsonl")
	if err != nil {
		return fmt.Errorf("reconcile: sort run: %w", err)
	}
	s.files = append(s.files, f)
	_ = os.Remove(f.Name()) // unlinked: gone with the process whatever happens
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range s.buf {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("reconcile: sort run: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("reconcile: sort run: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reconcile: sort run: %w", err)
	}
	clear(s.buf)
	s.buf = s.buf[:0]
	return nil
}

func (s *sorter) close() {
	for _, f := range s.files {
		_ = f.Close()
	}
	s.files = nil
	s.buf = nil
}

// stream is one sorted sequence: a run file or the records in memory.
type stream struct {
	head sorted
	dec  *json.Decoder
	mem  []sorted
}

func (st *stream) next() (bool, error) {
	if st.dec == nil {
		if len(st.mem) == 0 {
			return false, nil
		}
		st.head, st.mem = st.mem[0], st.mem[1:]
		return true, nil
	}
	var r sorted
	if err := st.dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, fmt.Errorf("reconcile: read a sort run: %w", err)
	}
	st.head = r
	return true, nil
}

type streamHeap []*stream

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return h[i].head.Key < h[j].head.Key }
func (h streamHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)        { *h = append(*h, x.(*stream)) }
func (h *streamHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merged is the sorter's records in key order.
type merged struct {
	h streamHeap
}

// merge ends the sorter's input and returns its records in key order.
func (s *sorter) merge() (*merged, error) {
	if len(s.files) > 0 && len(s.buf) > 0 {
		// Spill the last run too: merging then holds one record and a read
		// buffer per run, not a run.
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	if len(s.files) > 0 {
		s.buf = nil
	}
	var streams []*stream
	for _, f := range s.files {
		dec := json.NewDecoder(bufio.NewReader(f))
		dec.UseNumber()
		streams = append(streams, &stream{dec: dec})
	}
	if len(s.buf) > 0 {
		sortRun(s.buf)
		streams = append(streams, &stream{mem: s.buf})
	}
	m := &merged{}
	for _, st := range streams {
		ok, err := st.next()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, st)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// peek returns the smallest record left; ok is false at the end.
func (m *merged) peek() (sorted, bool) {
	if len(m.h) == 0 {
		return sorted{}, false
	}
	return m.h[0].head, true
}

// pop drops the smallest record.
func (m *merged) pop() error {
	ok, err := m.h[0].next()
	if err != nil {
		return err
	}
	if ok {
		heap.Fix(&m.h, 0)
	} else {
		heap.Pop(&m.h)
	}
	return nil
}

// useBulk reports whether a run over total source records takes the Bulk
// path.
func (r *Reconciler) useBulk(total int) bool {
	if r.cfg.BulkThreshold <= 0 || total < r.cfg.BulkThreshold {
		return false
	}
	_, srcOK := r.cfg.Source.(Scanner)
	_, tgtOK := r.cfg.Target.(Scanner)
	return srcOK && tgtOK
}

// bulkPass is the Bulk path: it scans both orgs at once with one query job
// each, sorts both scans by source ID through temporary files, and merges
// them. A source record with no target record is missing; one with a
// target record is compared as in the source pass; a target record with no
// source record in the scan is looked up in the source (Live, as in the
// extras pass: it may lie outside -where) and reported extra when it is not
// live. Differences come in source-ID order, extras among the others.
func (r *Reconciler) bulkPass(ctx context.Context, total int, res *Result) error {
	srcSort := &sorter{dir: r.cfg.TempDir, run: r.cfg.SortRun}
	tgtSort := &sorter{dir: r.cfg.TempDir, run: r.cfg.SortRun}
	defer srcSort.close()
	defer tgtSort.close()

	var mu sync.Mutex // Progress may not be safe for concurrent use
	var scannedSrc, scannedTgt int
	tick := func(p Phase, n *int, t int) {
		mu.Lock()
		defer mu.Unlock()
		*n++
		if *n%r.cfg.SortRun == 0 {
			r.progress(p, *n, t, res)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := r.cfg.Source.(Scanner).Scan(gctx, func(rec Record) error {
			tick(PhaseSource, &scannedSrc, total)
			return srcSort.add(rec.ID, rec)
		})
		if err != nil {
			return fmt.Errorf("reconcile: scan the source: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		err := r.cfg.Target.(Scanner).Scan(gctx, func(rec Record) error {
			tick(PhaseTarget, &scannedTgt, -1)
			return tgtSort.add(rec.SourceID, rec)
		})
		if err != nil {
			return fmt.Errorf("reconcile: scan the target: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	res.TargetRecords = scannedTgt
	src, err := srcSort.merge()
	if err != nil {
		return err
	}
	tgt, err := tgtSort.merge()
	if err != nil {
		return err
	}

	page := make([]Record, 0, r.cfg.PageSize)
	found := make(map[string]Record, r.cfg.PageSize)
	var orphans []Record
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		if p, ok := r.cfg.Target.(Preparer); ok {
			if err := p.Prepare(ctx, found); err != nil {
				return fmt.Errorf("reconcile: prepare %d target records: %w", len(found), err)
			}
		}
		ids := make([]string, len(page))
		for i, rec := range page {
			ids[i] = rec.ID
		}
		if err := r.comparePage(ctx, page, ids, found, res); err != nil {
			return err
		}
		res.SourceRecords += len(page)
		r.progress(PhaseCompare, res.SourceRecords, total, res)
		page = page[:0]
		clear(found)
		return nil
	}
	flushOrphans := func() error {
		if len(orphans) == 0 {
			return nil
		}
		ids := make([]string, len(orphans))
		for i, t := range orphans {
			ids[i] = t.SourceID
		}
		live, err := r.cfg.Source.Live(ctx, ids)
		if err != nil {
			return fmt.Errorf("reconcile: look up %d target records in the source: %w", len(ids), err)
		}
		for _, t := range orphans {
			if !live[t.SourceID] {
				r.report(res, Difference{SourceID: t.SourceID, TargetID: t.ID, Kind: Extra})
			}
		}
		orphans = orphans[:0]
		return nil
	}
	for {
		s, sok := src.peek()
		t, tok := tgt.peek()
		switch {
		case !sok && !tok:
			if err := flush(); err != nil {
				return err
			}
			return flushOrphans()
		case sok && (!tok || s.Key < t.Key):
			page = append(page, s.record())
			if err := src.pop(); err != nil {
				return err
			}
		case sok && s.Key == t.Key:
			page = append(page, s.record())
			found[s.Key] = t.record()
			if err := src.pop(); err != nil {
				return err
			}
			// Further target records with the same source ID are not
			// reported, as in the source pass (the first one counts).
			for {
				if err := tgt.pop(); err != nil {
					return err
				}
				if n, ok := tgt.peek(); !ok || n.Key != s.Key {
					break
				}
			}
		default: // a target record with no source record before it
			orphans = append(orphans, t.record())
			if err := tgt.pop(); err != nil {
				return err
			}
		}
		if len(page) >= r.cfg.PageSize {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(orphans) >= MaxIDsPerQuery {
			if err := flushOrphans(); err != nil {
				return err
			}
		}
	}
}
