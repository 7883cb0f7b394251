package chaos

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/event"
	"orgsync/queue"
)

// TestChaosMigrate: a deployment of the previous release (ORGSYNC without
// the partition transform, one consumer "workers", events on
// orgsync.account.created) has a backlog, part of it delivered to old
// workers that died without acknowledging. `worker migrate` refuses while
// an old worker still waits for messages, then moves the deployment over;
// updates of some records are published on the new subjects after the
// migration, an old producer keeps publishing creates on the old subject,
// and new workers (one SIGKILLed mid-drain) replicate everything: every
// record once in the target, the updated ones with the update applied after
// their create.
func TestChaosMigrate(t *testing.T) {
	skipShort(t)
	t.Parallel()
	n, unacked, late := 300, 60, 20
	if full() {
		n, unacked, late = 2000, 400, 100
	}
	ctx := t.Context()
	began := time.Now()
	e := newEnv(t)
	e.startNATS(1)
	e.source = e.startFakeOrg("source")
	org, err := e.source.orgID()
	if err != nil {
		t.Fatal(err)
	}
	e.target = e.startFakeOrg("target")
	if err := e.target.configure(ctx, map[string]any{"fail_rate": 0.05, "latency": "5ms"}); err != nil {
		t.Fatal(err)
	}

	// The source's records, and what the target must hold at the end.
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = map[string]any{"Name": fmt.Sprintf("Migrate %05d", i), "Phone": fmt.Sprintf("+1 555 3%05d", i), "Industry": "Chaos"}
	}
	ids, err := e.source.createRecords(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]map[string]any, n+late)
	for i, id := range ids {
		want[id] = recs[i]
	}

	// The previous release's layout, with an old worker waiting for
	// messages: migrate refuses.
	old, err := e.createOldLayout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := old.Fetch(1, jetstream.FetchMaxWait(10*time.Second)) // long enough for the command to look
	if err != nil {
		t.Fatal(err)
	}
	if !eventually(ctx, 5*time.Second, 20*time.Millisecond, func() bool {
		ci, err := old.Info(ctx)
		return err == nil && ci.NumWaiting > 0
	}) {
		t.Fatal("the old worker's pull request is not waiting on the consumer")
	}
	refusal, err := e.workerCLI(ctx, "migrate", "-nats-url", e.natsURLs(), "-partitions", "16")
	if err == nil {
		t.Fatalf("worker migrate ran while an old worker was waiting for messages; it said %q", refusal)
	}
	refusal = firstLine(err.Error())
	if _, msg, ok := strings.Cut(refusal, "worker: error: "); ok {
		refusal = msg
	}
	if !strings.Contains(refusal, "old worker") {
		t.Fatalf("worker migrate with an old worker waiting failed, but not saying so: %s", refusal)
	}
	t.Logf("worker migrate with an old worker still running: %s", refusal)
	for range waiting.Messages() { // ends when the request expires
	}
	if !eventually(ctx, 20*time.Second, 50*time.Millisecond, func() bool {
		ci, err := old.Info(ctx)
		return err == nil && ci.NumWaiting == 0
	}) {
		t.Fatal("the old worker's pull request never expired")
	}

	// The backlog: created events on the old subject, as the previous
	// release's producers published them.
	js := e.js
	for i, id := range ids {
		ev := event.Event{V: event.Version, Type: event.TypeAccountCreated, SourceOrg: org, SourceID: id,
			CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Fields: recs[i]}
		if err := publishEvent(ctx, js, queue.SubjectCreated, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Old workers took a batch and died without acknowledging it.
	batch, err := old.Fetch(unacked, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range batch.Messages() {
		held++
	}
	if held != unacked {
		t.Fatalf("the old worker took %d messages, want %d", held, unacked)
	}
	if !eventually(ctx, 10*time.Second, 50*time.Millisecond, func() bool {
		ci, err := old.Info(ctx)
		return err == nil && ci.NumWaiting == 0 && ci.NumAckPending == unacked
	}) {
		t.Fatal("the old consumer does not show the unacknowledged batch")
	}

	// The migration.
	migrated := time.Now()
	out, err := e.workerCLI(ctx, "migrate", "-nats-url", e.natsURLs(), "-partitions", "16")
	if err != nil {
		t.Fatalf("worker migrate: %v", err)
	}
	migrateWall := time.Since(migrated)
	t.Logf("worker migrate said: %s", strings.TrimSpace(out))

	// After it: updates of some records on the new subjects (among them
	// records of the unacknowledged batch), creates from an old producer
	// still running on the old subject.
	updated := 0
	ups := make(map[string]map[string]any)
	for i, id := range ids {
		if i%4 != 0 && (i >= unacked || i%3 != 1) {
			continue
		}
		v := map[string]any{"Name": fmt.Sprintf("Migrate %05d updated", i), "Phone": nil}
		ups[id] = v
		want[id] = map[string]any{"Name": v["Name"], "Phone": nil, "Industry": "Chaos"}
	}
	if err := e.source.updateRecords(ctx, ups); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		v, ok := ups[id]
		if !ok {
			continue
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		ev := event.Event{V: event.Version, Type: event.TypeAccountUpdated, SourceOrg: org, SourceID: id,
			ChangedAt: now, ChangeKey: fmt.Sprintf("%s:migrate%d", now.Format("20060102T150405.000"), i), Fields: v}
		if err := publishEvent(ctx, js, queue.AccountSubject(event.ChangeUpdated, id), ev); err != nil {
			t.Fatal(err)
		}
		updated++
	}
	lateRecs := make([]map[string]any, late)
	for i := range lateRecs {
		lateRecs[i] = map[string]any{"Name": fmt.Sprintf("Late %03d", i), "Industry": "Chaos"}
	}
	lateIDs, err := e.source.createRecords(ctx, lateRecs)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range lateIDs {
		want[id] = lateRecs[i]
		ev := event.Event{V: event.Version, Type: event.TypeAccountCreated, SourceOrg: org, SourceID: id,
			CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Fields: lateRecs[i]}
		if err := publishEvent(ctx, js, queue.SubjectCreated, ev); err != nil {
			t.Fatal(err)
		}
	}
	// The new workers; one is SIGKILLed once a third of the records is in
	// the target.
	for i := 1; i <= 3; i++ {
		e.addWorker(fmt.Sprintf("w%d", i), e.lifeWorkerFlags(lifeLeaseTTL)...)
	}
	for _, w := range e.workers {
		if err := e.startWorker(w, 0); err != nil {
			t.Fatal(err)
		}
	}
	e.setSupervised(true)
	e.supervise(ctx)
	kills := 0
	if eventually(ctx, 60*time.Second, 50*time.Millisecond, func() bool {
		st, err := e.target.stats(ctx)
		return err == nil && st.Records["Account"] >= len(want)/3
	}) {
		w := e.workers[0]
		w.p.ctl.Lock()
		if w.p.kill() {
			kills++
		}
		err := e.startWorker(w, 0)
		w.p.ctl.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}

	var last string
	var bad []string
	ok := eventually(ctx, 90*time.Second, 500*time.Millisecond, func() bool {
		qs, err := e.queueState(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("stored %d, pending %d, ack pending %d, DLQ %d", qs.stored, qs.pending, qs.ackPending, qs.dlq)
		if qs.stored != 0 || qs.pending != 0 || qs.ackPending != 0 {
			return false
		}
		bad, err = e.compareMigrated(ctx, want)
		if err != nil {
			last = err.Error()
			return false
		}
		return len(bad) == 0
	})
	converge := time.Since(migrated)
	if err := e.target.configure(ctx, map[string]any{"fail_rate": 0.0, "latency": "0s"}); err != nil {
		t.Fatal(err)
	}
	if !ok {
		bad, _ = e.compareMigrated(ctx, want)
		t.Errorf("did not converge within 90s: queue %s; %d records differ, e.g. %v", last, len(bad), head(bad))
	}

	// The layout is the partitioned one and the DLQ is empty.
	consumers, err := e.consumerNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	has := make(map[string]bool)
	for _, c := range consumers {
		has[c] = true
	}
	if has[queue.ConsumerName] {
		t.Errorf("the old consumer %q still exists after the migration (consumers: %v)", queue.ConsumerName, consumers)
	}
	for p := range 16 {
		if !has[queue.ConsumerFor(p)] {
			t.Errorf("no consumer %s after the migration (consumers: %v)", queue.ConsumerFor(p), consumers)
		}
	}
	entries, err := e.dlqList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		t.Errorf("unexpected dead letter: %s %s %s %q", d.SourceID, d.Change, d.Code, d.Message)
	}
	var seq uint64
	if st, err := e.js.Stream(ctx, queue.Stream); err == nil {
		seq = st.CachedInfo().State.LastSeq
	}
	var f figures
	f.add("backlog before the migration", "%d created events on %s, %d of them delivered to an old worker and never acknowledged", n, queue.SubjectCreated, unacked)
	f.add("migrate refused with an old worker waiting", "%s", refusal)
	f.add("worker migrate", "%s (%s)", firstLine(out), migrateWall.Round(time.Millisecond))
	f.add("after the migration", "%d updates on orgsync.account.updated.<id> (%d of the unacknowledged batch's records), %d creates on the old subject",
		updated, countUpdatedBelow(ids, ups, unacked), late)
	f.add("events through ORGSYNC", "%d (stream's last sequence, moves included)", seq)
	f.add("worker SIGKILLs", "%d", kills)
	f.add("target", "%d records expected, %d differing (missing, duplicated or not updated)", len(want), len(bad))
	f.add("DLQ", "%d entries (expected 0)", len(entries))
	f.add("time to converge", "%s after the migration started", converge.Round(time.Millisecond))
	f.add("wall time", "%s", time.Since(began).Round(time.Millisecond))
	f.print(t, t.Name())
}

func countUpdatedBelow(ids []string, ups map[string]map[string]any, n int) int {
	c := 0
	for _, id := range ids[:n] {
		if _, ok := ups[id]; ok {
			c++
		}
	}
	return c
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// createOldLayout creates ORGSYNC, ORGSYNC_DLQ and the consumer "workers"
// as the release before docs/ordering.md did (a work queue on
// orgsync.account.> without a subject transform, one durable pull consumer
// on all of it), and returns the consumer.
func (e *env) createOldLayout(ctx context.Context) (jetstream.Consumer, error) {
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: queue.Stream, Description: "orgsync: account events to replicate (work queue)",
		Subjects: []string{"orgsync.account.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Discard: jetstream.DiscardNew, MaxMsgs: -1, MaxBytes: -1, Duplicates: time.Hour, Replicas: 1, AllowDirect: true,
	}); err != nil {
		return nil, fmt.Errorf("old ORGSYNC: %w", err)
	}
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: queue.DLQStream, Description: "orgsync: dead letters, kept until replayed or purged",
		Subjects: []string{"orgsync.dlq.>"}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		Discard: jetstream.DiscardNew, MaxMsgs: -1, MaxBytes: -1, Duplicates: time.Hour, Replicas: 1,
	}); err != nil {
		return nil, fmt.Errorf("old ORGSYNC_DLQ: %w", err)
	}
	c, err := e.js.CreateConsumer(ctx, queue.Stream, jetstream.ConsumerConfig{
		Durable: "workers", Description: "orgsync: worker pool", DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxDeliver: -1, MaxAckPending: 20000,
		FilterSubject: "orgsync.account.>", ReplayPolicy: jetstream.ReplayInstantPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("old consumer workers: %w", err)
	}
	return c, nil
}

// publishEvent publishes an event as a producer does: the JSON body, its
// dedup key as Nats-Msg-Id, and waits for the stream's acknowledgement.
func publishEvent(ctx context.Context, js jetstream.JetStream, subject string, ev event.Event) error {
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, ev.MsgID())
	for attempt := 1; ; attempt++ {
		_, err := js.PublishMsg(ctx, m)
		if err == nil || attempt == 5 || errors.Is(err, context.Canceled) {
			return err
		}
	}
}

// compareMigrated checks that every wanted record is in the target exactly
// once with the wanted fields, and nothing else is.
func (e *env) compareMigrated(ctx context.Context, want map[string]map[string]any) ([]string, error) {
	rows, err := e.target.rows(ctx, "SELECT Id, Source_Id__c, Name, Phone, Industry FROM Account")
	if err != nil {
		return nil, err
	}
	got := make(map[string][]map[string]any)
	for _, r := range rows {
		s, _ := r["Source_Id__c"].(string)
		got[s] = append(got[s], r)
	}
	var bad []string
	for id, w := range want {
		rs := got[id]
		switch {
		case len(rs) == 0:
			bad = append(bad, id+": missing")
			continue
		case len(rs) > 1:
			bad = append(bad, fmt.Sprintf("%s: %d copies", id, len(rs)))
		}
		for _, f := range []string{"Name", "Phone", "Industry"} {
			if !sameValue(w[f], rs[0][f]) {
				bad = append(bad, fmt.Sprintf("%s %s: want %q, target %q", id, f, str(w[f]), str(rs[0][f])))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			bad = append(bad, id+": not expected in the target")
		}
	}
	return bad, nil
}

// consumerNames lists ORGSYNC's consumers, sorted.
func (e *env) consumerNames(ctx context.Context) ([]string, error) {
	st, err := e.js.Stream(ctx, queue.Stream)
	if err != nil {
		return nil, err
	}
	l := st.ConsumerNames(ctx)
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

var orgIDRE = regexp.MustCompile(`org_id[=":\s]+"?(00D[0-9A-Za-z]{12,15})`)

// orgID is the fake org's Organization ID, from its start-up line.
func (o *fakeOrg) orgID() (string, error) {
	m, err := o.p.waitLine(orgIDRE, 10*time.Second)
	if err != nil {
		return "", err
	}
	return m[1], nil
}
