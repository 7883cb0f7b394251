package chaos

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// plan sizes one chaos run.
type plan struct {
	records    int
	createOver time.Duration // records are created in the source over this long
	killEvery  time.Duration // a random worker is SIGKILLed this often
	minKills   int
	servers    int // 1, or 3 for the cluster run
	converge   time.Duration
}

// Target faults of every chaos run (PUT /_fake/config).
var targetFaults = map[string]any{
	"reject_name": "^" + rejectPrefix,
	"fail_rate":   0.05,
	"lock_rate":   0.05,
	"latency":     "20ms",
	"token_ttl":   "3s",
}

// rejectEvery makes ~3% of the names match the reject rule.
const rejectEvery = 33

// TestChaos: one NATS server restarted mid-run, three workers SIGKILLed
// repeatedly, a faulty target; everything accounted for.
func TestChaos(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := plan{records: 600, createOver: 8 * time.Second, killEvery: 2 * time.Second, minKills: 4, servers: 1, converge: 90 * time.Second}
	if full() {
		p.records, p.createOver, p.minKills, p.converge = 5000, 40*time.Second, 15, 4*time.Minute
	}
	runChaos(t, p)
}

// TestChaosCluster: the same against a three-server JetStream cluster
// (streams with 3 replicas), killing the stream leader once mid-run.
func TestChaosCluster(t *testing.T) {
	skipShort(t)
	t.Parallel()
	p := plan{records: 300, createOver: 6 * time.Second, killEvery: 2 * time.Second, minKills: 2, servers: 3, converge: 90 * time.Second}
	if full() {
		p.records, p.createOver, p.minKills, p.converge = 3000, 30*time.Second, 10, 4*time.Minute
	}
	runChaos(t, p)
}

func runChaos(t *testing.T, p plan) {
	ctx := t.Context()
	began := time.Now()
	e := newEnv(t)
	e.startNATS(p.servers)
	if p.servers > 1 {
		e.streamReplicas = 3 // the workers create R3 streams (-stream-replicas)
	}
	e.source = e.startFakeOrg("source")
	e.target = e.startFakeOrg("target")
	if err := e.target.configure(ctx, targetFaults); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		e.addWorker(fmt.Sprintf("w%d", i))
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
	e.startProducer()
	if p.servers > 1 {
		e.assertReplicas(ctx, 3)
	}
	e.producer.supervised.Store(true)
	e.setSupervised(true)
	e.supervise(ctx)

	// Records appear in the source while the chaos runs.
	var rs sourceRecords
	created := make(chan error, 1)
	go func() { created <- e.createSource(ctx, p.records, p.createOver, rejectEvery, &rs) }()

	kills, natsRestarts := 0, 0
	leaderKilled := ""
	creating := true
	tick := time.NewTicker(p.killEvery)
	defer tick.Stop()
	chaosStart := time.Now()
	chaosDeadline := chaosStart.Add(p.createOver + time.Duration(p.minKills+2)*p.killEvery + 2*time.Minute)
	for creating || kills < p.minKills || natsRestarts == 0 {
		if time.Now().After(chaosDeadline) {
			t.Fatalf("chaos phase overran: creating=%v kills=%d nats restarts=%d", creating, kills, natsRestarts)
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
		case <-tick.C:
		}
		if natsRestarts == 0 && (!creating || time.Since(chaosStart) >= p.createOver/2) {
			if p.servers == 1 {
				t.Logf("%s: SIGKILL and restart of the NATS server", time.Since(began).Round(time.Millisecond))
				e.restartNATS(e.nats[0], 500*time.Millisecond)
			} else {
				var leader *natsServer
				if !eventually(ctx, 20*time.Second, 200*time.Millisecond, func() bool {
					var err error
					leader, err = e.streamLeader(ctx)
					return err == nil
				}) {
					t.Fatal("no ORGSYNC stream leader")
				}
				leaderKilled = leader.name
				t.Logf("%s: SIGKILL of the stream leader %s; restart in 3s", time.Since(began).Round(time.Millisecond), leader.name)
				e.restartNATS(leader, 3*time.Second)
			}
			natsRestarts++
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
	chaosWall := time.Since(chaosStart)
	for _, w := range e.workers {
		if err := e.waitReady(ctx, w, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	all, rejected := rs.snapshot()
	var valid []string
	for _, id := range all {
		if !rejected[id] {
			valid = append(valid, id)
		}
	}
	if src, err := e.source.query(ctx, "SELECT Id FROM Account"); err != nil || len(src) != len(all) {
		t.Fatalf("source holds %d records, the test created %d (err %v)", len(src), len(all), err)
	}

	// Phase 1: every valid record once in the target, the rejected in the DLQ.
	ok, state := e.waitConverged(ctx, len(valid), len(rejected), p.converge)
	convergeWall := time.Since(chaosStart) - chaosWall
	if !ok {
		t.Errorf("phase 1 did not converge within %s: %s", p.converge, state)
	}
	stats, _ := e.target.stats(ctx)
	// The accounting reads the target without faults (the token TTL stays).
	if err := e.target.configure(ctx, map[string]any{"fail_rate": 0.0, "lock_rate": 0.0, "latency": "0s"}); err != nil {
		t.Fatal(err)
	}
	tl1, err := e.accountTarget(ctx, valid)
	if err != nil {
		t.Fatal(err)
	}
	tl1.check(t, "phase 1")
	dead := e.checkDLQ(ctx, t, rejected)
	mapped1 := e.checkMappings(ctx, t, tl1)

	// Phase 2: lift the rule, replay the DLQ: everything once.
	if err := e.target.configure(ctx, map[string]any{"reject_name": "", "fail_rate": 0.05, "lock_rate": 0.05, "latency": "20ms"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range e.workers {
		if err := e.startWorker(w, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e.setSupervised(true)
	replayed, err := e.dlqReplay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if replayed != len(rejected) {
		t.Errorf("replayed %d dead letters, want %d", replayed, len(rejected))
	}
	ok, state = e.waitConverged(ctx, len(all), 0, p.converge)
	if !ok {
		t.Errorf("phase 2 (replay) did not converge within %s: %s", p.converge, state)
	}
	if qs, err := e.queueState(ctx); err != nil || qs.dlq != 0 {
		t.Errorf("DLQ after replay: %d entries (err %v), want 0", qs.dlq, err)
	}
	if err := e.target.configure(ctx, map[string]any{"fail_rate": 0.0, "lock_rate": 0.0, "latency": "0s"}); err != nil {
		t.Fatal(err)
	}
	tl2, err := e.accountTarget(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	tl2.check(t, "phase 2")
	mapped2 := e.checkMappings(ctx, t, tl2)
	final, _ := e.target.stats(ctx)

	var f figures
	topo := "1 NATS server, SIGKILLed and restarted once"
	if p.servers > 1 {
		topo = fmt.Sprintf("3-server JetStream cluster, R3 streams; stream leader %s SIGKILLed once", leaderKilled)
	}
	f.add("topology", "%s; 3 workers; producer polling", topo)
	f.add("events (source records)", "%d (%d valid, %d rejected by the rule)", len(all), len(valid), len(rejected))
	f.add("worker SIGKILLs", "%d (every %s, restarted after 0.5s)", kills, p.killEvery)
	f.add("NATS restarts", "%d", natsRestarts)
	selfExits, who := e.selfExits()
	f.add("self-exits restarted by the supervisor", "%d %v", selfExits, who)
	f.add("target faults", "503 rate %.2f, lock rate %.2f per record, latency 20ms, token TTL 3s", 0.05, 0.05)
	f.add("target API calls (phase 1)", "%d (upserts %d; expected at these rates: ~%d whole-call 503s)",
		stats.APICalls, stats.ByRoute["PATCH /composite/sobjects/Account/{field}"]+stats.ByRoute["POST /composite"],
		int(math.Round(0.05*float64(stats.APICalls))))
	f.add("faults seen in worker logs", "%d 503 SERVER_UNAVAILABLE retried, %d expired tokens renewed (INVALID_SESSION_ID); row locks are nak'ed without a log line",
		e.countInLogs("worker-", "SERVER_UNAVAILABLE"), e.countInLogs("worker-", "INVALID_SESSION_ID"))
	f.add("target API calls (total)", "%d", final.APICalls)
	f.add("lost", "%d (phase 1), %d (after replay)", len(tl1.lost), len(tl2.lost))
	f.add("duplicated", "%d (phase 1), %d (after replay)", len(tl1.duplicated), len(tl2.duplicated))
	f.add("unexpected in target", "%d (phase 1), %d (after replay)", len(tl1.unexpected), len(tl2.unexpected))
	f.add("dead-lettered", "%d (want %d)", dead, len(rejected))
	f.add("replayed", "%d", replayed)
	f.add("mapped by some worker", "%d of %d (phase 1), %d of %d (after replay)", mapped1, len(valid), mapped2, len(all))
	f.add("wall time", "%s (chaos %s, convergence %s)", time.Since(began).Round(time.Millisecond),
		chaosWall.Round(time.Millisecond), convergeWall.Round(time.Millisecond))
	f.print(t, t.Name())
}

// TestChaosProducerCrash: the poller is SIGKILLed repeatedly while records
// are being created; none is skipped.
func TestChaosProducerCrash(t *testing.T) {
	skipShort(t)
	n, over, minKills := 600, 8*time.Second, 6
	if full() {
		n, over, minKills = 4000, 30*time.Second, 25
	}
	t.Parallel()
	ctx := t.Context()
	began := time.Now()
	e := newEnv(t)
	e.startNATS(1)
	e.source = e.startFakeOrg("source")
	e.target = e.startFakeOrg("target", "-latency", "5ms")
	for i := 1; i <= 2; i++ {
		w := e.addWorker(fmt.Sprintf("w%d", i))
		if err := e.startWorker(w, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e.startProducer()
	e.producer.supervised.Store(true)
	e.setSupervised(true)
	e.supervise(ctx)
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
		e.producer.ctl.Lock()
		if e.producer.kill() {
			kills++
		}
		time.Sleep(200 * time.Millisecond) // the poller stays down a moment
		err := e.producer.start()
		e.producer.ctl.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _ := rs.snapshot()
	ok, state := e.waitConverged(ctx, len(all), 0, 90*time.Second)
	if !ok {
		t.Errorf("did not converge within 90s: %s", state)
	}
	tl, err := e.accountTarget(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	tl.check(t, "producer crash")
	if qs, err := e.queueState(ctx); err != nil || qs.dlq != 0 {
		t.Errorf("DLQ: %d entries (err %v), want 0", qs.dlq, err)
	}
	var f figures
	f.add("events (source records)", "%d, created over %s", len(all), over)
	f.add("producer SIGKILLs", "%d (every 0.7–1.3s, restarted after 0.2s)", kills)
	selfExits, who := e.selfExits()
	f.add("self-exits restarted by the supervisor", "%d %v", selfExits, who)
	f.add("lost (skipped)", "%d", len(tl.lost))
	f.add("duplicated", "%d", len(tl.duplicated))
	f.add("wall time", "%s", time.Since(began).Round(time.Millisecond))
	f.print(t, t.Name())
}
