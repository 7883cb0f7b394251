package salesforce_test

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// fakeClock is a settable clock for the fake org.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func startFakeOrg(t *testing.T, cfg fakeorg.Config) (*fakeorg.Org, *httptest.Server) {
	t.Helper()
	org, err := fakeorg.New(cfg)
	if err != nil {
		t.Fatalf("fakeorg.New: %v", err)
	}
	ts := httptest.NewServer(org)
	t.Cleanup(ts.Close)
	return org, ts
}

// fakeClient logs in with the client credentials flow (demo / demo-secret).
func fakeClient(t *testing.T, url string, obs *observer) *salesforce.Client {
	t.Helper()
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: url, ClientID: "demo", ClientSecret: "demo-secret"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := salesforce.Config{Auth: a, CallOptions: "client=orgsync"}
	if obs != nil {
		cfg.Observe = obs.observe
	}
	c, err := salesforce.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Ensure that every call of the client works against the fake org, and that
// the client's route templates are the fake's.
func TestFakeOrg_Calls(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()

	orgID, userID, err := c.Identity(ctx)
	if err != nil || orgID != testOrgID || !salesforce.ValidID(userID) || !strings.HasPrefix(userID, "005") {
		t.Fatalf("Identity: got %q %q %v", orgID, userID, err)
	}

	// Create one and many.
	one, err := c.Create(ctx, "Account", salesforce.Record{"Name": "Acme", "Phone": "555-0100"})
	if err != nil || !one.Success || !salesforce.ValidID(one.ID) {
		t.Fatalf("Create: got %+v, %v", one, err)
	}
	many, err := c.CreateMany(ctx, "Account", []salesforce.Record{{"Name": "Globex"}, {"Name": "Initech"}, {}}, false)
	if err != nil || len(many) != 3 {
		t.Fatalf("CreateMany: got %+v, %v", many, err)
	}
	if !many[0].Success || !many[1].Success || many[2].Success {
		t.Errorf("CreateMany results: got %+v", many)
	}
	if e := many[2].Err(); e == nil || e.Code != "REQUIRED_FIELD_MISSING" || e.Class("") != salesforce.Permanent {
		t.Errorf("record without Name: got %v", e)
	}

	// Get.
	rec, err := c.Get(ctx, "Account", one.ID, "Name", "Phone")
	if err != nil || rec["Name"] != "Acme" || rec["Phone"] != "555-0100" {
		t.Errorf("Get: got %v, %v", rec, err)
	}
	if _, ok := rec["attributes"]; ok {
		t.Errorf("Get kept attributes")
	}

	// Upsert one: created, then updated.
	up, err := c.Upsert(ctx, "Account", "Source_Id__c", "SRC-1", salesforce.Record{"Name": "Source One"})
	if err != nil || !up.Success || !up.Created || up.ID == "" {
		t.Fatalf("Upsert new: got %+v, %v", up, err)
	}
	up2, err := c.Upsert(ctx, "Account", "Source_Id__c", "SRC-1", salesforce.Record{"Name": "Source One b"})
	if err != nil || !up2.Success || up2.Created || up2.ID != up.ID {
		t.Fatalf("Upsert existing: got %+v, %v, want id %s not created", up2, err, up.ID)
	}

	// Upsert many: one existing, two new, one child referencing a new parent
	// by external ID, one referencing a missing parent.
	res, err := c.UpsertMany(ctx, "Account", "Source_Id__c", []salesforce.Record{
		{"Source_Id__c": "SRC-1", "Name": "Source One c"},
		{"Source_Id__c": "SRC-2", "Name": "Source Two"},
		{"Source_Id__c": "SRC-3", "Name": "Source Three", "Parent": map[string]any{"Source_Id__c": "SRC-1"}},
		{"Source_Id__c": "SRC-4", "Name": "Orphan", "Parent": map[string]any{"Source_Id__c": "SRC-404"}},
	}, false)
	if err != nil || len(res) != 4 {
		t.Fatalf("UpsertMany: got %+v, %v", res, err)
	}
	if !res[0].Success || res[0].Created || res[0].ID != up.ID || !res[1].Created || !res[2].Created {
		t.Errorf("UpsertMany results: got %+v", res)
	}
	if v, f, ok := salesforce.MissingParent(res[3].Err()); !ok || v != "SRC-404" || f != "Source_Id__c" {
		t.Errorf("missing parent: got %q %q %v from %v", v, f, ok, res[3].Err())
	}

	// Update and read back.
	if err := c.Update(ctx, "Account", one.ID, salesforce.Record{"Phone": "555-0199"}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if rec, err := c.Get(ctx, "Account", one.ID, "Phone"); err != nil || rec["Phone"] != "555-0199" {
		t.Errorf("Get after Update: got %v, %v", rec, err)
	}

	// Delete, twice.
	if err := c.Delete(ctx, "Account", one.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err = c.Delete(ctx, "Account", one.ID)
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Code != "ENTITY_IS_DELETED" || salesforce.Classify(err) != salesforce.Permanent {
		t.Errorf("second Delete: got %v", err)
	}

	// Update many, delete many, queryAll and undelete.
	if rs, err := c.UpdateMany(ctx, "Account", []salesforce.Record{{"Id": res[1].ID, "Phone": "1"}, {"Id": one.ID, "Phone": "2"}}, false); err != nil ||
		!rs[0].Success || !salesforce.IsEntityDeleted(rs[1].Err()) {
		t.Errorf("UpdateMany: got %+v, %v", rs, err)
	}
	if rs, err := c.DeleteMany(ctx, []string{res[1].ID, one.ID}, false); err != nil || !rs[0].Success || !salesforce.IsEntityDeleted(rs[1].Err()) {
		t.Errorf("DeleteMany: got %+v, %v", rs, err)
	}
	var deleted []string
	for r, err := range c.QueryAll(ctx, "SELECT Id FROM Account WHERE IsDeleted = true ORDER BY Id") {
		if err != nil {
			t.Fatalf("QueryAll: %v", err)
		}
		deleted = append(deleted, r["Id"].(string))
	}
	if want := []string{one.ID, res[1].ID}; !slices.Equal(deleted, want) {
		t.Errorf("QueryAll deleted rows: got %v, want %v", deleted, want)
	}
	if rs, err := c.Undelete(ctx, deleted); err != nil || !rs[0].Success || !rs[1].Success {
		t.Errorf("Undelete: got %+v, %v", rs, err)
	}

	// Count, describe, limits.
	n, err := c.Count(ctx, "SELECT COUNT() FROM Account")
	if err != nil || n != 6 { // Acme, Globex, Initech, SRC-1..3
		t.Errorf("Count: got %v, %v, want 6", n, err)
	}
	d, err := c.Describe(ctx, "Account")
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if f, ok := d.Field("source_id__c"); !ok || !f.ExternalID || !f.Unique {
		t.Errorf("Describe Source_Id__c: got %+v, %v", f, ok)
	}
	lim, err := c.Limits(ctx)
	if err != nil || lim["DailyApiRequests"].Max != fakeorg.DefaultDailyAPILimit {
		t.Errorf("Limits: got %v, %v", lim["DailyApiRequests"], err)
	}
	u, ok := c.Usage()
	if st := org.Stats(); !ok || u.Used != st.APIUsage || u.Max != st.DailyAPILimit {
		t.Errorf("Usage: got %+v, %v, want used %d of %d", u, ok, st.APIUsage, st.DailyAPILimit)
	}

	// The client's route templates are the fake's stats keys.
	got := map[string]int{}
	for _, ci := range obs.calls {
		got[ci.Route]++
	}
	if want := org.Stats().ByRoute; !maps.Equal(got, want) {
		t.Errorf("routes: client saw %v, fake counted %v", got, want)
	}
}

// Ensure that Query follows the fake's nextRecordsUrl across pages.
func TestFakeOrg_QueryPaging(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{PageSize: 3})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()
	var recs []salesforce.Record
	for i := range 8 {
		recs = append(recs, salesforce.Record{"Name": fmt.Sprintf("Account %02d", i)})
	}
	if _, err := c.CreateMany(ctx, "Account", recs, true); err != nil {
		t.Fatal(err)
	}
	var names []string
	for rec, err := range c.Query(ctx, "SELECT Id, Name FROM Account ORDER BY Name") {
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		names = append(names, rec["Name"].(string))
	}
	if len(names) != 8 || !slices.IsSorted(names) {
		t.Errorf("Query: got %v, want 8 sorted names", names)
	}
	var pages []string
	for _, ci := range obs.calls {
		if strings.HasPrefix(ci.Route, "GET /query") {
			pages = append(pages, ci.Route)
		}
	}
	if want := []string{"GET /query", "GET /query/{locator}", "GET /query/{locator}"}; !slices.Equal(pages, want) {
		t.Errorf("pages: got %v, want %v", pages, want)
	}
	if n, err := c.Count(ctx, "SELECT COUNT() FROM Account"); err != nil || n != 8 {
		t.Errorf("Count: got %v, %v, want 8", n, err)
	}
}

// Ensure that an expired token is replaced transparently: the call answered
// 401 is retried once with a new token.
func TestFakeOrg_TokenExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	org, ts := startFakeOrg(t, fakeorg.Config{Now: clock.Now, TokenTTL: time.Hour})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()
	if _, err := c.Create(ctx, "Account", salesforce.Record{"Name": "Before"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := c.Create(ctx, "Account", salesforce.Record{"Name": "After"}); err != nil {
		t.Fatalf("Create after expiry: %v", err)
	}
	// A shorter TTL set at run time is honoured as well.
	ttl := time.Minute
	if err := org.Configure(fakeorg.ConfigPatch{TokenTTL: &ttl}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if n, err := c.Count(ctx, "SELECT COUNT() FROM Account"); err != nil || n != 2 {
		t.Fatalf("Count after the second expiry: got %v, %v", n, err)
	}
	want := []string{"POST /sobjects/Account 201", "POST /sobjects/Account 401", "POST /sobjects/Account 201", "GET /query 401", "GET /query 200"}
	if got := obs.routes(); !slices.Equal(got, want) {
		t.Errorf("calls: got %v, want %v", got, want)
	}
	if got := org.Stats().Records["Account"]; got != 2 {
		t.Errorf("records: got %v, want 2 (no duplicate from the retry)", got)
	}
}

// Ensure that the JWT bearer and refresh-token flows log in to the fake.
func TestFakeOrg_OtherFlows(t *testing.T) {
	key, pkcs8, _ := rsaKey(t)
	org, ts := startFakeOrg(t, fakeorg.Config{JWTPublicKey: &key.PublicKey})
	for _, cfg := range []salesforce.AuthConfig{
		{URL: ts.URL, ClientID: "demo", Username: fakeorg.DefaultUsername, JWTKey: pkcs8},
		{URL: ts.URL, ClientID: "demo", ClientSecret: "demo-secret", RefreshToken: org.IssueRefreshToken()},
		{AccessToken: org.IssueAccessToken(), InstanceURL: ts.URL},
	} {
		a, err := salesforce.NewAuth(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := salesforce.NewClient(salesforce.Config{Auth: a})
		if _, err := c.Limits(t.Context()); err != nil {
			t.Errorf("%s: Limits: %v", a.Flow(), err)
		}
	}
	// Wrong credentials are auth failures.
	for _, cfg := range []salesforce.AuthConfig{
		{URL: ts.URL, ClientID: "demo", ClientSecret: "wrong"},
		{URL: ts.URL, ClientID: "nobody", ClientSecret: "demo-secret"},
		{URL: ts.URL, ClientID: "demo", RefreshToken: "5Aep861-unknown"},
		{URL: ts.URL, ClientID: "demo", Username: "someone@else.example", JWTKey: pkcs8},
	} {
		a, _ := salesforce.NewAuth(t.Context(), cfg)
		c, _ := salesforce.NewClient(salesforce.Config{Auth: a})
		_, err := c.Limits(t.Context())
		var authErr *salesforce.AuthError
		if !errors.As(err, &authErr) || salesforce.Classify(err) != salesforce.AuthFailure {
			t.Errorf("%s with bad credentials: got %v, want an auth *AuthError", a.Flow(), err)
		}
	}
}

// Ensure that the fake's faults arrive with the right class: validation
// rule, daily limit, and a redirect from an old host.
func TestFakeOrg_Faults(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{RejectName: "^Bad"})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()

	res, err := c.UpsertMany(ctx, "Account", "Source_Id__c", []salesforce.Record{
		{"Source_Id__c": "S1", "Name": "Good"}, {"Source_Id__c": "S2", "Name": "Bad one"},
	}, false)
	if err != nil || !res[0].Success || res[1].Success {
		t.Fatalf("UpsertMany: got %+v, %v", res, err)
	}
	if e := res[1].Err(); e.Code != "FIELD_CUSTOM_VALIDATION_EXCEPTION" || e.Class("Source_Id__c") != salesforce.Permanent {
		t.Errorf("validation rule: got %v", e)
	}

	limit := org.Stats().APIUsage + 1
	if err := org.Configure(fakeorg.ConfigPatch{DailyAPILimit: &limit}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Count(ctx, "SELECT COUNT() FROM Account"); err != nil {
		t.Fatalf("last call within the budget: %v", err)
	}
	_, err = c.Count(ctx, "SELECT COUNT() FROM Account")
	if got := salesforce.Classify(err); got != salesforce.Budget {
		t.Errorf("over the daily limit: got %v (class %v), want budget", err, got)
	}
	if u, _ := c.Usage(); u.Ratio() < 1 {
		t.Errorf("Usage over the limit: got %+v", u)
	}
	if _, err := c.Limits(ctx); err != nil {
		t.Errorf("Limits over the daily limit (a budget probe): %v", err)
	}
	high := 100000
	_ = org.Configure(fakeorg.ConfigPatch{DailyAPILimit: &high})

	// An old host redirects: GET is followed, a write is refused.
	old := httptest.NewServer(org)
	defer old.Close()
	oldHost := strings.TrimPrefix(old.URL, "http://")
	if err := org.Configure(fakeorg.ConfigPatch{RedirectHosts: map[string]string{oldHost: ts.URL}}); err != nil {
		t.Fatal(err)
	}
	a, _ := salesforce.NewAuth(ctx, salesforce.AuthConfig{AccessToken: org.IssueAccessToken(), InstanceURL: old.URL})
	oc, _ := salesforce.NewClient(salesforce.Config{Auth: a})
	if _, err := oc.Count(ctx, "SELECT COUNT() FROM Account"); err != nil {
		t.Errorf("GET via the old host: %v", err)
	}
	_, err = oc.Create(ctx, "Account", salesforce.Record{"Name": "Lost"})
	var re *salesforce.RedirectError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "configure "+ts.URL) || salesforce.Classify(err) != salesforce.Configuration {
		t.Errorf("POST via the old host: got %v", err)
	}
	// The token endpoint on the old host refuses to be redirected too.
	oa, _ := salesforce.NewAuth(ctx, salesforce.AuthConfig{URL: old.URL, ClientID: "demo", ClientSecret: "demo-secret"})
	if _, err := oa.Token(ctx); !errors.As(err, &re) {
		t.Errorf("token request via the old host: got %v, want *RedirectError", err)
	}
}
