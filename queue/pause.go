package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PauseBucket is the JetStream key-value bucket where the pool's pause
// causes are recorded, one key per cause, so that every worker can show
// who paused the pool and why, and take over a cause whose owner is gone.
const PauseBucket = "ORGSYNC_PAUSE"

// PauseCause is one recorded reason why the pool is paused.
type PauseCause struct {
	// Kind names the cause, e.g. "budget", "external_id_field", "redirect".
	Kind string `json:"kind"`
	// Message says what was found, for logs and /readyz.
	Message string `json:"message"`
	// Worker is the worker ID that owns the cause: it probes it and
	// refreshes Seen after every probe.
	Worker string `json:"worker"`
	// Since is when the cause was first recorded.
	Since time.Time `json:"since"`
	// Seen is the owner's last probe; ProbeEvery its probe interval. An
	// owner that has not been seen for several intervals is gone.
	Seen       time.Time     `json:"seen"`
	ProbeEvery time.Duration `json:"probe_every"`
}

// Stale reports whether the cause's owner has missed three probes by now.
func (c PauseCause) Stale(now time.Time) bool {
	every := max(c.ProbeEvery, time.Second)
	return now.Sub(c.Seen) > 3*every
}

// String is e.g. `budget (set by worker-2 since 10:00:00Z): 81000 of 100000 daily calls used`.
func (c PauseCause) String() string {
	return fmt.Sprintf("%s (set by %s since %s): %s", c.Kind, c.Worker, c.Since.UTC().Format(time.RFC3339), c.Message)
}

// PoolPause is the pool's pause state: whether the shared consumer is
// paused, until when, and the causes recorded.
type PoolPause struct {
	Paused bool
	Until  time.Time
	Causes []PauseCause // sorted by Kind
}

// String joins the causes for a log line or /readyz.
func (p PoolPause) String() string {
	if len(p.Causes) == 0 {
		if p.Paused {
			return "paused with no recorded cause until " + p.Until.UTC().Format(time.RFC3339)
		}
		return "running"
	}
	s := make([]string, len(p.Causes))
	for i, c := range p.Causes {
		s[i] = c.String()
	}
	return strings.Join(s, "; ")
}

func (q *Queue) pauseKV(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	if !create {
		kv, err := q.js.KeyValue(ctx, PauseBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil
		}
		return kv, err
	}
	return q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      PauseBucket,
		Description: "orgsync: why the worker pool is paused, one key per cause",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    q.cfg.Replicas,
	})
}

// RecordPause records c (replacing the record of the same Kind) and pauses
// the pool until until.
func (q *Queue) RecordPause(ctx context.Context, c PauseCause, until time.Time) error {
	kv, err := q.pauseKV(ctx, true)
	if err != nil {
		return fmt.Errorf("queue: pause record: %w", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("queue: pause record: %w", err)
	}
	if _, err := kv.Put(ctx, c.Kind, b); err != nil {
		return fmt.Errorf("queue: pause record %s: %w", c.Kind, err)
	}
	return q.Pause(ctx, until)
}

// ClearPause removes the record of one cause. It does not resume the pool:
// call Resume once PoolState shows no cause left.
func (q *Queue) ClearPause(ctx context.Context, kind string) error {
	kv, err := q.pauseKV(ctx, false)
	if err != nil {
		return fmt.Errorf("queue: clear pause %s: %w", kind, err)
	}
	if kv == nil {
		return nil
	}
	if err := kv.Purge(ctx, kind); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("queue: clear pause %s: %w", kind, err)
	}
	return nil
}

// PoolState reads whether the pool is paused and the recorded causes.
func (q *Queue) PoolState(ctx context.Context) (PoolPause, error) {
	var p PoolPause
	var err error
	if p.Paused, p.Until, err = q.pausedUntil(ctx, "pool state"); err != nil {
		return p, err
	}
	kv, err := q.pauseKV(ctx, false)
	if err != nil {
		return p, fmt.Errorf("queue: pool state: %w", err)
	}
	if kv == nil {
		return p, nil
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return p, fmt.Errorf("queue: pool state: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return p, fmt.Errorf("queue: pool state %s: %w", k, err)
		}
		var pc PauseCause
		if err := json.Unmarshal(e.Value(), &pc); err != nil {
			pc = PauseCause{Kind: k, Message: "unreadable pause record: " + err.Error()}
		}
		p.Causes = append(p.Causes, pc)
	}
	sort.Slice(p.Causes, func(i, j int) bool { return p.Causes[i].Kind < p.Causes[j].Kind })
	return p, nil
}

// Pause stops delivery to every worker of the pool until until (server-side
// PauseConsumer on every partition consumer, or on the legacy "workers"):
// pending fetches get nothing and expire at their max wait, acks, naks and
// InProgress keep working. An until that is not in the future resumes at
// once. It returns an error wrapping ErrNoConsumer if the pool has no
// consumer.
func (q *Queue) Pause(ctx context.Context, until time.Time) error {
	return q.eachPoolConsumer(ctx, "pause", func(name string) error {
		_, err := q.js.PauseConsumer(ctx, Stream, name, until)
		return err
	})
}

// Resume ends a pause for the whole pool. It returns an error wrapping
// ErrNoConsumer if the pool has no consumer.
func (q *Queue) Resume(ctx context.Context) error {
	return q.eachPoolConsumer(ctx, "resume", func(name string) error {
		_, err := q.js.ResumeConsumer(ctx, Stream, name)
		return err
	})
}

// eachPoolConsumer calls fn for every consumer of the pool; a consumer
// deleted meanwhile is skipped.
func (q *Queue) eachPoolConsumer(ctx context.Context, op string, fn func(name string) error) error {
	infos, err := q.poolConsumers(ctx)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return fmt.Errorf("queue: %s: %w: %s has no worker consumer", op, ErrNoConsumer, Stream)
	}
	for _, info := range infos {
		if err := fn(info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return consumerNamedErr(op, info.Name, err)
		}
	}
	return nil
}

// Paused reports whether the pool is paused now (any of its consumers is).
// It returns an error wrapping ErrNoConsumer if the pool has no consumer.
func (q *Queue) Paused(ctx context.Context) (bool, error) {
	paused, _, err := q.pausedUntil(ctx, "paused")
	return paused, err
}

// pausedUntil reports whether any consumer of the pool is paused, and the
// latest end of those pauses.
func (q *Queue) pausedUntil(ctx context.Context, op string) (bool, time.Time, error) {
	infos, err := q.poolConsumers(ctx)
	if err != nil {
		return false, time.Time{}, err
	}
	if len(infos) == 0 {
		return false, time.Time{}, fmt.Errorf("queue: %s: %w: %s has no worker consumer", op, ErrNoConsumer, Stream)
	}
	var paused bool
	var until time.Time
	now := time.Now()
	for _, info := range infos {
		if info.Paused {
			paused = true
			if u := now.Add(info.PauseRemaining); u.After(until) {
				until = u
			}
		}
	}
	return paused, until, nil
}
