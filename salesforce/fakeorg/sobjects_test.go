package fakeorg_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

var limitInfo = regexp.MustCompile(`^api-usage=\d+/\d+$`)

func TestVersions(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	for _, p := range []string{"/services/data", "/services/data/"} {
		res := f.doWith(http.MethodGet, p, nil, nil).want(t, http.StatusOK)
		var vs []struct{ Label, URL, Version string }
		res.decode(t, &vs)
		if len(vs) == 0 || res.header.Get("Sforce-Limit-Info") != "" {
			t.Fatalf("%s: %s, Sforce-Limit-Info %q", p, res.body, res.header.Get("Sforce-Limit-Info"))
		}
		found := false
		for _, v := range vs {
			if v.Version == "63.0" {
				found = v.URL == "/services/data/v63.0" && v.Label == "Spring '25"
			}
		}
		if !found {
			t.Errorf("v63.0 missing or wrong in %s", res.body)
		}
	}
	if f.org.Stats().APICalls != 0 {
		t.Errorf("the versions list was counted as an API call")
	}
	f.do(http.MethodGet, "/services/data/v99.0/limits", nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodGet, B+"/nothing/here", nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodGet, B+"/sobjects/Contact/describe", nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodPut, B+"/sobjects/Account", nil).wantError(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	var res map[string]string
	f.do(http.MethodGet, B+"/", nil).want(t, http.StatusOK).decode(t, &res)
	if res["query"] != B+"/query" {
		t.Errorf("resources: %v", res)
	}
}

func TestCreateGetUpdateDelete(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	res := f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": "Acme", "Industry": "Energy", "NumberOfEmployees": 12, "AnnualRevenue": 1.5e6}).
		want(t, http.StatusCreated)
	if !limitInfo.MatchString(res.header.Get("Sforce-Limit-Info")) {
		t.Errorf("Sforce-Limit-Info: %q", res.header.Get("Sforce-Limit-Info"))
	}
	if string(res.body[:6]) != `{"id":` {
		t.Errorf("create answer: %s", res.body)
	}
	var sr saveResult
	res.decode(t, &sr)
	if !sr.Success || len(sr.Errors) != 0 || sr.Errors == nil || len(sr.ID) != 18 || !strings.HasPrefix(sr.ID, "001") {
		t.Fatalf("create answer: %s", res.body)
	}
	if _, err := salesforce.NormalizeIDWithPrefix(sr.ID, salesforce.PrefixAccount); err != nil {
		t.Errorf("minted id %q is invalid: %v", sr.ID, err)
	}
	id := sr.ID
	// attributes are ignored (go-salesforce sends them).
	f.create(map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "With attributes"})

	for _, ref := range []string{id, id[:15]} {
		var rec map[string]any
		res := f.do(http.MethodGet, B+"/sobjects/Account/"+ref, nil).want(t, http.StatusOK)
		res.decode(t, &rec)
		attrs, _ := rec["attributes"].(map[string]any)
		if attrs["type"] != "Account" || attrs["url"] != B+"/sobjects/Account/"+id {
			t.Errorf("attributes: %v", attrs)
		}
		if !strings.HasPrefix(string(res.body), `{"attributes":`) {
			t.Errorf("attributes is not the first key: %.40s", res.body)
		}
		want := map[string]any{
			"Id": id, "Name": "Acme", "Industry": "Energy", "NumberOfEmployees": 12.0, "AnnualRevenue": 1.5e6,
			"IsDeleted": false, "CreatedDate": "2026-01-01T00:00:00.000+0000", "SystemModstamp": "2026-01-01T00:00:00.000+0000",
			"LastModifiedDate": "2026-01-01T00:00:00.000+0000", "OwnerId": f.org.UserID(), "CreatedById": f.org.UserID(),
			"Phone": nil, "Source_Id__c": nil, "BillingAddress": nil,
		}
		for k, v := range want {
			if got, ok := rec[k]; !ok || got != v {
				t.Errorf("%s: got %v (present %v), want %v", k, got, ok, v)
			}
		}
	}

	var some map[string]any
	f.do(http.MethodGet, B+"/sobjects/Account/"+id+"?fields=Name", nil).want(t, http.StatusOK).decode(t, &some)
	if len(some) != 3 || some["Name"] != "Acme" || some["Id"] != id {
		t.Errorf("?fields=Name: got %v, want attributes, Id, Name", some)
	}
	f.do(http.MethodGet, B+"/sobjects/Account/"+id+"?fields=Nope", nil).wantError(t, http.StatusBadRequest, "INVALID_FIELD")
	f.do(http.MethodGet, B+"/sobjects/Account/not-an-id", nil).wantError(t, http.StatusBadRequest, "MALFORMED_ID")
	f.do(http.MethodGet, B+"/sobjects/Account/"+salesforce.ID18("001000000000zzz"), nil).wantError(t, http.StatusNotFound, "NOT_FOUND")

	// Update: 204, SystemModstamp advances.
	f.clock.Advance(90 * time.Second)
	res = f.do(http.MethodPatch, B+"/sobjects/Account/"+id, map[string]any{"Phone": "555", "BillingCity": "Paris"}).want(t, http.StatusNoContent)
	if len(res.body) != 0 {
		t.Errorf("update body: %s", res.body)
	}
	rec, _ := f.org.Account(id)
	if rec["Phone"] != "555" || rec["Name"] != "Acme" || !rec["SystemModstamp"].(time.Time).Equal(f.clock.Now()) ||
		!rec["CreatedDate"].(time.Time).Before(f.clock.Now()) {
		t.Errorf("after update: %v", rec)
	}
	var addr map[string]any
	f.do(http.MethodGet, B+"/sobjects/Account/"+id, nil).decode(t, &addr)
	if a, _ := addr["BillingAddress"].(map[string]any); a["city"] != "Paris" {
		t.Errorf("BillingAddress: %v", addr["BillingAddress"])
	}
	f.do(http.MethodPatch, B+"/sobjects/Account/"+id, map[string]any{"Name": ""}).wantError(t, http.StatusBadRequest, "REQUIRED_FIELD_MISSING")

	// Delete: 204, then 404 ENTITY_IS_DELETED.
	f.do(http.MethodDelete, B+"/sobjects/Account/"+id, nil).want(t, http.StatusNoContent)
	e := f.do(http.MethodDelete, B+"/sobjects/Account/"+id, nil).wantError(t, http.StatusNotFound, "ENTITY_IS_DELETED")
	if e.Message != "entity is deleted" {
		t.Errorf("message: %q", e.Message)
	}
	f.do(http.MethodGet, B+"/sobjects/Account/"+id, nil).wantError(t, http.StatusNotFound, "ENTITY_IS_DELETED")
	f.do(http.MethodPatch, B+"/sobjects/Account/"+id, map[string]any{"Phone": "1"}).wantError(t, http.StatusNotFound, "ENTITY_IS_DELETED")
	if _, ok := f.org.Account(id); ok {
		t.Errorf("Account returns a deleted account")
	}
	if n := len(f.org.Accounts()); n != 1 {
		t.Errorf("Accounts: got %d, want 1", n)
	}
}

func TestCreate_Validation(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	parent := f.create(map[string]any{"Name": "Parent", "Source_Id__c": "P-1"})
	long := strings.Repeat("x", 256)
	tests := []struct {
		name   string
		body   any
		code   string
		msg    string
		fields []string
	}{
		{"id in body", map[string]any{"Name": "A", "Id": parent}, "INVALID_FIELD", "The Id field should not be specified in the sobject data.", nil},
		{"no name", map[string]any{"Phone": "1"}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", []string{"Name"}},
		{"null name", map[string]any{"Name": nil}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", []string{"Name"}},
		{"blank name", map[string]any{"Name": "   "}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", []string{"Name"}},
		{"name too long", map[string]any{"Name": long}, "STRING_TOO_LONG", "Account Name: data value too large: " + long + " (max length=255)", []string{"Name"}},
		{"city too long", map[string]any{"Name": "A", "BillingCity": strings.Repeat("é", 41)}, "STRING_TOO_LONG", "Billing City: data value too large: " + strings.Repeat("é", 41) + " (max length=40)", []string{"BillingCity"}},
		{"unknown field", map[string]any{"Name": "A", "Nope__c": 1}, "INVALID_FIELD", "No such column 'Nope__c' on sobject of type Account", nil},
		{"system field", map[string]any{"Name": "A", "CreatedDate": "2020-01-01T00:00:00.000+0000"}, "INVALID_FIELD_FOR_INSERT_UPDATE",
			"Unable to create/update fields: CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", []string{"CreatedDate"}},
		{"duplicate external id", map[string]any{"Name": "A", "Source_Id__c": "p-1"}, "DUPLICATE_VALUE",
			"duplicate value found: Source_Id__c duplicates value on record with id: " + parent[:15], []string{}},
		{"unknown parent", map[string]any{"Name": "A", "ParentId": salesforce.ID18("001000000000zzz")}, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []string{}},
		{"malformed parent", map[string]any{"Name": "A", "ParentId": "xyz"}, "MALFORMED_ID", "Parent Account ID: id value of incorrect type: xyz", []string{"ParentId"}},
		{"parent by unknown external id", map[string]any{"Name": "A", "Parent": map[string]any{"Source_Id__c": "nope"}}, "INVALID_FIELD",
			"Foreign key external ID: nope not found for field Source_Id__c in entity Account", []string{}},
		{"wrong json type", map[string]any{"Name": "A", "NumberOfEmployees": "many"}, "JSON_PARSER_ERROR", "", nil},
		{"fractional int", map[string]any{"Name": "A", "NumberOfEmployees": 1.5}, "JSON_PARSER_ERROR", "", nil},
		{"object for text", map[string]any{"Name": map[string]any{"a": 1}}, "JSON_PARSER_ERROR", "", nil},
		{"employees out of range", map[string]any{"Name": "A", "NumberOfEmployees": 123456789}, "NUMBER_OUTSIDE_VALID_RANGE", "", []string{"NumberOfEmployees"}},
		{"bad json", `{"Name":`, "JSON_PARSER_ERROR", "", nil},
		{"empty body", ``, "JSON_PARSER_ERROR", "", nil},
		{"array body", `[]`, "JSON_PARSER_ERROR", "", nil},
		{"trailing data", `{"Name":"A"} x`, "JSON_PARSER_ERROR", "", nil},
		{"owner not a user", map[string]any{"Name": "A", "OwnerId": parent}, "MALFORMED_ID", "", []string{"OwnerId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := f.do(http.MethodPost, B+"/sobjects/Account", tt.body).wantError(t, http.StatusBadRequest, tt.code)
			if tt.msg != "" && e.Message != tt.msg {
				t.Errorf("message: got %q, want %q", e.Message, tt.msg)
			}
			if tt.fields != nil && strings.Join(e.Fields, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields: got %v, want %v", e.Fields, tt.fields)
			}
		})
	}
	if n := len(f.org.Accounts()); n != 1 {
		t.Errorf("accounts: got %d, want 1 (nothing committed)", n)
	}
	// Parent by external ID resolves to ParentId; ParentId accepts 15 characters.
	child := f.create(map[string]any{"Name": "Child", "Parent": map[string]any{"attributes": map[string]any{"type": "Account"}, "Source_Id__c": "P-1"}})
	other := f.create(map[string]any{"Name": "Child 2", "ParentId": parent[:15], "OwnerId": f.org.UserID()})
	for _, id := range []string{child, other} {
		if rec, _ := f.org.Account(id); rec["ParentId"] != parent {
			t.Errorf("ParentId: got %v, want %s", rec["ParentId"], parent)
		}
	}
	// Field names are case-insensitive; empty text is stored as null.
	id := f.create(map[string]any{"name": "lower", "phone": ""})
	if rec, _ := f.org.Account(id); rec["Name"] != "lower" || rec["Phone"] != nil {
		t.Errorf("got %v", rec)
	}
}

func TestRejectNameRule(t *testing.T) {
	f := newFixture(t, fakeorg.Config{RejectName: "(?i)^test"})
	e := f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": "Test Co"}).wantError(t, http.StatusBadRequest, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
	if e.Message == "" {
		t.Errorf("empty message")
	}
	f.create(map[string]any{"Name": "Real Co"})
	if err := f.org.Configure(fakeorg.ConfigPatch{RejectName: ptr("")}); err != nil {
		t.Fatal(err)
	}
	f.create(map[string]any{"Name": "Test Co"})
}

func ptr[T any](v T) *T { return &v }

func TestUpsert(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	path := B + "/sobjects/Account/Source_Id__c/K1"
	var sr saveResult
	f.do(http.MethodPatch, path, map[string]any{"Name": "Acme"}).want(t, http.StatusCreated).decode(t, &sr)
	if !sr.Success || sr.Created == nil || !*sr.Created || len(sr.ID) != 18 {
		t.Fatalf("create: %+v", sr)
	}
	id := sr.ID
	f.clock.Advance(time.Second)
	res := f.do(http.MethodPatch, B+"/sobjects/Account/source_id__c/k1", map[string]any{"Name": "Acme 2"}).want(t, http.StatusOK)
	var again saveResult
	res.decode(t, &again)
	if again.ID != id || again.Created == nil || *again.Created || !again.Success {
		t.Errorf("update: %s", res.body)
	}
	res = f.do(http.MethodPatch, "/services/data/v45.0/sobjects/Account/Source_Id__c/K1", map[string]any{"Name": "Acme 3"}).want(t, http.StatusNoContent)
	if len(res.body) != 0 {
		t.Errorf("v45 body: %s", res.body)
	}
	if rec, _ := f.org.Account(id); rec["Name"] != "Acme 3" || rec["Source_Id__c"] != "K1" {
		t.Errorf("record: %v", rec)
	}
	e := f.do(http.MethodPatch, B+"/sobjects/Account/Nope__c/K1", map[string]any{"Name": "x"}).wantError(t, http.StatusNotFound, "NOT_FOUND")
	if e.Message != "Provided external ID field does not exist or is not accessible: Nope__c" {
		t.Errorf("message: %q", e.Message)
	}
	f.do(http.MethodPatch, B+"/sobjects/Account/Name/K1", map[string]any{"Name": "x"}).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/NEW?updateOnly=true", map[string]any{"Name": "x"}).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/K2", map[string]any{"Phone": "1"}).wantError(t, http.StatusBadRequest, "REQUIRED_FIELD_MISSING")

	// Percent-decoded values with spaces, % and /.
	for _, v := range []string{"a b", "50%", "x/y", "ü+1"} {
		var r saveResult
		f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/"+url.PathEscape(v), map[string]any{"Name": v}).
			want(t, http.StatusCreated).decode(t, &r)
		if rec, _ := f.org.Account(r.ID); rec["Source_Id__c"] != v {
			t.Errorf("stored %v, want %q", rec["Source_Id__c"], v)
		}
		var got map[string]any
		f.do(http.MethodGet, B+"/sobjects/Account/Source_Id__c/"+url.PathEscape(v), nil).want(t, http.StatusOK).decode(t, &got)
		if got["Id"] != r.ID {
			t.Errorf("get by external id %q: %v", v, got["Id"])
		}
	}
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/x%2Fy", map[string]any{"Name": "slash"}).want(t, http.StatusOK)
	f.do(http.MethodDelete, B+"/sobjects/Account/Source_Id__c/x%2Fy", nil).want(t, http.StatusNoContent)
	f.do(http.MethodGet, B+"/sobjects/Account/Source_Id__c/x%2Fy", nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestUpsert_MultipleMatches(t *testing.T) {
	f := newFixture(t, fakeorg.Config{ExternalIDNotUnique: true})
	a := f.create(map[string]any{"Name": "A", "Source_Id__c": "K1"})
	b := f.create(map[string]any{"Name": "B", "Source_Id__c": "k1"})
	var urls []string
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/K1", map[string]any{"Name": "C"}).want(t, http.StatusMultipleChoices).decode(t, &urls)
	if len(urls) != 2 || urls[0] != B+"/sobjects/Account/"+a || urls[1] != B+"/sobjects/Account/"+b {
		t.Errorf("urls: %v", urls)
	}
	if rec, _ := f.org.Account(a); rec["Name"] != "A" {
		t.Errorf("record changed: %v", rec)
	}
	var d map[string]any
	f.do(http.MethodGet, B+"/sobjects/Account/describe", nil).want(t, http.StatusOK).decode(t, &d)
	for _, fd := range d["fields"].([]any) {
		m := fd.(map[string]any)
		if m["name"] == "Source_Id__c" && m["unique"] != false {
			t.Errorf("unique: got %v, want false", m["unique"])
		}
	}
}

func TestDescribe(t *testing.T) {
	f := newFixture(t, fakeorg.Config{ExternalIDField: "Legacy_Key__c"})
	var d struct {
		Name      string `json:"name"`
		KeyPrefix string `json:"keyPrefix"`
		Fields    []struct {
			Name          string   `json:"name"`
			Type          string   `json:"type"`
			Length        int      `json:"length"`
			ExternalID    bool     `json:"externalId"`
			Unique        bool     `json:"unique"`
			CaseSensitive bool     `json:"caseSensitive"`
			Createable    bool     `json:"createable"`
			Custom        bool     `json:"custom"`
			ReferenceTo   []string `json:"referenceTo"`
		} `json:"fields"`
	}
	f.do(http.MethodGet, B+"/sobjects/Account/describe", nil).want(t, http.StatusOK).decode(t, &d)
	if d.Name != "Account" || d.KeyPrefix != "001" {
		t.Errorf("describe: %+v", d)
	}
	byName := map[string]int{}
	for i, fd := range d.Fields {
		byName[fd.Name] = i
	}
	for _, name := range []string{"Id", "Name", "Phone", "Website", "Industry", "BillingCity", "ShippingStreet", "ParentId", "OwnerId", "CreatedDate", "SystemModstamp", "IsDeleted", "NumberOfEmployees", "AnnualRevenue"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("describe lacks %s", name)
		}
	}
	ext := d.Fields[byName["Legacy_Key__c"]]
	if !ext.ExternalID || !ext.Unique || ext.CaseSensitive || !ext.Custom || ext.Type != "string" {
		t.Errorf("external id field: %+v", ext)
	}
	if n := d.Fields[byName["Name"]]; n.Type != "string" || n.Length != 255 || !n.Createable {
		t.Errorf("Name: %+v", n)
	}
	if p := d.Fields[byName["ParentId"]]; p.Type != "reference" || len(p.ReferenceTo) != 1 || p.ReferenceTo[0] != "Account" {
		t.Errorf("ParentId: %+v", p)
	}
	if c := d.Fields[byName["CreatedDate"]]; c.Type != "datetime" || c.Createable {
		t.Errorf("CreatedDate: %+v", c)
	}
	f.do(http.MethodPatch, B+"/sobjects/Account/Legacy_Key__c/L1", map[string]any{"Name": "x"}).want(t, http.StatusCreated)
	f.do(http.MethodPatch, B+"/sobjects/Account/Source_Id__c/L1", map[string]any{"Name": "x"}).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodGet, B+"/sobjects", nil).want(t, http.StatusOK)
	f.do(http.MethodGet, B+"/sobjects/Account", nil).want(t, http.StatusOK)
}

func TestInsertAccount(t *testing.T) {
	f := newFixture(t, fakeorg.Config{FailRate: 1, LockRate: 1})
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	id, err := f.org.InsertAccount(fakeorg.Record{"Name": "Seeded", "NumberOfEmployees": 5, "AnnualRevenue": 2.5, "Source_Id__c": "S1"}, at)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := f.org.Account(id)
	if !ok || rec["Name"] != "Seeded" || rec["NumberOfEmployees"] != 5 || !rec["CreatedDate"].(time.Time).Equal(at) || !rec["SystemModstamp"].(time.Time).Equal(at) {
		t.Errorf("record: %v", rec)
	}
	child, err := f.org.InsertAccount(fakeorg.Record{"Name": "Child", "Parent": map[string]any{"Source_Id__c": "S1"}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := f.org.Account(child); rec["ParentId"] != id || !rec["CreatedDate"].(time.Time).Equal(f.clock.Now()) {
		t.Errorf("child: %v", rec)
	}
	_, err = f.org.InsertAccount(fakeorg.Record{"Phone": "1"}, time.Time{})
	var fe *fakeorg.Error
	if !errorsAs(err, &fe) || fe.Code != "REQUIRED_FIELD_MISSING" {
		t.Errorf("got %v, want REQUIRED_FIELD_MISSING", err)
	}
	if s := f.org.Stats(); s.APICalls != 0 || s.Records["Account"] != 2 {
		t.Errorf("stats: %+v", s)
	}
}

func TestGzipRequestBody(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"Name":"Zipped"}`))
	zw.Close()
	res := f.doWith(http.MethodPost, B+"/sobjects/Account", buf.Bytes(), map[string]string{
		"Authorization": "Bearer " + f.token, "Content-Encoding": "gzip",
	}).want(t, http.StatusCreated)
	var sr saveResult
	res.decode(t, &sr)
	if rec, _ := f.org.Account(sr.ID); rec["Name"] != "Zipped" {
		t.Errorf("record: %v", rec)
	}
	f.doWith(http.MethodPost, B+"/sobjects/Account", `{"Name":"plain"}`, map[string]string{
		"Authorization": "Bearer " + f.token, "Content-Encoding": "gzip",
	}).wantError(t, http.StatusBadRequest, "JSON_PARSER_ERROR")
}

// Clients that compress requests (go-salesforce's WithCompressionHeaders)
// send Content-Encoding: gzip on bodiless GETs and DELETEs too.
func TestGzipHeaderOnEmptyBody(t *testing.T) {
	org, err := fakeorg.New(fakeorg.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/services/data/v63.0/query/?q=SELECT+Id+FROM+Account", nil)
	req.Header.Set("Authorization", "Bearer "+org.IssueAccessToken())
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET with Content-Encoding: gzip and no body: status %d, want 200", resp.StatusCode)
	}
}
