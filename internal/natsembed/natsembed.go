// Package natsembed runs a NATS server with JetStream inside the process, for
// tests, the demo and the benchmark. Production binaries (worker, producer,
// fakeorg) must not import it: it links the whole NATS server.
package natsembed

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config configures an in-process NATS server with JetStream.
type Config struct {
	// Dir is the JetStream file store's directory (required). A server
	// started again on the same Dir finds its streams, consumers and
	// messages.
	Dir string
	// Listen opens a TCP client port on 127.0.0.1, so other processes can
	// connect; otherwise the server is reachable in-process only (Connect).
	Listen bool
	// Port is the TCP port when Listen is set; 0 picks a free one.
	Port int
	// ServerName names the server; default "orgsync-embedded".
	ServerName string
}

// readyTimeout bounds how long Run waits for the server.
const readyTimeout = 10 * time.Second

// Server is a running in-process NATS server with JetStream.
type Server struct {
	srv    *server.Server
	listen bool
}

// Run starts a NATS server with JetStream (file store in cfg.Dir) in
// this process and returns once it accepts connections. Signals are left to
// the host program and the server does not log.
func Run(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("natsembed: Dir is required")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "orgsync-embedded"
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		DontListen: !cfg.Listen,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
	}
	if cfg.Listen && cfg.Port != 0 {
		opts.Port = cfg.Port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	srv.Start() // does not block
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: not ready after %s", readyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: jetstream did not start (store dir %s)", cfg.Dir)
	}
	return &Server{srv: srv, listen: cfg.Listen}, nil
}

// ClientURL is the server's nats:// URL for other processes, or "" when it
// does not listen.
func (e *Server) ClientURL() string {
	if !e.listen {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect opens an in-process connection (no TCP) to the server; opts are
// applied after the in-process dialer.
func (e *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(e.srv)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect: %w", err)
	}
	return nc, nil
}

// NATS returns the underlying nats-server.
func (e *Server) NATS() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped. Connections are
// closed by the server; it is safe to call more than once.
func (e *Server) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
