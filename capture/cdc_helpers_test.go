package capture_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"orgsync/capture"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

// cdcEnv is env plus the fake Pub/Sub API.
type cdcEnv struct {
	*env
	bus  *eventbus.Server
	addr string
	tls  *tls.Config
}

func newCDCEnv(t *testing.T, busCfg eventbus.Config) *cdcEnv {
	t.Helper()
	return newCDCEnvOrg(t, fakeorg.Config{}, busCfg)
}

// newCDCEnvOrg is newCDCEnv with a fake org configured by orgCfg.
func newCDCEnvOrg(t *testing.T, orgCfg fakeorg.Config, busCfg eventbus.Config) *cdcEnv {
	t.Helper()
	e := newEnv(t, orgCfg)
	busCfg.Org = e.org
	bus, err := eventbus.New(busCfg)
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
	return &cdcEnv{env: e, bus: bus, addr: ln.Addr().String(), tls: &tls.Config{RootCAs: roots}}
}

// running is a CDC capture running in the background.
type running struct {
	cdc  *capture.CDC
	stop func()
}

// start runs a CDC capture on the store at path until the returned stop
// (or the test's end).
func (e *cdcEnv) start(path string, mutate func(*capture.CDCConfig, *pubsub.Config)) *running {
	e.t.Helper()
	st := openStore(e.t, path)
	rest := e.client()
	pcfg := pubsub.Config{Addr: e.addr, Tokens: restAuth(e), TLS: e.tls, IdleTimeout: 5 * time.Second}
	cfg := capture.CDCConfig{Client: rest, Queue: e.q, Store: st, SkipField: capture.DefaultSkipField,
		Settle: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg, &pcfg)
	}
	ps, err := pubsub.Dial(pcfg)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.PubSub = ps
	c, err := capture.NewCDC(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			ps.Close()
			st.Close()
		})
	}
	e.t.Cleanup(stop)
	return &running{cdc: c, stop: stop}
}

func restAuth(e *cdcEnv) *salesforce.Auth {
	e.t.Helper()
	a, err := salesforce.NewAuth(e.t.Context(), salesforce.AuthConfig{URL: e.srv.URL,
		ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// eventually waits for cond, failing the test after 30 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// ready waits until the capture is ready and the fake has positioned its
// subscription (so that changes made afterwards reach it).
func (e *cdcEnv) ready(r *running) {
	e.t.Helper()
	eventually(e.t, "cdc ready", func() bool { return r.cdc.Ready() == nil && e.bus.Subscribers() == 1 })
}

// storedCount is the number of distinct source IDs in ORGSYNC.
func (e *cdcEnv) storedCount() int {
	_, counts := e.stored()
	return len(counts)
}

// userClient is a client of the fake source org that, unlike orgsync's,
// sends no Sforce-Call-Options: its writes are someone else's.
func (e *cdcEnv) userClient() *salesforce.Client {
	e.t.Helper()
	c, err := salesforce.NewClient(salesforce.Config{Auth: restAuth(e)})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// createREST creates n accounts through the REST API, as a user other than
// orgsync, and returns their IDs.
func (e *cdcEnv) createREST(prefix string, n int) []string {
	e.t.Helper()
	c := e.userClient()
	var ids []string
	for i := range n {
		res, err := c.Create(e.t.Context(), "Account", salesforce.Record{"Name": prefix + "-" + string(rune('a'+i%26)),
			"BillingCity": "Paris", "BillingStreet": "1 Rue", "Industry": "Energy"})
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	return ids
}
