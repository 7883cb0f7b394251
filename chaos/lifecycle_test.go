package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"orgsync/event"
	"orgsync/internal/tcpproxy"
	"orgsync/queue"
)

// lifePlan sizes one lifecycle chaos run.
type lifePlan struct {
	records   int
	chunk     int           // records created (and then changed) per source call
	over      time.Duration // the chunks start over this long
	killEvery time.Duration // a random worker is SIGKILLed this often
	minKills  int
	converge  time.Duration
	cdc       bool // capture with producer cdc instead of producer poll -changes all
	// leaseTTL is the workers' -lease-ttl (default lifeLeaseTTL).
	leaseTTL time.Duration
	// noKills: no worker is SIGKILLed (randomly or targeted); the NATS
	// restart and the network blips remain.
	noKills bool
}

func (p lifePlan) ttl() time.Duration {
	if p.leaseTTL > 0 {
		return p.leaseTTL
	}
	return lifeLeaseTTL
}

// TestChaosLifecycle: Accounts are created in the source, each updated five
// times in quick succession (fields set blank among them), 10% deleted and
// half of those undeleted, while `producer poll -changes all` captures and
// three workers replicate; workers are SIGKILLed at random, the NATS server
// is SIGKILLed and restarted, the workers' NATS connections break now and
// then (network blips), the target fails 5% of its calls; then, on a
// quiet pipeline, the worker holding a partition is SIGKILLed while an
// update of a record is in flight and a newer one is queued behind it
// (twice: restarted at once under the same ID, and kept down until another
// worker took the partition over). At the end every live source record's
// copied fields are equal in the target, the deleted ones are gone, nothing
// is duplicated and the DLQ is empty.
func TestChaosLifecycle(t *testing.T) {
	skipShort(t)
	t.Parallel()
	// converge: polling reports a delete once Get Deleted covers a whole
	// minute, so the last changes may wait up to a minute.
	p := lifePlan{records: 300, chunk: 50, over: 6 * time.Second, killEvery: 2 * time.Second, minKills: 4, converge: 2 * time.Minute}
	if full() {
		p = lifePlan{records: 2000, chunk: 100, over: 30 * time.Second, killEvery: 2 * time.Second, minKills: 12, converge: 4 * time.Minute}
	}
	runLifecycle(t, p)
}

// TestChaosLifecycleCDC: the same lifecycle and faults, captured by
// `producer cdc` (UPDATE events carry only the changed fields; DELETE and
// UNDELETE come as such, so the workers undelete over SOAP).
func TestChaosLifecycleCDC(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := lifePlan{records: 200, chunk: 50, over: 4 * time.Second, killEvery: 2 * time.Second, minKills: 3, converge: 90 * time.Second, cdc: true}
	if full() {
		p = lifePlan{records: 1000, chunk: 100, over: 20 * time.Second, killEvery: 2 * time.Second, minKills: 8, converge: 4 * time.Minute, cdc: true}
	}
	runLifecycle(t, p)
}

// TestChaosBlips: the lifecycle with the production lease TTL (15s) and no
// worker killed: a NATS restart and network blips (what NATS sends the
// workers is lost for a moment, then their connections break; they
// reconnect within about 2s) are shorter than two thirds of the TTL, so
// every holder keeps its leases through them, and must not let a newer
// event of a record overtake one whose delivery was lost on the way.
func TestChaosBlips(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := lifePlan{records: 200, chunk: 50, over: 6 * time.Second, killEvery: 2 * time.Second, converge: 2 * time.Minute, leaseTTL: 15 * time.Second, noKills: true}
	if full() {
		p = lifePlan{records: 1000, chunk: 100, over: 30 * time.Second, killEvery: 2 * time.Second, converge: 4 * time.Minute, leaseTTL: 15 * time.Second, noKills: true}
	}
	runLifecycle(t, p)
}

// Settings of the lifecycle runs' workers: short, so that failovers are
// quick (docs/ordering.md: failover is the lease TTL plus AckWait).
const (
	lifeAckWait    = 3 * time.Second
	lifeLeaseTTL   = 3 * time.Second
	lifePartitions = 16
	// lifeStep paces one chunk's successive changes in the source: about
	// one poll interval (200ms) apart, so the poller sees most of the
	// intermediate states.
	lifeStep = 300 * time.Millisecond
	// slowTarget is the target's latency while a write is held in flight
	// for the targeted kill.
	// It stays below -ack-wait, which bounds a worker's target call (a
	// slower target is unreachable to it).
	slowTarget = 2 * time.Second
	// lifeBlipEvery: how often the workers' NATS connections are cut
	// while the source changes.
	lifeBlipEvery = 1500 * time.Millisecond
	// lifeBlipLoss: how long a blip loses what NATS sends to the workers
	// before it cuts their connections (well below -lease-ttl).
	lifeBlipLoss = 300 * time.Millisecond
)

// lifeFields are the copied fields the run changes and compares.
var lifeFields = []string{"Name", "Phone", "Description", "Website", "Industry"}

// The fate of record i of the run (its index in creation order).
func lifeDeleted(i int) bool         { return i%10 == 3 }      // 10%: deleted after its five updates
func lifeUndeleted(i int) bool       { return i%20 == 3 }      // half of those: undeleted again
func lifeEditedBack(i int) bool      { return i%40 == 3 }      // half of those: edited after the undelete
func lifeBlankPhone(i, rev int) bool { return (i+rev)%3 == 0 } // Phone set blank (null)
func lifeBlankDesc(i, rev int) bool  { return (i+rev)%4 == 0 } // Description set blank

// lifeValues returns record i's copied fields at revision rev: 0 is the
// create, 1–5 the five updates (a nil value sets the field blank; a field
// left out is not changed), 6 the edit after an undelete.
func lifeValues(i, rev int) map[string]any {
	switch rev {
	case 0:
		return map[string]any{
			"Name": fmt.Sprintf("Life %05d", i), "Phone": fmt.Sprintf("+1 555 0%05d", i),
			"Description": "created", "Website": fmt.Sprintf("https://life%05d.example", i), "Industry": "Chaos",
		}
	case 6:
		return map[string]any{"Name": fmt.Sprintf("Life %05d back", i), "Description": "undeleted, then edited", "Phone": nil}
	}
	v := map[string]any{"Name": fmt.Sprintf("Life %05d rev %d", i, rev)}
	if lifeBlankPhone(i, rev) {
		v["Phone"] = nil
	} else {
		v["Phone"] = fmt.Sprintf("+1 555 %d%05d", rev, i)
	}
	if lifeBlankDesc(i, rev) {
		v["Description"] = nil
	} else {
		v["Description"] = fmt.Sprintf("revision %d of record %05d", rev, i)
	}
	if rev == 2 && i%2 == 0 {
		v["Website"] = nil
	}
	return v
}

// lifeRecords is what the run did in the source.
type lifeRecords struct {
	mu        sync.Mutex
	ids       []string       // in creation order
	index     map[string]int // source ID → i
	deleted   map[string]bool
	undeleted map[string]bool
	updates   int // record updates (one record in one update call)
	calls     int // source write calls
}

func (lr *lifeRecords) add(ids []string, first int) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.index == nil {
		lr.index, lr.deleted, lr.undeleted = make(map[string]int), make(map[string]bool), make(map[string]bool)
	}
	for j, id := range ids {
		lr.ids = append(lr.ids, id)
		lr.index[id] = first + j
	}
}

// gone returns the records the test deleted and did not undelete.
func (lr *lifeRecords) gone() map[string]bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	out := make(map[string]bool)
	for id := range lr.deleted {
		if !lr.undeleted[id] {
			out[id] = true
		}
	}
	return out
}

// runSourceLifecycle runs every record's life in the source: chunks of
// p.chunk records start evenly over p.over; each is created, updated five
// times lifeStep apart, its 10% deleted, half of those undeleted and half of
// those edited again.
func (e *env) runSourceLifecycle(ctx context.Context, p lifePlan, lr *lifeRecords, started func(chunk int)) error {
	chunks := (p.records + p.chunk - 1) / p.chunk
	gap := p.over / time.Duration(max(chunks, 1))
	g, ctx := errgroup.WithContext(ctx)
	begin := time.Now()
	for c := range chunks {
		first := c * p.chunk
		n := min(p.chunk, p.records-first)
		at := begin.Add(time.Duration(c) * gap)
		select { // pacing the load, not a synchronisation
		case <-ctx.Done():
			return g.Wait()
		case <-time.After(time.Until(at)):
		}
		started(c)
		g.Go(func() error { return e.chunkLife(ctx, lr, first, n) })
	}
	return g.Wait()
}

func (e *env) chunkLife(ctx context.Context, lr *lifeRecords, first, n int) error {
	pace := func() error {
		select { // pacing the changes, not a synchronisation
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lifeStep):
			return nil
		}
	}
	recs := make([]map[string]any, n)
	for j := range recs {
		recs[j] = lifeValues(first+j, 0)
	}
	ids, err := e.source.createRecords(ctx, recs)
	if err != nil {
		return fmt.Errorf("create records %d–%d: %w", first, first+n-1, err)
	}
	lr.add(ids, first)
	count := func(updates int) {
		lr.mu.Lock()
		lr.updates += updates
		lr.calls++
		lr.mu.Unlock()
	}
	count(0)
	for rev := 1; rev <= 5; rev++ {
		if err := pace(); err != nil {
			return err
		}
		ups := make(map[string]map[string]any, n)
		for j, id := range ids {
			ups[id] = lifeValues(first+j, rev)
		}
		if err := e.source.updateRecords(ctx, ups); err != nil {
			return fmt.Errorf("update %d of records %d–%d: %w", rev, first, first+n-1, err)
		}
		count(len(ups))
	}
	pick := func(keep func(int) bool) []string {
		var out []string
		for j, id := range ids {
			if keep(first + j) {
				out = append(out, id)
			}
		}
		return out
	}
	del := pick(lifeDeleted)
	if len(del) == 0 {
		return nil
	}
	if err := pace(); err != nil {
		return err
	}
	if err := e.source.deleteRecords(ctx, del); err != nil {
		return err
	}
	lr.mu.Lock()
	for _, id := range del {
		lr.deleted[id] = true
	}
	lr.calls++
	lr.mu.Unlock()
	back := pick(lifeUndeleted)
	if len(back) == 0 {
		return nil
	}
	if err := pace(); err != nil {
		return err
	}
	if err := e.source.undelete(ctx, back); err != nil {
		return err
	}
	lr.mu.Lock()
	for _, id := range back {
		lr.undeleted[id] = true
	}
	lr.calls++
	lr.mu.Unlock()
	edited := pick(lifeEditedBack)
	if len(edited) == 0 {
		return nil
	}
	if err := pace(); err != nil {
		return err
	}
	ups := make(map[string]map[string]any, len(edited))
	for _, id := range edited {
		ups[id] = lifeValues(lr.indexOf(id), 6)
	}
	if err := e.source.updateRecords(ctx, ups); err != nil {
		return fmt.Errorf("edit after undelete: %w", err)
	}
	count(len(ups))
	return nil
}

func (lr *lifeRecords) indexOf(id string) int {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.index[id]
}

func runLifecycle(t *testing.T, p lifePlan) {
	ctx := t.Context()
	began := time.Now()
	e := newEnv(t)
	e.startNATS(1)
	if p.cdc {
		e.source = e.startFakeOrg("source", "-pubsub-addr", "127.0.0.1:0")
	} else {
		e.source = e.startFakeOrg("source")
	}
	e.workerProxy = tcpproxy.New(t, fmt.Sprintf("127.0.0.1:%d", e.nats[0].port))
	e.target = e.startFakeOrg("target")
	if err := e.target.configure(ctx, map[string]any{"fail_rate": 0.05, "latency": "20ms"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		e.addWorker(fmt.Sprintf("w%d", i), e.lifeWorkerFlags(p.ttl())...)
	}
	for _, w := range e.workers {
		if err := e.startWorker(w, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range e.workers {
		if err := waitHTTP(w.p, w.readyURL(), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	events := e.recordEvents(t)
	capture := "producer poll -changes all -interval 200ms"
	if p.cdc {
		e.startCDCProducer(ctx)
		capture = "producer cdc"
	} else {
		e.producerArgs = []string{"-changes", "all"}
		e.startProducer()
	}
	e.producer.supervised.Store(true)
	e.setSupervised(true)
	e.supervise(ctx)

	// Phase 1: the source lives while workers die and NATS restarts.
	var lr lifeRecords
	chunks := (p.records + p.chunk - 1) / p.chunk
	var startedChunks sync.Map
	done := make(chan error, 1)
	go func() {
		done <- e.runSourceLifecycle(ctx, p, &lr, func(c int) { startedChunks.Store(c, true) })
	}()
	halfway := func() bool { _, ok := startedChunks.Load(chunks / 2); return ok }
	kills, natsRestarts, blips := 0, 0, 0
	living := true
	tick := time.NewTicker(p.killEvery)
	defer tick.Stop()
	// Network blips between the workers and NATS while the source changes:
	// the server stays up, the workers reconnect at once, whatever was in
	// flight on their connections is lost.
	blip := time.NewTicker(lifeBlipEvery)
	defer blip.Stop()
	chaosStart := time.Now()
	deadline := chaosStart.Add(p.over + time.Duration(p.minKills+2)*p.killEvery + 2*time.Minute)
	for living || kills < p.minKills || natsRestarts == 0 || blips == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("chaos phase overran: source changes running=%v kills=%d nats restarts=%d", living, kills, natsRestarts)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("changing the source: %v", err)
			}
			living, done = false, nil
			continue
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-blip.C:
			if (living || blips == 0) && e.workerProxy.Blip(lifeBlipLoss) {
				blips++
			}
			continue
		case <-tick.C:
		}
		if natsRestarts == 0 && (!living || halfway()) {
			t.Logf("%s: SIGKILL and restart of the NATS server", time.Since(began).Round(time.Millisecond))
			e.restartNATS(e.nats[0], 500*time.Millisecond)
			natsRestarts++
			continue
		}
		if p.noKills {
			continue
		}
		w := e.workers[e.rnd.IntN(len(e.workers))]
		w.p.ctl.Lock()
		if w.p.kill() {
			kills++
		}
		time.Sleep(500 * time.Millisecond) // the worker stays down a moment
		err := e.startWorker(w, 0)
		w.p.ctl.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	sourceDone := time.Now()
	phase1 := e.waitLifecycle(ctx, t, &lr, p.converge)
	converge1 := time.Since(sourceDone)
	if !phase1.clean() {
		e.finishLifecycle(ctx, t, &lr, events)
		t.Fatalf("phase 1 (source changes under chaos) did not converge within %s: %s", p.converge, phase1)
	}
	t.Logf("%s: phase 1 converged %s after the last source change", time.Since(began).Round(time.Millisecond), converge1.Round(time.Millisecond))

	// Phase 2: the worker holding a partition dies while one update of a
	// record is in flight and a newer one is queued behind it.
	var targeted []string
	var converge2 []time.Duration
	victims := map[string]bool{}
	rounds := []bool{false, true}
	if p.noKills {
		rounds = nil
	}
	for round, keepDown := range rounds {
		k, err := e.killHolderMidUpdate(ctx, t, &lr, round, keepDown, victims)
		if err != nil {
			e.finishLifecycle(ctx, t, &lr, events)
			t.Fatalf("targeted kill %d: %v", round+1, err)
		}
		victims[k.worker] = true
		targeted = append(targeted, k.String())
		st := time.Now()
		d := e.waitLifecycle(ctx, t, &lr, p.converge)
		converge2 = append(converge2, time.Since(st))
		if !d.clean() {
			e.finishLifecycle(ctx, t, &lr, events)
			t.Fatalf("after targeted kill %d (%s): did not converge within %s: %s", round+1, k, p.converge, d)
		}
		got, err := e.target.rowBySource(ctx, k.record)
		if err != nil {
			t.Fatal(err)
		}
		if !sameValue(got["Name"], k.newer["Name"]) || !sameValue(got["Phone"], nil) {
			t.Errorf("targeted kill %d: the target holds %v for %s, want the newer update %v", round+1, got, k.record, k.newer)
		}
	}
	final := e.finishLifecycle(ctx, t, &lr, events)

	var f figures
	lr.mu.Lock()
	created, updates, calls := len(lr.ids), lr.updates, lr.calls
	deleted, undeleted := len(lr.deleted), len(lr.undeleted)
	lr.mu.Unlock()
	edited := 0
	for i := range created {
		if lifeEditedBack(i) {
			edited++
		}
	}
	f.add("topology", "1 NATS server (SIGKILLed and restarted %d×); 3 workers (-ack-wait %s, -lease-ttl %s, -partitions %d, -batch 50 -composite 1, -source-…); %s",
		natsRestarts, lifeAckWait, p.ttl(), lifePartitions, capture)
	f.add("source records", "%d created in chunks of %d over %s; %d record updates (5 per record, %d after an undelete) in %d source write calls",
		created, p.chunk, p.over, updates, edited, calls)
	f.add("deleted / undeleted", "%d deleted (10%%), %d of them undeleted (%d edited afterwards); %d live at the end", deleted, undeleted, edited, final.live)
	f.add("events through ORGSYNC", "%d (stream's last sequence)", final.streamSeq)
	f.add("network blips", "%d (what NATS sent the workers lost for %s, then every connection cut; every %s while the source changed)", blips, lifeBlipLoss, lifeBlipEvery)
	if p.noKills {
		f.add("worker SIGKILLs", "none: every worker keeps its leases through the faults")
	} else {
		f.add("worker SIGKILLs", "%d at random (every %s, restarted after 0.5s) + %d targeted", kills, p.killEvery, len(targeted))
	}
	for i, k := range targeted {
		f.add(fmt.Sprintf("  targeted kill %d", i+1), "%s", k)
	}
	selfExits, who := e.selfExits()
	f.add("self-exits restarted by the supervisor", "%d %v", selfExits, who)
	f.add("target faults", "503 rate 0.05, latency 20ms (%s while a write was held in flight)", slowTarget)
	f.add("target API calls", "%d (GET /query includes the test's own reads): %s", final.stats.APICalls, routeSummary(final.stats.ByRoute))
	f.add("503s retried (worker logs)", "%d", e.countInLogs("worker-", "SERVER_UNAVAILABLE"))
	if p.noKills {
		f.add("time to converge", "%s after the last source change", converge1.Round(time.Millisecond))
	} else {
		f.add("time to converge", "%s after the last source change (phase 1); %s after the targeted kills",
			converge1.Round(time.Millisecond), durations(converge2))
	}
	if n := e.countInLogs("worker-", "waiting for deliveries lost on the broken connection"); n > 0 {
		f.add("waits after a reconnection", "%d (a partition held through a reconnection waits -ack-wait before fetching again)", n)
	}
	f.add("final check", "%s", final.diff)
	f.add("DLQ", "%d entries (expected 0)", final.dlq)
	f.add("wall time", "%s", time.Since(began).Round(time.Millisecond))
	f.print(t, t.Name())
}

// lifeWorkerFlags are the flags of the lifecycle runs' workers (after the
// harness's own: the later -ack-wait wins).
func (e *env) lifeWorkerFlags(leaseTTL time.Duration) []string {
	return []string{
		"-source-url", e.source.url, "-source-client-id", "demo", "-source-client-secret", "demo-secret",
		"-ack-wait", lifeAckWait.String(), "-lease-ttl", leaseTTL.String(),
		"-partitions", strconv.Itoa(lifePartitions), "-deletes", "delete",
		// Small calls: more batches interleave, more calls meet the
		// target's faults.
		"-batch", "50", "-composite", "1",
	}
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}

// routeSummary lists the routes of the write and read calls a worker makes.
func routeSummary(by map[string]int) string {
	var keys []string
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		if strings.HasPrefix(k, "GET /limits") || strings.HasPrefix(k, "GET /sobjects/Account/describe") {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d", k, by[k]))
	}
	return strings.Join(parts, "; ")
}

// startCDCProducer starts `producer cdc` on the source's Pub/Sub API.
func (e *env) startCDCProducer(ctx context.Context) {
	e.t.Helper()
	m, err := e.source.p.waitLine(pubsubListeningRE, 30*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	addr := m[1]
	if err := e.source.pubsubAdmin(ctx, http.MethodPut, "/_fake/pubsub", map[string]any{"keepalive": "500ms"}, nil); err != nil {
		e.t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	dataDir := filepath.Join(e.dir, "data-producer-cdc")
	e.producer = e.newProc("producer-cdc", "producer", func() []string {
		return []string{"cdc", "-nats-url", e.natsURLs(),
			"-source-url", e.source.url, "-source-client-id", "demo", "-source-client-secret", "demo-secret",
			"-pubsub-addr", addr, "-pubsub-insecure", "-overlap", "30s", "-idle-timeout", "2s",
			"-since", since, "-data-dir", dataDir}
	})
	if err := e.producer.start(); err != nil {
		e.t.Fatal(err)
	}
}

// ---- what the producer published ----

// eventLog records every event published on ORGSYNC's subjects, as a core
// NATS subscriber sees them (in publish order, duplicates included), to
// explain a record whose target copy differs.
type eventLog struct {
	mu   sync.Mutex
	byID map[string][]string
}

func (e *env) recordEvents(t *testing.T) *eventLog {
	t.Helper()
	l := &eventLog{byID: make(map[string][]string)}
	sub, err := e.mon.Subscribe("orgsync.account.>", func(m *nats.Msg) {
		ev, err := event.Decode(m.Data)
		if err != nil {
			return
		}
		line := fmt.Sprintf("%s %s %s changed_at=%s", time.Now().UTC().Format("15:04:05.000"), m.Subject,
			m.Header.Get(jetstream.MsgIDHeader), ev.When().Format("15:04:05.000"))
		if v, ok := ev.Fields["Name"]; ok {
			line += fmt.Sprintf(" Name=%q", str(v))
		}
		l.mu.Lock()
		l.byID[ev.SourceID] = append(l.byID[ev.SourceID], line)
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

func (l *eventLog) of(id string) []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.byID[id])
}

// explain logs, for a few records that differ, both orgs' copies with
// their modification times and the events published for them.
func (e *env) explain(ctx context.Context, t *testing.T, events *eventLog, d lifeDiff) {
	t.Helper()
	seen := map[string]bool{}
	var ids []string
	for _, s := range append(slices.Clone(d.wrong), append(d.missing, d.resurrected...)...) {
		id, _, _ := strings.Cut(s, " ")
		if len(id) >= 18 && !seen[id[:18]] && len(ids) < 5 {
			seen[id[:18]] = true
			ids = append(ids, id[:18])
		}
	}
	cols := "Id, Name, Phone, Description, LastModifiedDate, SystemModstamp"
	for _, id := range ids {
		src, _ := e.source.rows(ctx, "SELECT "+cols+" FROM Account WHERE Id = '"+id+"'")
		tgt, _ := e.target.rows(ctx, "SELECT "+cols+", Source_Id__c FROM Account WHERE Source_Id__c = '"+id+"'")
		t.Logf("record %s (partition %d)\n  source: %v\n  target: %v\n  events published:\n    %s", id,
			queue.PartitionOf(id, lifePartitions), src, tgt, strings.Join(events.of(id), "\n    "))
	}
}

// ---- the final comparison ----

// lifeDiff is the target compared with the source.
type lifeDiff struct {
	live        int      // live records in the source
	missing     []string // live in the source, not in the target
	duplicated  []string // in the target more than once
	wrong       []string // a copied field differs
	resurrected []string // deleted in the source, live in the target
	unknown     []string // in the target, never in the source
	drained     bool     // nothing stored in ORGSYNC, nothing pending
	queue       string
	err         error
}

func (d lifeDiff) clean() bool {
	return d.err == nil && d.drained && len(d.missing)+len(d.duplicated)+len(d.wrong)+len(d.resurrected)+len(d.unknown) == 0
}

func (d lifeDiff) String() string {
	if d.err != nil {
		return d.err.Error()
	}
	return fmt.Sprintf("%d live source records: %d missing in the target %v, %d duplicated %v, %d with other copied fields %v, %d deleted in the source but live in the target %v, %d unknown %v; queue %s",
		d.live, len(d.missing), head(d.missing), len(d.duplicated), head(d.duplicated), len(d.wrong), head(d.wrong),
		len(d.resurrected), head(d.resurrected), len(d.unknown), head(d.unknown), d.queue)
}

// compareLifecycle reads both orgs and compares them.
func (e *env) compareLifecycle(ctx context.Context, lr *lifeRecords) lifeDiff {
	var d lifeDiff
	qs, err := e.queueState(ctx)
	if err != nil {
		d.queue = err.Error()
	} else {
		d.queue = fmt.Sprintf("stored %d, pending %d, ack pending %d, DLQ %d", qs.stored, qs.pending, qs.ackPending, qs.dlq)
		d.drained = qs.stored == 0 && qs.pending == 0 && qs.ackPending == 0
	}
	fields := strings.Join(lifeFields, ", ")
	src, err := e.source.rows(ctx, "SELECT Id, "+fields+" FROM Account")
	if err != nil {
		d.err = fmt.Errorf("source query: %w", err)
		return d
	}
	tgt, err := e.target.rows(ctx, "SELECT Id, Source_Id__c, "+fields+" FROM Account")
	if err != nil {
		d.err = fmt.Errorf("target query: %w", err)
		return d
	}
	bySource := make(map[string][]map[string]any)
	for _, r := range tgt {
		s, _ := r["Source_Id__c"].(string)
		bySource[s] = append(bySource[s], r)
	}
	live := make(map[string]bool, len(src))
	for _, s := range src {
		id, _ := s["Id"].(string)
		live[id] = true
		ts := bySource[id]
		switch {
		case len(ts) == 0:
			d.missing = append(d.missing, id+lr.fate(id))
			continue
		case len(ts) > 1:
			d.duplicated = append(d.duplicated, id)
		}
		for _, f := range lifeFields {
			if !sameValue(s[f], ts[0][f]) {
				d.wrong = append(d.wrong, fmt.Sprintf("%s%s %s: source %q, target %q", id, lr.fate(id), f, str(s[f]), str(ts[0][f])))
			}
		}
	}
	d.live = len(live)
	gone := lr.gone()
	for sid := range bySource {
		switch {
		case live[sid]:
		case gone[sid]:
			d.resurrected = append(d.resurrected, sid)
		default:
			d.unknown = append(d.unknown, sid)
		}
	}
	slices.Sort(d.missing)
	slices.Sort(d.wrong)
	slices.Sort(d.resurrected)
	return d
}

// fate describes what the run did to a record, for failure messages.
func (lr *lifeRecords) fate(id string) string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	i, ok := lr.index[id]
	switch {
	case !ok:
		return " (not created by the lifecycle)"
	case lr.undeleted[id] && lifeEditedBack(i):
		return " (deleted, undeleted, edited)"
	case lr.undeleted[id]:
		return " (deleted, undeleted)"
	case lr.deleted[id]:
		return " (deleted)"
	}
	return ""
}

// sameValue compares two copied values; blank (null, missing, "") is one
// value.
func sameValue(a, b any) bool { return str(a) == str(b) }

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// waitLifecycle waits until the pipeline is drained and the target equals
// the source, then until the poller has polled the source again a few
// times (its API calls: a signal that it looked) and checks once more, so
// that a late event cannot change the target after the check.
func (e *env) waitLifecycle(ctx context.Context, t *testing.T, lr *lifeRecords, timeout time.Duration) lifeDiff {
	t.Helper()
	var d lifeDiff
	deadline := time.Now().Add(timeout)
	for attempt := 0; attempt < 5; attempt++ {
		if !eventually(ctx, time.Until(deadline), 500*time.Millisecond, func() bool {
			d = e.compareLifecycle(ctx, lr)
			return d.clean()
		}) {
			return d
		}
		if e.producer.name != "producer" {
			// Change Data Capture pushes every change as it commits; the
			// final comparison, after the targeted kills, sees a late one.
			return d
		}
		before, err := e.source.stats(ctx)
		if err != nil {
			d.err = err
			return d
		}
		// The poller makes at least two calls per cycle (the SystemModstamp
		// query and Get Deleted); the harness's own comparison one query.
		if !eventually(ctx, time.Until(deadline), 100*time.Millisecond, func() bool {
			st, err := e.source.stats(ctx)
			return err == nil && st.APICalls >= before.APICalls+8
		}) {
			d.err = errors.New("the poller stopped polling the source")
			return d
		}
		if d = e.compareLifecycle(ctx, lr); d.clean() {
			return d
		}
	}
	return d
}

// finalLife is the final accounting of a lifecycle run.
type finalLife struct {
	diff      lifeDiff
	live      int
	dlq       int
	streamSeq uint64
	stats     fakeStats
}

// finishLifecycle reads the final state without target faults, reports
// its differences and every dead letter (none is expected: the run has no
// permanent failure).
func (e *env) finishLifecycle(ctx context.Context, t *testing.T, lr *lifeRecords, events *eventLog) finalLife {
	t.Helper()
	var f finalLife
	f.stats, _ = e.target.stats(ctx)
	if err := e.target.configure(ctx, map[string]any{"fail_rate": 0.0, "latency": "0s"}); err != nil {
		t.Error(err)
	}
	f.diff = e.compareLifecycle(ctx, lr)
	f.live = f.diff.live
	if !f.diff.clean() {
		t.Errorf("final state: %s", f.diff)
		for _, w := range append(slices.Clone(f.diff.wrong), f.diff.missing...) {
			t.Logf("  %s", w)
		}
		e.explain(ctx, t, events, f.diff)
	}
	if st, err := e.js.Stream(ctx, queue.Stream); err == nil {
		f.streamSeq = st.CachedInfo().State.LastSeq
	}
	entries, err := e.dlqList(ctx)
	if err != nil {
		t.Errorf("dlq list: %v", err)
	}
	f.dlq = len(entries)
	for _, d := range entries {
		t.Errorf("unexpected dead letter: %s %s %s %q (attempts %d)", d.SourceID, d.Change, d.Code, d.Message, d.Attempts)
	}
	return f
}

// ---- the targeted kill ----

// targetedKill is what killHolderMidUpdate did.
type targetedKill struct {
	record, worker   string
	partition        int
	queued, buffered int
	keptDown         bool
	takenBy          string
	window           time.Duration // from the older update's write reaching the target to the kill
	attempts         int
	older, newer     map[string]any
}

func (k targetedKill) String() string {
	s := fmt.Sprintf("%s holding partition %d: an update of %s in flight, %d newer queued behind it (%d in the holder's buffer); killed %s after its write reached the target (attempt %d)",
		k.worker, k.partition, k.record, k.queued, k.buffered, k.window.Round(time.Millisecond), k.attempts)
	switch {
	case k.keptDown && k.takenBy == "":
		return s + "; kept down until another worker takes the partition over"
	case k.keptDown:
		return s + "; kept down until " + k.takenBy + " took the partition over"
	}
	return s + "; restarted at once under the same ID"
}

// errMissedWindow: the older update's write finished before the newer
// update was queued behind it; the scenario is tried again on another
// record.
var errMissedWindow = errors.New("the older update was written before the newer one was queued")

// killHolderMidUpdate SIGKILLs the worker holding a partition while one
// update of a record is in flight and a newer one is queued behind it (see
// killHolderOnce), trying again on another record when the timing window
// was missed.
func (e *env) killHolderMidUpdate(ctx context.Context, t *testing.T, lr *lifeRecords, round int, keepDown bool, avoid map[string]bool) (targetedKill, error) {
	t.Helper()
	tried := map[string]bool{}
	for attempt := 1; ; attempt++ {
		k, err := e.killHolderOnce(ctx, t, lr, round, attempt, keepDown, avoid, tried)
		if !errors.Is(err, errMissedWindow) || attempt == 5 {
			return k, err
		}
		t.Logf("targeted kill %d, attempt %d: %v (record %s); trying another record", round+1, attempt, err, k.record)
		tried[k.record] = true
		// Let the partition settle before the next attempt.
		e.waitPartitionIdle(ctx, k.partition, 30*time.Second)
	}
}

// waitPartitionIdle waits until partition p's consumer holds nothing.
func (e *env) waitPartitionIdle(ctx context.Context, p int, timeout time.Duration) bool {
	return eventually(ctx, timeout, 100*time.Millisecond, func() bool {
		c, err := e.js.Consumer(ctx, queue.Stream, queue.ConsumerFor(p))
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

// killHolderOnce picks a live record whose partition some worker holds
// (not one of avoid), slows the target so that a write stays in flight,
// updates the record in the source, waits until the partition's consumer
// has the update delivered and unacknowledged, updates the record again,
// waits until that newer update is stored behind it, undelivered, and
// SIGKILLs the holder. With keepDown the worker stays down until another
// worker holds the partition; otherwise it is restarted at once.
func (e *env) killHolderOnce(ctx context.Context, t *testing.T, lr *lifeRecords, round, attempt int, keepDown bool, avoid, tried map[string]bool) (targetedKill, error) {
	t.Helper()
	k := targetedKill{attempts: attempt}
	kv, err := e.js.KeyValue(ctx, queue.PartitionBucket)
	if err != nil {
		return k, fmt.Errorf("lease bucket: %w", err)
	}
	holderOf := func(p int) string {
		ent, err := kv.Get(ctx, fmt.Sprintf("partition.%d", p))
		if err != nil {
			return ""
		}
		return string(ent.Value())
	}
	gone := lr.gone()
	lr.mu.Lock()
	ids := slices.Clone(lr.ids)
	lr.mu.Unlock()
	// A live record, never deleted, not tried yet, whose partition a worker
	// not in avoid holds.
	if !eventually(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		for _, id := range ids[round*7:] {
			if gone[id] || tried[id] || lifeDeleted(lr.indexOf(id)) {
				continue
			}
			p := queue.PartitionOf(id, lifePartitions)
			if h := holderOf(p); h != "" && !avoid[h] {
				k.record, k.partition, k.worker = id, p, h
				return true
			}
		}
		return false
	}) {
		return k, fmt.Errorf("no partition held by a worker other than %v", avoid)
	}
	var w *workerProc
	for _, x := range e.workers {
		if x.id == k.worker {
			w = x
		}
	}
	if w == nil {
		return k, fmt.Errorf("partition %d is held by %q, none of the workers", k.partition, k.worker)
	}
	c, err := e.js.Consumer(ctx, queue.Stream, queue.ConsumerFor(k.partition))
	if err != nil {
		return k, fmt.Errorf("consumer of partition %d: %w", k.partition, err)
	}
	info := func() *jetstream.ConsumerInfo {
		ci, err := c.Info(ctx)
		if err != nil {
			return nil
		}
		return ci
	}
	if err := e.target.configure(ctx, map[string]any{"latency": slowTarget.String()}); err != nil {
		return k, err
	}
	defer func() {
		if err := e.target.configure(ctx, map[string]any{"latency": "20ms"}); err != nil {
			t.Error(err)
		}
	}()
	i := lr.indexOf(k.record)
	k.older = map[string]any{"Name": fmt.Sprintf("Life %05d older %d", i, round), "Phone": fmt.Sprintf("+1 555 7%05d", i), "Description": "the older update"}
	k.newer = map[string]any{"Name": fmt.Sprintf("Life %05d newer %d", i, round), "Phone": nil, "Description": "the newer update"}
	before, err := e.target.stats(ctx)
	if err != nil {
		return k, err
	}
	if err := e.source.updateRecords(ctx, map[string]map[string]any{k.record: k.older}); err != nil {
		return k, err
	}
	// The older update is delivered, not acknowledged, and a write call
	// has reached the target (which counts it when it arrives and answers
	// after slowTarget): its write is in flight. The partition is quiet
	// otherwise.
	if !eventually(ctx, 15*time.Second, 10*time.Millisecond, func() bool {
		ci := info()
		st, err := e.target.stats(ctx)
		return ci != nil && ci.NumAckPending > 0 && err == nil && writeCalls(st) > writeCalls(before)
	}) {
		return k, fmt.Errorf("the older update of %s never became in flight on %s", k.record, queue.ConsumerFor(k.partition))
	}
	inFlightSince := time.Now()
	if err := e.source.updateRecords(ctx, map[string]map[string]any{k.record: k.newer}); err != nil {
		return k, err
	}
	// The newer update is queued behind it: stored and not delivered yet,
	// or delivered into the holder's buffer (the holder prefetches) while
	// the older one is still unacknowledged (two pending acknowledgement:
	// the partition is quiet otherwise, and the older one is acknowledged
	// only once written).
	var ci *jetstream.ConsumerInfo
	if !eventually(ctx, slowTarget, 10*time.Millisecond, func() bool {
		ci = info()
		return ci != nil && (ci.NumPending > 0 && ci.NumAckPending > 0 || ci.NumAckPending >= 2)
	}) {
		return k, fmt.Errorf("%w (consumer: %d pending, %d ack pending, %s after the older one was delivered)",
			errMissedWindow, ci.NumPending, ci.NumAckPending, time.Since(inFlightSince).Round(time.Millisecond))
	}
	k.queued, k.buffered = int(ci.NumPending)+ci.NumAckPending-1, ci.NumAckPending-1
	if h := holderOf(k.partition); h != k.worker {
		return k, fmt.Errorf("%w: partition %d moved from %s to %q meanwhile", errMissedWindow, k.partition, k.worker, h)
	}
	w.p.ctl.Lock()
	defer w.p.ctl.Unlock()
	if !w.p.kill() {
		return k, fmt.Errorf("worker %s was not running", w.id)
	}
	k.window = time.Since(inFlightSince)
	k.keptDown = keepDown
	t.Logf("targeted kill: %s", k)
	if keepDown {
		if !eventually(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
			h := holderOf(k.partition)
			k.takenBy = h
			return h != "" && h != k.worker
		}) {
			return k, fmt.Errorf("no worker took partition %d over from %s within 30s", k.partition, k.worker)
		}
	}
	if err := e.startWorker(w, 0); err != nil {
		return k, err
	}
	return k, nil
}

// writeCalls counts the write calls a fake org has received.
func writeCalls(st fakeStats) int {
	n := 0
	for route, c := range st.ByRoute {
		if strings.HasPrefix(route, "PATCH ") || strings.HasPrefix(route, "DELETE ") ||
			strings.HasPrefix(route, "POST /composite") || strings.HasPrefix(route, "POST /Soap") {
			n += c
		}
	}
	return n
}

// ---- source and target access ----

// createRecords creates one Account per field map in collections calls of
// at most 200 (allOrNone) and returns their IDs in order.
func (o *fakeOrg) createRecords(ctx context.Context, recs []map[string]any) ([]string, error) {
	var ids []string
	for start := 0; start < len(recs); start += 200 {
		part := recs[start:min(start+200, len(recs))]
		body := map[string]any{"allOrNone": true, "records": withType(part, nil)}
		var res []saveResult
		if err := o.call(ctx, http.MethodPost, apiPath+"/composite/sobjects", body, &res); err != nil {
			return nil, err
		}
		if err := checkResults("create", res, len(part)); err != nil {
			return nil, err
		}
		for _, r := range res {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}

// updateRecords updates Accounts by ID (collections calls of at most 200,
// allOrNone); a nil value sets the field blank.
func (o *fakeOrg) updateRecords(ctx context.Context, ups map[string]map[string]any) error {
	ids := make([]string, 0, len(ups))
	for id := range ups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for start := 0; start < len(ids); start += 200 {
		part := ids[start:min(start+200, len(ids))]
		recs := make([]map[string]any, len(part))
		for j, id := range part {
			recs[j] = ups[id]
		}
		body := map[string]any{"allOrNone": true, "records": withType(recs, part)}
		var res []saveResult
		if err := o.call(ctx, http.MethodPatch, apiPath+"/composite/sobjects", body, &res); err != nil {
			return err
		}
		if err := checkResults("update", res, len(part)); err != nil {
			return err
		}
	}
	return nil
}

// deleteRecords deletes Accounts by ID (to the recycle bin).
func (o *fakeOrg) deleteRecords(ctx context.Context, ids []string) error {
	for start := 0; start < len(ids); start += 200 {
		part := ids[start:min(start+200, len(ids))]
		var res []saveResult
		path := apiPath + "/composite/sobjects?allOrNone=true&ids=" + url.QueryEscape(strings.Join(part, ","))
		if err := o.call(ctx, http.MethodDelete, path, nil, &res); err != nil {
			return err
		}
		if err := checkResults("delete", res, len(part)); err != nil {
			return err
		}
	}
	return nil
}

// undelete restores Accounts from the recycle bin as a user would (the
// fake's POST /_fake/undelete, its stand-in for SOAP undelete()).
func (o *fakeOrg) undelete(ctx context.Context, ids []string) error {
	for start := 0; start < len(ids); start += 200 {
		part := ids[start:min(start+200, len(ids))]
		var res []saveResult
		if err := o.pubsubAdmin(ctx, http.MethodPost, "/_fake/undelete", map[string]any{"ids": part}, &res); err != nil {
			return err
		}
		if err := checkResults("undelete", res, len(part)); err != nil {
			return err
		}
	}
	return nil
}

// saveResult is one entry of a collections answer.
type saveResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Errors  []any  `json:"errors"`
}

func checkResults(op string, res []saveResult, want int) error {
	if len(res) != want {
		return fmt.Errorf("%s: %d results for %d records", op, len(res), want)
	}
	for _, r := range res {
		if !r.Success {
			return fmt.Errorf("%s %s: %v", op, r.ID, r.Errors)
		}
	}
	return nil
}

// withType adds the attributes (and, for updates, the id) collections
// calls need.
func withType(recs []map[string]any, ids []string) []map[string]any {
	out := make([]map[string]any, len(recs))
	for j, r := range recs {
		m := map[string]any{"attributes": map[string]string{"type": "Account"}}
		for k, v := range r {
			m[k] = v
		}
		if ids != nil {
			m["id"] = ids[j]
		}
		out[j] = m
	}
	return out
}

// rows runs soql and follows nextRecordsUrl to the end, returning every
// record as a map (without "attributes").
func (o *fakeOrg) rows(ctx context.Context, soql string) ([]map[string]any, error) {
	var all []map[string]any
	path := apiPath + "/query?q=" + url.QueryEscape(soql)
	for page := 0; page < 10000; page++ {
		var res struct {
			Done           bool             `json:"done"`
			NextRecordsURL string           `json:"nextRecordsUrl"`
			Records        []map[string]any `json:"records"`
		}
		if err := o.call(ctx, http.MethodGet, path, nil, &res); err != nil {
			return nil, err
		}
		for _, r := range res.Records {
			delete(r, "attributes")
			all = append(all, r)
		}
		if res.Done || res.NextRecordsURL == "" {
			return all, nil
		}
		path = res.NextRecordsURL
	}
	return nil, fmt.Errorf("query %q: too many pages", soql)
}

// rowBySource returns the target's live record of a source ID (nil when
// there is none).
func (o *fakeOrg) rowBySource(ctx context.Context, sourceID string) (map[string]any, error) {
	rs, err := o.rows(ctx, "SELECT Id, Source_Id__c, "+strings.Join(lifeFields, ", ")+
		" FROM Account WHERE Source_Id__c = '"+sourceID+"'")
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return rs[0], nil
}
