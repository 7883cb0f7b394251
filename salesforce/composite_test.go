package salesforce_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// UpsertComposite against the fake org: one counted call for three lists,
// per-record results in order, a list refused as a whole reported as its
// own *APIError with the same class as a collections call would get.
func TestUpsertComposite(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()

	var lists [][]salesforce.Record
	for l := range 3 {
		var recs []salesforce.Record
		for i := range 200 {
			recs = append(recs, salesforce.Record{"Source_Id__c": fmt.Sprintf("L%d-%d", l, i), "Name": "n"})
		}
		lists = append(lists, recs)
	}
	lists[0][1]["Parent"] = map[string]any{"Source_Id__c": "NOT-THERE"}
	lists[2][5]["NoSuchField__c"] = "x" // refuses the whole list
	res, err := c.UpsertComposite(ctx, "Account", "Source_Id__c", lists)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results", len(res))
	}
	if res[0].Err != nil || len(res[0].Results) != 200 || res[1].Err != nil || len(res[1].Results) != 200 {
		t.Fatalf("lists 0 and 1: got %v %d, %v %d", res[0].Err, len(res[0].Results), res[1].Err, len(res[1].Results))
	}
	if r := res[0].Results[1]; r.Success {
		t.Errorf("record with a missing parent succeeded")
	} else if _, _, ok := salesforce.MissingParent(r.Err()); !ok {
		t.Errorf("record with a missing parent: got %v, want a missing parent", r.Err())
	}
	if !res[0].Results[0].Success || !res[0].Results[0].Created || !res[1].Results[199].Success {
		t.Errorf("records: got %+v %+v", res[0].Results[0], res[1].Results[199])
	}
	var apiErr *salesforce.APIError
	if !errors.As(res[2].Err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "INVALID_FIELD" ||
		apiErr.Route != "PATCH /composite/sobjects/Account/Source_Id__c" || salesforce.Classify(res[2].Err) != salesforce.Permanent {
		t.Errorf("refused list: got %#v", res[2].Err)
	}
	if got := obs.routes(); !slices.Equal(got, []string{"POST /composite 200"}) {
		t.Errorf("routes: got %v, want one POST /composite", got)
	}
	if u, ok := c.Usage(); !ok || u.Used != 1 {
		t.Errorf("usage: got %+v %v, want 1 call", u, ok)
	}
	if n := org.Stats().Records["Account"]; n != 399 {
		t.Errorf("accounts: got %d, want 399", n)
	}
}

// UpsertCompositeRaw and UpsertManyRaw write records already encoded: the
// same calls and outcomes as with Records.
func TestUpsertRaw(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()
	raw := func(rec salesforce.Record) salesforce.RawRecord {
		b, err := salesforce.AppendRecord(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lists := [][]salesforce.RawRecord{
		{raw(salesforce.Record{"Source_Id__c": "R1", "Name": "one"}), raw(salesforce.Record{"Source_Id__c": "R2", "Name": "two"})},
		{raw(salesforce.Record{"Source_Id__c": "R3", "Name": "three", "Parent": map[string]any{"Source_Id__c": "NOT-THERE"}})},
		{raw(salesforce.Record{"Source_Id__c": "R4", "NoSuchField__c": "x"})},
	}
	res, err := c.UpsertCompositeRaw(ctx, "Account", "Source_Id__c", lists)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Err != nil || len(res[0].Results) != 2 || !res[0].Results[1].Success || res[1].Err != nil {
		t.Fatalf("got %+v", res)
	}
	if _, _, ok := salesforce.MissingParent(res[1].Results[0].Err()); !ok {
		t.Errorf("missing parent: got %v", res[1].Results[0].Err())
	}
	if salesforce.Classify(res[2].Err) != salesforce.Permanent {
		t.Errorf("refused list: got %v", res[2].Err)
	}
	one, err := c.UpsertManyRaw(ctx, "Account", "Source_Id__c", []salesforce.RawRecord{raw(salesforce.Record{"Source_Id__c": "R1", "Name": "renamed"})}, false)
	if err != nil || len(one) != 1 || !one[0].Success || one[0].Created {
		t.Fatalf("UpsertManyRaw: %+v, %v", one, err)
	}
	if _, err := c.UpsertManyRaw(ctx, "Account", "Source_Id__c", make([]salesforce.RawRecord, 201), false); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("201 records: %v", err)
	}
	if got := obs.routes(); !slices.Equal(got, []string{"POST /composite 200", "PATCH /composite/sobjects/Account/{field} 200"}) {
		t.Errorf("routes: got %v", got)
	}
	if n := org.Stats().Records["Account"]; n != 2 {
		t.Errorf("accounts: got %d, want 2", n)
	}
}

func TestUpsertCompositeLimits(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	six := make([][]salesforce.Record, 6)
	for i := range six {
		six[i] = []salesforce.Record{{"Source_Id__c": fmt.Sprint(i), "Name": "n"}}
	}
	if _, err := c.UpsertComposite(t.Context(), "Account", "Source_Id__c", six); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("6 lists: got %v, want ErrTooManyRecords", err)
	}
	big := [][]salesforce.Record{make([]salesforce.Record, 201)}
	if _, err := c.UpsertComposite(t.Context(), "Account", "Source_Id__c", big); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("201 records: got %v, want ErrTooManyRecords", err)
	}
	subs := make([]salesforce.CompositeSubrequest, 26)
	for i := range subs {
		subs[i] = salesforce.CompositeSubrequest{Method: "GET", URL: "/services/data/v61.0/limits", ReferenceID: fmt.Sprint("r", i)}
	}
	if _, err := c.Composite(t.Context(), false, subs); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("26 subrequests: got %v, want ErrTooManyRecords", err)
	}
	if _, err := c.Composite(t.Context(), false, []salesforce.CompositeSubrequest{{Method: "GET", URL: "/services/data/v61.0/limits", ReferenceID: "a-b"}}); !errors.Is(err, salesforce.ErrInvalidRequest) {
		t.Errorf("bad referenceId: got %v, want ErrInvalidRequest", err)
	}
	if got := obs.routes(); len(got) != 0 {
		t.Errorf("refused calls were sent: %v", got)
	}
}

// A composite refused as a whole by the org (here more than five
// collections, sent raw) is the call's error.
func TestCompositeRefusedAsAWhole(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	c := fakeClient(t, ts.URL, nil)
	var subs []salesforce.CompositeSubrequest
	for i := range 6 {
		subs = append(subs, salesforce.CompositeSubrequest{Method: "GET", URL: "/services/data/v61.0/query?q=SELECT+Id+FROM+Account", ReferenceID: fmt.Sprint("q", i)})
	}
	_, err := c.Composite(t.Context(), false, subs)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "LIMIT_EXCEEDED" || apiErr.Route != "POST /composite" {
		t.Fatalf("got %v, want LIMIT_EXCEEDED for POST /composite", err)
	}
}

// UpdateComposite and DeleteComposite against the fake org: one counted
// call each for three lists, per-record results in order (an unknown ID
// fails alone, an already deleted record fails ENTITY_IS_DELETED), a list
// refused as a whole reported as its own *APIError.
func TestUpdateAndDeleteComposite(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()

	var ids []string
	for l := range 3 {
		var recs []salesforce.Record
		for i := range 200 {
			recs = append(recs, salesforce.Record{"Source_Id__c": fmt.Sprintf("L%d-%d", l, i), "Name": "n"})
		}
		res, err := c.UpsertMany(ctx, "Account", "Source_Id__c", recs, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			ids = append(ids, r.ID)
		}
	}
	lists := make([][]salesforce.Record, 3)
	for k, id := range ids {
		lists[k/200] = append(lists[k/200], salesforce.Record{"attributes": map[string]any{"type": "Account"}, "Id": id, "Phone": fmt.Sprint(k)})
	}
	lists[0][7]["Id"] = "001000000000000AAA" // names no record
	lists[2][3]["NoSuchField__c"] = "x"      // refuses the whole list
	before := len(obs.routes())
	res, err := c.UpdateComposite(ctx, "Account", lists)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Err != nil || res[1].Err != nil || len(res[0].Results) != 200 || len(res[1].Results) != 200 {
		t.Fatalf("update lists: got %+v", res)
	}
	for k, r := range append(res[0].Results, res[1].Results...) {
		if k == 7 {
			if r.Success || r.Err() == nil || r.Err().Code != "INVALID_CROSS_REFERENCE_KEY" {
				t.Errorf("update of an unknown ID: got %+v", r)
			}
			continue
		}
		if !r.Success || r.ID != ids[k] {
			t.Errorf("update %d: got %+v, want success for %s", k, r, ids[k])
		}
	}
	var apiErr *salesforce.APIError
	if !errors.As(res[2].Err, &apiErr) || apiErr.Code != "INVALID_FIELD" || apiErr.Route != "PATCH /composite/sobjects" {
		t.Errorf("refused update list: got %#v", res[2].Err)
	}
	got, err := c.Get(ctx, "Account", ids[250], "Phone")
	if err != nil || got["Phone"] != "250" {
		t.Errorf("record 250 after the update: %v %v, want Phone 250", got, err)
	}
	got, err = c.Get(ctx, "Account", ids[403], "Phone")
	if err != nil || got["Phone"] != nil {
		t.Errorf("record 403 of the refused list: %v %v, want no Phone", got, err)
	}

	if _, err := c.DeleteMany(ctx, ids[10:11], false); err != nil {
		t.Fatal(err)
	}
	dl := [][]string{ids[0:200], ids[200:400], {ids[400], "bad id"}}
	if _, err := c.DeleteComposite(ctx, dl); !errors.Is(err, salesforce.ErrInvalidRequest) {
		t.Errorf("a bad ID: got %v, want ErrInvalidRequest before sending", err)
	}
	dl[2] = ids[400:600]
	dres, err := c.DeleteComposite(ctx, dl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dres) != 3 {
		t.Fatalf("delete lists: got %d", len(dres))
	}
	for l, lr := range dres {
		if lr.Err != nil || len(lr.Results) != 200 {
			t.Fatalf("delete list %d: got %v, %d results", l, lr.Err, len(lr.Results))
		}
		for j, r := range lr.Results {
			k := l*200 + j
			if k == 10 {
				if !salesforce.IsEntityDeleted(r.Err()) {
					t.Errorf("delete of a deleted record: got %+v, want ENTITY_IS_DELETED", r)
				}
				continue
			}
			if !r.Success || r.ID != ids[k] {
				t.Errorf("delete %d: got %+v", k, r)
			}
		}
	}
	if n := org.Stats().Records["Account"]; n != 0 {
		t.Errorf("accounts left: %d, want 0", n)
	}
	if got := obs.routes()[before:]; !slices.Equal(got, []string{"POST /composite 200", "GET /sobjects/Account/{id} 200", "GET /sobjects/Account/{id} 200", "DELETE /composite/sobjects 200", "POST /composite 200"}) {
		t.Errorf("routes: got %v", got)
	}
	six := make([][]string, 6)
	if _, err := c.DeleteComposite(ctx, six); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("6 lists: got %v, want ErrTooManyRecords", err)
	}
	if _, err := c.UpdateComposite(ctx, "Account", [][]salesforce.Record{{{"Name": "no id"}}}); !errors.Is(err, salesforce.ErrInvalidRequest) {
		t.Errorf("a record without Id: got %v, want ErrInvalidRequest", err)
	}
}

// QueryAllComposite runs several queryAll queries in one counted call,
// deleted rows included, and follows a result's further pages.
func TestQueryAllComposite(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{OrgID: testOrgID15})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()
	var recs []salesforce.Record
	for i := range 2100 {
		recs = append(recs, salesforce.Record{"Source_Id__c": fmt.Sprintf("Q%d", i), "Name": "n"})
	}
	var ids []string
	for _, part := range [][]salesforce.Record{recs[:200], recs[200:400]} {
		res, err := c.UpsertMany(ctx, "Account", "Source_Id__c", part, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			ids = append(ids, r.ID)
		}
	}
	for start := 400; start < len(recs); start += 200 {
		if _, err := c.UpsertMany(ctx, "Account", "Source_Id__c", recs[start:min(start+200, len(recs))], false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteMany(ctx, ids[:1], false); err != nil {
		t.Fatal(err)
	}
	before := len(obs.routes())
	res, err := c.QueryAllComposite(ctx, []string{
		"SELECT Id, IsDeleted FROM Account WHERE Source_Id__c IN ('Q0','Q1')",
		"SELECT Id FROM Account WHERE Source_Id__c = 'none'",
		"SELECT Id FROM Account",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || len(res[0]) != 2 || len(res[1]) != 0 || len(res[2]) != 2100 {
		t.Fatalf("got %d results (%d, %d, %d rows), want 3 (2, 0, 2100)", len(res), len(res[0]), len(res[1]), len(res[2]))
	}
	if res[0][0]["Id"] != ids[0] || res[0][0]["IsDeleted"] != true || res[0][1]["IsDeleted"] != false {
		t.Errorf("first query: got %v", res[0])
	}
	routes := obs.routes()[before:]
	if len(routes) != 2 || routes[0] != "POST /composite 200" || !strings.HasPrefix(routes[1], "GET /query") || !strings.Contains(routes[1], "{locator}") {
		t.Errorf("routes: got %v, want one composite call and the next pages", routes)
	}
	if _, err := c.QueryAllComposite(ctx, []string{"SELECT Id FROM Nope__c", "SELECT Id FROM Account"}); err == nil {
		t.Error("a refused query: no error")
	}
	if _, err := c.QueryAllComposite(ctx, make([]string, 6)); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("6 queries: got %v, want ErrTooManyRecords", err)
	}
}
