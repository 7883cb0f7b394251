package replicate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"orgsync/queue"
	"orgsync/salesforce"
)

// Two kinds of stop, by whom the cause belongs to:
//
//   - A pool pause is for a cause that belongs to the org: the daily API
//     budget, a missing or invisible external ID field, a Bulk job refused
//     at creation, a write answered by a redirect. The worker that finds it
//     pauses the shared consumer, so every worker stops fetching, and
//     records the cause (kind, message, its worker ID, since when) in the
//     ORGSYNC_PAUSE key-value bucket, where every worker's log and /readyz
//     show it. Messages in flight are held (InProgress), not nak'ed, so a
//     pause of any length uses up no deliveries; they are written again
//     when the pool resumes. The owner probes its cause and clears it when
//     the probe passes; a cause whose owner has missed three probes is
//     probed, and cleared or taken over, by any other worker. The pool
//     resumes when no cause is left. Causes are kept apart: a later pause
//     never hides an earlier one, and each ends only by its own probe.
//
//   - A worker stop is for a cause local to one worker: its credentials are
//     refused, or it cannot reach the target. That worker fetches nothing
//     and reports not ready until its own probe passes; its messages in
//     flight go back to the queue at once for the other workers, which go
//     on. (When the org revoked the app, every worker stops this way.)

// causeKind names a cause; pool causes are also the keys of their records.
type causeKind string

const (
	kindBudget      causeKind = "budget"
	kindField       causeKind = "external_id_field"
	kindRedirect    causeKind = "redirect"
	kindAuth        causeKind = "auth"
	kindUnreachable causeKind = "unreachable"
)

// kindOf is the cause kind of a failure that stops or pauses.
func kindOf(c class, err error) causeKind {
	var redir *salesforce.RedirectError
	switch {
	case c == classBudget:
		return kindBudget
	case c == classAuth:
		return kindAuth
	case c == classUnreachable:
		return kindUnreachable
	case errors.As(err, &redir):
		return kindRedirect
	}
	return kindField // the external ID field missing, or a Bulk job refused
}

// state is what keeps a worker from fetching and what /readyz reports.
type state struct {
	mu         sync.Mutex
	poolPaused bool
	pool       queue.PoolPause     // as last read or set
	own        map[causeKind]error // pool causes this worker recorded and probes
	local      map[causeKind]error // this worker's own stops
	resumed    chan struct{}       // closed while the pool runs
	held       map[string]error    // local work retried in process: "id map", "link event"
	consumer   error               // the consumer is gone
	since      map[causeKind]time.Time
	probing    bool
}

func (s *state) init() {
	s.own, s.local, s.held = map[causeKind]error{}, map[causeKind]error{}, map[string]error{}
	s.since = map[causeKind]time.Time{}
	s.resumed = make(chan struct{})
	close(s.resumed)
}

// mayFetch reports whether the fetch loops may fetch.
func (s *state) mayFetch() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.poolPaused && len(s.local) == 0 && len(s.held) == 0
}

// blocked reports whether the pool is paused and this worker's first
// local stop, if any: what keeps a fetched batch from being written.
func (s *state) blocked() (paused bool, stopped error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(s.local)) {
		return s.poolPaused, s.local[k]
	}
	return s.poolPaused, nil
}

func (s *state) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var why []string
	for _, k := range slices.Sorted(maps.Keys(s.local)) {
		why = append(why, fmt.Sprintf("this worker stopped since %s: %s: %v", s.since[k].UTC().Format(time.RFC3339), k, s.local[k]))
	}
	if s.poolPaused {
		why = append(why, "pool paused: "+s.poolString())
	}
	for _, k := range slices.Sorted(maps.Keys(s.held)) {
		why = append(why, fmt.Sprintf("%s failing, records held until it works: %v", k, s.held[k]))
	}
	if s.consumer != nil {
		why = append(why, s.consumer.Error())
	}
	if len(why) == 0 {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}

// poolString describes the pool pause; s.mu is held.
func (s *state) poolString() string {
	if len(s.pool.Causes) > 0 || s.pool.Paused {
		return s.pool.String()
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.own)) {
		parts = append(parts, fmt.Sprintf("%s (set by this worker): %v", k, s.own[k]))
	}
	return strings.Join(parts, "; ")
}

func (s *state) setConsumerErr(err error) {
	s.mu.Lock()
	s.consumer = err
	s.mu.Unlock()
}

// setHeld records (err != nil) or clears a local failure that holds records.
func (s *state) setHeld(what string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.held, what)
	} else {
		s.held[what] = err
	}
}

// pausedPool marks the pool paused; it reports whether it was running.
func (s *state) pausedPool() bool {
	if s.poolPaused {
		return false
	}
	s.poolPaused = true
	s.resumed = make(chan struct{})
	return true
}

// resumedPool marks the pool running; s.mu is held.
func (s *state) resumedPool() bool {
	if !s.poolPaused {
		return false
	}
	s.poolPaused = false
	s.pool = queue.PoolPause{}
	close(s.resumed)
	return true
}

// pausePool pauses the whole pool for an org cause and records it.
func (w *Worker) pausePool(ctx context.Context, kind causeKind, cause error) {
	w.state.mu.Lock()
	_, known := w.state.own[kind]
	w.state.own[kind] = cause
	w.state.pausedPool()
	w.state.mu.Unlock()
	w.cfg.Metrics.setPaused(true)
	if !known {
		w.log.Error("PAUSING THE POOL: the target cannot be written until this is fixed; nothing is dead-lettered",
			"cause", string(kind), "err", cause, "probe_every", w.cfg.ProbeInterval.String())
	}
	now := time.Now()
	rec := queue.PauseCause{Kind: string(kind), Message: cause.Error(), Worker: w.cfg.WorkerID,
		Since: now, Seen: now, ProbeEvery: w.cfg.ProbeInterval}
	if err := w.cfg.Queue.RecordPause(ctx, rec, now.Add(w.cfg.PauseFor)); err != nil {
		w.log.Error("pausing the consumer failed; this worker holds back on its own", "err", err)
	}
	w.startProbe()
}

// stopWorker stops this worker (not the pool) for a local cause.
func (w *Worker) stopWorker(kind causeKind, cause error) {
	w.state.mu.Lock()
	_, known := w.state.local[kind]
	w.state.local[kind] = cause
	if !known {
		w.state.since[kind] = time.Now()
	}
	w.state.mu.Unlock()
	if !known {
		w.log.Error("THIS WORKER STOPS FETCHING until this is fixed; the other workers go on; nothing is dead-lettered",
			"cause", string(kind), "err", cause, "probe_every", w.cfg.ProbeInterval.String())
		w.suspendFeed()
	}
	w.startProbe()
}

// suspendFeed lets the other workers take this worker's partitions while
// it is stopped. It runs apart: the feed waits for the batches in flight,
// and the caller may be one of them, handing its records back.
func (w *Worker) suspendFeed() {
	w.state.mu.Lock()
	ctx := w.bg
	w.state.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	w.probes.Add(1)
	go func() {
		defer w.probes.Done()
		if err := w.cfg.Feed.Suspend(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("handing this worker's partitions over failed; they move when its leases expire", "err", err)
		}
	}()
}

// waitPool blocks until the pool runs again (true) or shutdown (false).
func (w *Worker) waitPool(shutdown <-chan struct{}) bool {
	w.state.mu.Lock()
	ch := w.state.resumed
	w.state.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-shutdown:
		return false
	}
}

// startProbe runs one probe loop per worker while anything is stopped.
func (w *Worker) startProbe() {
	w.state.mu.Lock()
	defer w.state.mu.Unlock()
	if w.state.probing || w.bg == nil {
		return
	}
	w.state.probing = true
	w.probes.Add(1)
	go func() {
		defer w.probes.Done()
		w.probeLoop(w.bg)
	}()
}

// probeLoop probes every cause this worker is responsible for, every
// ProbeInterval, until nothing is stopped or paused.
func (w *Worker) probeLoop(ctx context.Context) {
	for {
		if !sleep(ctx, w.cfg.ProbeInterval) {
			w.state.mu.Lock()
			w.state.probing = false
			w.state.mu.Unlock()
			return
		}
		w.probeLocal(ctx)
		w.probePool(ctx)
		w.state.mu.Lock()
		done := !w.state.poolPaused && len(w.state.local) == 0
		if done {
			w.state.probing = false
		}
		w.state.mu.Unlock()
		if done {
			return
		}
	}
}

// probeLocal probes this worker's own stops.
func (w *Worker) probeLocal(ctx context.Context) {
	w.state.mu.Lock()
	kinds := slices.Collect(maps.Keys(w.state.local))
	w.state.mu.Unlock()
	for _, k := range kinds {
		if err := w.probe(ctx, k); err != nil {
			w.log.Warn("worker still stopped", "cause", string(k), "err", err)
			w.state.mu.Lock()
			w.state.local[k] = err
			w.state.mu.Unlock()
			continue
		}
		w.state.mu.Lock()
		delete(w.state.local, k)
		none := len(w.state.local) == 0
		w.state.mu.Unlock()
		if none {
			w.cfg.Feed.Resume()
		}
		w.log.Info("worker fetches again: its probe passed", "cause", string(k))
	}
}

// probePool probes the pool's causes that this worker owns, or whose owner
// is gone, and resumes the pool when none is left.
func (w *Worker) probePool(ctx context.Context) {
	w.state.mu.Lock()
	paused := w.state.poolPaused
	own := maps.Clone(w.state.own)
	w.state.mu.Unlock()
	if !paused {
		return
	}
	p, err := w.cfg.Queue.PoolState(ctx)
	if err != nil {
		w.log.Warn("reading the pool's pause failed", "err", err)
		// Probe this worker's own causes anyway.
		for k := range own {
			p.Causes = append(p.Causes, queue.PauseCause{Kind: string(k), Worker: w.cfg.WorkerID, Seen: time.Now()})
		}
	}
	// Causes this worker set that are not recorded (the record failed) are
	// probed too.
	for k, cause := range own {
		if !slices.ContainsFunc(p.Causes, func(c queue.PauseCause) bool { return c.Kind == string(k) }) {
			p.Causes = append(p.Causes, queue.PauseCause{Kind: string(k), Message: cause.Error(), Worker: w.cfg.WorkerID, Since: time.Now(), Seen: time.Now()})
		}
	}
	now := time.Now()
	left := 0
	for _, c := range p.Causes {
		k := causeKind(c.Kind)
		ownIt := c.Worker == w.cfg.WorkerID
		if !ownIt && !c.Stale(now) {
			left++ // its owner probes it
			continue
		}
		perr := w.probe(ctx, k)
		if perr == nil {
			if err := w.cfg.Queue.ClearPause(ctx, c.Kind); err != nil {
				w.log.Warn("clearing a pause cause failed; will try again", "cause", c.Kind, "err", err)
				left++
				continue
			}
			w.state.mu.Lock()
			delete(w.state.own, k)
			w.state.mu.Unlock()
			w.log.Info("pause cause cleared: its probe passed", "cause", c.Kind, "set_by", c.Worker)
			continue
		}
		left++
		if !ownIt {
			w.log.Warn("taking over a pause cause whose worker is gone", "cause", c.Kind, "set_by", c.Worker, "err", perr)
		} else {
			w.log.Warn("pool still paused", "cause", c.Kind, "err", perr)
		}
		w.state.mu.Lock()
		w.state.own[k] = perr
		w.state.mu.Unlock()
		since := c.Since
		if since.IsZero() || !ownIt {
			since = now
		}
		rec := queue.PauseCause{Kind: c.Kind, Message: perr.Error(), Worker: w.cfg.WorkerID, Since: since, Seen: now, ProbeEvery: w.cfg.ProbeInterval}
		if err := w.cfg.Queue.RecordPause(ctx, rec, now.Add(w.cfg.PauseFor)); err != nil {
			w.log.Error("extending the pause failed", "err", err)
		}
	}
	if left > 0 {
		w.refreshPool(ctx)
		return
	}
	if err := w.cfg.Queue.Resume(ctx); err != nil {
		w.log.Error("resuming the consumer failed; will try again", "err", err)
		return
	}
	w.state.mu.Lock()
	was := w.state.resumedPool()
	w.state.mu.Unlock()
	if was {
		w.cfg.Metrics.setPaused(false)
		w.log.Info("pool resumed: the target can be written again")
	}
}

// probe checks one cause; nil means it is gone. Only the auth probe asks
// for a new token: Salesforce limits logins per user.
func (w *Worker) probe(ctx context.Context, k causeKind) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch k {
	case kindAuth:
		if w.cfg.Auth == nil {
			return nil
		}
		if tok, err := w.cfg.Auth.Token(ctx); err == nil {
			w.cfg.Auth.Invalidate(tok) // force a real token request, not the cache
		}
		if _, err := w.cfg.Auth.Token(ctx); err != nil {
			if salesforce.IsNetwork(err) {
				return fmt.Errorf("cannot reach the token endpoint: %w", err)
			}
			return err
		}
		return nil
	case kindUnreachable:
		if _, err := w.cfg.Target.Limits(ctx); salesforce.IsNetwork(err) {
			return fmt.Errorf("cannot reach the target: %w", err)
		}
		return nil
	case kindRedirect:
		return w.cfg.Target.CheckRedirect(ctx, w.writePath())
	case kindField:
		d, err := w.cfg.Target.Describe(ctx, sobject)
		if err != nil {
			return fmt.Errorf("describe %s: %w", sobject, err)
		}
		if f, ok := d.Field(w.cfg.ExternalIDField); !ok || !f.ExternalID {
			return fmt.Errorf("the target's %s has no external ID field %s visible to this user", sobject, w.cfg.ExternalIDField)
		}
		return nil
	case kindBudget:
		limits, err := w.cfg.Target.Limits(ctx)
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		u, ok := salesforce.DailyUsage(limits)
		if !ok {
			return nil
		}
		w.cfg.Metrics.usage(u.Ratio())
		if u.Ratio() >= w.cfg.APIBudget {
			return fmt.Errorf("%d of %d daily calls used, budget %.0f%%", u.Used, u.Max, 100*w.cfg.APIBudget)
		}
		return nil
	}
	return fmt.Errorf("unknown cause %q", k)
}

// writePath is the path this worker writes to, for the redirect probe.
func (w *Worker) writePath() string {
	base := "/services/data/v" + w.cfg.Target.APIVersion() + "/composite/sobjects"
	switch w.cfg.Mode {
	case ModeApexREST:
		return ApexRESTPath
	case ModeCreate:
		return base
	}
	return base + "/" + sobject + "/" + w.cfg.ExternalIDField
}

// checkCredentials gets a token at start: a worker that cannot is stopped
// (and not ready) from the first second, instead of when events arrive.
func (w *Worker) checkCredentials(ctx context.Context) {
	if w.cfg.Auth == nil {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := w.cfg.Auth.Token(tctx)
	switch {
	case err == nil || ctx.Err() != nil:
	case salesforce.IsNetwork(err):
		w.stopWorker(kindUnreachable, fmt.Errorf("cannot reach the target's token endpoint: %w", err))
	case salesforce.Classify(err) == salesforce.AuthFailure:
		w.stopWorker(kindAuth, err)
	default:
		w.log.Warn("no token for the target yet; will retry on the first write", "err", err)
	}
}

// refreshPool reads the pool's pause state and follows it: a pause set by
// another worker stops this one's fetching (and is logged with its cause
// and owner); a pool resumed by another worker lets it fetch again.
func (w *Worker) refreshPool(ctx context.Context) {
	p, err := w.cfg.Queue.PoolState(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			w.log.Debug("reading the pool's pause failed", "err", err)
		}
		return
	}
	paused := p.Paused || len(p.Causes) > 0
	w.state.mu.Lock()
	changed := p.String() != w.state.pool.String()
	w.state.pool = p
	var started, resumed bool
	switch {
	case paused:
		started = w.state.pausedPool()
	case len(w.state.own) == 0:
		resumed = w.state.resumedPool()
	}
	w.state.mu.Unlock()
	switch {
	case started || (paused && changed):
		w.cfg.Metrics.setPaused(true)
		w.log.Warn("the pool is paused; this worker holds back", "pause", p.String())
		w.startProbe()
	case resumed:
		w.cfg.Metrics.setPaused(false)
		w.log.Info("pool resumed by another worker")
	}
}

// watch follows the shared consumer's pause state, so a worker that did
// not pause the pool itself reports not ready, holds back, and can take
// over a cause whose worker has stopped; and it samples the backlog for the
// metrics.
func (w *Worker) watch(ctx context.Context) {
	t := time.NewTicker(min(watchInterval, max(w.cfg.ProbeInterval, 50*time.Millisecond)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.refreshPool(ctx)
		if b, err := w.cfg.Queue.Backlog(ctx); err == nil {
			w.cfg.Metrics.backlog(b)
			w.observeBacklog(b.Pending)
		}
	}
}

// watchInterval is how often a worker reads the consumer's state.
const watchInterval = 2 * time.Second
