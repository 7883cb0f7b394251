package replicate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

// Dead-letter codes orgsync sets itself; the others are Salesforce's.
const (
	CodeMalformedEvent = "MALFORMED_EVENT"
	CodeMaxDeliveries  = "MAX_DELIVERIES"
	CodeParentMissing  = "PARENT_MISSING"
)

// delivery is one message of a batch with what was decoded from it.
type delivery struct {
	msg  jetstream.Msg
	seq  uint64 // stream sequence
	n    int    // deliveries so far, 1 on the first
	ev   event.Event
	recv time.Time
}

// group is every delivery of one source ID in a batch: they share one
// record and one outcome.
type group struct {
	sourceID string
	ev       event.Event // the latest event of the group
	ds       []*delivery
}

// maxDelivered is the highest delivery count in the group.
func (g *group) maxDelivered() int {
	n := 0
	for _, d := range g.ds {
		n = max(n, d.n)
	}
	return n
}

// outcome is what happened to one group's record.
type outcome struct {
	targetID string
	err      error // nil when written
	class    salesforce.Class
	code     string
	message  string
	// parentDeferred: written without its parent, which the target does
	// not have yet; a link event must follow.
	parentDeferred bool
}

func ok(targetID string) outcome { return outcome{targetID: targetID} }

// process handles one fetched batch. It never returns an error: every
// message ends acked, nak'ed or dead-lettered (or, when NATS itself is gone,
// left to be redelivered after the ack wait).
func (w *Worker) process(ctx context.Context, msgs []jetstream.Msg, bulk bool) {
	now := time.Now()
	w.cfg.Metrics.batch(len(msgs))
	var created, links []*group
	byID := map[string]*group{}
	linkByID := map[string]*group{}
	for _, m := range msgs {
		d := &delivery{msg: m, recv: now, n: 1}
		if md, err := m.Metadata(); err == nil {
			d.seq, d.n = md.Sequence.Stream, int(md.NumDelivered)
		}
		if d.n > w.cfg.MaxDeliver {
			reason := w.lastErr.take(d.seq)
			if reason == "" {
				reason = "no error recorded by this worker (a worker may have crashed or timed out on it)"
			}
			w.deadLetter(ctx, d, sourceIDOf(m), CodeMaxDeliveries,
				fmt.Sprintf("delivered %d times (max-deliver %d); last error: %s", d.n, w.cfg.MaxDeliver, reason))
			continue
		}
		ev, err := event.Decode(m.Data())
		if err == nil && !subjectMatches(m.Subject(), ev.Type) {
			err = fmt.Errorf("%w: %s event on subject %s", event.ErrMalformed, ev.Type, m.Subject())
		}
		if err != nil {
			w.deadLetter(ctx, d, sourceIDOf(m), CodeMalformedEvent, err.Error())
			continue
		}
		d.ev = ev
		index, list := byID, &created
		if ev.Type == event.TypeAccountLink {
			index, list = linkByID, &links
		}
		g := index[ev.SourceID]
		if g == nil {
			g = &group{sourceID: ev.SourceID}
			index[ev.SourceID] = g
			*list = append(*list, g)
		}
		g.ds = append(g.ds, d)
		if g.ev.CreatedAt.IsZero() || !ev.CreatedAt.Before(g.ev.CreatedAt) {
			g.ev = ev
		}
	}

	stop := queue.KeepAlive(msgs, w.cfg.AckWait/3)
	defer stop()

	if len(created) > 0 {
		created = w.skipKnown(ctx, created)
	}
	if w.cfg.Mode == ModeUpsert {
		// Links are records of the same upsert call, except a link whose
		// child is created in this batch: it follows in a second call.
		var later []*group
		for _, g := range links {
			if byID[g.sourceID] != nil {
				later = append(later, g)
			} else {
				created = append(created, g)
			}
		}
		links = later
	}
	if len(created) > 0 {
		write := w.writeCreated
		if bulk && len(created) > salesforce.MaxCollection {
			write = w.writeBulk
		}
		w.writeAndSettle(ctx, created, write)
	}
	// After a Bulk batch there can be more links than one call takes.
	for start := 0; start < len(links); start += salesforce.MaxCollection {
		w.writeAndSettle(ctx, links[start:min(start+salesforce.MaxCollection, len(links))], w.writeLinks)
	}
}

func subjectMatches(subject, typ string) bool {
	switch typ {
	case event.TypeAccountCreated:
		return subject == queue.SubjectCreated
	case event.TypeAccountLink:
		return subject == queue.SubjectLink
	}
	return false
}

// sourceIDOf returns the source ID of a message that may not decode, for the
// dead letter's header: the producer's header, else nothing.
func sourceIDOf(m jetstream.Msg) string {
	if ev, err := event.Decode(m.Data()); err == nil {
		return ev.SourceID
	}
	if h := m.Headers(); h != nil {
		return h.Get(queue.HeaderSourceID)
	}
	return ""
}

// repair reports whether a delivery of the group is a repair from `worker
// reconcile -repair` (queue.HeaderRepair): the target disagrees with the
// source, so the ID map's word that the record was written does not count.
func (g *group) repair() bool {
	for _, d := range g.ds {
		if h := d.msg.Headers(); h != nil && h.Get(queue.HeaderRepair) != "" {
			return true
		}
	}
	return false
}

// skipKnown acks the groups whose source ID is already in this worker's ID
// map, without an API call, and returns the rest (repairs are never skipped).
func (w *Worker) skipKnown(ctx context.Context, gs []*group) []*group {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.sourceID
	}
	known, err := w.cfg.Store.Lookup(ids)
	if err != nil {
		w.log.Warn("id map lookup failed; writing the whole batch", "err", err)
		return gs
	}
	rest := gs[:0]
	for _, g := range gs {
		if _, ok := known[g.sourceID]; ok && !g.repair() {
			for _, d := range g.ds {
				w.ack(d)
			}
			w.cfg.Metrics.skipped(len(g.ds))
			continue
		}
		rest = append(rest, g)
	}
	return rest
}

// writeFunc writes the groups' records and returns one outcome per group,
// or an error when the whole call failed.
type writeFunc func(ctx context.Context, gs []*group) ([]outcome, error)

// writeAndSettle writes gs (retrying a failed whole call within CallRetry)
// and settles every message by its outcome.
func (w *Worker) writeAndSettle(ctx context.Context, gs []*group, write writeFunc) {
	if crashed(ctx, w.cfg.beforeWrite, gs) {
		return
	}
	var outs []outcome
	var err error
	if w.cfg.Mode == ModeApexREST {
		// One call per record, each through the limits and retries itself:
		// the batch must not hold a call slot while its records wait for one.
		outs, err = write(ctx, gs)
	} else {
		outs, err = w.callWithRetry(ctx, func(ctx context.Context) ([]outcome, error) { return write(ctx, gs) })
	}
	if err != nil {
		w.settleCallFailure(ctx, gs, write, err)
		return
	}
	if crashed(ctx, w.cfg.afterWrite, gs) {
		return
	}
	w.settle(ctx, gs, outs)
}

// pauseNakDelay is how long a message in flight when the pool pauses waits
// before redelivery: the paused consumer holds it back anyway, so no longer
// than one probe, or it would lag behind a pool that already resumed.
func (w *Worker) pauseNakDelay() time.Duration { return w.cfg.ProbeInterval }

// crashed runs a test hook; true means "the process died here".
func crashed(ctx context.Context, hook func(context.Context, []string) error, gs []*group) bool {
	if hook == nil {
		return false
	}
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.sourceID
	}
	return hook(ctx, ids) != nil
}

// settleCallFailure handles a whole call that failed for good.
func (w *Worker) settleCallFailure(ctx context.Context, gs []*group, write writeFunc, err error) {
	class := classOf(err)
	switch class {
	case salesforce.AuthFailure, salesforce.Budget:
		w.pause(ctx, class, err)
		for _, g := range gs {
			for _, d := range g.ds {
				w.nak(d, w.pauseNakDelay(), err)
			}
		}
	case salesforce.Permanent:
		// A request-level rejection: find the record that causes it by
		// halving the batch; a single record takes the error itself.
		if len(gs) > 1 {
			half := len(gs) / 2
			w.log.Warn("target rejected the whole call; splitting the batch", "records", len(gs), "err", err)
			w.writeAndSettle(ctx, gs[:half], write)
			w.writeAndSettle(ctx, gs[half:], write)
			return
		}
		w.settle(ctx, gs, []outcome{failure(err, w.cfg.ExternalIDField)})
	default:
		outs := make([]outcome, len(gs))
		for i := range outs {
			outs[i] = failure(err, w.cfg.ExternalIDField)
		}
		w.settle(ctx, gs, outs)
	}
}

// classOf is salesforce.Classify with orgsync's own causes: over the
// budget is Budget; a target not set up for orgsync pauses like bad
// credentials, since no record can succeed until it is fixed.
func classOf(err error) salesforce.Class {
	switch {
	case errors.Is(err, errOverBudget):
		return salesforce.Budget
	case isConfigError(err):
		return salesforce.AuthFailure
	}
	return salesforce.Classify(err)
}

// isConfigError reports a whole-call answer that means the target is not
// set up for orgsync: the external ID field is missing or the integration
// user cannot see it.
func isConfigError(err error) bool {
	var ae *salesforce.APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound && ae.Code == "NOT_FOUND" &&
		strings.Contains(ae.Message, "external ID field")
}

// failure turns an error into an outcome with its class, code and message.
func failure(err error, extIDField string) outcome {
	o := outcome{err: err, class: classOf(err), message: err.Error()}
	var re *salesforce.RecordError
	var ae *salesforce.APIError
	switch {
	case errors.As(err, &re):
		o.class = salesforce.ClassifyRecord(re, extIDField)
		o.code, o.message = re.Code, re.Message
	case errors.As(err, &ae):
		o.code, o.message = ae.Code, ae.Message
		if o.code == "" {
			o.code = fmt.Sprintf("HTTP_%d", ae.StatusCode)
		}
	}
	if o.code == "" {
		switch o.class {
		case salesforce.Transient:
			o.code = "TRANSIENT_ERROR"
		default:
			o.code = "ERROR"
		}
	}
	return o
}

// settle applies the outcomes: map and ack, dead-letter, or nak.
func (w *Worker) settle(ctx context.Context, gs []*group, outs []outcome) {
	var done []store.Mapping
	var doneGroups []*group
	var pauseCause error
	var pauseClass salesforce.Class
	defer func() {
		if pauseCause != nil {
			w.pause(ctx, pauseClass, pauseCause) // once per batch, not per record
		}
	}()
	now := time.Now().UTC()
	for i, g := range gs {
		o := outs[i]
		switch {
		case o.err == nil:
			if o.parentDeferred {
				if err := w.publishLink(ctx, g.ev); err != nil {
					w.log.Warn("link event not published; the record will be written again", "source_id", g.sourceID, "err", err)
					w.nakGroup(g, queue.NakDelay(uint64(g.maxDelivered())), err)
					continue
				}
			}
			if o.targetID != "" {
				done = append(done, store.Mapping{SourceID: g.sourceID, TargetID: o.targetID, WrittenAt: now})
			}
			doneGroups = append(doneGroups, g)
		case o.class == salesforce.Permanent:
			for _, d := range g.ds {
				w.deadLetter(ctx, d, g.sourceID, o.code, o.message)
			}
		case o.class == salesforce.AuthFailure || o.class == salesforce.Budget:
			if pauseCause == nil {
				pauseCause, pauseClass = o.err, o.class
			}
			w.nakGroup(g, w.pauseNakDelay(), o.err)
		default: // transient
			if n := g.maxDelivered(); n >= w.cfg.MaxDeliver {
				msg := fmt.Sprintf("%s (after %d deliveries)", o.message, n)
				for _, d := range g.ds {
					w.deadLetter(ctx, d, g.sourceID, o.code, msg)
				}
				continue
			}
			w.nakGroup(g, queue.NakDelay(uint64(g.maxDelivered())), fmt.Errorf("%s: %s", o.code, o.message))
		}
	}
	if len(done) > 0 {
		if err := w.cfg.Store.PutMappings(done); err != nil {
			// The records are in the target; only the short cut is lost.
			// Nak so a redelivery upserts (idempotently) and maps again.
			w.log.Error("id map write failed; records will be written again", "err", err, "records", len(done))
			for _, g := range doneGroups {
				w.nakGroup(g, time.Second, err)
			}
			return
		}
	}
	for _, g := range doneGroups {
		for _, d := range g.ds {
			w.ack(d)
		}
		w.cfg.Metrics.synced(len(g.ds), g.ev.CreatedAt)
	}
}

func (w *Worker) ack(d *delivery) {
	if err := d.msg.Ack(); err != nil {
		w.log.Warn("ack failed; the message will be redelivered", "seq", d.seq, "err", err)
	}
	w.lastErr.take(d.seq)
}

func (w *Worker) nakGroup(g *group, delay time.Duration, cause error) {
	for _, d := range g.ds {
		w.nak(d, delay, cause)
	}
}

func (w *Worker) nak(d *delivery, delay time.Duration, cause error) {
	if cause != nil {
		w.lastErr.set(d.seq, cause.Error())
	}
	if err := d.msg.NakWithDelay(delay); err != nil {
		w.log.Warn("nak failed; the message will be redelivered after the ack wait", "seq", d.seq, "err", err)
	}
	w.cfg.Metrics.retried(1)
}

func (w *Worker) deadLetter(ctx context.Context, d *delivery, sourceID, code, message string) {
	err := w.cfg.Queue.DeadLetter(ctx, d.msg, queue.DeadLetter{Code: code, Message: message, SourceID: sourceID, Attempts: d.n})
	if err != nil {
		// DeadLetter nak'ed the message: it is not lost.
		w.log.Error("dead-letter publish failed; message nak'ed", "seq", d.seq, "source_id", sourceID, "code", code, "err", err)
		return
	}
	w.lastErr.take(d.seq)
	w.log.Warn("dead-lettered", "seq", d.seq, "source_id", sourceID, "code", code, "message", message, "attempts", d.n)
	w.cfg.Metrics.deadLettered(code)
}
