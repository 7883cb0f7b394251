package capture_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orgsync/capture"
	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func sameSecond(int) time.Time { return t0 }

// Ensure that thousands of records sharing one CreatedDate second, across
// query pages and keyset queries, are each captured exactly once, also
// after a restart on the same checkpoint.
func TestPoller_SameSecondAndPaging(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int // the fake's query batch (nextRecordsUrl paging)
		pageLimit int // the keyset query's LIMIT
		same      int // records created in one second: more than pageLimit
		long      bool
	}{
		{name: "nextRecordsUrl pages inside a 2000 LIMIT", pageSize: 100, pageLimit: 2000, same: 5000, long: true},
		{name: "LIMIT divides the count exactly", pageSize: 250, pageLimit: 1000, same: 5000, long: true},
		{name: "odd LIMIT and page size", pageSize: 97, pageLimit: 333, same: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("-short: 5,000 records in one second; the odd-LIMIT case covers paging inside a second")
			}
			e := newEnv(t, fakeorg.Config{PageSize: tt.pageSize})
			var ids []string
			ids = append(ids, e.insert("spread-before", 150, func(i int) time.Time { return t0.Add(-time.Duration(i+1) * 7 * time.Second) }, nil)...)
			ids = append(ids, e.insert("same", tt.same, sameSecond, nil)...)
			ids = append(ids, e.insert("spread-after", 150, func(i int) time.Time { return t0.Add(time.Duration(i+1) * 3 * time.Second) }, nil)...)
			// The newest second holds a few records too.
			ids = append(ids, e.insert("last", 3, func(int) time.Time { return t0.Add(time.Hour) }, nil)...)
			path := e.dbPath()

			p, st := e.poller(path, func(c *capture.PollerConfig) { c.PageLimit = tt.pageLimit })
			got, err := p.Once(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got.Published != len(ids) || got.Read != len(ids) {
				t.Errorf("first run: got read %d published %d, want %d", got.Read, got.Published, len(ids))
			}
			e.assertStored(ids)
			cp := p.Checkpoint()
			if !cp.Time.Equal(t0.Add(time.Hour)) {
				t.Errorf("checkpoint time: got %v, want %v", cp.Time, t0.Add(time.Hour))
			}

			// Restart: a new poller on the same file re-reads only the overlap,
			// which dedup absorbs.
			st.Close()
			p2, _ := e.poller(path, func(c *capture.PollerConfig) { c.PageLimit = tt.pageLimit })
			got, err = p2.Once(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got.Published != 0 || got.Duplicates != 3 {
				t.Errorf("after restart: got published %d duplicates %d, want 0 and 3 (the overlap)", got.Published, got.Duplicates)
			}
			// New records after the restart are captured.
			more := e.insert("new", 10, func(i int) time.Time { return t0.Add(time.Hour + time.Duration(i)*time.Second) }, nil)
			got, err = p2.Once(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got.Published != 10 {
				t.Errorf("new records: got published %d, want 10", got.Published)
			}
			e.assertStored(append(ids, more...))
		})
	}
}

// Ensure that a record committed late with a CreatedDate behind the
// checkpoint is captured while it is within -overlap, and document that one
// beyond it is not.
func TestPoller_Overlap(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	ids := e.insert("a", 10, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }, nil)
	p, _ := e.poller(e.dbPath(), func(c *capture.PollerConfig) { c.Overlap = 2 * time.Minute })
	if _, err := p.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A long transaction commits a row stamped 5s after t0, behind the
	// checkpoint (t0+9s).
	late := e.insert("late", 1, func(int) time.Time { return t0.Add(5 * time.Second) }, nil)
	got, err := p.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.Published != 1 {
		t.Errorf("late row within the overlap: got published %d, want 1", got.Published)
	}
	if got.Skipped != 10 {
		t.Errorf("rows already published by this process: got %d skipped, want 10", got.Skipped)
	}
	// A row stamped 10 minutes behind the checkpoint is outside a 2m
	// overlap: the poller cannot see it (the documented limit; size
	// -overlap above the longest transaction).
	e.insert("too-late", 1, func(int) time.Time { return t0.Add(-10 * time.Minute) }, nil)
	got, err = p.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.Published != 0 {
		t.Errorf("row beyond the overlap: got published %d, want 0", got.Published)
	}
	e.assertStored(append(ids, late...))
}

// Ensure that records with the skip field set are not captured when the
// source has that field, and that a source without it is polled normally.
func TestPoller_SkipField(t *testing.T) {
	tests := []struct {
		name     string
		extField string // the fake source's custom external ID field
		wantSkip bool
	}{
		{name: "source has the skip field", extField: "Source_Id__c", wantSkip: true},
		{name: "source lacks the skip field", extField: "Other_Id__c", wantSkip: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fakeorg.Config{ExternalIDField: tt.extField})
			mine := e.insert("mine", 5, sameSecond, nil)
			var theirs []string
			for i := range 3 {
				theirs = append(theirs, e.insert("theirs", 1, sameSecond, fakeorg.Record{tt.extField: fmt.Sprintf("00100000000000%d", i)})...)
			}
			p, _ := e.poller(e.dbPath(), nil)
			got, err := p.Once(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string(nil), mine...)
			if !tt.wantSkip {
				want = append(want, theirs...)
			}
			if got.Published != len(want) {
				t.Errorf("got published %d, want %d", got.Published, len(want))
			}
			e.assertStored(want)
		})
	}
}

// Ensure that only the allow-listed fields the source has are copied.
func TestPoller_FieldsAllowList(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	ids := e.insert("f", 2, sameSecond, fakeorg.Record{"Website": "https://example.com"})
	fields, err := event.ParseFields("Name,Phone,No_Such_Field__c")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.poller(e.dbPath(), func(c *capture.PollerConfig) { c.Fields = fields })
	if _, err := p.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs, _ := e.stored()
	for _, id := range ids {
		ev := evs[id]
		if len(ev.Fields) != 2 || ev.Fields["Name"] == nil || ev.Fields["Phone"] != "555-0100" {
			t.Errorf("%s: got fields %v, want only Name and Phone", id, ev.Fields)
		}
		if !ev.CreatedAt.Equal(t0) {
			t.Errorf("%s: got created_at %v, want %v", id, ev.CreatedAt, t0)
		}
		if ev.SourceOrg != e.org.OrgID() {
			t.Errorf("%s: got source_org %s, want %s (from the identity URL)", id, ev.SourceOrg, e.org.OrgID())
		}
	}
}

// Ensure that the poller stops calling the source at -api-budget, keeps
// what it acknowledged, and resumes once a /limits probe shows room.
func TestPoller_APIBudget(t *testing.T) {
	e := newEnv(t, fakeorg.Config{DailyAPILimit: 20})
	ids := e.insert("b", 60, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }, nil)
	p, _ := e.poller(e.dbPath(), func(c *capture.PollerConfig) {
		c.PageLimit = 5
		c.APIBudget = 0.5
		c.ProbeInterval = time.Millisecond
	})
	got, err := p.Once(t.Context())
	if !errors.Is(err, capture.ErrOverBudget) {
		t.Fatalf("got error %v, want ErrOverBudget", err)
	}
	if u := e.org.Stats().APIUsage; u > 11 {
		t.Errorf("got %d API calls, want the poller to stop near 10 (half of 20)", u)
	}
	if got.Published == 0 || got.Published >= len(ids) {
		t.Errorf("got published %d before the budget, want some but not all of %d", got.Published, len(ids))
	}
	if p.Ready() == nil {
		t.Error("Ready: got nil while over budget, want an error")
	}
	if err := e.org.Configure(fakeorg.ConfigPatch{DailyAPILimit: ptr(100000)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = p.Once(t.Context())
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the limit was raised: %v", err)
	}
	e.assertStored(ids)
}

// Ensure that a publish JetStream does not acknowledge leaves the
// checkpoint behind the unacknowledged records, and the next cycle
// captures them.
func TestPoller_PublishFailureKeepsCheckpoint(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	ids := e.insert("p", 30, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }, nil)
	rec := &recorder{failAt: 15, failErr: errors.New("nats: timeout")}
	st := openStore(t, e.dbPath())
	t.Cleanup(func() { st.Close() })
	p, err := capture.NewPoller(capture.PollerConfig{Client: e.client(), Queue: rec, Store: st, RateLimit: -1,
		PageLimit: 10, Publishers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Once(t.Context()); !errors.Is(err, capture.ErrUnavailable) {
		t.Fatalf("got error %v, want ErrUnavailable", err)
	}
	cp := p.Checkpoint()
	last10, _ := salesforce.NormalizeID(ids[9])
	if cp.ID != last10 {
		t.Errorf("checkpoint: got %s, want %s (the last record of the only acknowledged page)", cp.ID, last10)
	}
	rec.mu.Lock()
	rec.failAt = 0
	rec.mu.Unlock()
	if _, err := p.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(); n != len(ids) {
		t.Errorf("got %d distinct events, want %d", n, len(ids))
	}
}

func ptr[T any](v T) *T { return &v }

// A -source-org-id that is not the token's org is refused: checkpoint and
// dedup keys would otherwise belong to another org. The right one, in its
// 15-character form, is accepted.
func TestPoller_SourceOrgMustMatchToken(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	e.insert("Org", 3, func(int) time.Time { return time.Now().Add(-time.Minute) }, nil)
	other := salesforce.ID18("00D000000000OTH")
	p, _ := e.poller(filepath.Join(t.TempDir(), "a.db"), func(c *capture.PollerConfig) { c.SourceOrg = other })
	if _, err := p.Once(t.Context()); err == nil || !strings.Contains(err.Error(), "is not the token's org") {
		t.Errorf("Once with another org's ID: %v, want a refusal", err)
	}
	p, _ = e.poller(filepath.Join(t.TempDir(), "b.db"), func(c *capture.PollerConfig) { c.SourceOrg = e.org.OrgID()[:15] })
	if st, err := p.Once(t.Context()); err != nil || st.Published != 3 {
		t.Errorf("Once with the token's org: %+v, %v; want 3 published", st, err)
	}
}
