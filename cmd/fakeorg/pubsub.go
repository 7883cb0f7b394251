package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"google.golang.org/grpc/credentials"

	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
)

// pubsubFlags configure the fake Pub/Sub API.
type pubsubFlags struct {
	addr, cert, key string
	cfg             eventbus.Config
}

func (p *pubsubFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.addr, "pubsub-addr", "", "listen `address` of the Pub/Sub API (gRPC over TLS; off when empty; port 0 picks a free one)")
	fs.DurationVar(&p.cfg.Retention, "event-retention", eventbus.DefaultRetention, "how long change events can be replayed")
	fs.StringVar(&p.cert, "pubsub-tls-cert", "", "PEM certificate `file` of the Pub/Sub API (a self-signed one is made at start when empty)")
	fs.StringVar(&p.key, "pubsub-tls-key", "", "PEM private key `file` for -pubsub-tls-cert")
}

// start serves the Pub/Sub API when -pubsub-addr is set and returns the
// HTTP handler (the org, plus the Pub/Sub admin endpoints when serving).
func (p *pubsubFlags) start(org *fakeorg.Org, logger *slog.Logger, stdout io.Writer) (*eventbus.Server, http.Handler, error) {
	if p.addr == "" {
		return nil, org, nil
	}
	if p.cfg.Retention <= 0 {
		return nil, nil, errors.New("-event-retention must be positive")
	}
	var cert tls.Certificate
	var err error
	switch {
	case p.cert != "" && p.key != "":
		cert, err = tls.LoadX509KeyPair(p.cert, p.key)
	case p.cert != "" || p.key != "":
		err = errors.New("-pubsub-tls-cert and -pubsub-tls-key go together")
	default:
		host, _, _ := net.SplitHostPort(p.addr)
		cert, _, err = eventbus.SelfSigned(host)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pubsub tls: %w", err)
	}
	p.cfg.Org, p.cfg.Logger = org, logger
	bus, err := eventbus.New(p.cfg)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return nil, nil, err
	}
	go func() {
		if err := bus.Serve(ln, credentials.NewServerTLSFromCert(&cert)); err != nil {
			logger.Error("pubsub server stopped", "err", err)
		}
	}()
	fmt.Fprintf(stdout, "fakeorg pubsub listening on %s\n", ln.Addr())
	return bus, bus.AdminHandler(org), nil
}
