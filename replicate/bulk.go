package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orgsync/salesforce"
)

// Bulk mode: when the backlog is large, a worker in upsert mode writes
// whole fetched batches of thousands of events as one Bulk API 2.0 ingest
// job (upsert by the external ID field) instead of 200-record collections
// calls: a handful of API calls per job instead of one per 200 records.
// The job's messages stay in flight, kept alive by InProgress, until its
// results map back to them; every record is then settled exactly as in
// collections mode.

// Defaults of the Bulk settings. Bulk jobs are off by default: a job of up
// to DefaultBulkBatch records costs create, upload, close, one poll per
// DefaultBulkPoll of processing and three result reads (10 calls at 5 s of
// processing), no fewer API calls than the composite calls that write the
// same records 1,000 at a time, and it is slower (docs/performance.md,
// "Bulk crossover").
const (
	DefaultBulkThreshold = 0
	DefaultBulkBatch     = 10_000
	DefaultBulkPoll      = 2 * time.Second
	// bulkDeadline bounds one job from upload to results.
	bulkDeadline = 30 * time.Minute
)

// bulkActive reports whether the worker writes with Bulk jobs now: in
// upsert mode, while the backlog is above the threshold (with hysteresis:
// it switches back once the backlog falls below half of it).
func (w *Worker) bulkActive() bool { return w.bulk.Load() }

// observeBacklog switches Bulk mode on and off from the pending count.
func (w *Worker) observeBacklog(pending uint64) {
	if w.cfg.Mode != ModeUpsert || w.cfg.BulkThreshold <= 0 {
		return
	}
	switch on := w.bulk.Load(); {
	case !on && pending > uint64(w.cfg.BulkThreshold):
		w.bulk.Store(true)
		w.log.Info("backlog above the bulk threshold: writing with Bulk API 2.0 jobs", "pending", pending, "threshold", w.cfg.BulkThreshold)
	case on && pending < uint64(w.cfg.BulkThreshold/2):
		w.bulk.Store(false)
		w.log.Info("backlog drained: back to collections calls", "pending", pending)
	}
}

// errBulkJobFailed is a Bulk job that ended as a whole without results
// (state Failed or Aborted, e.g. "InvalidBatch : Field name not found"):
// its records fall back to collections calls.
var errBulkJobFailed = errors.New("replicate: bulk job failed as a whole")

// writeBulk writes the groups (created and link events) as one Bulk API
// 2.0 upsert job and returns one outcome per group. A job refused at
// creation returns the error (a configuration error pauses the pool); a job
// that fails as a whole returns an error wrapping errBulkJobFailed, and the
// caller writes its records with collections calls. A Bulk job is never
// split.
func (w *Worker) writeBulk(ctx context.Context, gs []*group) ([]outcome, error) {
	ext := w.cfg.ExternalIDField
	recs, sameCall := w.records(gs)
	fieldSet := map[string]bool{ext: true}
	for _, rec := range recs {
		for k, v := range rec {
			if k == "Parent" {
				if _, ok := v.(map[string]any); ok {
					fieldSet["Parent."+ext] = true
				}
				continue
			}
			fieldSet[k] = true
		}
	}
	fields := make([]string, 0, len(fieldSet))
	fields = append(fields, ext) // the key column first
	for f := range fieldSet {
		if f != ext {
			fields = append(fields, f)
		}
	}
	csv, err := salesforce.EncodeCSV(fields, recs)
	if err != nil {
		return nil, err
	}

	var job *salesforce.BulkJob
	if _, err := w.call(ctx, func(ctx context.Context) ([]outcome, error) {
		var err error
		job, err = w.cfg.Target.CreateIngestJob(ctx, sobject, "upsert", ext)
		return nil, err
	}); err != nil {
		return nil, err
	}
	log := w.log.With("job", job.ID, "records", len(gs))
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		countCall(ctx)
		if _, err := w.cfg.Target.AbortJob(actx, job.ID); err != nil {
			log.Warn("aborting the bulk job failed", "err", err)
		}
	}
	countCall(ctx)
	if err := w.cfg.Target.UploadJobData(ctx, job.ID, csv); err != nil {
		abort()
		return nil, err
	}
	countCall(ctx)
	if _, err := w.cfg.Target.CloseJob(ctx, job.ID); err != nil {
		abort()
		return nil, err
	}
	log.Info("bulk job submitted")
	done, err := w.cfg.Target.WaitJob(ctx, job.ID, w.cfg.BulkPoll, nil)
	if err != nil {
		if ctx.Err() != nil {
			abort()
		}
		return nil, err
	}
	if done.State != "JobComplete" {
		return nil, fmt.Errorf("%w: job %s ended %s: %s", errBulkJobFailed, job.ID, done.State, done.ErrorMessage)
	}
	countCall(ctx)
	okRows, failedRows, unprocessed, err := w.cfg.Target.JobResults(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	log.Info("bulk job complete", "succeeded", len(okRows), "failed", len(failedRows), "unprocessed", len(unprocessed))

	index := make(map[string]int, len(gs))
	for i, g := range gs {
		index[strings.ToUpper(g.sourceID)] = i
	}
	outs := make([]outcome, len(gs))
	seen := make([]bool, len(gs))
	var orphans []int
	for _, r := range okRows {
		if i, found := index[strings.ToUpper(r.Row[ext])]; found && !seen[i] {
			seen[i] = true
			outs[i] = w.upsertOutcome(gs[i], r.ID, true, nil, sameCall[i])
		}
	}
	for _, r := range failedRows {
		i, found := index[strings.ToUpper(r.Row[ext])]
		if !found || seen[i] {
			continue
		}
		seen[i] = true
		outs[i] = w.upsertOutcome(gs[i], "", false, r.Error, false)
		if outs[i].class == classParentMissing && decide(outs[i].class, gs[i].maxDelivered(), w.cfg.MaxDeliver, gs[i].isLink()) == actLinkLater {
			orphans = append(orphans, i)
		}
	}
	for i := range gs {
		if !seen[i] {
			outs[i] = outcome{err: errors.New("not processed by the bulk job"), class: classTransient,
				code: "BULK_UNPROCESSED", message: fmt.Sprintf("record not processed by bulk job %s", job.ID)}
		}
	}
	// Children whose parent is not in the target: written without it by
	// collections calls, with a link event to follow.
	w.writeOrphans(ctx, gs, orphans, outs)
	return outs, nil
}
