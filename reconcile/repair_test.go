package reconcile

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/queue/queuetest"
)

func repairEventOf(t *testing.T, id string) event.Event {
	t.Helper()
	allow, _ := event.ParseFields("Name")
	ev, err := event.NewAccountCreated(srcOrg, map[string]any{"Id": id, "Name": "Acme"}, allow)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// Repairs land on orgsync.account.created.<source_id> with the poll body, a key of
// their own (a created event of the same record in the duplicate window
// does not swallow them; a second run's repair is not a duplicate of the
// first's) and the repair header.
func TestQueuePublisher(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{})
	q := ns.Queue(t, queue.Config{})
	ev := repairEventOf(t, sid(1))
	body, _ := ev.Encode()
	if _, err := q.Publish(t.Context(), queue.AccountSubject(ev.Change(), ev.SourceID), ev.MsgID(), body, nil); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"1", "2", "2"} {
		if err := (&QueuePublisher{Queue: q, RunID: run}).Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ns.JS.Stream(t.Context(), queue.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages, want 3 (the created event and two runs' repairs)", info.State.Msgs)
	}
	m, err := s.GetMsg(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != queue.PartitionedSubject("created", sid(1), queue.PartitionOf(sid(1), queue.DefaultPartitions)) || string(m.Data) != string(body) ||
		m.Header.Get(queue.HeaderMsgID) != srcOrg+":"+sid(1)+":repair:1" || m.Header.Get(queue.HeaderRepair) != "1" ||
		m.Header.Get(queue.HeaderSourceID) != sid(1) {
		t.Errorf("repair message: %s %s %v", m.Subject, m.Data, m.Header)
	}
}

func TestDryRunWritesWhatItWouldPublish(t *testing.T) {
	var b bytes.Buffer
	ev := repairEventOf(t, sid(2))
	if err := (&DryRun{W: &b, RunID: "7"}).Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	body, _ := ev.Encode()
	want := "would publish orgsync.account.created." + sid(2) + " " + srcOrg + ":" + sid(2) + ":repair:7 " + string(body) + "\n"
	if b.String() != want {
		t.Errorf("dry run wrote %q, want %q", b.String(), want)
	}
}

func TestMetricsDescribeTheLastCompletedRun(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Finished(time.Unix(100, 0), Result{Missing: 2, Different: 1, SourceRecords: 10}, 5, 6, nil)
	m.Finished(time.Unix(200, 0), Result{}, 0, 0, context.Canceled) // a failed run leaves the counts
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range mt.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = mt.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"orgsync_reconcile_differences{kind=missing}":       2,
		"orgsync_reconcile_differences{kind=different}":     1,
		"orgsync_reconcile_differences{kind=extra}":         0,
		"orgsync_reconcile_differences{kind=stale_mapping}": 0,
		"orgsync_reconcile_records{org=source}":             10,
		"orgsync_reconcile_api_calls{org=target}":           6,
		"orgsync_reconcile_last_run_timestamp_seconds":      200,
		"orgsync_reconcile_last_success_timestamp_seconds":  100,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	var nilMetrics *Metrics
	nilMetrics.Finished(time.Now(), Result{}, 0, 0, nil) // records nothing, does not panic
	nilMetrics.Paused("source")(true)
}

func TestProgressPrinter(t *testing.T) {
	var term bytes.Buffer
	p := &ProgressPrinter{W: &term, Terminal: true}
	p.Update(Progress{Phase: PhaseSource, Done: 50, Total: 200, Result: Result{Missing: 1}})
	p.Clear()
	if got := term.String(); !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("Clear left %q", got)
	}
	term.Reset()
	p.Update(Progress{Phase: PhaseSource, Done: 50, Total: 200, Result: Result{Missing: 1}})
	p.Done()
	if got := term.String(); !strings.HasPrefix(got, "\rsource  25% [#######") || !strings.Contains(got, "50/200  missing 1, extra 0, different 0") || !strings.HasSuffix(got, "\n") {
		t.Errorf("terminal bar %q", got)
	}

	var logs bytes.Buffer
	now := time.Unix(0, 0)
	p = &ProgressPrinter{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Every: 10 * time.Second, Now: func() time.Time { return now }}
	for i, step := range []time.Duration{0, time.Second, 10 * time.Second, time.Second} {
		now = now.Add(step)
		p.Update(Progress{Phase: PhaseTarget, Done: 100 * (i + 1), Total: -1})
	}
	if n := strings.Count(logs.String(), "reconcile progress"); n != 2 {
		t.Errorf("%d progress lines in 12s at one per 10s, want 2:\n%s", n, logs.String())
	}
}
