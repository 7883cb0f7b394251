package salesforce_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// GetDeleted lists the records deleted in the window with their delete
// times, and the delete log's bounds, as the fake (Salesforce's shape)
// answers them; a bad window is the API's error.
func TestGetDeleted(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)}
	org, ts := startFakeOrg(t, fakeorg.Config{Now: clk.Now})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()
	var ids []string
	for _, name := range []string{"keep", "gone", "gone too"} {
		id, err := org.InsertAccount(fakeorg.Record{"Name": name}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	clk.Advance(time.Minute)
	for _, id := range ids[1:] {
		if err := c.Delete(ctx, "Account", id); err != nil {
			t.Fatal(err)
		}
	}
	deletedAt := clk.Now()
	clk.Advance(2 * time.Minute)

	got, err := c.GetDeleted(ctx, "Account", deletedAt.Add(-5*time.Minute), clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 2 || got.Records[0].ID != ids[1] || got.Records[1].ID != ids[2] ||
		!got.Records[0].DeletedDate.Equal(deletedAt) {
		t.Errorf("records %+v, want %s and %s deleted at %v", got.Records, ids[1], ids[2], deletedAt)
	}
	if want := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC); !got.EarliestDateAvailable.Equal(want) {
		t.Errorf("earliestDateAvailable %v, want %v (the minute the log started)", got.EarliestDateAvailable, want)
	}
	if want := clk.Now().Truncate(time.Minute); !got.LatestDateCovered.Equal(want) {
		t.Errorf("latestDateCovered %v, want %v", got.LatestDateCovered, want)
	}

	// Before the deletes: none.
	none, err := c.GetDeleted(ctx, "Account", deletedAt.Add(-5*time.Minute), deletedAt.Add(-2*time.Minute))
	if err != nil || len(none.Records) != 0 {
		t.Errorf("window before the deletes: %+v, %v", none, err)
	}

	// A window shorter than a minute is refused.
	_, err = c.GetDeleted(ctx, "Account", clk.Now(), clk.Now())
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.Code != "INVALID_REPLICATION_DATE" {
		t.Errorf("empty window: got %v, want INVALID_REPLICATION_DATE", err)
	}
	if _, err := c.GetDeleted(ctx, "Account/x", clk.Now(), clk.Now()); !errors.Is(err, salesforce.ErrInvalidRequest) {
		t.Errorf("bad sObject name: got %v, want ErrInvalidRequest", err)
	}
}

func TestParseDeleted(t *testing.T) {
	for _, tt := range []struct {
		name, body, err string
		n               int
	}{
		{name: "salesforce shape", n: 1, body: `{"deletedRecords":[{"id":"001000000000001","deletedDate":"2026-05-04T10:01:00.000+0000"}],` +
			`"earliestDateAvailable":"2026-05-01T00:00:00.000+0000","latestDateCovered":"2026-05-04T10:03:00.000+0000"}`},
		{name: "none", body: `{"deletedRecords":[],"earliestDateAvailable":"2026-05-01T00:00:00.000+0000","latestDateCovered":"2026-05-04T10:03:00.000+0000"}`},
		{name: "no latestDateCovered", body: `{"deletedRecords":[]}`, err: "no latestDateCovered"},
		{name: "bad id", body: `{"deletedRecords":[{"id":"nope","deletedDate":"2026-05-04T10:01:00.000+0000"}],"latestDateCovered":"2026-05-04T10:03:00Z"}`, err: "deletedRecords[0].id"},
		{name: "bad date", body: `{"deletedRecords":[{"id":"001000000000001","deletedDate":"yesterday"}],"latestDateCovered":"2026-05-04T10:03:00Z"}`, err: "deletedRecords[0].deletedDate"},
		{name: "not json", body: `<html>`, err: "decoding"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := salesforce.ParseDeleted([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil || len(r.Records) != tt.n {
				t.Fatalf("got %+v, %v", r, err)
			}
			if tt.n > 0 && r.Records[0].ID != salesforce.ID18("001000000000001") {
				t.Errorf("id %s, want the 18-character form", r.Records[0].ID)
			}
		})
	}
}

func FuzzParseDeleted(f *testing.F) {
	f.Add([]byte(`{"deletedRecords":[{"id":"001000000000001","deletedDate":"2026-05-04T10:01:00.000+0000"}],"earliestDateAvailable":"2026-05-01T00:00:00.000+0000","latestDateCovered":"2026-05-04T10:03:00.000+0000"}`))
	f.Add([]byte(`{"deletedRecords":null,"latestDateCovered":"2026-05-04T10:03:00Z"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := salesforce.ParseDeleted(body)
		if err != nil {
			return
		}
		if r.LatestDateCovered.IsZero() {
			t.Fatalf("no error but no latestDateCovered: %q", body)
		}
		for _, d := range r.Records {
			if !salesforce.ValidID(d.ID) || len(d.ID) != 18 {
				t.Fatalf("id %q is not an 18-character ID", d.ID)
			}
		}
	})
}
