package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/queue"
	"orgsync/queue/queuetest"
)

// legacyServer starts a server with ORGSYNC as an older orgsync left it:
// no partition transform and the consumer "workers".
func legacyServer(t *testing.T) (*queuetest.Server, jetstream.Consumer) {
	t.Helper()
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	_, err := ns.JS.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: queue.Stream, Subjects: []string{queue.SubjectAccounts}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, Duplicates: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ns.JS.CreateConsumer(t.Context(), queue.Stream, jetstream.ConsumerConfig{
		Durable: queue.ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: queue.SubjectAccounts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns, c
}

// publishOld publishes three events on orgsync.account.created.
func publishOld(t *testing.T, ns *queuetest.Server) {
	t.Helper()
	for i := range 3 {
		id := dlqID(i)
		body := fmt.Sprintf(`{"v":1,"type":"account.created","source_org":%q,"source_id":%q,"fields":{"Name":"N"}}`, dlqOrg, id)
		if _, err := ns.JS.Publish(t.Context(), queue.SubjectCreated, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
}

// Ensure that worker migrate refuses while an old worker pulls, says what a
// dry run would do, migrates, and finds nothing to do the second time.
func TestMigrateCommand(t *testing.T) {
	ns, c := legacyServer(t)
	url := ns.ClientURL()

	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		// An old worker waiting for events.
		b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err == nil {
			for m := range b.Messages() {
				_ = m.Nak()
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := c.Info(t.Context())
		if err == nil && info.NumWaiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old worker's pull never waited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, stderr := runCmd(t, "migrate", "-nats-url", url)
	if code != 1 || !strings.Contains(stderr, "an old worker is still running") || out != "" {
		t.Fatalf("migrate with an old worker pulling: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	publishOld(t, ns) // the old worker gets the first and hands it back
	<-pulled

	code, out, stderr = runCmd(t, "migrate", "-nats-url", url, "-partitions", "4", "-dry-run")
	if code != 0 || out != "dry run; would partition ORGSYNC into 4 partitions; would move 3 messages from legacy subjects; would delete consumer workers\n" {
		t.Fatalf("dry run: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, stderr = runCmd(t, "migrate", "-nats-url", url, "-partitions", "4")
	var parts []int
	for i := range 3 {
		p := queue.PartitionOf(dlqID(i), 4)
		if !containsInt(parts, p) {
			parts = append(parts, p)
		}
	}
	want := fmt.Sprintf("partitioned ORGSYNC into 4 partitions; moved 3 messages to %d partitions; deleted consumer workers\n", len(parts))
	if code != 0 || out != want {
		t.Fatalf("migrate: exit %d, stdout %q (want %q), stderr %q", code, out, want, stderr)
	}
	s, err := ns.JS.Stream(t.Context(), queue.Stream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		subj := queue.PartitionedSubject("created", dlqID(i), queue.PartitionOf(dlqID(i), 4))
		if _, err := s.GetLastMsgForSubject(t.Context(), subj); err != nil {
			t.Errorf("no event on %s after migrate: %v", subj, err)
		}
	}
	code, out, _ = runCmd(t, "migrate", "-nats-url", url)
	if code != 0 || out != "ORGSYNC already has 4 partitions; moved 0 messages to 0 partitions; no consumer workers to delete\n" {
		t.Errorf("second migrate: exit %d, stdout %q", code, out)
	}
	if code, _, stderr := runCmd(t, "migrate", "-nats-url", url, "-partitions", "0"); code != 2 || !strings.Contains(stderr, "-partitions 0") {
		t.Errorf("-partitions 0: exit %d, stderr %q", code, stderr)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Ensure that dlq list -json names each dead letter's change, from its
// original subject or else its body.
func TestDLQListChange(t *testing.T) {
	ns := queuetest.Start(t, queuetest.Config{Listen: true})
	ns.Queue(t, queue.Config{})
	for _, tc := range []struct{ subject, body string }{
		{"orgsync.dlq.account.updated." + dlqID(1) + ".3", `{"v":1,"type":"account.updated"}`},
		{queue.SubjectDLQCreated, `{"v":1,"type":"account.created"}`},
		{"orgsync.dlq.account.deleted." + dlqID(2) + ".0", `not json`},
	} {
		m := nats.NewMsg(tc.subject)
		m.Data = []byte(tc.body)
		m.Header.Set(queue.HeaderErrorCode, "X")
		if _, err := ns.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCmd(t, "dlq", "list", "-json", "-nats-url", ns.ClientURL())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, fmt.Sprint(e["change"]))
	}
	if strings.Join(got, ",") != "updated,created,deleted" {
		t.Errorf("changes %v, want updated, created, deleted", got)
	}
}
