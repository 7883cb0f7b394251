package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"orgsync/replicate"
)

func TestAdminEndpoints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	replicate.NewMetrics(reg)
	var notReady atomic.Value
	notReady.Store("")
	ready := func() error {
		if s := notReady.Load().(string); s != "" {
			return errors.New(s)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveAdmin(ctx, ln, reg, ready, discard()) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	notReady.Store("pool paused: budget")
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "pool paused: budget") {
		t.Errorf("/readyz while paused = %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "orgsync_paused") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing series:\n%.500s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveAdmin: %v", err)
	}
}

func TestRedact(t *testing.T) {
	if got := redact("nats://user:s3cret@host:4222"); strings.Contains(got, "s3cret") {
		t.Errorf("redact kept the password: %q", got)
	}
	if got := redact("nats://host:4222"); got != "nats://host:4222" {
		t.Errorf("redact changed a URL without credentials: %q", got)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
