package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orgsync/salesforce"
)

// pause pauses the whole pool (the shared consumer) because the target
// cannot be written for a reason no retry of a record cures: credentials
// that a new token does not fix, or the daily API budget. Nothing is
// dead-lettered; the paused worker probes the cause and resumes the pool.
func (w *Worker) pause(ctx context.Context, class salesforce.Class, cause error) {
	reason := fmt.Sprintf("%s: %v", class, cause)
	w.pauseMu.Lock()
	already := w.paused.Load()
	if !already {
		w.pausedAt = time.Now()
	}
	w.reason = reason
	w.configCause = isConfigError(cause)
	w.paused.Store(true)
	w.pauseMu.Unlock()
	w.cfg.Metrics.setPaused(true)
	if !already {
		w.log.Error("PAUSING THE POOL: the target cannot be written until this is fixed; nothing is dead-lettered",
			"class", class.String(), "err", cause, "probe_every", w.cfg.ProbeInterval)
	}
	if err := w.cfg.Queue.Pause(ctx, time.Now().Add(w.cfg.PauseFor)); err != nil {
		w.log.Error("pausing the consumer failed; this worker holds back on its own", "err", err)
	}
	w.startProbe()
}

// startProbe runs one probe loop per worker while the pool is paused.
func (w *Worker) startProbe() {
	if !w.probing.CompareAndSwap(false, true) {
		return
	}
	w.probes.Add(1)
	go func() {
		defer w.probes.Done()
		w.probeLoop(w.bg)
		w.probing.Store(false)
		// A pause that landed while this loop was ending found it running.
		if w.paused.Load() && w.bg.Err() == nil {
			w.startProbe()
		}
	}()
}

// probeLoop checks the cause of the pause every ProbeInterval, keeps the
// pause alive while it lasts, and resumes the pool when it is gone.
func (w *Worker) probeLoop(ctx context.Context) {
	for {
		if !sleep(ctx, w.cfg.ProbeInterval) || !w.paused.Load() {
			return
		}
		err := w.probe(ctx)
		if err != nil {
			w.pauseMu.Lock()
			w.reason = err.Error()
			w.pauseMu.Unlock()
			w.log.Warn("pool still paused", "reason", err)
			if perr := w.cfg.Queue.Pause(ctx, time.Now().Add(w.cfg.PauseFor)); perr != nil {
				w.log.Error("extending the pause failed", "err", perr)
			}
			continue
		}
		if err := w.cfg.Queue.Resume(ctx); err != nil {
			w.log.Error("resuming the consumer failed; will try again", "err", err)
			continue
		}
		w.resumed()
		return
	}
}

func (w *Worker) resumed() {
	w.pauseMu.Lock()
	was := w.paused.Swap(false)
	w.reason = ""
	w.pauseMu.Unlock()
	w.cfg.Metrics.setPaused(false)
	if was {
		w.log.Info("pool resumed: the target can be written again")
	}
}

// probe reports why the target still cannot be written, or nil: a fresh
// token must be obtainable and the daily usage below the budget.
func (w *Worker) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if w.cfg.Auth != nil {
		if tok, err := w.cfg.Auth.Token(ctx); err == nil {
			w.cfg.Auth.Invalidate(tok) // force a real token request, not the cache
		}
		if _, err := w.cfg.Auth.Token(ctx); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	w.pauseMu.Lock()
	config := w.configCause
	w.pauseMu.Unlock()
	if config {
		// The pause was for the external ID field: resume only once the
		// target has it (and the user can see it).
		d, err := w.cfg.Target.Describe(ctx, sobject)
		if err != nil {
			return fmt.Errorf("describe: %w", err)
		}
		if f, ok := d.Field(w.cfg.ExternalIDField); !ok || !f.ExternalID {
			return fmt.Errorf("config: the target's Account has no external ID field %s visible to this user", w.cfg.ExternalIDField)
		}
	}
	limits, err := w.cfg.Target.Limits(ctx)
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	d, ok := limits["DailyApiRequests"]
	if !ok || d.Max <= 0 {
		return nil
	}
	used := d.Max - d.Remaining
	if ratio := float64(used) / float64(d.Max); ratio >= w.cfg.APIBudget {
		return fmt.Errorf("budget: %d of %d daily calls used, budget %.0f%%", used, d.Max, 100*w.cfg.APIBudget)
	}
	return nil
}

// watch follows the shared consumer's pause state, so a worker that did
// not pause the pool itself reports not ready and can resume it (the
// worker that paused it may have stopped), and samples the backlog for the
// metrics.
func (w *Worker) watch(ctx context.Context) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if paused, err := w.cfg.Queue.Paused(ctx); err == nil {
			switch {
			case paused && !w.paused.Load():
				w.pauseMu.Lock()
				w.paused.Store(true)
				w.pausedAt = time.Now()
				w.reason = "paused by another worker"
				w.pauseMu.Unlock()
				w.cfg.Metrics.setPaused(true)
				w.startProbe()
			case !paused && w.paused.Load() && !w.probing.Load():
				w.resumed()
			}
		} else if !errors.Is(err, context.Canceled) {
			w.log.Debug("reading the consumer's state failed", "err", err)
		}
		if b, err := w.cfg.Queue.Backlog(ctx); err == nil {
			w.cfg.Metrics.backlog(b)
			w.observeBacklog(b.Pending)
		}
	}
}

// watchInterval is how often a worker reads the consumer's state.
const watchInterval = 2 * time.Second
