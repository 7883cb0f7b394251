package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRunWithCDC: the demo captured by Change Data Capture syncs every
// Account exactly once, reading the source only for the describe.
func TestRunWithCDC(t *testing.T) {
	var out bytes.Buffer
	rep, err := Run(t.Context(), Config{Accounts: 200, Workers: 2, Latency: time.Millisecond,
		Progress: "lines", Out: &out, Capture: "cdc"})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if rep.Synced+rep.DeadLettered != 200 || len(rep.Problems) != 0 {
		t.Errorf("synced %d, dead-lettered %d, problems %v", rep.Synced, rep.DeadLettered, rep.Problems)
	}
	if rep.SourceCalls > 5 {
		t.Errorf("%d source API calls; CDC should not query per record or per interval", rep.SourceCalls)
	}
	if !strings.Contains(out.String(), "Change Data Capture") {
		t.Errorf("output does not say how it captured:\n%s", out.String())
	}
}

func TestRunRejectsUnknownCapture(t *testing.T) {
	if _, err := Run(t.Context(), Config{Capture: "webhook"}); err == nil {
		t.Fatal("capture webhook accepted")
	}
}
