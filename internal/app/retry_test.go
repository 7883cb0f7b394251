package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"orgsync/queue"
)

func TestRetrySetup(t *testing.T) {
	calls := 0
	err := retrySetup(t.Context(), discard(), "test", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("no stream leader")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("retrySetup = %v after %d calls, want nil after 3", err, calls)
	}

	bad := fmt.Errorf("%w: replicas", queue.ErrInvalidConfig)
	calls = 0
	if err := retrySetup(t.Context(), discard(), "test", func(context.Context) error { calls++; return bad }); !errors.Is(err, queue.ErrInvalidConfig) || calls != 1 {
		t.Errorf("invalid config: %v after %d calls, want it at once", err, calls)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = retrySetup(ctx, discard(), "test", func(context.Context) error { return errors.New("down") })
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("with the context ending: %v after %v", err, time.Since(start))
	}
}
