package replicate

import (
	"errors"
	"sync/atomic"
	"testing"
)

// newSlotWorker is a worker with n batch slots and nothing else, for the
// tests of takeSlot.
func newSlotWorker(n int) *Worker {
	w := &Worker{slots: make(chan struct{}, n)}
	w.state.init()
	return w
}

// A batch slot is given only while the pool runs and the worker is not
// stopped; shutdown or a stop hands the records back instead.
func TestTakeSlot(t *testing.T) {
	errCreds := errors.New("credentials refused")
	tests := []struct {
		name      string
		stopped   error // this worker stopped for this cause
		shutdown  bool  // shutdown started
		full      bool  // every slot taken
		wantOK    bool
		wantCause error
	}{
		{name: "running, a slot free", wantOK: true},
		{name: "this worker stopped", stopped: errCreds, wantCause: errCreds},
		{name: "shutdown started", shutdown: true},
		{name: "shutdown while every slot is taken", shutdown: true, full: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSlotWorker(1)
			if tt.stopped != nil {
				w.state.local[kindAuth] = tt.stopped
			}
			if tt.full {
				w.slots <- struct{}{}
			}
			shutdown := make(chan struct{})
			if tt.shutdown {
				close(shutdown)
			}
			release, ok, cause := w.takeSlot(&run{shutdown: shutdown})
			if ok != tt.wantOK || !errors.Is(cause, tt.wantCause) {
				t.Fatalf("takeSlot = ok %v, cause %v; want ok %v, cause %v", ok, cause, tt.wantOK, tt.wantCause)
			}
			want := 0
			if tt.full {
				want = 1
			}
			if ok {
				if len(w.slots) != 1 {
					t.Errorf("%d slots taken while writing, want 1", len(w.slots))
				}
				release()
			}
			if len(w.slots) != want {
				t.Errorf("%d slots taken at the end, want %d", len(w.slots), want)
			}
		})
	}
}

// Records that got to a slot while the pool is paused wait, holding no
// slot, and get one only when the pool resumes.
func TestTakeSlotWaitsForThePool(t *testing.T) {
	w := newSlotWorker(1)
	w.state.mu.Lock()
	w.state.pausedPool()
	w.state.mu.Unlock()
	var resumed atomic.Bool
	type result struct {
		ok, afterResume bool
		slots           int
	}
	got := make(chan result, 1)
	go func() {
		release, ok, _ := w.takeSlot(&run{shutdown: make(chan struct{})})
		r := result{ok: ok, afterResume: resumed.Load(), slots: len(w.slots)}
		if ok {
			release()
		}
		got <- r
	}()
	resumed.Store(true)
	w.state.mu.Lock()
	w.state.resumedPool()
	w.state.mu.Unlock()
	r := <-got
	if !r.ok || !r.afterResume || r.slots != 1 {
		t.Errorf("takeSlot through a pause: ok %v, after the resume %v, slots taken %d; want true, true, 1", r.ok, r.afterResume, r.slots)
	}
}

// Shutdown during a pool pause hands the records back.
func TestTakeSlotShutdownDuringPause(t *testing.T) {
	w := newSlotWorker(1)
	w.state.mu.Lock()
	w.state.pausedPool()
	w.state.mu.Unlock()
	shutdown := make(chan struct{})
	got := make(chan bool, 1)
	go func() {
		_, ok, _ := w.takeSlot(&run{shutdown: shutdown})
		got <- ok
	}()
	close(shutdown)
	if <-got {
		t.Error("takeSlot gave a slot at shutdown during a pause")
	}
	if len(w.slots) != 0 {
		t.Errorf("%d slots taken after shutdown, want 0", len(w.slots))
	}
}
