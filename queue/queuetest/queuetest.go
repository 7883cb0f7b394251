// Package queuetest starts an embedded JetStream server for tests, with a
// connection and the orgsync queue on it, all cleaned up when the test ends.
package queuetest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/natsembed"
	"orgsync/queue"
)

// Config configures the embedded server (see natsembed.Config); Dir may be
// left empty.
type Config = natsembed.Config

// Server is an embedded JetStream server and a client connection to it.
type Server struct {
	*natsembed.Server
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Start runs an embedded server (its store in a test directory unless
// cfg.Dir is set) and connects to it in process.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	emb, err := natsembed.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Server: emb, Conn: nc, JS: js}
}

// Queue opens the orgsync queue (creating its streams) with cfg.
func (s *Server) Queue(t testing.TB, cfg queue.Config) *queue.Queue {
	t.Helper()
	q, err := queue.New(t.Context(), s.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
