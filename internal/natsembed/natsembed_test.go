package natsembed

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ensure that a listening server serves TCP clients with JetStream, and an
// in-process one does not advertise a URL but serves in-process connections.
func TestRun_ListenAndInProcess(t *testing.T) {
	e, err := Run(Config{Dir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(e.Shutdown)
	url := e.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats.Connect(%s): %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatalf("CreateStream over TCP: %v", err)
	}
	if _, err := js.Publish(t.Context(), "s", []byte("a")); err != nil {
		t.Fatalf("Publish over TCP: %v", err)
	}

	in, err := Run(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(in.Shutdown)
	if in.ClientURL() != "" {
		t.Errorf("in-process server ClientURL = %q, want empty", in.ClientURL())
	}
	inc, err := in.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(inc.Close)
	ijs, err := jetstream.New(inc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if _, err := ijs.AccountInfo(t.Context()); err != nil {
		t.Errorf("JetStream over the in-process connection: %v", err)
	}
	in.Shutdown()
	in.Shutdown() // idempotent
}

// Ensure that Run refuses a config without a store directory.
func TestRun_NeedsDir(t *testing.T) {
	if _, err := Run(Config{}); err == nil || !strings.Contains(err.Error(), "Dir is required") {
		t.Errorf("Run without Dir: err = %v, want Dir is required", err)
	}
}
