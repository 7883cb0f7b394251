package pubsub_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

// clock is a settable test clock shared by the org and the event bus.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fake struct {
	org   *fakeorg.Org
	srv   *httptest.Server
	bus   *eventbus.Server
	addr  string
	roots *x509.CertPool
	clock *clock
	auth  *salesforce.Auth
	rest  *salesforce.Client
}

func startFake(t *testing.T, cfg eventbus.Config) *fake {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	org, err := fakeorg.New(fakeorg.Config{Seed: 1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	cfg.Org, cfg.Now = org, clk.Now
	bus, err := eventbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cert, pemBytes, err := eventbus.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bus.Serve(ln, credentials.NewServerTLSFromCert(&cert)) }()
	t.Cleanup(bus.Stop)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	auth, err := salesforce.NewAuth(context.Background(), salesforce.AuthConfig{
		URL: srv.URL, ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := salesforce.NewClient(salesforce.Config{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	return &fake{org: org, srv: srv, bus: bus, addr: ln.Addr().String(), roots: roots, clock: clk, auth: auth, rest: rest}
}

func (f *fake) client(t *testing.T, mutate func(*pubsub.Config)) *pubsub.Client {
	t.Helper()
	cfg := pubsub.Config{Addr: f.addr, Tokens: f.auth, TLS: &tls.Config{RootCAs: f.roots}}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := pubsub.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvEvents reads batches until n events arrived (keepalives skipped).
func recvEvents(t *testing.T, s *pubsub.Stream, n int) []*pubsub.Event {
	t.Helper()
	var out []*pubsub.Event
	for len(out) < n {
		b, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, b.Events...)
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d", len(out), n)
	}
	return out
}

func (f *fake) create(t *testing.T, rec salesforce.Record) string {
	t.Helper()
	res, err := f.rest.Create(t.Context(), "Account", rec)
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// subscribe opens a stream and waits until the server has positioned it,
// so that changes made afterwards reach it.
func (f *fake) subscribe(t *testing.T, c *pubsub.Client, preset pubsub.Preset, rid []byte) *pubsub.Stream {
	t.Helper()
	before := f.bus.Subscribers()
	s, err := c.Subscribe(t.Context(), "/data/AccountChangeEvent", preset, rid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for f.bus.Subscribers() <= before {
		select {
		case <-t.Context().Done():
			t.Fatal("subscription never positioned")
		case <-tick.C:
		}
	}
	return s
}
