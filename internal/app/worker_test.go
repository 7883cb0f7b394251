package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// A worker started before its NATS server waits for it (as compose may
// start them) instead of exiting, and then syncs.
func TestWorkerWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	// Until NATS runs, a plain listener holds its port: it counts the
	// worker's connection attempts and closes each one.
	attempts := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case attempts <- struct{}{}:
			default:
			}
		}
	}()
	defer ln.Close()

	org, err := fakeorg.New(fakeorg.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunWorker(ctx, WorkerConfig{
			NATS:    NATSConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)},
			Target:  salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
			DataDir: t.TempDir(), Engine: replicate.Config{WorkerID: "early", Linger: 20 * time.Millisecond},
		})
	}()
	// A failed attempt and another one: the worker retries instead of exiting.
	for range 2 {
		select {
		case err := <-done:
			t.Fatalf("the worker gave up before NATS started: %v", err)
		case <-attempts:
		case <-time.After(30 * time.Second):
			t.Fatal("the worker did not try to connect to NATS again within 30s")
		}
	}
	ln.Close()

	q := queuetest.Start(t, queuetest.Config{Listen: true, Port: port}).Queue(t, queue.Config{})
	ev := event.Event{V: 1, Type: event.TypeAccountCreated, SourceOrg: salesforce.ID18("00D0000000SRC01"),
		SourceID: salesforce.ID18("001SRC000000001"), Fields: map[string]any{"Name": "Early"}}
	body, _ := ev.Encode()
	if _, err := q.Publish(t.Context(), queue.AccountSubject(ev.Change(), ev.SourceID), ev.MsgID(), body, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for org.Stats().Records["Account"] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the record did not reach the target")
		}
		select {
		case err := <-done:
			t.Fatalf("worker stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWorker: %v", err)
	}
}

// A worker started on a stream still in the single-consumer layout exits
// with an error that names `worker migrate`, instead of waiting forever.
func TestWorkerRefusesTheLegacyLayout(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	q := ns.Queue(t, queue.Config{})
	if _, err := q.LegacyConsumer(t.Context()); err != nil { // the old release's consumer "workers"
		t.Fatal(err)
	}
	org, err := fakeorg.New(fakeorg.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = RunWorker(ctx, WorkerConfig{
		NATS:    NATSConfig{URL: ns.ClientURL()},
		Target:  salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		DataDir: t.TempDir(), Engine: replicate.Config{WorkerID: "new"},
	})
	if ctx.Err() != nil {
		t.Fatal("the worker waited instead of exiting")
	}
	if !errors.Is(err, queue.ErrLegacyLayout) || !strings.Contains(err.Error(), "worker migrate") {
		t.Errorf("RunWorker = %v, want the legacy layout named with `worker migrate`", err)
	}
}
