package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/credentials"

	"orgsync/internal/natsembed"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
)

func TestCDCUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"cdc", "-since", "yesterday"}, "-since"},
		{[]string{"cdc", "-overlap", "-1s"}, "-overlap"},
		{[]string{"cdc", "-idle-timeout", "0s"}, "-idle-timeout"},
		{[]string{"cdc", "-source-url", "https://x.my.salesforce.com", "-source-access-token", "t"}, "needs -source-org-id"},
		{[]string{"cdc", "extra"}, "no arguments"},
	} {
		code, _, stderr := runCmd(t, tt.args, env(nil), "")
		if code != 2 || !strings.Contains(stderr, tt.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.wantErr)
		}
	}
}

// TestCDCCommand runs `producer cdc` against the fake org's Pub/Sub API
// (certificate checking off) and sees a create reach JetStream, with the
// -since catch-up of an older one, then an update and a delete on their
// records' subjects.
func TestCDCCommand(t *testing.T) {
	emb, url := natsServer(t)
	org, err := fakeorg.New(fakeorg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	bus, err := eventbus.New(eventbus.Config{Org: org})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bus.AdminHandler(org))
	defer srv.Close()
	cert, _, err := eventbus.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bus.Serve(ln, credentials.NewServerTLSFromCert(&cert)) }()
	defer bus.Stop()
	older, err := org.InsertAccount(fakeorg.Record{"Name": "older"}, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	args := []string{"cdc", "-nats-url", url, "-source-url", srv.URL, "-source-client-id", fakeorg.DefaultClientID,
		"-source-client-secret", fakeorg.DefaultClientSecret, "-pubsub-addr", ln.Addr().String(), "-pubsub-insecure",
		"-since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "-data-dir", filepath.Join(t.TempDir(), "d")}
	done := make(chan int, 1)
	var stdout, stderr syncBuf
	go func() { done <- run(ctx, args, env(nil), strings.NewReader(""), &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for bus.Subscribers() == 0 || streamMsgsOr0(t, emb) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no subscription or catch-up: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	newer, err := org.InsertAccount(fakeorg.Record{"Name": "newer"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for streamMsgsOr0(t, emb) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("create not captured: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: srv.URL, ClientID: fakeorg.DefaultClientID,
		ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: a}) // someone else's writes: no client=orgsync
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(t.Context(), "Account", newer, salesforce.Record{"Name": "newer renamed"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), "Account", older); err != nil {
		t.Fatal(err)
	}
	for streamMsgsOr0(t, emb) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("update and delete not captured: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "published 4") {
		t.Errorf("stdout %q", stdout.String())
	}
	got := storedEvents(t, emb)
	for i, want := range []string{
		queue.PartitionedSubject("updated", newer, queue.PartitionOf(newer, queue.DefaultPartitions)),
		queue.PartitionedSubject("deleted", older, queue.PartitionOf(older, queue.DefaultPartitions)),
	} {
		if len(got) != 4 || !strings.HasPrefix(got[2+i], want+" ") {
			t.Errorf("stream %q: want message %d on %s", got, 2+i, want)
		}
	}
	if strings.Contains(stderr.String(), fakeorg.DefaultClientSecret) {
		t.Error("the client secret reached the log")
	}
}

// syncBuf is a goroutine-safe buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// streamMsgsOr0 is the number of messages in ORGSYNC, 0 before it exists.
func streamMsgsOr0(t *testing.T, emb *natsembed.Server) uint64 {
	t.Helper()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), queue.Stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(t.Context())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}
