package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
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

// embeddedReadyTimeout bounds how long RunEmbedded waits for the server.
const embeddedReadyTimeout = 10 * time.Second

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv    *server.Server
	listen bool
}

// RunEmbedded starts a NATS server with JetStream (file store in cfg.Dir) in
// this process and returns once it accepts connections. Signals are left to
// the host program and the server does not log.
func RunEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("queue: embedded server: Dir is required")
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
		return nil, fmt.Errorf("queue: embedded server: %w", err)
	}
	srv.Start() // does not block
	if !srv.ReadyForConnections(embeddedReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("queue: embedded server: not ready after %s", embeddedReadyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("queue: embedded server: jetstream did not start (store dir %s)", cfg.Dir)
	}
	return &Embedded{srv: srv, listen: cfg.Listen}, nil
}

// ClientURL is the server's nats:// URL for other processes, or "" when it
// does not listen.
func (e *Embedded) ClientURL() string {
	if !e.listen {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect opens an in-process connection (no TCP) to the server; opts are
// applied after the in-process dialer.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(e.srv)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("queue: connect to embedded server: %w", err)
	}
	return nc, nil
}

// Server returns the underlying nats-server.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped. Connections are
// closed by the server; it is safe to call more than once.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
