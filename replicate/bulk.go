package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orgsync/event"
	"orgsync/salesforce"
)

// Bulk mode: when the backlog is large, a worker in upsert mode writes
// whole fetched batches of thousands of events as one Bulk API 2.0 ingest
// job (upsert by the external ID field) instead of 200-record collections
// calls: a handful of API calls per job instead of one per 200 records.
// The job's messages stay in flight, kept alive by InProgress, until its
// results map back to them; every record is then settled exactly as in
// collections mode.

// Defaults of the Bulk settings.
const (
	DefaultBulkThreshold = 10_000
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

// writeBulk writes the groups (created and link events) as one Bulk API
// 2.0 upsert job and returns one outcome per group.
func (w *Worker) writeBulk(ctx context.Context, gs []*group) ([]outcome, error) {
	ext := w.cfg.ExternalIDField
	inBatch := make(map[string]bool, len(gs))
	for _, g := range gs {
		inBatch[g.sourceID] = true
	}
	recs := make([]salesforce.Record, len(gs))
	sameCall := make([]bool, len(gs))
	fieldSet := map[string]bool{ext: true}
	for i, g := range gs {
		if g.ev.Type == event.TypeAccountLink {
			recs[i] = salesforce.Record{ext: g.sourceID, "Parent": map[string]any{ext: g.ev.ParentID}}
		} else {
			sameCall[i] = inBatch[g.ev.ParentSourceID()]
			recs[i] = w.record(g.ev, !sameCall[i])
		}
		for k, v := range recs[i] {
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

	job, err := w.cfg.Target.CreateIngestJob(ctx, sobject, "upsert", ext)
	if err != nil {
		return nil, err
	}
	log := w.log.With("job", job.ID, "records", len(gs))
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := w.cfg.Target.AbortJob(actx, job.ID); err != nil {
			log.Warn("aborting the bulk job failed", "err", err)
		}
	}
	if err := w.cfg.Target.UploadJobData(ctx, job.ID, csv); err != nil {
		abort()
		return nil, err
	}
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
		// A job that failed as a whole: its records are retried (the
		// upserts it may have done are idempotent).
		return nil, &salesforce.APIError{StatusCode: 503, Code: "BULK_JOB_" + strings.ToUpper(done.State), Message: done.ErrorMessage}
	}
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
	var orphans []*group
	var orphanIdx []int
	for _, r := range okRows {
		i, found := index[strings.ToUpper(r.Row[ext])]
		if !found || seen[i] {
			continue
		}
		seen[i] = true
		if gs[i].ev.Type == event.TypeAccountLink {
			outs[i] = ok("") // a link: the mapping is unchanged
		} else {
			outs[i] = outcome{targetID: r.ID, parentDeferred: sameCall[i]}
		}
	}
	for _, r := range failedRows {
		i, found := index[strings.ToUpper(r.Row[ext])]
		if !found || seen[i] {
			continue
		}
		seen[i] = true
		re := r.Error
		if re == nil {
			re = &salesforce.RecordError{Code: "UNKNOWN", Message: "failed without an error in the job's results"}
		}
		_, _, missing := salesforce.MissingParent(re)
		switch {
		case missing && gs[i].ev.Type == event.TypeAccountLink:
			outs[i] = w.parentMissing(gs[i], re.Message)
		case missing && gs[i].ev.ParentSourceID() != "":
			orphans, orphanIdx = append(orphans, gs[i]), append(orphanIdx, i)
		default:
			outs[i] = failure(re, ext)
		}
	}
	for i := range gs {
		if !seen[i] {
			outs[i] = outcome{err: errors.New("not processed by the bulk job"), class: salesforce.Transient,
				code: "BULK_UNPROCESSED", message: fmt.Sprintf("record not processed by bulk job %s", job.ID)}
		}
	}
	// Children whose parent is not in the target: written without it by
	// collections calls, with a link event to follow.
	for start := 0; start < len(orphans); start += salesforce.MaxCollection {
		end := min(start+salesforce.MaxCollection, len(orphans))
		chunk := orphans[start:end]
		recs := make([]salesforce.Record, len(chunk))
		for j, g := range chunk {
			recs[j] = w.record(g.ev, false)
		}
		res, err := w.cfg.Target.UpsertMany(ctx, sobject, ext, recs, false)
		for j := range chunk {
			i := orphanIdx[start+j]
			switch {
			case err != nil:
				outs[i] = failure(err, ext)
			case j >= len(res):
				outs[i] = failure(errors.New("replicate: target answered too few results"), ext)
			case res[j].Success:
				outs[i] = outcome{targetID: res[j].ID, parentDeferred: true}
			default:
				outs[i] = failure(res[j].Err(), ext)
			}
		}
	}
	return outs, nil
}
