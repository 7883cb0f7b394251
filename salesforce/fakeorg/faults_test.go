package fakeorg_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce/fakeorg"
)

func TestFailRate(t *testing.T) {
	f := newFixture(t, fakeorg.Config{FailRate: 1})
	calls := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, B + "/sobjects/Account", map[string]any{"Name": "A"}},
		{http.MethodPost, B + "/composite/sobjects", collection(false, map[string]any{"Name": "A"})},
		{http.MethodPatch, B + "/composite/sobjects/Account/Source_Id__c", collection(false, map[string]any{"Name": "A", "Source_Id__c": "K"})},
		{http.MethodGet, B + "/query?q=SELECT+Id+FROM+Account", nil},
		{http.MethodPost, "/services/apexrest/arrify/v1/accounts", map[string]any{"Name": "A"}},
	}
	for _, c := range calls {
		e := f.do(c.method, c.path, c.body).wantError(t, http.StatusServiceUnavailable, "SERVER_UNAVAILABLE")
		if e.Message == "" {
			t.Errorf("%s %s: empty message", c.method, c.path)
		}
	}
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("accounts: got %d, want 0", n)
	}
	// OAuth is not affected.
	f.form("/services/oauth2/token", "grant_type=client_credentials&client_id=demo&client_secret=demo-secret", nil).want(t, http.StatusOK)
	if err := f.org.Configure(fakeorg.ConfigPatch{FailRate: ptr(0.0)}); err != nil {
		t.Fatal(err)
	}
	f.create(map[string]any{"Name": "ok"})
}

func TestFailRate_Seeded(t *testing.T) {
	outcomes := func() string {
		f := newFixture(t, fakeorg.Config{FailRate: 0.5, Seed: 42})
		var b strings.Builder
		for range 40 {
			fmt.Fprint(&b, f.do(http.MethodGet, B+"/limits", nil).status/100)
		}
		return b.String()
	}
	a, b := outcomes(), outcomes()
	if a != b {
		t.Errorf("same seed, different outcomes:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "5") || !strings.Contains(a, "2") {
		t.Errorf("fail rate 0.5 gave %s", a)
	}
}

func TestLockRate(t *testing.T) {
	f := newFixture(t, fakeorg.Config{LockRate: 1})
	e := f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": "A"}).wantError(t, http.StatusBadRequest, "UNABLE_TO_LOCK_ROW")
	if !strings.Contains(e.Message, "unable to obtain exclusive access to this record") {
		t.Errorf("message: %q", e.Message)
	}
	var rs []saveResult
	f.do(http.MethodPost, B+"/composite/sobjects", collection(false, map[string]any{"Name": "A"}, map[string]any{"Name": "B"})).
		want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "UNABLE_TO_LOCK_ROW" || rs[1].code() != "UNABLE_TO_LOCK_ROW" {
		t.Errorf("collection: %+v", rs)
	}
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/K", map[string]any{"Name": "A"}).wantError(t, http.StatusBadRequest, "UNABLE_TO_LOCK_ROW")
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("accounts: got %d, want 0", n)
	}
	// Validation errors come before lock failures.
	f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{}).wantError(t, http.StatusBadRequest, "REQUIRED_FIELD_MISSING")
}

func TestTokenTTL(t *testing.T) {
	f := newFixture(t, fakeorg.Config{TokenTTL: 4 * time.Second})
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
	f.clock.Advance(3999 * time.Millisecond)
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
	f.clock.Advance(time.Millisecond)
	res := f.do(http.MethodGet, B+"/limits", nil)
	res.wantError(t, http.StatusUnauthorized, "INVALID_SESSION_ID")
	if res.header.Get("WWW-Authenticate") != "Token" {
		t.Errorf("WWW-Authenticate: %q", res.header.Get("WWW-Authenticate"))
	}
	// A fresh token works; lifting the TTL revives the old one.
	var tb tokenBody
	f.form("/services/oauth2/token", "grant_type=client_credentials&client_id=demo&client_secret=demo-secret", nil).want(t, http.StatusOK).decode(t, &tb)
	f.doWith(http.MethodGet, B+"/limits", nil, map[string]string{"Authorization": "Bearer " + tb.AccessToken}).want(t, http.StatusOK)
	if err := f.org.Configure(fakeorg.ConfigPatch{TokenTTL: ptr(time.Duration(0))}); err != nil {
		t.Fatal(err)
	}
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
}

func TestDailyLimit(t *testing.T) {
	f := newFixture(t, fakeorg.Config{DailyAPILimit: 3})
	for i := 1; i <= 3; i++ {
		res := f.do(http.MethodGet, B+"/query?q=SELECT+Id+FROM+Account", nil).want(t, http.StatusOK)
		if got, want := res.header.Get("Sforce-Limit-Info"), fmt.Sprintf("api-usage=%d/3", i); got != want {
			t.Errorf("call %d: Sforce-Limit-Info %q, want %q", i, got, want)
		}
	}
	res := f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": "A"})
	e := res.wantError(t, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED")
	if e.Message != "TotalRequests Limit exceeded." || res.header.Get("Retry-After") != "" || res.header.Get("Sforce-Limit-Info") != "api-usage=3/3" {
		t.Errorf("403: %q %v", e.Message, res.header)
	}
	f.do(http.MethodPost, "/services/apexrest/arrify/v1/accounts", map[string]any{"Name": "A"}).wantError(t, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED")
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("accounts: %d", n)
	}
	// /limits still answers and agrees with the header.
	var lim map[string]struct{ Max, Remaining int }
	res = f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
	res.decode(t, &lim)
	if d := lim["DailyApiRequests"]; d.Max != 3 || d.Remaining != 0 || res.header.Get("Sforce-Limit-Info") != "api-usage=3/3" {
		t.Errorf("limits: %+v %q", d, res.header.Get("Sforce-Limit-Info"))
	}
	for _, name := range []string{"DailyBulkApiBatches", "DataStorageMB", "DailyAsyncApexExecutions"} {
		if lim[name].Max == 0 {
			t.Errorf("limits lacks %s", name)
		}
	}
	// Raising the limit through /_fake/config frees the budget.
	f.doWith(http.MethodPut, "/_fake/config", `{"daily_api_limit":10}`, nil).want(t, http.StatusOK)
	f.create(map[string]any{"Name": "A"})
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK).decode(t, &lim)
	if d := lim["DailyApiRequests"]; d.Max != 10 || d.Remaining != 6 {
		t.Errorf("limits after raise: %+v", d)
	}
}

func TestRedirectHosts(t *testing.T) {
	f := newFixture(t, fakeorg.Config{RedirectHosts: map[string]string{"old.example.test": "https://new.example.test/"}})
	res := f.doWith(http.MethodPost, B+"/composite/sobjects?x=1", collection(false, map[string]any{"Name": "A"}),
		map[string]string{"Host": "old.example.test", "Authorization": "Bearer " + f.token})
	if res.status != http.StatusFound || res.header.Get("Location") != "https://new.example.test"+B+"/composite/sobjects?x=1" {
		t.Errorf("got %d Location %q", res.status, res.header.Get("Location"))
	}
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("the redirected call wrote %d accounts", n)
	}
	f.create(map[string]any{"Name": "on the right host"})
}

// Ensure that Latency delays REST calls, and only them: with an hour of
// latency, admin and OAuth calls still answer.
func TestLatency(t *testing.T) {
	f := newFixture(t, fakeorg.Config{Latency: 30 * time.Millisecond})
	start := time.Now()
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("call took %v, want at least 30ms", d)
	}
	hour := time.Hour
	if err := f.org.Configure(fakeorg.ConfigPatch{Latency: &hour}); err != nil {
		t.Fatal(err)
	}
	answered := make(chan [2]int, 1)
	go func() {
		stats := f.doWith(http.MethodGet, "/_fake/stats", nil, nil)
		token := f.form("/services/oauth2/token", "grant_type=client_credentials&client_id=demo&client_secret=demo-secret", nil)
		answered <- [2]int{stats.status, token.status}
	}()
	select {
	case got := <-answered:
		if got != [2]int{http.StatusOK, http.StatusOK} {
			t.Errorf("admin and OAuth calls answered %v, want 200 and 200", got)
		}
	case <-time.After(time.Minute): // against an hour's latency
		t.Fatal("admin and OAuth calls wait for the REST latency")
	}
}

// The per-record latency holds a write for each record it carries, and no
// read: with an hour per record a collections write of two records cannot
// answer within its client's deadline, while a query does.
func TestLatencyPerRecord(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	f.doWith(http.MethodPut, "/_fake/config", `{"latency_per_record":"1h"}`, nil).want(t, http.StatusOK)
	f.do(http.MethodGet, B+"/query?q=SELECT+Id+FROM+Account", nil).want(t, http.StatusOK)
	body, _ := json.Marshal(collection(false, map[string]any{"Name": "a"}, map[string]any{"Name": "b"}))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+B+"/composite/sobjects", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if res != nil {
			res.Body.Close()
		}
		t.Fatalf("write with an hour per record: got %v, want the client's deadline", err)
	}
	f.doWith(http.MethodPut, "/_fake/config", `{"latency_per_record":"0s"}`, nil).want(t, http.StatusOK)
	f.do(http.MethodPost, B+"/composite/sobjects", collection(false, map[string]any{"Name": "c"})).want(t, http.StatusOK)
}

func TestAdminConfig(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	var cfg map[string]any
	f.doWith(http.MethodPut, "/_fake/config",
		`{"latency":"20ms","latency_per_record":"50µs","fail_rate":0.25,"lock_rate":0.5,"token_ttl":"4s","reject_name":"^Bad","daily_api_limit":500}`, nil).
		want(t, http.StatusOK).decode(t, &cfg)
	want := map[string]any{"latency": "20ms", "latency_per_record": "50µs", "fail_rate": 0.25, "lock_rate": 0.5, "token_ttl": "4s", "reject_name": "^Bad", "daily_api_limit": 500.0}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s: got %v, want %v", k, cfg[k], v)
		}
	}
	f.doWith(http.MethodGet, "/_fake/config", nil, nil).want(t, http.StatusOK).decode(t, &cfg)
	if cfg["org_id"] != f.org.OrgID() || cfg["latency"] != "20ms" {
		t.Errorf("GET config: %v", cfg)
	}
	bad := []string{
		`{"latency":"soon"}`, `{"fail_rate":1.5}`, `{"lock_rate":-0.1}`, `{"token_ttl":"-1s"}`, `{"reject_name":"("}`,
		`{"daily_api_limit":0}`, `{"latency_per_record":"-1ms"}`, `{"nope":1}`, `{"fail_rate":"x"}`, `not json`,
	}
	for _, body := range bad {
		res := f.doWith(http.MethodPut, "/_fake/config", body, nil)
		var e struct{ Error string }
		res.want(t, http.StatusBadRequest).decode(t, &e)
		if e.Error == "" {
			t.Errorf("%s: no message", body)
		}
	}
	// A rejected patch changes nothing, not even its valid parts.
	f.doWith(http.MethodPut, "/_fake/config", `{"fail_rate":0,"lock_rate":7}`, nil).want(t, http.StatusBadRequest)
	f.doWith(http.MethodGet, "/_fake/config", nil, nil).decode(t, &cfg)
	if cfg["fail_rate"] != 0.25 {
		t.Errorf("fail_rate changed by a rejected patch: %v", cfg["fail_rate"])
	}
	// reject_name "" lifts the rule.
	f.doWith(http.MethodPut, "/_fake/config", `{"reject_name":"","fail_rate":0,"lock_rate":0,"latency":"0s","token_ttl":"0s"}`, nil).want(t, http.StatusOK)
	f.create(map[string]any{"Name": "Bad name"})
	f.doWith(http.MethodGet, "/_fake/nothing", nil, nil).want(t, http.StatusNotFound)
}

func TestAdminTokens(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		InstanceURL  string `json:"instance_url"`
	}
	f.doWith(http.MethodPost, "/_fake/tokens", nil, nil).want(t, http.StatusOK).decode(t, &tok)
	if tok.InstanceURL != f.srv.URL {
		t.Errorf("instance_url: %q", tok.InstanceURL)
	}
	auth := map[string]string{"Authorization": "Bearer " + tok.AccessToken}
	f.doWith(http.MethodGet, B+"/limits", nil, auth).want(t, http.StatusOK)
	f.form("/services/oauth2/token", "grant_type=refresh_token&client_id=demo&refresh_token="+tok.RefreshToken, nil).want(t, http.StatusOK)
	f.form("/services/oauth2/revoke", "token="+tok.RefreshToken, nil).want(t, http.StatusOK)
	f.doWith(http.MethodGet, B+"/limits", nil, auth).wantError(t, http.StatusUnauthorized, "INVALID_SESSION_ID")
	f.doWith(http.MethodGet, "/_fake/tokens", nil, nil).want(t, http.StatusMethodNotAllowed)
}

func TestAdminStats(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	id := f.create(map[string]any{"Name": "A", "Source_Id__c": "K1"})
	f.do(http.MethodGet, B+"/sobjects/Account/"+id, nil)
	f.do(http.MethodPatch, B+"/sobjects/Account/"+id, map[string]any{"Phone": "1"})
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/K1", map[string]any{"Phone": "2"})
	f.do(http.MethodPatch, B+"/composite/sobjects/Account/Source_Id__c", collection(false, map[string]any{"Name": "B", "Source_Id__c": "K2"}))
	f.do(http.MethodPost, B+"/composite/sobjects/", collection(false, map[string]any{"Name": "C"}))
	f.do(http.MethodGet, B+"/query/?q=SELECT+Id+FROM+Account", nil)
	f.do(http.MethodGet, B+"/limits", nil)
	f.do(http.MethodGet, B+"/sobjects/Account/describe", nil)
	f.do(http.MethodPost, "/services/apexrest/arrify/v1/accounts", map[string]any{"Name": "D"})
	f.do(http.MethodGet, B+"/bogus/path", nil)
	f.doWith(http.MethodGet, "/services/data/", nil, nil)
	f.form("/services/oauth2/token", "grant_type=client_credentials&client_id=demo&client_secret=demo-secret", nil)

	var s struct {
		APICalls int            `json:"api_calls"`
		ByRoute  map[string]int `json:"by_route"`
		Records  map[string]int `json:"records"`
	}
	f.doWith(http.MethodGet, "/_fake/stats", nil, nil).want(t, http.StatusOK).decode(t, &s)
	want := map[string]int{
		"POST /sobjects/Account":                    1,
		"GET /sobjects/Account/{id}":                1,
		"PATCH /sobjects/Account/{id}":              1,
		"PATCH /sobjects/Account/{field}/{value}":   1,
		"PATCH /composite/sobjects/Account/{field}": 1,
		"POST /composite/sobjects":                  1,
		"GET /query":                                1,
		"GET /limits":                               1,
		"GET /sobjects/Account/describe":            1,
		"POST /apexrest/arrify/v1/accounts":         1,
		"GET /{unknown}":                            1,
	}
	if s.APICalls != 11 || s.Records["Account"] != 4 || len(s.ByRoute) != len(want) {
		t.Errorf("stats: %+v", s)
	}
	for k, v := range want {
		if s.ByRoute[k] != v {
			t.Errorf("by_route[%q]: got %d, want %d", k, s.ByRoute[k], v)
		}
	}
	f.doWith(http.MethodPost, "/_fake/reset", nil, nil).want(t, http.StatusNoContent)
	if st := f.org.Stats(); st.APICalls != 0 || st.Records["Account"] != 0 || st.APIUsage != 0 {
		t.Errorf("after reset: %+v", st)
	}
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
}
