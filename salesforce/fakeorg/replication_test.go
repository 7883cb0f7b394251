package fakeorg_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce/fakeorg"
)

// replicationURL builds …/sobjects/Account/<kind>/?start=…&end=… with the
// values URL-encoded, as the documentation asks.
func replicationURL(version, kind, start, end string, slash bool) string {
	p := "/services/data/v" + version + "/sobjects/Account/" + kind
	if slash {
		p += "/"
	}
	return p + "?start=" + url.QueryEscape(start) + "&end=" + url.QueryEscape(end)
}

// replicationFixture is an org whose clock starts at 2026-01-01T00:00:00Z:
// A created at 00:00:00 and updated at 00:15:30, B created at 00:10:00, C
// created at 00:15:30 and deleted at 00:15:30.250. The clock ends at
// 00:15:30.250.
func replicationFixture(t *testing.T) (f *fixture, a, b, c string) {
	t.Helper()
	f = newFixture(t, fakeorg.Config{})
	a = f.create(map[string]any{"Name": "A"})
	f.clock.Advance(10 * time.Minute)
	b = f.create(map[string]any{"Name": "B"})
	f.clock.Advance(5*time.Minute + 30*time.Second)
	f.do(http.MethodPatch, B+"/sobjects/Account/"+a, map[string]any{"Name": "A2"}).want(t, http.StatusNoContent)
	c = f.create(map[string]any{"Name": "C"})
	f.clock.Advance(250 * time.Millisecond)
	f.do(http.MethodDelete, B+"/sobjects/Account/"+c, nil).want(t, http.StatusNoContent)
	return f, a, b, c
}

func TestGetUpdated(t *testing.T) {
	f, a, b, _ := replicationFixture(t)
	tests := []struct {
		name, start, end string
		slash            bool
		want             string
	}{
		{
			// Seconds are dropped: [00:00, 00:10] holds B (00:10:00) but not
			// A, whose SystemModstamp moved to 00:15:30.
			name: "past window, jsforce form", start: "2026-01-01T00:00:30+00:00", end: "2026-01-01T00:10:45+00:00",
			want: `{"ids":["` + b + `"],"latestDateCovered":"2026-01-01T00:10:00.000+0000"}`,
		},
		{
			name: "same window, Z and a trailing slash", start: "2026-01-01T00:00:00Z", end: "2026-01-01T00:10:00Z", slash: true,
			want: `{"ids":["` + b + `"],"latestDateCovered":"2026-01-01T00:10:00.000+0000"}`,
		},
		{
			// An end in the future is covered only up to the current minute;
			// the deleted C is not listed.
			name: "end in the future", start: "2026-01-01T02:10:00+02:00", end: "2026-01-01T01:00:00Z",
			want: `{"ids":["` + a + `","` + b + `"],"latestDateCovered":"2026-01-01T00:15:00.000+0000"}`,
		},
		{
			// latestDateCovered passed back as the next start.
			name: "Salesforce's own datetime form", start: "2026-01-01T00:15:00.000+0000", end: "2026-01-01T00:16:00.000+0000",
			want: `{"ids":["` + a + `"],"latestDateCovered":"2026-01-01T00:15:00.000+0000"}`,
		},
		{
			name: "nothing in the window", start: "2025-12-31T23:00:00Z", end: "2025-12-31T23:59:59Z",
			want: `{"ids":[],"latestDateCovered":"2025-12-31T23:59:00.000+0000"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(http.MethodGet, replicationURL("63.0", "updated", tt.start, tt.end, tt.slash), nil).want(t, http.StatusOK)
			if string(res.body) != tt.want {
				t.Errorf("body:\n got %s\nwant %s", res.body, tt.want)
			}
			if !limitInfo.MatchString(res.header.Get("Sforce-Limit-Info")) {
				t.Errorf("Sforce-Limit-Info: %q", res.header.Get("Sforce-Limit-Info"))
			}
		})
	}
	if got := f.org.Stats().ByRoute["GET /sobjects/Account/updated"]; got != len(tests) {
		t.Errorf("ByRoute[GET /sobjects/Account/updated]: got %d, want %d", got, len(tests))
	}
}

func TestGetDeleted(t *testing.T) {
	f, _, _, c := replicationFixture(t)
	start, end := "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
	res := f.do(http.MethodGet, replicationURL("63.0", "deleted", start, end, true), nil).want(t, http.StatusOK)
	want := `{"deletedRecords":[{"id":"` + c + `","deletedDate":"2026-01-01T00:15:30.250+0000"}],` +
		`"earliestDateAvailable":"2026-01-01T00:00:00.000+0000","latestDateCovered":"2026-01-01T00:15:00.000+0000"}`
	if string(res.body) != want {
		t.Errorf("body:\n got %s\nwant %s", res.body, want)
	}
	// Without the trailing slash, and a window that ends before the delete.
	res = f.do(http.MethodGet, replicationURL("63.0", "deleted", start, "2026-01-01T00:15:00Z", false), nil).want(t, http.StatusOK)
	want = `{"deletedRecords":[],"earliestDateAvailable":"2026-01-01T00:00:00.000+0000","latestDateCovered":"2026-01-01T00:15:00.000+0000"}`
	if string(res.body) != want {
		t.Errorf("body:\n got %s\nwant %s", res.body, want)
	}
	if got := f.org.Stats().ByRoute["GET /sobjects/Account/deleted"]; got != 2 {
		t.Errorf("ByRoute[GET /sobjects/Account/deleted]: got %d, want 2", got)
	}

	// A reset empties the delete log, which then starts at the reset.
	f.clock.Advance(time.Hour)
	f.org.Reset()
	res = f.do(http.MethodGet, replicationURL("63.0", "deleted", start, "2026-01-01T02:00:00Z", false), nil).want(t, http.StatusOK)
	want = `{"deletedRecords":[],"earliestDateAvailable":"2026-01-01T01:15:00.000+0000","latestDateCovered":"2026-01-01T01:15:00.000+0000"}`
	if string(res.body) != want {
		t.Errorf("after reset:\n got %s\nwant %s", res.body, want)
	}
}

func TestReplicationErrors(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	f.clock.Advance(40 * 24 * time.Hour) // now 2026-02-10T00:00:00Z
	const ok1, ok2 = "2026-02-09T00:00:00Z", "2026-02-10T00:00:00Z"
	tests := []struct {
		name, query, code, msg string
	}{
		{"no start", "?end=" + url.QueryEscape(ok2), "MISSING_ARGUMENT", "Missing required parameter: start"},
		{"no end", "?start=" + url.QueryEscape(ok1), "MISSING_ARGUMENT", "Missing required parameter: end"},
		{"no parameters", "", "MISSING_ARGUMENT", "Missing required parameter: start"},
		{"not a date", "?start=yesterday&end=" + url.QueryEscape(ok2), "INVALID_REPLICATION_DATE", ""},
		{"date only", "?start=2026-02-09&end=" + url.QueryEscape(ok2), "INVALID_REPLICATION_DATE", ""},
		// An unencoded + reaches the server as a space.
		{"offset not URL-encoded", "?start=2026-02-09T00:00:00+00:00&end=" + url.QueryEscape(ok2), "INVALID_REPLICATION_DATE", ""},
		{"end before start", "?start=" + url.QueryEscape(ok2) + "&end=" + url.QueryEscape(ok1), "INVALID_REPLICATION_DATE",
			"startDate must be at least one minute greater than endDate"},
		{"same minute once seconds are dropped", "?start=2026-02-09T10:00:05Z&end=2026-02-09T10:00:55Z", "INVALID_REPLICATION_DATE",
			"startDate must be at least one minute greater than endDate"},
		{"start more than 30 days back", "?start=2026-01-10T23:59:00Z&end=" + url.QueryEscape(ok2), "INVALID_REPLICATION_DATE",
			"startDate cannot be more than 30 days ago"},
	}
	for _, kind := range []string{"updated", "deleted"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				e := f.do(http.MethodGet, B+"/sobjects/Account/"+kind+"/"+tt.query, nil).wantError(t, http.StatusBadRequest, tt.code)
				if tt.msg != "" && e.Message != tt.msg {
					t.Errorf("message: got %q, want %q", e.Message, tt.msg)
				}
				if tt.msg == "" && !strings.Contains(e.Message, "is not a valid dateTime") {
					t.Errorf("message: got %q", e.Message)
				}
			})
		}
		t.Run(kind+"/exactly 30 days back", func(t *testing.T) {
			f.do(http.MethodGet, replicationURL("63.0", kind, "2026-01-11T00:00:00Z", ok2, true), nil).want(t, http.StatusOK)
		})
		t.Run(kind+"/only GET", func(t *testing.T) {
			f.do(http.MethodPost, replicationURL("63.0", kind, ok1, ok2, true), nil).wantError(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		})
		t.Run(kind+"/API versions", func(t *testing.T) {
			f.do(http.MethodGet, replicationURL("28.0", kind, ok1, ok2, true), nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
			f.do(http.MethodGet, replicationURL("29.0", kind, ok1, ok2, true), nil).want(t, http.StatusOK)
		})
	}
	// Failed calls are API calls too.
	st := f.org.Stats()
	for _, route := range []string{"GET /sobjects/Account/updated", "GET /sobjects/Account/deleted"} {
		if want := len(tests) + 3; st.ByRoute[route] != want {
			t.Errorf("ByRoute[%q]: got %d, want %d", route, st.ByRoute[route], want)
		}
	}
	if st.ByRoute["POST /sobjects/Account/updated"] != 1 || st.APIUsage != st.APICalls {
		t.Errorf("stats: %+v", st)
	}
	// Other sObject types are not served.
	f.do(http.MethodGet, B+"/sobjects/Contact/updated/?start="+url.QueryEscape(ok1)+"&end="+url.QueryEscape(ok2), nil).
		wantError(t, http.StatusNotFound, "NOT_FOUND")
}
