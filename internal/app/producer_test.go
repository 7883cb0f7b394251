package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orgsync/capture"
	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

func fakeOrg(t *testing.T, cfg fakeorg.Config) (*fakeorg.Org, *httptest.Server) {
	t.Helper()
	cfg.Seed = 1
	org, err := fakeorg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	return org, srv
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ensure that records flow end to end: fake source → poll → JetStream →
// worker → fake target, every record exactly once, also across a poller
// restart.
func TestPollerToWorkerEndToEnd(t *testing.T) {
	nc := queuetest.Start(t, queuetest.Config{}).Conn
	src, srcSrv := fakeOrg(t, fakeorg.Config{PageSize: 150})
	dst, dstSrv := fakeOrg(t, fakeorg.Config{})
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	want := map[string]string{}
	insert := func(name string, at time.Time, extra fakeorg.Record) string {
		rec := fakeorg.Record{"Name": name, "Industry": "Testing"}
		for k, v := range extra {
			rec[k] = v
		}
		id, err := src.InsertAccount(rec, at)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = name
		return id
	}
	parent := insert("Parent", t0.Add(-time.Minute), nil)
	for i := range 1200 {
		insert(fmt.Sprintf("Same second %04d", i), t0, nil)
	}
	for i := range 100 {
		insert(fmt.Sprintf("Child %03d", i), t0.Add(time.Duration(i)*time.Second), fakeorg.Record{"ParentId": parent})
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dataDir := t.TempDir()
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- RunWorker(ctx, WorkerConfig{
			NATS:    NATSConfig{Conn: nc},
			Target:  salesforce.AuthConfig{URL: dstSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
			Engine:  replicate.Config{Linger: 50 * time.Millisecond, WorkerID: "w1"},
			DataDir: dataDir,
		})
	}()
	srcAuth := salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"}
	pollCfg := PollerConfig{
		NATS:    NATSConfig{Conn: nc},
		Source:  srcAuth,
		Poll:    capture.PollerConfig{Interval: 50 * time.Millisecond, PageLimit: 500, SkipField: capture.DefaultSkipField, RateLimit: -1},
		DataDir: dataDir,
	}

	// A first poller runs until it caught up, then stops (a restart).
	pctx, pcancel := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	var poller *capture.Poller
	ready := make(chan struct{})
	cfg1 := pollCfg
	cfg1.Ready = func(p *capture.Poller) { poller = p; close(ready) }
	go func() {
		_, err := RunPoller(pctx, cfg1)
		pollDone <- err
	}()
	<-ready
	waitFor(t, "the first poller to capture everything", 60*time.Second, func() bool {
		return poller.Totals().Captured() >= len(want)
	})
	pcancel()
	if err := <-pollDone; err != nil {
		t.Fatalf("RunPoller: %v", err)
	}

	// More records, one committed late behind the checkpoint, and a record
	// orgsync itself wrote into the source (two-way setup): skipped.
	insert("After restart", t0.Add(10*time.Minute), nil)
	insert("Late commit", t0.Add(50*time.Second), nil) // behind the checkpoint (t0+99s), inside -overlap
	if _, err := src.InsertAccount(fakeorg.Record{"Name": "Written by orgsync", "Source_Id__c": "001000000000042"}, t0.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := RunPoller(ctx, pollCfg)
		pollDone <- err
	}()

	waitFor(t, "every record in the target", 120*time.Second, func() bool {
		return len(dst.Accounts()) >= len(want)
	})
	// Let the pipeline settle, then check exactly once.
	waitFor(t, "the queue to drain", 60*time.Second, func() bool {
		js, _ := nc.JetStream()
		info, err := js.StreamInfo(queue.Stream)
		return err == nil && info.State.Msgs == 0
	})
	got := map[string][]fakeorg.Record{}
	for _, r := range dst.Accounts() {
		id, _ := r["Source_Id__c"].(string)
		n, err := salesforce.NormalizeID(id)
		if err != nil {
			t.Fatalf("target record without a valid Source_Id__c: %v", r)
		}
		got[n] = append(got[n], r)
	}
	for id, name := range want {
		recs := got[id]
		if len(recs) != 1 {
			t.Errorf("source %s: %d target records, want 1", id, len(recs))
			continue
		}
		if recs[0]["Name"] != name {
			t.Errorf("source %s: Name %v, want %q", id, recs[0]["Name"], name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d distinct records in the target, want %d", len(got), len(want))
	}
	cancel()
	for _, ch := range []chan error{workerDone, pollDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("did not stop")
		}
	}
}

// Ensure that -once catches up and returns what it captured.
func TestRunPollerOnce(t *testing.T) {
	nc := queuetest.Start(t, queuetest.Config{}).Conn
	src, srcSrv := fakeOrg(t, fakeorg.Config{})
	for i := range 30 {
		if _, err := src.InsertAccount(fakeorg.Record{"Name": fmt.Sprintf("A%d", i)}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := PollerConfig{
		NATS:    NATSConfig{Conn: nc},
		Source:  salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		Poll:    capture.PollerConfig{RateLimit: -1},
		DataDir: t.TempDir(),
		Once:    true,
	}
	st, err := RunPoller(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 30 {
		t.Errorf("got published %d, want 30", st.Published)
	}
	if _, err := os.Stat(ProducerStorePath(cfg.DataDir)); err != nil {
		t.Errorf("checkpoint file: %v", err)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orgsync test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Ensure that `producer serve` answers over TLS, enqueues a good request,
// serves /healthz, /readyz and /metrics, and stops when ctx is cancelled.
func TestRunServeTLS(t *testing.T) {
	nc := queuetest.Start(t, queuetest.Config{}).Conn
	certFile, keyFile, pool := selfSigned(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	const token = "tls-test-token"
	go func() {
		done <- RunServe(ctx, ServeConfig{
			NATS:    NATSConfig{Conn: nc},
			Ingest:  capture.IngestConfig{SourceOrg: "00D000000000ABC", Token: token},
			Listen:  "127.0.0.1:0",
			TLSCert: certFile, TLSKey: keyFile,
			Ready: func(a net.Addr) { addrc <- a },
		})
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("RunServe: %v", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + addr.String()
	body := `[{"Id":"` + salesforce.ID18("001000000000001") + `","Name":"TLS"}]`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/accounts", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: got %d %s, want 202", resp.StatusCode, b)
	}
	for path, want := range map[string]string{
		"/healthz": "ok", "/readyz": "ready",
		"/metrics": `orgsync_producer_captured_total{path="serve"} 1`,
	} {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: got %d, want 200 containing %q", path, resp.StatusCode, want)
		}
		if strings.Contains(string(b), token) {
			t.Errorf("GET %s shows the ingest token", path)
		}
	}
	// Plain HTTP is refused on the TLS port.
	if resp, err := http.Get("http://" + addr.String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunServe: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunServe did not stop")
	}
}
