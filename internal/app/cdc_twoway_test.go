package app

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"orgsync/capture"
	"orgsync/queue"
	"orgsync/queue/queuetest"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

// TestCDCSkipsTheWorkersWrites is a two-way setup end to end: the worker
// replicates an Account from org A into org B, and `producer cdc` captures
// org B. The worker's write reaches B with Sforce-Call-Options:
// client=orgsync, so its change event's changeOrigin carries client=orgsync
// and the capture skips it; an Account another client creates in B is
// published. No admin override of changeOrigin is involved.
func TestCDCSkipsTheWorkersWrites(t *testing.T) {
	ncA := queuetest.Start(t, queuetest.Config{}).Conn // A -> worker -> B
	ncB := queuetest.Start(t, queuetest.Config{}).Conn // B's change events
	src, srcSrv := fakeOrg(t, fakeorg.Config{})
	dst, dstSrv := fakeOrg(t, fakeorg.Config{})
	bus, err := eventbus.New(eventbus.Config{Org: dst})
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := eventbus.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bus.Serve(ln, credentials.NewServerTLSFromCert(&cert)) }()
	t.Cleanup(bus.Stop)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dstAuth := salesforce.AuthConfig{URL: dstSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"}
	cdcReady := make(chan *capture.CDC, 1)
	cdcDone := make(chan error, 1)
	go func() {
		_, err := RunCDC(ctx, CDCConfig{NATS: NATSConfig{Conn: ncB}, Source: dstAuth, PubSubAddr: ln.Addr().String(),
			PubSubInsecure: true, DataDir: t.TempDir(), Ready: func(c *capture.CDC) { cdcReady <- c }})
		cdcDone <- err
	}()
	var cdc *capture.CDC
	select {
	case cdc = <-cdcReady:
	case <-time.After(60 * time.Second):
		t.Fatal("producer cdc did not start")
	}
	waitFor(t, "producer cdc subscribed", 60*time.Second, func() bool { return cdc.Ready() == nil && bus.Subscribers() == 1 })

	workerDone := make(chan error, 1)
	go func() {
		workerDone <- RunWorker(ctx, WorkerConfig{NATS: NATSConfig{Conn: ncA}, Target: dstAuth,
			Engine: replicate.Config{Linger: 20 * time.Millisecond, WorkerID: "w1"}, DataDir: t.TempDir()})
	}()
	pollDone := make(chan error, 1)
	go func() {
		_, err := RunPoller(ctx, PollerConfig{NATS: NATSConfig{Conn: ncA},
			Source:  salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
			Poll:    capture.PollerConfig{Interval: 50 * time.Millisecond, SkipField: capture.DefaultSkipField, RateLimit: -1},
			DataDir: t.TempDir()})
		pollDone <- err
	}()
	if _, err := src.InsertAccount(fakeorg.Record{"Name": "From A"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker's write in B", 60*time.Second, func() bool { return len(dst.Accounts()) == 1 })
	replicated := dst.Accounts()[0]["Id"].(string)

	// Someone else creates an Account in B.
	a, err := salesforce.NewAuth(ctx, dstAuth)
	if err != nil {
		t.Fatal(err)
	}
	user, err := salesforce.NewClient(salesforce.Config{Auth: a, CallOptions: "client=DataLoader"})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := user.Create(ctx, "Account", salesforce.Record{"Name": "Made in B"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both creates handled", 60*time.Second, func() bool { return cdc.Totals().Events[pubsub.ChangeCreate] == 2 })
	waitFor(t, "a message in B's stream", 60*time.Second, func() bool {
		js, _ := ncB.JetStream()
		info, err := js.StreamInfo(queue.Stream)
		return err == nil && info.State.Msgs >= 1
	})
	tot := cdc.Totals()
	if tot.OwnChanges != 1 || tot.Published != 1 {
		t.Fatalf("own changes %d, published %d; want the worker's write skipped and the other published", tot.OwnChanges, tot.Published)
	}
	js, _ := ncB.JetStream()
	info, err := js.StreamInfo(queue.Stream)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("B's stream: %v, %+v; want one message", err, info)
	}
	msg, err := js.GetMsg(queue.Stream, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	body := string(msg.Data)
	if !strings.Contains(body, theirs.ID[:15]) || strings.Contains(body, replicated[:15]) {
		t.Fatalf("published %s; want %s (the other client's), not %s (the worker's)", body, theirs.ID, replicated)
	}
	cancel()
	for _, ch := range []chan error{cdcDone, workerDone, pollDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("did not stop")
		}
	}
}
