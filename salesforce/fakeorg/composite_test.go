package fakeorg_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"orgsync/salesforce/fakeorg"
)

type compositeAnswer struct {
	CompositeResponse []struct {
		Body           json.RawMessage   `json:"body"`
		HTTPHeaders    map[string]string `json:"httpHeaders"`
		HTTPStatusCode int               `json:"httpStatusCode"`
		ReferenceID    *string           `json:"referenceId"`
	} `json:"compositeResponse"`
}

func upsertSub(ref string, recs ...map[string]any) map[string]any {
	return map[string]any{
		"method": "PATCH", "url": "/services/data/v61.0/composite/sobjects/Account/Source_Id__c",
		"referenceId": ref, "body": collection(false, recs...),
	}
}

func acct(src, name string) map[string]any {
	return map[string]any{"attributes": map[string]any{"type": "Account"}, "Source_Id__c": src, "Name": name}
}

func composite(allOrNone bool, subs ...map[string]any) map[string]any {
	return map[string]any{"allOrNone": allOrNone, "compositeRequest": subs}
}

// Five collection upserts in one composite: one API call in
// Sforce-Limit-Info, /limits and the stats; each subrequest answered with
// its status, body and referenceId; a key in two subrequests does not
// error, both apply (the second updates).
func TestCompositeUpsertCountsOneCall(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	var subs []map[string]any
	for s := range 5 {
		var recs []map[string]any
		for i := range 200 {
			recs = append(recs, acct(fmt.Sprintf("S%d-%03d", s, i), "n"))
		}
		if s == 1 { // the same key as in subrequest 0
			recs[0] = acct("S0-000", "second")
		}
		subs = append(subs, upsertSub(fmt.Sprintf("up%d", s), recs...))
	}
	res := f.do(http.MethodPost, "/services/data/v61.0/composite", composite(false, subs...)).want(t, http.StatusOK)
	if got := res.header.Get("Sforce-Limit-Info"); got != "api-usage=1/100000" {
		t.Errorf("Sforce-Limit-Info: got %q, want api-usage=1/100000", got)
	}
	var ans compositeAnswer
	res.decode(t, &ans)
	if len(ans.CompositeResponse) != 5 {
		t.Fatalf("got %d results, want 5: %s", len(ans.CompositeResponse), res.body)
	}
	for s, r := range ans.CompositeResponse {
		if r.HTTPStatusCode != 200 || r.ReferenceID == nil || *r.ReferenceID != fmt.Sprintf("up%d", s) || r.HTTPHeaders == nil {
			t.Fatalf("result %d: got %d %v %v", s, r.HTTPStatusCode, r.ReferenceID, r.HTTPHeaders)
		}
		var srs []saveResult
		if err := json.Unmarshal(r.Body, &srs); err != nil || len(srs) != 200 {
			t.Fatalf("result %d body: %v, %d results", s, err, len(srs))
		}
		for i, sr := range srs {
			if !sr.Success {
				t.Errorf("result %d record %d failed: %+v", s, i, sr)
			}
		}
		if s == 1 && (srs[0].Created == nil || *srs[0].Created) {
			t.Errorf("the key of subrequest 0 again in subrequest 1: want an update, got %+v", srs[0])
		}
	}
	st := f.org.Stats()
	if st.APIUsage != 1 || st.ByRoute["POST /composite"] != 1 || st.APICalls != 1 || st.Records["Account"] != 999 {
		t.Errorf("stats: got %+v, want one call and 999 accounts", st)
	}
	var limits map[string]struct{ Max, Remaining int }
	f.do(http.MethodGet, "/services/data/v61.0/limits", nil).want(t, http.StatusOK).decode(t, &limits)
	if l := limits["DailyApiRequests"]; l.Max-l.Remaining != 1 {
		t.Errorf("/limits DailyApiRequests: got %+v, want 1 used", l)
	}
	q := f.do(http.MethodGet, "/services/data/v61.0/query?q="+strings.ReplaceAll("SELECT Name FROM Account WHERE Source_Id__c = 'S0-000'", " ", "+"), nil).want(t, http.StatusOK)
	if !strings.Contains(string(q.body), `"Name":"second"`) {
		t.Errorf("S0-000 after both subrequests: got %s, want Name second", q.body)
	}
}

func TestCompositeLimits(t *testing.T) {
	tests := []struct {
		name    string
		subs    int
		collect int // how many of them are collections
		code    string
	}{
		{"26 subrequests", 26, 0, "LIMIT_EXCEEDED"},
		{"6 collections", 6, 6, "LIMIT_EXCEEDED"},
		{"25 subrequests, 5 collections", 25, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fakeorg.Config{})
			var subs []map[string]any
			for i := range tt.subs {
				if i < tt.collect {
					subs = append(subs, upsertSub(fmt.Sprintf("c%d", i), acct(fmt.Sprintf("K%d", i), "n")))
					continue
				}
				subs = append(subs, map[string]any{
					"method": "PATCH", "url": fmt.Sprintf("/services/data/v61.0/sobjects/Account/Source_Id__c/R%d", i),
					"referenceId": fmt.Sprintf("r%d", i), "body": map[string]any{"Name": "x"},
				})
			}
			res := f.do(http.MethodPost, "/services/data/v61.0/composite", composite(false, subs...)).want(t, http.StatusOK)
			var ans compositeAnswer
			res.decode(t, &ans)
			if tt.code == "" {
				if len(ans.CompositeResponse) != tt.subs {
					t.Fatalf("got %d results, want %d", len(ans.CompositeResponse), tt.subs)
				}
				for i, r := range ans.CompositeResponse {
					if r.HTTPStatusCode >= 300 {
						t.Errorf("result %d: %d %s", i, r.HTTPStatusCode, r.Body)
					}
				}
				if n := f.org.Stats().Records["Account"]; n != tt.subs {
					t.Errorf("accounts: got %d, want %d", n, tt.subs)
				}
				return
			}
			if len(ans.CompositeResponse) != 1 || ans.CompositeResponse[0].HTTPStatusCode != 400 ||
				!strings.Contains(string(ans.CompositeResponse[0].Body), `"errorCode":"`+tt.code+`"`) {
				t.Fatalf("got %s, want one result 400 %s", res.body, tt.code)
			}
			if n := f.org.Stats().Records["Account"]; n != 0 {
				t.Errorf("a refused composite wrote %d accounts", n)
			}
		})
	}
}

// allOrNone true: one failing subrequest rolls back every other one, which
// then answers 400 PROCESSING_HALTED; false: the others stand.
func TestCompositeAllOrNone(t *testing.T) {
	for _, allOrNone := range []bool{true, false} {
		t.Run(fmt.Sprint("allOrNone=", allOrNone), func(t *testing.T) {
			f := newFixture(t, fakeorg.Config{})
			subs := []map[string]any{
				upsertSub("a", acct("A1", "one"), acct("A2", "two")),
				{"method": "POST", "url": "/services/data/v61.0/sobjects/Account", "referenceId": "b", "body": map[string]any{"Name": "single"}},
				{"method": "POST", "url": "/services/data/v61.0/sobjects/Account", "referenceId": "bad", "body": map[string]any{"NoSuchField__c": 1}},
				upsertSub("c", acct("C1", "three")),
			}
			res := f.do(http.MethodPost, "/services/data/v61.0/composite", composite(allOrNone, subs...)).want(t, http.StatusOK)
			var ans compositeAnswer
			res.decode(t, &ans)
			if len(ans.CompositeResponse) != 4 {
				t.Fatalf("got %s", res.body)
			}
			if r := ans.CompositeResponse[2]; r.HTTPStatusCode != 400 || !strings.Contains(string(r.Body), "INVALID_FIELD") {
				t.Errorf("bad subrequest: got %d %s", r.HTTPStatusCode, r.Body)
			}
			n := f.org.Stats().Records["Account"]
			if !allOrNone {
				if n != 4 || ans.CompositeResponse[1].HTTPStatusCode != 201 || ans.CompositeResponse[1].HTTPHeaders["Location"] == "" {
					t.Errorf("allOrNone false: got %d accounts and %s, want 4 and a 201 with Location", n, res.body)
				}
				return
			}
			if n != 0 {
				t.Errorf("allOrNone true: %d accounts left after the rollback", n)
			}
			for _, i := range []int{0, 1, 3} {
				r := ans.CompositeResponse[i]
				if r.HTTPStatusCode != 400 || !strings.Contains(string(r.Body), "PROCESSING_HALTED") {
					t.Errorf("result %d: got %d %s, want 400 PROCESSING_HALTED", i, r.HTTPStatusCode, r.Body)
				}
			}
		})
	}
}

func TestCompositeMalformed(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	for _, body := range []any{
		`{}`, `{"compositeRequest":[]}`, `{"compositeRequest":{}}`, `not json`,
		composite(false, map[string]any{"method": "GET", "url": "/services/data/v61.0/limits", "referenceId": "a-b"}),
		composite(false, map[string]any{"method": "GET", "url": "/services/data/v61.0/limits", "referenceId": "a"},
			map[string]any{"method": "GET", "url": "/services/data/v61.0/limits", "referenceId": "a"}),
	} {
		res := f.do(http.MethodPost, "/services/data/v61.0/composite", body)
		if res.status != http.StatusBadRequest {
			t.Errorf("%v: got %d %s, want 400", body, res.status, res.body)
		}
	}
	if n := f.org.Stats().Records["Account"]; n != 0 {
		t.Errorf("accounts: %d", n)
	}
}
