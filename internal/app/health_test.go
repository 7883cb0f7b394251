package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/capture"
	"orgsync/queue/queuetest"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// logBuffer collects a running process's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// freePort returns a loopback port nothing listens on (yet).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// get returns the status and body of GET url, or 0 when nothing answers.
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitAnswer waits until GET url answers status with exactly body.
func waitAnswer(t *testing.T, url string, status int, body string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var gotCode int
	var gotBody string
	for {
		if gotCode, gotBody = get(url); gotCode == status && gotBody == body {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got %d %q, want %d %q", url, gotCode, gotBody, status, body)
		}
		select {
		case err := <-done:
			t.Fatalf("the process stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, logs *logBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %s:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The admin listener starts before NATS is there: /healthz answers, /readyz
// says what the worker waits for, and the log says so at once; once NATS
// and a token are there the worker is ready.
func TestWorkerHealthBeforeNATS(t *testing.T) {
	natsPort, adminPort := freePort(t), freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	_, srv := fakeOrg(t, fakeorg.Config{})
	var logs logBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunWorker(ctx, WorkerConfig{
			NATS:        NATSConfig{URL: natsURL},
			Target:      salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
			DataDir:     t.TempDir(),
			Engine:      replicate.Config{WorkerID: "early"},
			MetricsAddr: fmt.Sprintf("127.0.0.1:%d", adminPort),
			Logger:      logs.logger(),
		})
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	waitAnswer(t, base+"/healthz", 200, "ok\n", done)
	waitAnswer(t, base+"/readyz", 503, "not ready: waiting for NATS at "+natsURL+"\n", done)
	waitLog(t, &logs, `"level":"WARN","msg":"waiting for NATS at `+natsURL+`"`)

	queuetest.Start(t, queuetest.Config{Listen: true, Port: natsPort})
	waitAnswer(t, base+"/readyz", 200, "ready\n", done)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWorker: %v", err)
	}
}

// A worker that cannot get a token is not ready from the start, says why,
// and does not start its engine (it fetches nothing).
func TestWorkerNotReadyWithoutToken(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	_, srv := fakeOrg(t, fakeorg.Config{})
	adminPort := freePort(t)
	var logs logBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	started := make(chan struct{}, 1)
	go func() {
		done <- RunWorker(ctx, WorkerConfig{
			NATS:        NATSConfig{URL: ns.ClientURL()},
			Target:      salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "wrong-secret"},
			DataDir:     t.TempDir(),
			Engine:      replicate.Config{WorkerID: "badcreds"},
			MetricsAddr: fmt.Sprintf("127.0.0.1:%d", adminPort),
			Logger:      logs.logger(),
			Ready:       func(*replicate.Worker) { started <- struct{}{} },
		})
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	want := "not ready: waiting for a token for the target org (salesforce: token request (client_credentials): 400 invalid_client: invalid client credentials)\n"
	waitAnswer(t, base+"/readyz", 503, want, done)
	select {
	case <-started:
		t.Error("the engine started without a token")
	default:
	}
	waitLog(t, &logs, `"msg":"cannot get a token for the target org; not ready, retrying"`)
	if strings.Contains(logs.String(), "wrong-secret") {
		t.Error("the log shows the client secret")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWorker: %v", err)
	}
}

// The poller's admin listener also starts first.
func TestPollerHealthBeforeNATS(t *testing.T) {
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	_, srv := fakeOrg(t, fakeorg.Config{})
	adminPort := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := RunPoller(ctx, PollerConfig{
			NATS:        NATSConfig{URL: natsURL},
			Source:      salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
			DataDir:     t.TempDir(),
			Poll:        capture.PollerConfig{Interval: time.Second},
			MetricsAddr: fmt.Sprintf("127.0.0.1:%d", adminPort),
		})
		done <- err
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	waitAnswer(t, base+"/healthz", 200, "ok\n", done)
	waitAnswer(t, base+"/readyz", 503, "not ready: waiting for NATS at "+natsURL+"\n", done)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunPoller: %v", err)
	}
}

// producer serve listens before NATS is up and answers 503, which the Apex
// caller retries, naming what it waits for.
func TestServeBeforeNATS(t *testing.T) {
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	port := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunServe(ctx, ServeConfig{
			NATS:   NATSConfig{URL: natsURL},
			Ingest: capture.IngestConfig{SourceOrg: "00D000000000ABC", Token: "t"},
			Listen: fmt.Sprintf("127.0.0.1:%d", port),
		})
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitAnswer(t, base+"/readyz", 503, "not ready: waiting for NATS at "+natsURL+"\n", done)
	resp, err := http.Post(base+"/v1/accounts", "application/json", strings.NewReader("[]"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"error":"not ready: waiting for NATS at ` + natsURL + `"}` + "\n"; resp.StatusCode != 503 || string(b) != want {
		t.Errorf("POST: got %d %q, want 503 %q", resp.StatusCode, b, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunServe: %v", err)
	}
}

// A poller that cannot get a token for the source org is not ready from
// the start and says why.
func TestPollerNotReadyWithoutToken(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	_, srv := fakeOrg(t, fakeorg.Config{})
	adminPort := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := RunPoller(ctx, PollerConfig{
			NATS:        NATSConfig{URL: ns.ClientURL()},
			Source:      salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "wrong-secret"},
			DataDir:     t.TempDir(),
			MetricsAddr: fmt.Sprintf("127.0.0.1:%d", adminPort),
		})
		done <- err
	}()
	want := "not ready: waiting for a token for the source org (salesforce: token request (client_credentials): 400 invalid_client: invalid client credentials)\n"
	waitAnswer(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort), 503, want, done)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunPoller: %v", err)
	}
}
