package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunSyncsReplaysAndChecks(t *testing.T) {
	var out bytes.Buffer
	rep, err := Run(t.Context(), Config{Accounts: 300, Workers: 2, Latency: 5 * time.Millisecond, FailRate: 0.05,
		Progress: "lines", Out: &out})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	// Every 50th Account (6 of 300) breaks the rule until it is lifted.
	if rep.DeadLettered != 6 || rep.Synced != 294 || rep.Replayed != 6 {
		t.Errorf("synced %d, dead-lettered %d, replayed %d; want 294, 6, 6", rep.Synced, rep.DeadLettered, rep.Replayed)
	}
	if rep.Reasons["FIELD_CUSTOM_VALIDATION_EXCEPTION: Account Name is not allowed (validation rule Reject_Account_Name: ^Invalid)"] != 6 {
		t.Errorf("reasons = %v", rep.Reasons)
	}
	if len(rep.Problems) != 0 || rep.Links != 15 {
		t.Errorf("problems %v, links %d (want 15)", rep.Problems, rep.Links)
	}
	if rep.WriteCalls == 0 || rep.WriteCalls >= rep.Synced {
		t.Errorf("%d write calls for %d records: not batched", rep.WriteCalls, rep.Synced)
	}
	for _, want := range []string{"300/300", "Report", "dead-lettered:     6", "replayed 6 dead letters", "exactly once", "OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, "bar", 10)
	p.update(5, 0, time.Second)
	p.update(9, 1, 2*time.Second)
	p.done()
	if s := out.String(); !strings.Contains(s, "\r  [####################....................]     5/10") || !strings.HasSuffix(s, "\n") {
		t.Errorf("bar output %q", s)
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Run(ctx, Config{Accounts: 10}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run on a cancelled context: %v, want context.Canceled", err)
	}
}
