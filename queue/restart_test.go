package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/natsembed"
)

// Ensure that a server restarted on the same Dir keeps streams, consumer and
// messages, and that New then finds the topology unchanged.
func TestRestartKeepsTopology(t *testing.T) {
	dir := t.TempDir()
	e, err := natsembed.Run(natsembed.Config{Dir: dir, ServerName: "first"})
	if err != nil {
		t.Fatalf("natsembed.Run: %v", err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	q := mustNew(t, js, Config{AckWait: 45 * time.Second})
	c := mustConsumer(t, q)
	for _, id := range []string{"a", "b", "c"} {
		mustPublish(t, q, SubjectCreated, id, []byte(id), nil)
	}
	m := fetchN(t, c, 1, 5*time.Second)[0]
	if err := q.DeadLetter(t.Context(), m, DeadLetter{Code: "X"}); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	waitStreamMsgs(t, js, Stream, 2)
	nc.Close()
	e.Shutdown()
	e.Shutdown() // idempotent

	ts := startServer(t, dir)
	if got := streamMsgs(t, ts.js, Stream); got != 2 {
		t.Errorf("after restart ORGSYNC holds %d messages, want 2", got)
	}
	if got := streamMsgs(t, ts.js, DLQStream); got != 1 {
		t.Errorf("after restart ORGSYNC_DLQ holds %d messages, want 1", got)
	}
	log, buf := newLogger()
	q2 := mustNew(t, ts.js, Config{AckWait: 45 * time.Second, Logger: log})
	c2 := mustConsumer(t, q2)
	if strings.Contains(buf.String(), "created") || strings.Contains(buf.String(), "differs") {
		t.Errorf("restart re-created or found a changed topology:\n%s", buf)
	}
	got := fetchN(t, c2, 2, 5*time.Second)
	if string(got[0].Data()) != "b" || string(got[1].Data()) != "c" {
		t.Errorf("after restart fetched %q, %q; want b, c", got[0].Data(), got[1].Data())
	}
}
