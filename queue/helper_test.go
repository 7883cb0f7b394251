package queue

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/natsembed"
)

// testServer is an embedded server with one in-process connection.
type testServer struct {
	e  *natsembed.Server
	nc *nats.Conn
	js jetstream.JetStream
}

// startServer runs an embedded JetStream server in dir (t.TempDir() when
// empty) and connects to it; both stop at the end of the test.
func startServer(t *testing.T, dir string) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e, err := natsembed.Run(natsembed.Config{Dir: dir})
	if err != nil {
		t.Fatalf("natsembed.Run: %v", err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return &testServer{e: e, nc: nc, js: js}
}

// mustNew is New that fails the test on error.
func mustNew(t *testing.T, js jetstream.JetStream, cfg Config) *Queue {
	t.Helper()
	q, err := New(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return q
}

// mustConsumer is Queue.Consumer that fails the test on error.
func mustConsumer(t *testing.T, q *Queue) *Consumer {
	t.Helper()
	c, err := q.LegacyConsumer(t.Context())
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	return c
}

// mustPublish publishes body on subject with msgID.
func mustPublish(t *testing.T, q *Queue, subject, msgID string, body []byte, hdr nats.Header) {
	t.Helper()
	if _, err := q.Publish(t.Context(), subject, msgID, body, hdr); err != nil {
		t.Fatalf("Publish(%s, %s): %v", subject, msgID, err)
	}
}

// fetchN fetches until it holds n messages or the deadline passes.
func fetchN(t *testing.T, c *Consumer, n int, within time.Duration) []jetstream.Msg {
	t.Helper()
	deadline := time.Now().Add(within)
	var got []jetstream.Msg
	for len(got) < n && time.Now().Before(deadline) {
		msgs, err := c.Fetch(t.Context(), n-len(got), min(time.Until(deadline), time.Second))
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		got = append(got, msgs...)
	}
	if len(got) != n {
		t.Fatalf("fetched %d messages within %s, want %d", len(got), within, n)
	}
	return got
}

// event is an event body as the producer writes it.
func event(org, id, name string) []byte {
	return fmt.Appendf(nil, `{"v":1,"type":"account.created","source_org":%q,"source_id":%q,"fields":{"Name":%q}}`, org, id, name)
}

// waitFor polls cond until it returns nil or within passes.
func waitFor(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", within, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test context done: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// streamMsgs returns the number of messages in a stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("Stream(%s): %v", name, err)
	}
	return s.CachedInfo().State.Msgs
}

// waitStreamMsgs waits until stream name holds want messages.
func waitStreamMsgs(t *testing.T, js jetstream.JetStream, name string, want uint64) {
	t.Helper()
	waitFor(t, 5*time.Second, func() error {
		if got := streamMsgs(t, js, name); got != want {
			return fmt.Errorf("%s holds %d messages, want %d", name, got, want)
		}
		return nil
	})
}

// logBuffer collects slog text output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLogger returns a debug-level text logger writing to a new logBuffer.
func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// ctxTimeout is a child of t.Context() with a timeout.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
