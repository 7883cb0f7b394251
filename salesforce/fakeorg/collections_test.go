package fakeorg_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

func TestCollectionCreate(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	for _, p := range []string{B + "/composite/sobjects", B + "/composite/sobjects/"} {
		var rs []saveResult
		f.do(http.MethodPost, p, collection(false, map[string]any{"Name": "A"}, map[string]any{"Name": "B"})).
			want(t, http.StatusOK).decode(t, &rs)
		if len(rs) != 2 || !rs[0].Success || !rs[1].Success || rs[0].ID == rs[1].ID || rs[0].Errors == nil {
			t.Fatalf("%s: %+v", p, rs)
		}
		if rec, _ := f.org.Account(rs[1].ID); rec["Name"] != "B" {
			t.Errorf("order: %v", rec)
		}
	}
	if got := f.org.Stats().ByRoute["POST /composite/sobjects"]; got != 2 {
		t.Errorf("stats route: got %d, want 2", got)
	}

	// One invalid record, allOrNone=false: the valid one is committed.
	res := f.do(http.MethodPost, B+"/composite/sobjects", collection(false, map[string]any{"Name": "C"}, map[string]any{"Phone": "1"})).want(t, http.StatusOK)
	var rs []saveResult
	res.decode(t, &rs)
	if !rs[0].Success || rs[1].Success || rs[1].code() != "REQUIRED_FIELD_MISSING" || rs[1].ID != "" {
		t.Fatalf("partial: %s", res.body)
	}
	if !strings.Contains(string(res.body), `"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [Name]","fields":["Name"]}]`) {
		t.Errorf("per-record error shape: %s", res.body)
	}
	if _, ok := f.org.Account(rs[0].ID); !ok {
		t.Errorf("valid record not committed")
	}

	// allOrNone=true: nothing committed, the others rolled back.
	before := len(f.org.Accounts())
	f.do(http.MethodPost, B+"/composite/sobjects", collection(true, map[string]any{"Name": "D"}, map[string]any{"Phone": "1"}, map[string]any{"Name": "E"})).
		want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "ALL_OR_NONE_OPERATION_ROLLED_BACK" || rs[1].code() != "REQUIRED_FIELD_MISSING" || rs[2].code() != "ALL_OR_NONE_OPERATION_ROLLED_BACK" {
		t.Fatalf("allOrNone: %+v", rs)
	}
	if rs[0].Errors[0].Message != "Record rolled back because not all records were valid and the request was using AllOrNone header" || rs[0].Errors[0].Fields == nil {
		t.Errorf("rolled back error: %+v", rs[0].Errors[0])
	}
	if after := len(f.org.Accounts()); after != before {
		t.Errorf("accounts: got %d, want %d", after, before)
	}
	f.do(http.MethodPost, B+"/composite/sobjects", collection(true, map[string]any{"Name": "F"}, map[string]any{"Name": "G"})).want(t, http.StatusOK).decode(t, &rs)
	if !rs[0].Success || !rs[1].Success {
		t.Errorf("allOrNone all valid: %+v", rs)
	}
}

func TestCollectionCreate_RequestErrors(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	many := make([]map[string]any, 201)
	for i := range many {
		many[i] = map[string]any{"Name": fmt.Sprint("R", i)}
	}
	tests := []struct {
		name string
		body any
		code string
	}{
		{"201 records", collection(false, many...), "EXCEEDED_ID_LIMIT"},
		{"no type", map[string]any{"records": []any{map[string]any{"Name": "A"}}}, "INVALID_TYPE"},
		{"other type", map[string]any{"records": []any{map[string]any{"attributes": map[string]any{"type": "Contact"}, "LastName": "A"}}}, "INVALID_TYPE"},
		{"unknown field", collection(false, map[string]any{"Name": "A"}, map[string]any{"Name": "B", "Nope": 1}), "INVALID_FIELD"},
		{"no records", map[string]any{"allOrNone": false}, "REQUIRED_FIELD_MISSING"},
		{"records not a list", map[string]any{"records": "x"}, "JSON_PARSER_ERROR"},
		{"allOrNone not a bool", map[string]any{"allOrNone": "yes", "records": []any{}}, "JSON_PARSER_ERROR"},
		{"bad json", `{"records":[`, "JSON_PARSER_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.do(http.MethodPost, B+"/composite/sobjects", tt.body).wantError(t, http.StatusBadRequest, tt.code)
		})
	}
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("accounts: got %d, want 0", n)
	}
	e := f.do(http.MethodPost, B+"/composite/sobjects", collection(false, many...)).wantError(t, http.StatusBadRequest, "EXCEEDED_ID_LIMIT")
	if e.Message != "record limit reached. cannot submit more than 200 records into this call" {
		t.Errorf("message: %q", e.Message)
	}
	var rs []saveResult
	f.do(http.MethodPost, B+"/composite/sobjects", collection(false, many[:200]...)).want(t, http.StatusOK).decode(t, &rs)
	if len(rs) != 200 {
		t.Errorf("200 records: got %d results", len(rs))
	}
}

func TestCollectionCreate_PerRecordErrors(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	existing := f.create(map[string]any{"Name": "P", "Source_Id__c": "P1"})
	var rs []saveResult
	f.do(http.MethodPost, B+"/composite/sobjects", collection(false,
		map[string]any{"Name": "id given", "Id": existing},
		map[string]any{"Name": "dup in call", "Source_Id__c": "X1"},
		map[string]any{"Name": "dup in call too", "Source_Id__c": "x1"},
		map[string]any{"Name": "dup of existing", "Source_Id__c": "P1"},
		map[string]any{"Name": "parent ok", "Parent": map[string]any{"Source_Id__c": "p1"}},
		map[string]any{"Name": "parent missing", "Parent": map[string]any{"Source_Id__c": "nope"}},
		map[string]any{"Name": "read only", "SystemModstamp": "2026-01-01T00:00:00Z"},
		map[string]any{"Name": strings.Repeat("n", 256)},
	)).want(t, http.StatusOK).decode(t, &rs)
	want := []string{"INVALID_FIELD", "DUPLICATE_VALUE", "DUPLICATE_VALUE", "DUPLICATE_VALUE", "", "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "STRING_TOO_LONG"}
	for i, w := range want {
		if got := rs[i].code(); got != w {
			t.Errorf("record %d: got %q, want %q (%+v)", i, got, w, rs[i])
		}
	}
	if msg := rs[5].Errors[0].Message; msg != "Foreign key external ID: nope not found for field Source_Id__c in entity Account" {
		t.Errorf("foreign key message: %q", msg)
	}
	if rec, _ := f.org.Account(rs[4].ID); rec["ParentId"] != existing {
		t.Errorf("ParentId: %v", rec["ParentId"])
	}
}

func TestCollectionUpsert(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	old := f.create(map[string]any{"Name": "Old", "Source_Id__c": "K1"})
	path := B + "/composite/sobjects/Account/Source_Id__c"
	var rs []saveResult
	res := f.do(http.MethodPatch, path, collection(false,
		map[string]any{"Name": "Old renamed", "Source_Id__c": "k1"},
		map[string]any{"Name": "New", "Source_Id__c": "K2"},
		map[string]any{"Name": "No key"},
		map[string]any{"Source_Id__c": "K3"},
	)).want(t, http.StatusOK)
	res.decode(t, &rs)
	if !rs[0].Success || *rs[0].Created || rs[0].ID != old {
		t.Errorf("update: %+v", rs[0])
	}
	if !rs[1].Success || !*rs[1].Created {
		t.Errorf("create: %+v", rs[1])
	}
	if rs[2].code() != "MISSING_ARGUMENT" || rs[3].code() != "REQUIRED_FIELD_MISSING" {
		t.Errorf("failures: %s", res.body)
	}
	if rec, _ := f.org.Account(old); rec["Name"] != "Old renamed" || rec["Source_Id__c"] != "K1" {
		t.Errorf("updated record: %v", rec)
	}
	if got := f.org.Stats().ByRoute["PATCH /composite/sobjects/Account/{field}"]; got != 1 {
		t.Errorf("stats: %v", f.org.Stats().ByRoute)
	}

	// Same key twice in one call: both fail.
	f.do(http.MethodPatch, path, collection(false, map[string]any{"Name": "a", "Source_Id__c": "D"}, map[string]any{"Name": "b", "Source_Id__c": "d"})).
		want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "DUPLICATE_VALUE" || rs[1].code() != "DUPLICATE_VALUE" {
		t.Errorf("duplicates: %+v", rs)
	}

	// allOrNone rolls back updates and creates.
	f.do(http.MethodPatch, path, collection(true,
		map[string]any{"Name": "changed", "Source_Id__c": "K1"},
		map[string]any{"Name": "fresh", "Source_Id__c": "K9"},
		map[string]any{"Name": strings.Repeat("x", 300), "Source_Id__c": "K10"},
	)).want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "ALL_OR_NONE_OPERATION_ROLLED_BACK" || rs[1].code() != "ALL_OR_NONE_OPERATION_ROLLED_BACK" || rs[2].code() != "STRING_TOO_LONG" {
		t.Errorf("allOrNone: %+v", rs)
	}
	if rec, _ := f.org.Account(old); rec["Name"] != "Old renamed" {
		t.Errorf("update not rolled back: %v", rec["Name"])
	}
	var q struct{ TotalSize int }
	f.do(http.MethodGet, B+"/query?q=SELECT+COUNT()+FROM+Account+WHERE+Source_Id__c+IN+('K9','K10')", nil).want(t, http.StatusOK).decode(t, &q)
	if q.TotalSize != 0 {
		t.Errorf("create not rolled back: %d", q.TotalSize)
	}
	// After the rollback the key K1 still maps to the old record.
	f.do(http.MethodPatch, path, collection(false, map[string]any{"Name": "again", "Source_Id__c": "K1"})).want(t, http.StatusOK).decode(t, &rs)
	if rs[0].ID != old {
		t.Errorf("index after rollback: %+v", rs[0])
	}

	f.do(http.MethodPatch, B+"/composite/sobjects/Account/Nope__c", collection(false, map[string]any{"Name": "a"})).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodPatch, B+"/composite/sobjects/Contact/Source_Id__c", collection(false, map[string]any{"Name": "a"})).wantError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestCollectionUpsert_MultipleMatches(t *testing.T) {
	f := newFixture(t, fakeorg.Config{ExternalIDNotUnique: true})
	f.create(map[string]any{"Name": "A", "Source_Id__c": "K1"})
	f.create(map[string]any{"Name": "B", "Source_Id__c": "K1"})
	var rs []saveResult
	f.do(http.MethodPatch, B+"/composite/sobjects/Account/Source_Id__c", collection(false, map[string]any{"Name": "C", "Source_Id__c": "K1"})).
		want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "DUPLICATE_EXTERNAL_ID" {
		t.Errorf("got %+v", rs)
	}
}

func TestCollectionUpdateDeleteRetrieve(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	a := f.create(map[string]any{"Name": "A"})
	b := f.create(map[string]any{"Name": "B"})
	var rs []saveResult
	f.do(http.MethodPatch, B+"/composite/sobjects", collection(false,
		map[string]any{"id": a, "Phone": "1"},
		map[string]any{"Id": b[:15], "Name": ""},
		map[string]any{"Name": "no id"},
		map[string]any{"id": salesforce.ID18("001000000000zzz"), "Name": "ghost"},
	)).want(t, http.StatusOK).decode(t, &rs)
	if !rs[0].Success || rs[0].ID != a || rs[1].code() != "REQUIRED_FIELD_MISSING" || rs[2].code() != "MISSING_ARGUMENT" || rs[3].Success {
		t.Errorf("update: %+v", rs)
	}
	if rec, _ := f.org.Account(a); rec["Phone"] != "1" {
		t.Errorf("not updated: %v", rec)
	}

	var recs []map[string]any
	f.do(http.MethodPost, B+"/composite/sobjects/Account", map[string]any{"ids": []string{a, "001000000000zzzAAA", b}, "fields": []string{"Name", "Phone"}}).
		want(t, http.StatusOK).decode(t, &recs)
	if len(recs) != 3 || recs[0]["Name"] != "A" || recs[0]["Phone"] != "1" || recs[0]["Id"] != a || recs[1] != nil || recs[2]["Name"] != "B" {
		t.Errorf("retrieve: %v", recs)
	}
	f.do(http.MethodGet, B+"/composite/sobjects/Account?ids="+a+"&fields=Name", nil).want(t, http.StatusOK).decode(t, &recs)
	if len(recs) != 1 || recs[0]["Name"] != "A" {
		t.Errorf("retrieve by GET: %v", recs)
	}
	f.do(http.MethodPost, B+"/composite/sobjects/Account", map[string]any{"ids": []string{a}, "fields": []string{"Nope"}}).wantError(t, http.StatusBadRequest, "INVALID_FIELD")

	e := f.do(http.MethodDelete, B+"/composite/sobjects", nil).wantError(t, http.StatusBadRequest, "REQUIRED_FIELD_MISSING")
	if e.Message != "At least 1 Id is required." {
		t.Errorf("message: %q", e.Message)
	}
	// allOrNone=true with a bad id: nothing deleted.
	f.do(http.MethodDelete, B+"/composite/sobjects?ids="+a+",bad&allOrNone=true", nil).want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "ALL_OR_NONE_OPERATION_ROLLED_BACK" || rs[1].code() != "MALFORMED_ID" {
		t.Errorf("delete allOrNone: %+v", rs)
	}
	if _, ok := f.org.Account(a); !ok {
		t.Errorf("delete not rolled back")
	}
	f.do(http.MethodDelete, B+"/composite/sobjects/?ids="+a+","+b+"&allOrNone=false", nil).want(t, http.StatusOK).decode(t, &rs)
	if !rs[0].Success || !rs[1].Success || rs[0].ID != a {
		t.Errorf("delete: %+v", rs)
	}
	f.do(http.MethodDelete, B+"/composite/sobjects?ids="+a, nil).want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "ENTITY_IS_DELETED" {
		t.Errorf("delete again: %+v", rs)
	}
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("accounts left: %d", n)
	}
}

// FuzzCollectionBody checks that no request body makes the collections
// endpoints panic or answer 5xx.
func FuzzCollectionBody(f *testing.F) {
	f.Add([]byte(`{"allOrNone":false,"records":[{"attributes":{"type":"Account"},"Name":"A","Source_Id__c":"K"}]}`))
	f.Add([]byte(`{"allOrNone":true,"records":[{"attributes":{"type":"Account"},"Name":"A","Parent":{"Source_Id__c":"K"}},{"attributes":{"type":"Account"}}]}`))
	f.Add([]byte(`{"records":[{"attributes":{"type":"Account"},"Name":{"x":[1,2]},"NumberOfEmployees":1e400}]}`))
	f.Add([]byte(`{"records":[{"attributes":{"type":"Account"},"Id":"001000000000001","Name":null,"AnnualRevenue":"12.5"}]}`))
	f.Add([]byte(`{"records":[{"attributes":{},"Parent":"x","ParentId":123}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"records":[1,"a",null,true]}`))
	fix := newFixture(f, fakeorg.Config{})
	fix.org.InsertAccount(fakeorg.Record{"Name": "K", "Source_Id__c": "K"}, fix.clock.Now())
	f.Fuzz(func(t *testing.T, body []byte) {
		fix.t = t
		for _, m := range []struct{ method, path string }{
			{http.MethodPost, B + "/composite/sobjects"},
			{http.MethodPatch, B + "/composite/sobjects"},
			{http.MethodPatch, B + "/composite/sobjects/Account/Source_Id__c"},
		} {
			res := fix.do(m.method, m.path, body)
			if res.status >= 500 {
				t.Fatalf("%s %s %q: %d %s", m.method, m.path, body, res.status, res.body)
			}
		}
	})
}
