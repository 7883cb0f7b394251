package capture_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/capture"
	"orgsync/salesforce/fakeorg"
)

// lockedBuffer is a log sink a running poller may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A cycle that published something logs at INFO; one that only re-read the
// overlap logs at DEBUG.
func TestPoller_CycleLogLevels(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	e.insert("log", 3, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }, nil)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, _ := e.poller(e.dbPath(), func(c *capture.PollerConfig) { c.Logger = log })
	for range 2 {
		if _, err := p.Once(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var cycles []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="poll cycle"`) {
			cycles = append(cycles, l)
		}
	}
	if len(cycles) != 2 {
		t.Fatalf("got %d poll cycle lines, want 2:\n%s", len(cycles), logs.String())
	}
	if !strings.Contains(cycles[0], "level=INFO") || !strings.Contains(cycles[0], "published=3") {
		t.Errorf("first cycle: %s; want INFO with published=3", cycles[0])
	}
	if !strings.Contains(cycles[1], "level=DEBUG") || !strings.Contains(cycles[1], "published=0") {
		t.Errorf("second cycle: %s; want DEBUG with published=0", cycles[1])
	}
}

// Polling every second would use 86,400 calls a day: the poller warns when
// that is more than -api-budget of the org's daily limit.
func TestPoller_WarnsWhenIntervalExceedsBudget(t *testing.T) {
	for _, tt := range []struct {
		limit int
		warn  bool
	}{{limit: 100000, warn: true}, {limit: 200000, warn: false}} {
		e := newEnv(t, fakeorg.Config{DailyAPILimit: tt.limit})
		var logs lockedBuffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		p, _ := e.poller(e.dbPath(), func(c *capture.PollerConfig) {
			c.Logger, c.Interval, c.APIBudget = log, time.Second, 0.5
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		// The check follows the first cycle: a second cycle proves it ran.
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs.String(), `msg="poll cycle"`) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want := "at -interval 1s the poller makes at least 86400 source API calls a day, more than -api-budget 0.5 of the org's daily limit of 100000 calls (50000)"
		if got := strings.Contains(logs.String(), want); got != tt.warn {
			t.Errorf("daily limit %d: warning logged = %v, want %v:\n%s", tt.limit, got, tt.warn, logs.String())
		}
	}
}
