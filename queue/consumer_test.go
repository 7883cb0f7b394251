package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Ensure that Fetch returns at most max messages, at once when the batch
// fills, and what there is when maxWait passes.
func TestFetch_UpToMax(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	for i := range 5 {
		mustPublish(t, q, SubjectCreated, fmt.Sprint(i), []byte{byte('0' + i)}, nil)
	}
	start := time.Now()
	msgs, err := c.Fetch(t.Context(), 3, 5*time.Second)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("Fetch(3) returned %d messages, want 3", len(msgs))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("a full batch took %s, want it at once", el)
	}
	for i, m := range msgs {
		if want := string(rune('0' + i)); string(m.Data()) != want {
			t.Errorf("message %d = %q, want %q", i, m.Data(), want)
		}
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	msgs, err = c.Fetch(t.Context(), 10, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(msgs) != 2 {
		t.Fatalf("Fetch(10) returned %d messages, want the 2 left", len(msgs))
	}
	for _, m := range msgs {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	waitStreamMsgs(t, ts.js, Stream, 0)
}

// Ensure that Fetch on an empty stream returns nothing, without error, after
// about maxWait.
func TestFetch_EmptyAfterMaxWait(t *testing.T) {
	ts := startServer(t, "")
	c := mustConsumer(t, mustNew(t, ts.js, Config{}))
	const maxWait = 400 * time.Millisecond
	start := time.Now()
	msgs, err := c.Fetch(t.Context(), 10, maxWait)
	el := time.Since(start)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Fetch = %d messages, %v; want 0, nil", len(msgs), err)
	}
	if el < maxWait*3/4 || el > maxWait+2*time.Second {
		t.Errorf("Fetch returned after %s, want about %s", el, maxWait)
	}
}

// Ensure that Fetch returns early when ctx is cancelled, and that a message
// delivered to the abandoned request is handed on, not stranded.
func TestFetch_ContextCancelled(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)

	ctx, cancel := context.WithCancel(t.Context())
	timer := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer.Stop()
	start := time.Now()
	// A batch of 200: the abandoned request stays open for more than one
	// message, which is what made an immediate nak loop.
	msgs, err := c.Fetch(ctx, 200, 2*time.Second)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("cancelled Fetch returned after %s", el)
	}
	if !errors.Is(err, context.Canceled) || len(msgs) != 0 {
		t.Fatalf("cancelled Fetch = %d messages, %v; want 0, context.Canceled", len(msgs), err)
	}

	// The server still holds the abandoned 2s request, first in line.
	mustPublish(t, q, SubjectCreated, "a", []byte("a"), nil)
	got := fetchN(t, c, 1, 8*time.Second)
	if string(got[0].Data()) != "a" {
		t.Errorf("fetched %q, want a", got[0].Data())
	}
	// It went to the abandoned request first, which handed it on once with
	// a delayed nak: delivered twice, not bounced until the request expired.
	if md, _ := got[0].Metadata(); md == nil || md.NumDelivered != 2 {
		t.Errorf("metadata %+v, want NumDelivered 2 (nak'ed once by the abandoned fetch)", md)
	}

	// A ctx already done fetches nothing.
	done, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if msgs, err := c.Fetch(done, 1, time.Second); !errors.Is(err, context.Canceled) || len(msgs) != 0 {
		t.Errorf("Fetch(done ctx) = %d, %v", len(msgs), err)
	}
	// A deadline shorter than maxWait bounds the wait.
	start = time.Now()
	if _, err := c.Fetch(ctxTimeout(t, 500*time.Millisecond), 1, 10*time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch(deadline) err = %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Fetch with a 500ms deadline returned after %s", el)
	}
}

// Ensure that Fetch on a deleted consumer reports ErrNoConsumer.
func TestFetch_NoConsumer(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	if err := ts.js.DeleteConsumer(t.Context(), Stream, ConsumerName); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	if _, err := c.Fetch(t.Context(), 1, time.Second); !errors.Is(err, ErrNoConsumer) {
		t.Errorf("Fetch err = %v, want ErrNoConsumer", err)
	}
	if _, err := c.Info(t.Context()); !errors.Is(err, ErrNoConsumer) {
		t.Errorf("Info err = %v, want ErrNoConsumer", err)
	}
}

// Ensure that a nak with delay redelivers the message, not before the delay,
// with NumDelivered one higher.
func TestNak_WithDelayRedelivers(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	mustPublish(t, q, SubjectCreated, "a", []byte("a"), nil)
	m := fetchN(t, c, 1, 5*time.Second)[0]
	md, err := m.Metadata()
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	const delay = 300 * time.Millisecond
	nakAt := time.Now()
	if err := Nak(m, delay); err != nil {
		t.Fatalf("Nak: %v", err)
	}
	again := fetchN(t, c, 1, 5*time.Second)[0]
	if el := time.Since(nakAt); el < delay*3/4 {
		t.Errorf("redelivered after %s, want at least %s", el, delay)
	}
	md2, err := again.Metadata()
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	if md2.Sequence.Stream != md.Sequence.Stream || md2.NumDelivered != md.NumDelivered+1 {
		t.Errorf("redelivery seq %d NumDelivered %d, want seq %d NumDelivered %d",
			md2.Sequence.Stream, md2.NumDelivered, md.Sequence.Stream, md.NumDelivered+1)
	}
}

// Ensure that Term removes the message from the work queue.
func TestTerm_RemovesFromWorkQueue(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	mustPublish(t, q, SubjectCreated, "a", []byte("a"), nil)
	m := fetchN(t, c, 1, 5*time.Second)[0]
	if err := Term(m, "TEST"); err != nil {
		t.Fatalf("Term: %v", err)
	}
	waitStreamMsgs(t, ts.js, Stream, 0)
	if msgs, err := c.Fetch(t.Context(), 1, 200*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Errorf("after Term, Fetch = %d messages, %v; want 0, nil", len(msgs), err)
	}
}

// Ensure that Hold keeps a delivery past its AckWait, and that it is
// redelivered once the heartbeats stop.
func TestHold_PastAckWait(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{AckWait: time.Second})
	c := mustConsumer(t, q)
	mustPublish(t, q, SubjectCreated, "a", []byte("a"), nil)
	ds, err := c.Deliveries(t.Context(), 1, 5*time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Deliveries = %d, %v", len(ds), err)
	}
	stop := Hold(ds, c.AckWait()/3)
	// Two and a half AckWaits pass inside this fetch; the message must not
	// come back.
	if msgs, err := c.Fetch(t.Context(), 1, 2500*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("with Hold, Fetch = %d messages, %v; want 0, nil", len(msgs), err)
	}
	stop()
	stop() // idempotent
	again := fetchN(t, c, 1, 5*time.Second)[0]
	if md, _ := again.Metadata(); md == nil || md.NumDelivered != 2 {
		t.Errorf("after the heartbeats stopped: metadata %+v, want NumDelivered 2", md)
	}
}

// Ensure that Pause stops delivery to the pool and Resume restarts it.
func TestPauseResume(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	c := mustConsumer(t, q)
	if p, err := q.Paused(t.Context()); err != nil || p {
		t.Fatalf("Paused() = %v, %v; want false", p, err)
	}
	if err := q.Pause(t.Context(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if p, err := q.Paused(t.Context()); err != nil || !p {
		t.Fatalf("after Pause, Paused() = %v, %v; want true", p, err)
	}
	mustPublish(t, q, SubjectCreated, "a", []byte("a"), nil)
	if msgs, err := c.Fetch(t.Context(), 1, 300*time.Millisecond); err != nil || len(msgs) != 0 {
		t.Fatalf("paused Fetch = %d messages, %v; want 0, nil", len(msgs), err)
	}
	if err := q.Resume(t.Context()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if p, err := q.Paused(t.Context()); err != nil || p {
		t.Fatalf("after Resume, Paused() = %v, %v; want false", p, err)
	}
	fetchN(t, c, 1, 5*time.Second)

	// A pause in the past is no pause.
	if err := q.Pause(t.Context(), time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("Pause(past): %v", err)
	}
	if p, err := q.Paused(t.Context()); err != nil || p {
		t.Errorf("after Pause(past), Paused() = %v, %v; want false", p, err)
	}

	// Without the consumer: ErrNoConsumer.
	if err := ts.js.DeleteConsumer(t.Context(), Stream, ConsumerName); err != nil {
		t.Fatalf("DeleteConsumer: %v", err)
	}
	if err := q.Pause(t.Context(), time.Now().Add(time.Hour)); !errors.Is(err, ErrNoConsumer) {
		t.Errorf("Pause without consumer: %v, want ErrNoConsumer", err)
	}
	if err := q.Resume(t.Context()); !errors.Is(err, ErrNoConsumer) {
		t.Errorf("Resume without consumer: %v, want ErrNoConsumer", err)
	}
}

// Ensure that Backlog reports pending, in-flight, oldest and DLQ depth.
func TestBacklog(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})
	b, err := q.Backlog(t.Context())
	if err != nil {
		t.Fatalf("Backlog: %v", err)
	}
	if b != (Backlog{}) {
		t.Errorf("empty Backlog = %+v, want zero", b)
	}
	before := time.Now()
	for i := range 3 {
		mustPublish(t, q, SubjectCreated, fmt.Sprint(i), []byte("x"), nil)
	}
	// No consumer yet: everything is pending.
	if b, err = q.Backlog(t.Context()); err != nil || b.Pending != 3 || b.AckPending != 0 {
		t.Fatalf("Backlog without consumer = %+v, %v; want Pending 3", b, err)
	}
	c := mustConsumer(t, q)
	msgs := fetchN(t, c, 2, 5*time.Second)
	if err := q.DeadLetter(t.Context(), msgs[0], DeadLetter{Code: "X"}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	waitFor(t, 5*time.Second, func() error {
		b, err = q.Backlog(t.Context())
		if err != nil {
			return err
		}
		if b.Pending != 1 || b.AckPending != 1 || b.DLQ != 1 {
			return fmt.Errorf("Backlog = %+v, want Pending 1, AckPending 1, DLQ 1", b)
		}
		return nil
	})
	if b.Oldest.Before(before.Add(-time.Second)) || b.Oldest.After(time.Now()) {
		t.Errorf("Oldest = %v, want between %v and now", b.Oldest, before)
	}
}

// Ensure NakDelay's growth, cap and jitter bounds.
func TestNakDelay(t *testing.T) {
	tests := []struct {
		n    uint64
		base time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{7, 64 * time.Second}, {8, 2 * time.Minute}, {100, 2 * time.Minute}, {1 << 63, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := nakDelay(tt.n, 0.5); got != tt.base {
				t.Errorf("nakDelay(%d, mid) = %s, want %s", tt.n, got, tt.base)
			}
			lo, hi := nakDelay(tt.n, 0), nakDelay(tt.n, 0.999999)
			if want := tt.base * 8 / 10; lo != want {
				t.Errorf("nakDelay(%d, 0) = %s, want %s", tt.n, lo, want)
			}
			if want := min(tt.base*12/10, 2*time.Minute); hi > want || hi < want-time.Millisecond {
				t.Errorf("nakDelay(%d, ~1) = %s, want about %s", tt.n, hi, want)
			}
			for range 100 {
				if d := NakDelay(tt.n); d < lo || d > 2*time.Minute {
					t.Fatalf("NakDelay(%d) = %s out of [%s, 2m]", tt.n, d, lo)
				}
			}
		})
	}
}
