package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var pubsubListeningRE = regexp.MustCompile(`fakeorg pubsub listening on (\S+)`)

// pubsubAdmin calls one of the fake's Pub/Sub admin endpoints.
func (o *fakeOrg) pubsubAdmin(ctx context.Context, method, path string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, o.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s %s: %s: %s", method, path, b, resp.Status, rb)
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

// TestChaosCDC: `producer cdc` is SIGKILLed repeatedly while Accounts are
// created; then, while it is down, the fake's retention is shortened so
// its replay ID expires; then forced gap and overflow events stand for
// changes the stream never carried, and the stream goes silent (no
// keepalives). Every created Account reaches the target exactly once.
func TestChaosCDC(t *testing.T) {
	n, over, minKills := 400, 6*time.Second, 5
	switch {
	case testing.Short():
		n, over, minKills = 150, 3*time.Second, 3
	case full():
		n, over, minKills = 3000, 30*time.Second, 25
	}
	t.Parallel()
	ctx := t.Context()
	began := time.Now()
	e := newEnv(t)
	e.startNATS(1)
	e.source = e.startFakeOrg("source", "-pubsub-addr", "127.0.0.1:0")
	m, err := e.source.p.waitLine(pubsubListeningRE, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pubsubAddr := m[1]
	if err := e.source.pubsubAdmin(ctx, http.MethodPut, "/_fake/pubsub", map[string]any{"keepalive": "500ms"}, nil); err != nil {
		t.Fatal(err)
	}
	e.target = e.startFakeOrg("target", "-latency", "5ms")
	for i := 1; i <= 2; i++ {
		w := e.addWorker(fmt.Sprintf("w%d", i))
		if err := e.startWorker(w, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	dataDir := filepath.Join(e.dir, "data-producer-cdc")
	prod := e.newProc("producer-cdc", "producer", func() []string {
		return []string{"cdc", "-nats-url", e.natsURLs(),
			"-source-url", e.source.url, "-source-client-id", "demo", "-source-client-secret", "demo-secret",
			"-pubsub-addr", pubsubAddr, "-pubsub-insecure", "-overlap", "30s", "-idle-timeout", "2s",
			"-since", since, "-data-dir", dataDir}
	})
	e.producer = prod
	if err := prod.start(); err != nil {
		t.Fatal(err)
	}
	prod.supervised.Store(true)
	e.setSupervised(true)
	e.supervise(ctx)

	// Phase 1: creates while the producer is SIGKILLed every 0.7–1.3 s.
	var rs sourceRecords
	created := make(chan error, 1)
	go func() { created <- e.createSource(ctx, n, over, 0, &rs) }()
	kills := 0
	creating := true
	deadline := time.Now().Add(over + 2*time.Minute)
	for creating || kills < minKills {
		if time.Now().After(deadline) {
			t.Fatalf("chaos phase overran: creating=%v kills=%d", creating, kills)
		}
		select {
		case err := <-created:
			if err != nil {
				t.Fatalf("creating source records: %v", err)
			}
			creating, created = false, nil
			continue
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Duration(700+e.rnd.IntN(600)) * time.Millisecond):
		}
		prod.ctl.Lock()
		if prod.kill() {
			kills++
		}
		time.Sleep(200 * time.Millisecond) // the producer stays down a moment
		err := prod.start()
		prod.ctl.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _ := rs.snapshot()
	extra := func(prefix string, k int) []string {
		t.Helper()
		names := make([]string, k)
		for i := range names {
			names[i] = fmt.Sprintf("%s %03d", prefix, i)
		}
		ids, err := e.source.createAccounts(ctx, names)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids...)
		return ids
	}
	waitLog := func(what, substr string, before int) {
		t.Helper()
		if !eventually(ctx, 60*time.Second, 50*time.Millisecond, func() bool { return e.countInLogs("producer-cdc", substr) > before }) {
			t.Fatalf("no %s in the producer's log within 60s:\n%s", what, prod.tail(30))
		}
	}

	// Phase 2: the replay ID expires while the producer is down.
	prod.ctl.Lock()
	prod.kill()
	extra("Down", 25)
	if err := e.source.configure(ctx, map[string]any{"event_retention": "1ms"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(ctx, 10*time.Second, 20*time.Millisecond, func() bool {
		var st struct{ Events int }
		return e.source.pubsubAdmin(ctx, http.MethodGet, "/_fake/pubsub", nil, &st) == nil && st.Events == 0
	}) {
		t.Fatal("events not expired")
	}
	before := e.countInLogs("producer-cdc", `"cause":"replay_invalid"`)
	if err := prod.start(); err != nil {
		t.Fatal(err)
	}
	prod.ctl.Unlock()
	waitLog("replay_invalid catch-up", `"cause":"replay_invalid"`, before)
	if err := e.source.configure(ctx, map[string]any{"event_retention": "1h"}); err != nil {
		t.Fatal(err)
	}

	// Phase 3: a gap event names records the stream never carried.
	set := func(v map[string]any) {
		t.Helper()
		if err := e.source.pubsubAdmin(ctx, http.MethodPut, "/_fake/pubsub", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	set(map[string]any{"suppress": true})
	gapIDs := extra("Gap", 15)
	set(map[string]any{"suppress": false})
	before = e.countInLogs("producer-cdc", `"cause":"gap"`)
	if err := e.source.pubsubAdmin(ctx, http.MethodPost, "/_fake/pubsub/gap", map[string]any{"change_type": "GAP_CREATE", "record_ids": gapIDs}, nil); err != nil {
		t.Fatal(err)
	}
	waitLog("gap catch-up", `"cause":"gap"`, before)

	// Phase 4: an overflow event stands for records the stream never carried.
	set(map[string]any{"suppress": true})
	extra("Overflow", 15)
	set(map[string]any{"suppress": false})
	before = e.countInLogs("producer-cdc", `"cause":"overflow"`)
	if err := e.source.pubsubAdmin(ctx, http.MethodPost, "/_fake/pubsub/overflow", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	waitLog("overflow catch-up", `"cause":"overflow"`, before)

	// Phase 5: the stream goes silent, no keepalives; creates meanwhile.
	before = e.countInLogs("producer-cdc", "STALLED")
	set(map[string]any{"stall": true})
	extra("Stalled", 15)
	waitLog("stall watchdog", "STALLED", before)
	set(map[string]any{"stall": false})

	ok, state := e.waitConverged(ctx, len(all), 0, 90*time.Second)
	if !ok {
		t.Errorf("did not converge within 90s: %s", state)
	}
	tl, err := e.accountTarget(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	tl.check(t, "cdc chaos")
	if qs, err := e.queueState(ctx); err != nil || qs.dlq != 0 {
		t.Errorf("DLQ: %d entries (err %v), want 0", qs.dlq, err)
	}
	var f figures
	f.add("events (source records)", "%d, %d created over %s under SIGKILLs, then 25+15+15+15", len(all), n, over)
	f.add("producer SIGKILLs", "%d (every 0.7–1.3s, restarted after 0.2s)", kills)
	f.add("catch-ups in the log", "replay_invalid %d, gap %d, overflow %d; stalled reconnects %d",
		e.countInLogs("producer-cdc", `"cause":"replay_invalid"`), e.countInLogs("producer-cdc", `"cause":"gap"`),
		e.countInLogs("producer-cdc", `"cause":"overflow"`), e.countInLogs("producer-cdc", "STALLED"))
	f.add("lost (skipped)", "%d", len(tl.lost))
	f.add("duplicated", "%d", len(tl.duplicated))
	f.add("wall time", "%s", time.Since(began).Round(time.Millisecond))
	f.print(t, t.Name())
}
