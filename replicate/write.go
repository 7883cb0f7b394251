package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/sync/errgroup"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
)

const sobject = "Account"

// errOverBudget is returned instead of calling the target when the last
// Sforce-Limit-Info shows more than -api-budget of the daily limit used.
var errOverBudget = errors.New("replicate: target API usage is above the configured budget")

// callWithRetry runs one target call through the budget check, the rate
// limiter and the concurrency cap, retrying a transient failure of the whole
// call with exponential backoff and jitter for at most CallRetry.
func (w *Worker) callWithRetry(ctx context.Context, call func(context.Context) ([]outcome, error)) ([]outcome, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = w.cfg.CallRetry
	var outs []outcome
	op := func() error {
		var err error
		outs, err = w.call(ctx, call)
		if err == nil {
			return nil
		}
		if errors.Is(err, errOverBudget) || salesforce.Classify(err) != salesforce.Transient || ctx.Err() != nil {
			return backoff.Permanent(err)
		}
		w.log.Info("target call failed; retrying", "err", err)
		return err
	}
	err := backoff.Retry(op, backoff.WithContext(b, ctx))
	return outs, err
}

// call makes one target call inside the limits.
func (w *Worker) call(ctx context.Context, call func(context.Context) ([]outcome, error)) ([]outcome, error) {
	if u, ok := w.cfg.Target.Usage(); ok && u.Max > 0 && u.Ratio() >= w.cfg.APIBudget {
		w.cfg.Metrics.usage(u.Ratio())
		return nil, fmt.Errorf("%w: %d of %d daily calls used, budget %.0f%%", errOverBudget, u.Used, u.Max, 100*w.cfg.APIBudget)
	}
	if w.limiter != nil {
		if err := w.limiter.Wait(ctx); err != nil {
			return nil, err
		}
	}
	select {
	case w.calls <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.calls }()
	outs, err := call(ctx)
	if u, ok := w.cfg.Target.Usage(); ok && u.Max > 0 {
		w.cfg.Metrics.usage(u.Ratio())
	}
	return outs, err
}

// writeCreated writes the records of created events in the worker's mode.
func (w *Worker) writeCreated(ctx context.Context, gs []*group) ([]outcome, error) {
	switch w.cfg.Mode {
	case ModeCreate:
		return w.createMany(ctx, gs)
	case ModeApexREST:
		return w.apexREST(ctx, gs)
	default:
		return w.upsertMany(ctx, gs)
	}
}

// upsertMany upserts the groups' records by the external ID field. A
// record whose parent is referenced by external ID but not yet in the
// target is written again without the parent, and a link event follows.
func (w *Worker) upsertMany(ctx context.Context, gs []*group) ([]outcome, error) {
	ext := w.cfg.ExternalIDField
	inBatch := make(map[string]bool, len(gs))
	for _, g := range gs {
		inBatch[g.sourceID] = true
	}
	recs := make([]salesforce.Record, len(gs))
	sameCall := make([]bool, len(gs))
	for i, g := range gs {
		// A parent written in this same call cannot be referenced by it
		// (references resolve before the records are saved): the child goes
		// without it and a link event follows.
		if g.ev.Type == event.TypeAccountLink {
			recs[i] = salesforce.Record{ext: g.sourceID, "Parent": map[string]any{ext: g.ev.ParentID}}
			continue
		}
		sameCall[i] = inBatch[g.ev.ParentSourceID()]
		recs[i] = w.record(g.ev, !sameCall[i])
	}
	res, err := w.cfg.Target.UpsertMany(ctx, sobject, ext, recs, false)
	if err != nil {
		return nil, err
	}
	if len(res) != len(gs) {
		return nil, fmt.Errorf("replicate: target answered %d results for %d records", len(res), len(gs))
	}
	outs := make([]outcome, len(gs))
	var orphans []int
	for i, r := range res {
		isLink := gs[i].ev.Type == event.TypeAccountLink
		if r.Success {
			if isLink {
				outs[i] = ok("") // the record's mapping is unchanged
			} else {
				outs[i] = outcome{targetID: r.ID, parentDeferred: sameCall[i]}
			}
			continue
		}
		re := r.Err()
		if _, _, missing := salesforce.MissingParent(re); missing && isLink {
			outs[i] = w.parentMissing(gs[i], re.Message)
			continue
		}
		if _, _, missing := salesforce.MissingParent(re); missing && gs[i].ev.ParentSourceID() != "" {
			orphans = append(orphans, i)
			continue
		}
		outs[i] = failure(re, ext)
	}
	if len(orphans) == 0 {
		return outs, nil
	}
	// Second call for the children whose parent is not in the target yet.
	recs = recs[:0]
	for _, i := range orphans {
		recs = append(recs, w.record(gs[i].ev, false))
	}
	res, err = w.cfg.Target.UpsertMany(ctx, sobject, ext, recs, false)
	if err != nil {
		for _, i := range orphans {
			outs[i] = failure(err, ext)
		}
		return outs, nil
	}
	for j, i := range orphans {
		if j >= len(res) {
			outs[i] = failure(errors.New("replicate: target answered too few results"), ext)
			continue
		}
		if res[j].Success {
			outs[i] = outcome{targetID: res[j].ID, parentDeferred: true}
		} else {
			outs[i] = failure(res[j].Err(), ext)
		}
	}
	return outs, nil
}

// record builds the target record of a created event. In upsert mode the
// external ID field carries the source ID and the parent, if any, is a
// reference by external ID; withParent false leaves the parent out.
func (w *Worker) record(ev event.Event, withParent bool) salesforce.Record {
	rec := make(salesforce.Record, len(ev.Fields)+2)
	for k, v := range ev.Fields {
		if strings.EqualFold(k, "ParentId") {
			continue
		}
		rec[k] = v
	}
	rec[w.cfg.ExternalIDField] = ev.SourceID
	if p := ev.ParentSourceID(); p != "" && withParent {
		rec["Parent"] = map[string]any{w.cfg.ExternalIDField: p}
	}
	return rec
}

// createMany creates the groups' records. A parent this worker has mapped
// is set by its target ID; otherwise the record is created without it and a
// link event follows.
func (w *Worker) createMany(ctx context.Context, gs []*group) ([]outcome, error) {
	var parents []string
	for _, g := range gs {
		if p := g.ev.ParentSourceID(); p != "" {
			parents = append(parents, p)
		}
	}
	known, err := w.cfg.Store.Lookup(parents)
	if err != nil {
		return nil, err
	}
	recs := make([]salesforce.Record, len(gs))
	deferred := make([]bool, len(gs))
	for i, g := range gs {
		rec := make(salesforce.Record, len(g.ev.Fields))
		for k, v := range g.ev.Fields {
			if !strings.EqualFold(k, "ParentId") {
				rec[k] = v
			}
		}
		if p := g.ev.ParentSourceID(); p != "" {
			if m, ok := known[p]; ok {
				rec["ParentId"] = m.TargetID
			} else {
				deferred[i] = true
			}
		}
		recs[i] = rec
	}
	res, err := w.cfg.Target.CreateMany(ctx, sobject, recs, false)
	if err != nil {
		return nil, err
	}
	if len(res) != len(gs) {
		return nil, fmt.Errorf("replicate: target answered %d results for %d records", len(res), len(gs))
	}
	outs := make([]outcome, len(gs))
	for i, r := range res {
		if r.Success {
			outs[i] = outcome{targetID: r.ID, parentDeferred: deferred[i]}
		} else {
			outs[i] = failure(r.Err(), "")
		}
	}
	return outs, nil
}

// apexResponse is the seed's ArrifyAccountsApi.ResponseWrapper.
type apexResponse struct {
	Success      bool   `json:"success"`
	AccountID    string `json:"accountId"`
	AccountName  string `json:"accountName"`
	Message      string `json:"message"`
	ErrorDetails string `json:"errorDetails"`
}

// Codes for the seed's Apex REST answers, which carry no Salesforce code.
const (
	CodeApexBadRequest = "APEX_BAD_REQUEST"
	CodeApexDMLError   = "APEX_DML_ERROR"
	CodeApexUnexpected = "APEX_UNEXPECTED_ERROR"
)

// apexREST posts each record to the seed's endpoint, one call per record,
// as the recipe orgsync replaces does. The calls of a batch run in parallel
// within the concurrency cap; each counts against the limits.
func (w *Worker) apexREST(ctx context.Context, gs []*group) ([]outcome, error) {
	outs := make([]outcome, len(gs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.MaxCalls)
	for i, grp := range gs {
		g.Go(func() error {
			body, _ := json.Marshal(map[string]any{"Name": grp.ev.Fields["Name"]})
			var resp *salesforce.Response
			_, err := w.callWithRetry(gctx, func(ctx context.Context) ([]outcome, error) {
				var err error
				resp, err = w.cfg.Target.Call(ctx, http.MethodPost, ApexRESTPath, body, "application/json")
				if err == nil && resp.Status >= 500 && !strings.Contains(string(resp.Body), "Database error") {
					// "Unexpected error" and platform 5xx: worth retrying now.
					return nil, &salesforce.APIError{StatusCode: resp.Status, Code: CodeApexUnexpected, Message: apexMessage(resp)}
				}
				return nil, err
			})
			outs[i] = apexOutcome(resp, err)
			return nil
		})
	}
	_ = g.Wait()
	return outs, nil
}

func apexMessage(resp *salesforce.Response) string {
	var ar apexResponse
	if json.Unmarshal(resp.Body, &ar) == nil && ar.Message != "" {
		return ar.Message
	}
	return fmt.Sprintf("HTTP %d: %.200s", resp.Status, resp.Body)
}

// apexOutcome classifies an answer of the seed's endpoint: 201 success;
// 400 bad request (permanent); 500 "Database error: …" a DML failure
// (permanent, unless it is a row lock); anything else transient.
func apexOutcome(resp *salesforce.Response, err error) outcome {
	if err != nil {
		var ae *salesforce.APIError
		if errors.As(err, &ae) && ae.Code == CodeApexUnexpected {
			return outcome{err: err, class: salesforce.Transient, code: CodeApexUnexpected, message: ae.Message}
		}
		return failure(err, "")
	}
	var ar apexResponse
	_ = json.Unmarshal(resp.Body, &ar)
	msg := apexMessage(resp)
	switch {
	case resp.Status == http.StatusCreated && ar.Success && ar.AccountID != "":
		return ok(ar.AccountID)
	case resp.Status == http.StatusBadRequest:
		return outcome{err: errors.New(msg), class: salesforce.Permanent, code: CodeApexBadRequest, message: msg}
	case resp.Status == http.StatusInternalServerError && strings.HasPrefix(ar.Message, "Database error"):
		if isLock(ar.Message) {
			return outcome{err: errors.New(msg), class: salesforce.Transient, code: "UNABLE_TO_LOCK_ROW", message: msg}
		}
		return outcome{err: errors.New(msg), class: salesforce.Permanent, code: CodeApexDMLError, message: msg}
	default:
		return outcome{err: errors.New(msg), class: salesforce.Transient, code: CodeApexUnexpected, message: msg}
	}
}

func isLock(msg string) bool {
	return strings.Contains(msg, "UNABLE_TO_LOCK_ROW") || strings.Contains(msg, "unable to obtain exclusive access")
}

// writeLinks sets the parent of records written before their parent: in
// upsert mode a link is an upsert of the child with its parent reference.
func (w *Worker) writeLinks(ctx context.Context, gs []*group) ([]outcome, error) {
	if w.cfg.Mode == ModeCreate {
		return w.linkByTargetID(ctx, gs)
	}
	return w.upsertMany(ctx, gs)
}

// parentMissing is the outcome of a link whose parent is still not in the
// target: retried with delay, dead-lettered as PARENT_MISSING at the last
// delivery.
func (w *Worker) parentMissing(g *group, msg string) outcome {
	o := outcome{err: errors.New(msg), class: salesforce.Transient, code: CodeParentMissing, message: msg}
	if g.maxDelivered() >= w.cfg.MaxDeliver {
		o.class = salesforce.Permanent
		o.message = fmt.Sprintf("parent %s not in the target after %d deliveries: %s", g.ev.ParentID, g.maxDelivered(), msg)
	}
	return o
}

// linkByTargetID links records in create mode, where the target has no
// external ID: both IDs must be in this worker's ID map.
func (w *Worker) linkByTargetID(ctx context.Context, gs []*group) ([]outcome, error) {
	ids := make([]string, 0, 2*len(gs))
	for _, g := range gs {
		ids = append(ids, g.sourceID, g.ev.ParentID)
	}
	known, err := w.cfg.Store.Lookup(ids)
	if err != nil {
		return nil, err
	}
	outs := make([]outcome, len(gs))
	for i, g := range gs {
		child, okc := known[g.sourceID]
		parent, okp := known[g.ev.ParentID]
		if !okc || !okp {
			outs[i] = w.parentMissing(g, "parent or child not in this worker's id map")
			continue
		}
		err := w.cfg.Target.Update(ctx, sobject, child.TargetID, salesforce.Record{"ParentId": parent.TargetID})
		if err != nil {
			if salesforce.Classify(err) != salesforce.Permanent {
				return nil, err
			}
			outs[i] = failure(err, "")
			continue
		}
		outs[i] = ok("")
	}
	return outs, nil
}

// publishLink publishes the follow-up event that sets ev's parent later.
func (w *Worker) publishLink(ctx context.Context, ev event.Event) error {
	link, err := event.NewAccountLink(ev.SourceOrg, ev.SourceID, ev.ParentSourceID())
	if err != nil {
		return err
	}
	body, err := link.Encode()
	if err != nil {
		return err
	}
	_, err = w.cfg.Queue.Publish(ctx, queue.SubjectLink, link.MsgID(), body, nil)
	return err
}
