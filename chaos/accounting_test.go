package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// rejectPrefix starts the names the target's validation rule rejects.
const rejectPrefix = "Reject"

// sourceRecords are the Accounts created in the source fake.
type sourceRecords struct {
	mu       sync.Mutex
	ids      []string
	rejected map[string]bool // source ID → its name matches the reject rule
}

func (r *sourceRecords) snapshot() (all []string, rejected map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rej := make(map[string]bool, len(r.rejected))
	for k, v := range r.rejected {
		rej[k] = v
	}
	return slices.Clone(r.ids), rej
}

// createSource creates n Accounts in the source spread evenly over `over`,
// in collections calls of at most 200; every rejectEvery-th name (0: none)
// matches the target's reject rule.
func (e *env) createSource(ctx context.Context, n int, over time.Duration, rejectEvery int, rs *sourceRecords) error {
	calls := max((n+199)/200, int(over/(250*time.Millisecond)), 1)
	calls = min(calls, n)
	per := (n + calls - 1) / calls
	gap := over / time.Duration(calls)
	next := time.Now()
	for i := 0; i < n; {
		names := make([]string, 0, per)
		for ; i < n && len(names) < per; i++ {
			if rejectEvery > 0 && i%rejectEvery == rejectEvery-1 {
				names = append(names, fmt.Sprintf("%s %05d", rejectPrefix, i))
			} else {
				names = append(names, fmt.Sprintf("Chaos %05d", i))
			}
		}
		ids, err := e.source.createAccounts(ctx, names)
		if err != nil {
			return err
		}
		rs.mu.Lock()
		if rs.rejected == nil {
			rs.rejected = make(map[string]bool)
		}
		for j, id := range ids {
			rs.ids = append(rs.ids, id)
			if strings.HasPrefix(names[j], rejectPrefix) {
				rs.rejected[id] = true
			}
		}
		rs.mu.Unlock()
		next = next.Add(gap)
		select { // pacing the load, not a synchronisation
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
	return nil
}

// waitConverged waits until the target holds at least wantTarget records,
// the DLQ at least wantDLQ and the work queue is drained. It returns a
// description of the last state.
func (e *env) waitConverged(ctx context.Context, wantTarget, wantDLQ int, timeout time.Duration) (bool, string) {
	var last string
	ok := eventually(ctx, timeout, 250*time.Millisecond, func() bool {
		st, err := e.target.stats(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		qs, err := e.queueState(ctx)
		if err != nil {
			last = fmt.Sprintf("target %d/%d, queue: %v", st.Records["Account"], wantTarget, err)
			return false
		}
		last = fmt.Sprintf("target %d/%d records, DLQ %d/%d, pending %d, ack pending %d",
			st.Records["Account"], wantTarget, qs.dlq, wantDLQ, qs.pending, qs.ackPending)
		return st.Records["Account"] >= wantTarget && int(qs.dlq) >= wantDLQ && qs.pending == 0 && qs.ackPending == 0
	})
	return ok, last
}

// tally is the accounting of the target against the source.
type tally struct {
	present    int      // expected source IDs present
	lost       []string // expected, missing
	duplicated []string // present more than once
	unexpected []string // present but not expected (a rejected record, or unknown)
	bySource   map[string]string
}

// accountTarget reads every Account of the target and compares it with the
// expected source IDs.
func (e *env) accountTarget(ctx context.Context, want []string) (tally, error) {
	rows, err := e.target.query(ctx, "SELECT Id, Name, Source_Id__c FROM Account")
	if err != nil {
		return tally{}, err
	}
	got := make(map[string][]string)
	for _, r := range rows {
		got[r.SourceID] = append(got[r.SourceID], r.ID)
	}
	tl := tally{bySource: make(map[string]string)}
	wanted := make(map[string]bool, len(want))
	for _, id := range want {
		wanted[id] = true
		switch ids := got[id]; {
		case len(ids) == 0:
			tl.lost = append(tl.lost, id)
		case len(ids) > 1:
			tl.duplicated = append(tl.duplicated, id)
			fallthrough
		default:
			tl.present++
			tl.bySource[id] = ids[0]
		}
	}
	for src := range got {
		if !wanted[src] {
			tl.unexpected = append(tl.unexpected, src)
		}
	}
	return tl, nil
}

// check reports a tally's failures on t.
func (tl tally) check(t *testing.T, what string) {
	t.Helper()
	if len(tl.lost) > 0 {
		t.Errorf("%s: %d records LOST (in the source, not in the target), e.g. %v", what, len(tl.lost), head(tl.lost))
	}
	if len(tl.duplicated) > 0 {
		t.Errorf("%s: %d records DUPLICATED in the target, e.g. %v", what, len(tl.duplicated), head(tl.duplicated))
	}
	if len(tl.unexpected) > 0 {
		t.Errorf("%s: %d unexpected records in the target (rejected or unknown source IDs), e.g. %v", what, len(tl.unexpected), head(tl.unexpected))
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

// checkDLQ compares the DLQ with the rejected records: each exactly once,
// with the validation rule's code.
func (e *env) checkDLQ(ctx context.Context, t *testing.T, rejected map[string]bool) int {
	t.Helper()
	entries, err := e.dlqList(ctx)
	if err != nil {
		t.Errorf("dlq list: %v", err)
		return 0
	}
	seen := make(map[string]int)
	var wrongCode, notRejected []string
	for _, d := range entries {
		seen[d.SourceID]++
		if d.Code != "FIELD_CUSTOM_VALIDATION_EXCEPTION" {
			wrongCode = append(wrongCode, fmt.Sprintf("%s: %s %q (attempts %d)", d.SourceID, d.Code, d.Message, d.Attempts))
		}
		if !rejected[d.SourceID] {
			notRejected = append(notRejected, d.SourceID)
		}
	}
	var missing, twice []string
	for id := range rejected {
		switch seen[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	if len(wrongCode) > 0 {
		t.Errorf("DLQ: %d entries with another code than FIELD_CUSTOM_VALIDATION_EXCEPTION, e.g. %v", len(wrongCode), head(wrongCode))
	}
	if len(notRejected) > 0 {
		t.Errorf("DLQ: %d entries of valid records, e.g. %v", len(notRejected), head(notRejected))
	}
	if len(missing) > 0 {
		t.Errorf("DLQ: %d rejected records are not dead-lettered, e.g. %v", len(missing), head(missing))
	}
	if len(twice) > 0 {
		t.Errorf("DLQ: %d rejected records are dead-lettered more than once, e.g. %v", len(twice), head(twice))
	}
	return len(entries)
}

// checkMappings stops the workers, exports every worker's ID map as an
// operator would, and checks that no mapping is wrong and every record in
// the target is mapped by some worker.
func (e *env) checkMappings(ctx context.Context, t *testing.T, tl tally) (mapped int) {
	t.Helper()
	e.setSupervised(false)
	for _, w := range e.workers {
		w.p.stop()
	}
	union := make(map[string]bool)
	var wrong []string
	for _, w := range e.workers {
		ms, err := e.exportMapping(ctx, w)
		if err != nil {
			t.Errorf("mapping export: %v", err)
			continue
		}
		for _, m := range ms {
			union[m.SourceID] = true
			if want, ok := tl.bySource[m.SourceID]; !ok || want != m.TargetID {
				wrong = append(wrong, fmt.Sprintf("%s: %s→%s (target has %q)", w.id, m.SourceID, m.TargetID, want))
			}
		}
	}
	var unmapped []string
	for src := range tl.bySource {
		if !union[src] {
			unmapped = append(unmapped, src)
		}
	}
	if len(wrong) > 0 {
		t.Errorf("ID maps: %d wrong mappings, e.g. %v", len(wrong), head(wrong))
	}
	if len(unmapped) > 0 {
		t.Errorf("ID maps: %d target records mapped by no worker, e.g. %v", len(unmapped), head(unmapped))
	}
	return len(union)
}

// figures are what a chaos run prints.
type figures struct {
	rows [][2]string
}

func (f *figures) add(name string, format string, args ...any) {
	f.rows = append(f.rows, [2]string{name, fmt.Sprintf(format, args...)})
}

func (f *figures) print(t *testing.T, title string) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "== chaos figures: %s ==\n", title)
	for _, r := range f.rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()
	t.Log("\n" + b.String()) // on stdout with -v, and with a failure
}
