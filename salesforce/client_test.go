package salesforce_test

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/salesforce"
)

// Ensure that CreateMany posts typed records with allOrNone and decodes
// per-record results and errors (reference §3.1).
func TestClient_CreateMany(t *testing.T) {
	var o *testOrg
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		checkAPIRequest(t, r, o, http.MethodPost, "/services/data/v61.0/composite/sobjects")
		jsonEqual(t, "body", readJSON(t, r), `{"allOrNone":true,"records":[
			{"attributes":{"type":"Account"},"Name":"Acme","NumberOfEmployees":12},
			{"attributes":{"type":"Account"}}]}`)
		writeRaw(w, http.StatusOK, `[{"id":"001FAKE000000002AAA","success":true,"errors":[]},
 {"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [Name]","fields":["Name"]}]}]`)
	})
	c := o.client(t, nil)
	in := []salesforce.Record{
		{"Name": "Acme", "NumberOfEmployees": 12, "attributes": map[string]any{"type": "Contact"}},
		{},
	}
	got, err := c.CreateMany(t.Context(), "Account", in, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []salesforce.SaveResult{
		{ID: "001FAKE000000002AAA", Success: true, Errors: []salesforce.RecordError{}},
		{Errors: []salesforce.RecordError{{Code: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [Name]", Fields: []string{"Name"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results: got %+v, want %+v", got, want)
	}
	if got[0].Err() != nil {
		t.Errorf("Err of a success: got %v, want nil", got[0].Err())
	}
	re := got[1].Err()
	if re == nil || re.Code != "REQUIRED_FIELD_MISSING" || re.Class("") != salesforce.Permanent {
		t.Errorf("Err: got %v", re)
	}
	if !strings.Contains(re.Error(), "salesforce: REQUIRED_FIELD_MISSING: Required fields are missing: [Name]") {
		t.Errorf("Error(): got %q", re.Error())
	}
	if _, ok := in[0]["attributes"].(map[string]any); !ok || len(in[0]) != 3 {
		t.Errorf("caller's record modified: %v", in[0])
	}
}

// Ensure that more than 200 records are refused before anything is sent,
// and that exactly 200 go out.
func TestClient_CollectionLimit(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Records []map[string]any }
		_ = json.NewDecoder(r.Body).Decode(&body)
		res := make([]map[string]any, len(body.Records))
		for i := range res {
			res[i] = map[string]any{"id": fmt.Sprintf("001%012dAAA", i), "success": true, "errors": []any{}, "created": true}
		}
		writeJSON(w, http.StatusOK, res)
	})
	c := o.client(t, nil)
	recs := func(n int) []salesforce.Record {
		out := make([]salesforce.Record, n)
		for i := range out {
			out[i] = salesforce.Record{"Name": fmt.Sprint("A", i), "Source_Id__c": fmt.Sprint("S", i)}
		}
		return out
	}
	if _, err := c.CreateMany(t.Context(), "Account", recs(201), false); !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("CreateMany 201: got %v, want ErrTooManyRecords", err)
	}
	_, err := c.UpsertMany(t.Context(), "Account", "Source_Id__c", recs(201), false)
	if !errors.Is(err, salesforce.ErrTooManyRecords) {
		t.Errorf("UpsertMany 201: got %v, want ErrTooManyRecords", err)
	}
	if got := salesforce.Classify(err); got != salesforce.Permanent {
		t.Errorf("class: got %v, want permanent", got)
	}
	if got := o.apiCalls.Load() + o.tokenCalls.Load(); got != 0 {
		t.Fatalf("requests sent for 201 records: %v", got)
	}
	res, err := c.UpsertMany(t.Context(), "Account", "Source_Id__c", recs(200), false)
	if err != nil || len(res) != 200 {
		t.Errorf("UpsertMany 200: got %d results, %v", len(res), err)
	}
	if res, err := c.CreateMany(t.Context(), "Account", nil, false); err != nil || len(res) != 0 {
		t.Errorf("CreateMany of none: got %v, %v", res, err)
	}
	if got := o.apiCalls.Load(); got != 1 {
		t.Errorf("API calls: got %v, want 1", got)
	}
}

// Ensure that UpsertMany patches by external ID and decodes created flags
// and per-record errors (reference §3.5).
func TestClient_UpsertMany(t *testing.T) {
	var o *testOrg
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		checkAPIRequest(t, r, o, http.MethodPatch, "/services/data/v61.0/composite/sobjects/Account/Source_Id__c")
		jsonEqual(t, "body", readJSON(t, r), `{"allOrNone":false,"records":[
			{"attributes":{"type":"Account"},"Source_Id__c":"SRC-001AAA","Name":"Acme"},
			{"attributes":{"type":"Account"},"Source_Id__c":"SRC-002AAA","Name":"Globex","Parent":{"Source_Id__c":"SRC-001AAA"}},
			{"attributes":{"type":"Account"},"Source_Id__c":"SRC-003AAA","Name":"Initech"},
			{"attributes":{"type":"Account"},"Source_Id__c":"SRC-004AAA","Name":"Umbrella","Parent":{"Source_Id__c":"SRC-404"}}]}`)
		writeRaw(w, http.StatusOK, `[{"id":"001FAKE000000001AAA","success":true,"errors":[],"created":false},
 {"id":"001FAKE000000003AAA","success":true,"errors":[],"created":true},
 {"success":false,"created":false,"errors":[{"statusCode":"DUPLICATE_VALUE","message":"duplicate value found: Source_Id__c duplicates value on record with id: 001FAKE000000009AAA","fields":[]}]},
 {"success":false,"created":false,"errors":[{"statusCode":"INVALID_FIELD","message":"Foreign key external ID: SRC-404 not found for field Source_Id__c in entity Account","fields":[]}]}]`)
	})
	c := o.client(t, nil)
	res, err := c.UpsertMany(t.Context(), "Account", "Source_Id__c", []salesforce.Record{
		{"Source_Id__c": "SRC-001AAA", "Name": "Acme"},
		{"Source_Id__c": "SRC-002AAA", "Name": "Globex", "Parent": map[string]any{"Source_Id__c": "SRC-001AAA"}},
		{"Source_Id__c": "SRC-003AAA", "Name": "Initech"},
		{"Source_Id__c": "SRC-004AAA", "Name": "Umbrella", "Parent": map[string]any{"Source_Id__c": "SRC-404"}},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || res[0].Created || !res[1].Created || !res[0].Success || res[1].ID != "001FAKE000000003AAA" {
		t.Errorf("results: got %+v", res)
	}
	if got := res[2].Err().Class("Source_Id__c"); got != salesforce.Transient {
		t.Errorf("duplicate on the external id: got %v, want transient", got)
	}
	if got := res[2].Err().Class(""); got != salesforce.Permanent {
		t.Errorf("duplicate without external id: got %v, want permanent", got)
	}
	v, f, ok := salesforce.MissingParent(res[3].Err())
	if !ok || v != "SRC-404" || f != "Source_Id__c" {
		t.Errorf("MissingParent: got %q %q %v", v, f, ok)
	}
}

// Ensure that a request-level collection error is an *APIError.
func TestClient_CollectionRequestError(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		sfError(w, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
	})
	c := o.client(t, nil)
	_, err := c.CreateMany(t.Context(), "Account", []salesforce.Record{{"Name": "A"}}, false)
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Code != "EXCEEDED_ID_LIMIT" || ae.Route != "POST /composite/sobjects" {
		t.Fatalf("got %#v", err)
	}
	if got, want := err.Error(), "salesforce: POST /composite/sobjects: 400 EXCEEDED_ID_LIMIT: record limit reached. cannot submit more than 200 records into this call"; got != want {
		t.Errorf("Error(): got %v, want %v", got, want)
	}
	if got := salesforce.Classify(err); got != salesforce.Permanent {
		t.Errorf("class: got %v, want permanent", got)
	}
}

// Ensure that the single-record calls use the reference's paths, bodies and
// statuses (§2.2-2.4).
func TestClient_SingleRecord(t *testing.T) {
	const id = "001R00000033I6AIAU"
	var o *testOrg
	upsertStatus := 0
	deleted := false
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		base := "/services/data/v61.0/sobjects/Account"
		switch {
		case r.Method == http.MethodPost:
			checkAPIRequest(t, r, o, http.MethodPost, base)
			jsonEqual(t, "create body", readJSON(t, r), `{"Name":"Acme"}`)
			writeRaw(w, http.StatusCreated, `{"id":"`+id+`","success":true,"errors":[]}`)
		case r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "Source_Id__c"):
			checkAPIRequest(t, r, o, http.MethodPatch, base+"/Source_Id__c/SRC 1/2")
			if got, want := r.URL.EscapedPath(), base+"/Source_Id__c/SRC%201%2F2"; got != want {
				t.Errorf("escaped path: got %v, want %v", got, want)
			}
			jsonEqual(t, "upsert body", readJSON(t, r), `{"Name":"Acme"}`)
			switch upsertStatus {
			case 201:
				writeRaw(w, 201, `{"id":"`+id+`","errors":[],"success":true,"created":true}`)
			case 200:
				writeRaw(w, 200, `{"id":"`+id+`","errors":[],"success":true,"created":false}`)
			case 204:
				w.WriteHeader(http.StatusNoContent)
			case 300:
				writeRaw(w, 300, `["/services/data/v61.0/sobjects/Account/001000000000001AAA","/services/data/v61.0/sobjects/Account/001000000000002AAA"]`)
			}
		case r.Method == http.MethodPatch:
			checkAPIRequest(t, r, o, http.MethodPatch, base+"/"+id)
			jsonEqual(t, "update body", readJSON(t, r), `{"Phone":"555"}`)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodGet:
			checkAPIRequest(t, r, o, http.MethodGet, base+"/"+id)
			if got, want := r.URL.Query().Get("fields"), "Name,Parent.Name,NumberOfEmployees"; got != want {
				t.Errorf("fields: got %v, want %v", got, want)
			}
			writeRaw(w, 200, `{"attributes":{"type":"Account","url":"/services/data/v61.0/sobjects/Account/`+id+`"},
				"Id":"`+id+`","Name":"Acme","NumberOfEmployees":12345678901234567890,
				"Parent":{"attributes":{"type":"Account","url":"/x"},"Name":"Parent Co"}}`)
		case r.Method == http.MethodDelete:
			checkAPIRequest(t, r, o, http.MethodDelete, base+"/"+id)
			if !deleted {
				deleted = true
				w.WriteHeader(http.StatusNoContent)
				return
			}
			sfError(w, http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
		}
	})
	c := o.client(t, nil)
	ctx := t.Context()

	res, err := c.Create(ctx, "Account", salesforce.Record{"Name": "Acme", "attributes": map[string]any{"type": "Account"}})
	if err != nil || res.ID != id || !res.Success {
		t.Errorf("Create: got %+v, %v", res, err)
	}

	for _, tt := range []struct {
		status      int
		wantCreated bool
		wantID      string
	}{{201, true, id}, {200, false, id}, {204, false, ""}} {
		upsertStatus = tt.status
		res, err := c.Upsert(ctx, "Account", "Source_Id__c", "SRC 1/2", salesforce.Record{"Name": "Acme", "source_id__c": "dropped"})
		if err != nil || !res.Success || res.Created != tt.wantCreated || res.ID != tt.wantID {
			t.Errorf("Upsert %d: got %+v, %v, want created %v id %q", tt.status, res, err, tt.wantCreated, tt.wantID)
		}
	}
	upsertStatus = 300
	_, err = c.Upsert(ctx, "Account", "Source_Id__c", "SRC 1/2", salesforce.Record{"Name": "Acme"})
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 300 || ae.Code != "MULTIPLE_CHOICES" || salesforce.Classify(err) != salesforce.Permanent {
		t.Errorf("Upsert 300: got %v", err)
	}

	rec, err := c.Get(ctx, "Account", id, "Name", "Parent.Name", "NumberOfEmployees")
	if err != nil {
		t.Fatal(err)
	}
	want := salesforce.Record{"Id": id, "Name": "Acme", "NumberOfEmployees": json.Number("12345678901234567890"),
		"Parent": map[string]any{"Name": "Parent Co"}}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("Get: got %#v, want %#v", rec, want)
	}

	if err := c.Update(ctx, "Account", id, salesforce.Record{"Phone": "555", "Id": id}); err != nil {
		t.Errorf("Update: %v", err)
	}

	if err := c.Delete(ctx, "Account", id); err != nil {
		t.Errorf("Delete: %v", err)
	}
	err = c.Delete(ctx, "Account", id)
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != "ENTITY_IS_DELETED" {
		t.Fatalf("second Delete: got %v, want 404 ENTITY_IS_DELETED", err)
	}
	if got := salesforce.Classify(err); got != salesforce.Permanent {
		t.Errorf("class: got %v, want permanent", got)
	}

	// Arguments that would corrupt the path are refused.
	for _, err := range []error{
		func() error { _, err := c.Get(ctx, "Account/../x", id); return err }(),
		func() error { _, err := c.Get(ctx, "Account", ""); return err }(),
		func() error { _, err := c.Upsert(ctx, "Account", "Bad Field", "v", nil); return err }(),
		func() error { _, err := c.Get(ctx, "Account", id, "Name,Id"); return err }(),
	} {
		if !errors.Is(err, salesforce.ErrInvalidRequest) || salesforce.Classify(err) != salesforce.Permanent {
			t.Errorf("bad argument: got %v, want ErrInvalidRequest", err)
		}
	}
}

// Ensure that Query follows nextRecordsUrl across three pages, strips
// attributes, stops when the loop stops, and stops after an error.
func TestClient_Query(t *testing.T) {
	const soql = "SELECT Id, Name FROM Account WHERE CreatedDate > 2026-01-01T00:00:00Z ORDER BY CreatedDate"
	failPage := ""
	var o *testOrg
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		page := func(done bool, next string, names ...string) string {
			var recs []string
			for _, n := range names {
				recs = append(recs, `{"attributes":{"type":"Account","url":"/services/data/v61.0/sobjects/Account/x"},"Name":"`+n+`"}`)
			}
			s := fmt.Sprintf(`{"totalSize":5,"done":%v,"records":[%s]`, done, strings.Join(recs, ","))
			if next != "" {
				s += `,"nextRecordsUrl":"` + next + `"`
			}
			return s + "}"
		}
		if r.URL.Path == failPage {
			writeRaw(w, 400, `[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]`)
			return
		}
		switch r.URL.Path {
		case "/services/data/v61.0/query":
			checkAPIRequest(t, r, o, http.MethodGet, "/services/data/v61.0/query")
			if got := r.URL.Query().Get("q"); got != soql {
				t.Errorf("q: got %v, want %v", got, soql)
			}
			writeRaw(w, 200, page(false, "/services/data/v61.0/query/01gD0000002HU6KIAW-2", "a", "b"))
		case "/services/data/v61.0/query/01gD0000002HU6KIAW-2":
			writeRaw(w, 200, page(false, "/services/data/v61.0/query/01gD0000002HU6KIAW-4", "c", "d"))
		case "/services/data/v61.0/query/01gD0000002HU6KIAW-4":
			writeRaw(w, 200, page(true, "", "e"))
		default:
			t.Errorf("unexpected %s", r.URL)
		}
	})
	obs := &observer{}
	c := o.client(t, func(cfg *salesforce.Config) { cfg.Observe = obs.observe })
	collect := func(limit int) ([]string, error) {
		var names []string
		for rec, err := range c.Query(t.Context(), soql) {
			if err != nil {
				return names, err
			}
			if _, ok := rec["attributes"]; ok {
				t.Errorf("attributes not stripped: %v", rec)
			}
			names = append(names, rec["Name"].(string))
			if len(names) == limit {
				break
			}
		}
		return names, nil
	}
	names, err := collect(0)
	if err != nil || strings.Join(names, "") != "abcde" {
		t.Errorf("Query: got %v, %v, want abcde", names, err)
	}
	wantRoutes := []string{"GET /query 200", "GET /query/{locator} 200", "GET /query/{locator} 200"}
	if got := obs.routes(); !reflect.DeepEqual(got, wantRoutes) {
		t.Errorf("routes: got %v, want %v", got, wantRoutes)
	}

	before := o.apiCalls.Load()
	names, _ = collect(2)
	if strings.Join(names, "") != "ab" || o.apiCalls.Load()-before != 1 {
		t.Errorf("early stop: got %v after %d calls, want ab after 1", names, o.apiCalls.Load()-before)
	}

	failPage = "/services/data/v61.0/query/01gD0000002HU6KIAW-2"
	names, err = collect(0)
	var ae *salesforce.APIError
	if strings.Join(names, "") != "ab" || !errors.As(err, &ae) || ae.Code != "INVALID_QUERY_LOCATOR" || ae.Route != "GET /query/{locator}" {
		t.Errorf("error on page 2: got %v, %v", names, err)
	}

	page, err := c.QueryPage(t.Context(), soql)
	if err != nil || page.Done || page.TotalSize != 5 || page.NextRecordsURL == "" || len(page.Records) != 2 {
		t.Errorf("QueryPage: got %+v, %v", page, err)
	}
}

// Ensure that Count reads totalSize, and that an empty result without done
// counts as done.
func TestClient_Count(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		if got, want := r.URL.Query().Get("q"), "SELECT COUNT() FROM Account"; got != want {
			t.Errorf("q: got %v, want %v", got, want)
		}
		writeRaw(w, 200, `{"totalSize":4500,"records":[]}`)
	})
	c := o.client(t, nil)
	n, err := c.Count(t.Context(), "SELECT COUNT() FROM Account")
	if err != nil || n != 4500 {
		t.Errorf("Count: got %v, %v, want 4500", n, err)
	}
	page, err := c.QueryPage(t.Context(), "SELECT COUNT() FROM Account")
	if err != nil || !page.Done {
		t.Errorf("QueryPage without done: got %+v, %v", page, err)
	}
}

// Ensure that Describe decodes fields and finds them without regard to case.
func TestClient_Describe(t *testing.T) {
	var o *testOrg
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		checkAPIRequest(t, r, o, http.MethodGet, "/services/data/v61.0/sobjects/Account/describe")
		writeRaw(w, 200, `{"name":"Account","label":"Account","keyPrefix":"001","custom":false,"fields":[
			{"name":"Id","type":"id","length":18,"externalId":false,"unique":false,"nillable":false,"createable":false,"updateable":false},
			{"name":"Name","type":"string","length":255,"nillable":false,"createable":true,"updateable":true},
			{"name":"Source_Id__c","type":"string","length":18,"externalId":true,"unique":true,"caseSensitive":false,"nillable":true,"createable":true,"updateable":true,"custom":true},
			{"name":"ParentId","type":"reference","length":18,"referenceTo":["Account"],"relationshipName":"Parent","nillable":true,"createable":true,"updateable":true}]}`)
	})
	c := o.client(t, nil)
	d, err := c.Describe(t.Context(), "Account")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "Account" || d.KeyPrefix != "001" || len(d.Fields) != 4 {
		t.Errorf("Describe: got %+v", d)
	}
	f, ok := d.Field("source_id__C")
	want := salesforce.Field{Name: "Source_Id__c", Type: "string", Length: 18, ExternalID: true, Unique: true, Nillable: true, Createable: true, Updateable: true, Custom: true}
	if !ok || !reflect.DeepEqual(f, want) {
		t.Errorf("Field: got %+v, %v, want %+v", f, ok, want)
	}
	if p, _ := d.Field("ParentId"); p.RelationshipName != "Parent" || !reflect.DeepEqual(p.ReferenceTo, []string{"Account"}) {
		t.Errorf("ParentId: got %+v", p)
	}
	if _, ok := d.Field("Nope"); ok {
		t.Errorf("Field(Nope) found")
	}
}

// Ensure that Limits decodes the map and that Usage follows Sforce-Limit-Info.
func TestClient_LimitsAndUsage(t *testing.T) {
	used := 0
	var o *testOrg
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		checkAPIRequest(t, r, o, http.MethodGet, "/services/data/v61.0/limits")
		used++
		w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/15000; per-app-api-usage=17/250(appName=orgsync)", used))
		writeRaw(w, 200, `{"DailyApiRequests":{"Max":15000,"Remaining":14998,"Ant Migration Tool":{"Max":0,"Remaining":0}},
			"DailyBulkApiBatches":{"Max":15000,"Remaining":15000}}`)
	})
	c := o.client(t, nil)
	if _, ok := c.Usage(); ok {
		t.Errorf("Usage before any call: ok")
	}
	m, err := c.Limits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m["DailyApiRequests"], (salesforce.Limit{Max: 15000, Remaining: 14998}); got != want {
		t.Errorf("DailyApiRequests: got %v, want %v", got, want)
	}
	_, _ = c.Limits(t.Context())
	u, ok := c.Usage()
	if !ok || u.Used != 2 || u.Max != 15000 || u.At.IsZero() {
		t.Errorf("Usage: got %+v, %v", u, ok)
	}
	if got, want := u.Ratio(), 2.0/15000; got != want {
		t.Errorf("Ratio: got %v, want %v", got, want)
	}
}

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		in     string
		want   salesforce.APIUsage
		wantOK bool
	}{
		{in: "api-usage=25/5000", want: salesforce.APIUsage{Used: 25, Max: 5000}, wantOK: true},
		{in: "api-usage=18/5000; per-app-api-usage=17/250(appName=sample-connected-app)", want: salesforce.APIUsage{Used: 18, Max: 5000}, wantOK: true},
		{in: "per-app-api-usage=17/250(appName=x); api-usage=3/100", want: salesforce.APIUsage{Used: 3, Max: 100}, wantOK: true},
		{in: "api-usage=1/750, api-bursts=1/750", want: salesforce.APIUsage{Used: 1, Max: 750}, wantOK: true},
		{in: " API-USAGE = 7 / 9 ", want: salesforce.APIUsage{Used: 7, Max: 9}, wantOK: true},
		{in: "api-usage=16000/15000", want: salesforce.APIUsage{Used: 16000, Max: 15000}, wantOK: true},
		{in: "per-app-api-usage=17/250(appName=x)"},
		{in: ""},
		{in: "api-usage="},
		{in: "api-usage=25"},
		{in: "api-usage=a/b"},
		{in: "api-usage=5/0"},
		{in: "api-usage=-1/10"},
		{in: "api-usage=99999999999999999999999/1"},
		{in: "garbage;;;==//"},
	}
	for _, tt := range tests {
		got, ok := salesforce.ParseLimitInfo(tt.in)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseLimitInfo(%q): got %+v, %v, want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	if got := (salesforce.APIUsage{}).Ratio(); got != 0 {
		t.Errorf("Ratio of zero usage: got %v, want 0", got)
	}
}

// Ensure that a 401 INVALID_SESSION_ID drops the token and the call succeeds
// with a new one, and that a 401 that persists ends as an auth error after
// exactly one retry.
func TestClient_SessionExpiry(t *testing.T) {
	t.Run("refresh then success", func(t *testing.T) {
		var o *testOrg
		o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "Bearer 00D!token-1" {
				w.Header().Set("WWW-Authenticate", "Token")
				sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
				return
			}
			checkAPIRequest(t, r, o, http.MethodPost, "/services/data/v61.0/composite/sobjects")
			jsonEqual(t, "replayed body", readJSON(t, r), `{"allOrNone":false,"records":[{"attributes":{"type":"Account"},"Name":"A"}]}`)
			writeRaw(w, 200, `[{"id":"001000000000001AAA","success":true,"errors":[]}]`)
		})
		obs := &observer{}
		c := o.client(t, func(cfg *salesforce.Config) { cfg.Observe = obs.observe })
		res, err := c.CreateMany(t.Context(), "Account", []salesforce.Record{{"Name": "A"}}, false)
		if err != nil || !res[0].Success {
			t.Fatalf("CreateMany: got %v, %v", res, err)
		}
		if got := o.tokenCalls.Load(); got != 2 {
			t.Errorf("token requests: got %v, want 2", got)
		}
		want := []string{"POST /composite/sobjects 401", "POST /composite/sobjects 200"}
		if got := obs.routes(); !reflect.DeepEqual(got, want) {
			t.Errorf("calls: got %v, want %v", got, want)
		}
	})
	t.Run("persistent 401", func(t *testing.T) {
		o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
			sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "This session is not valid for use with the REST API")
		})
		c := o.client(t, nil)
		_, err := c.Limits(t.Context())
		var ae *salesforce.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Code != "INVALID_SESSION_ID" {
			t.Fatalf("got %v, want 401 INVALID_SESSION_ID", err)
		}
		if got := salesforce.Classify(err); got != salesforce.AuthFailure {
			t.Errorf("class: got %v, want auth", got)
		}
		if a, tk := o.apiCalls.Load(), o.tokenCalls.Load(); a != 2 || tk != 2 {
			t.Errorf("calls: got %d API and %d token requests, want 2 and 2", a, tk)
		}
		// Call reports it as an error too.
		if _, err := c.Call(t.Context(), "GET", "/services/data/v61.0/limits", nil, ""); !errors.As(err, &ae) || ae.StatusCode != 401 {
			t.Errorf("Call: got %v, want a 401 *APIError", err)
		}
	})
	t.Run("concurrent 401s share one new token", func(t *testing.T) {
		o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "Bearer 00D!token-1" {
				sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
				return
			}
			writeRaw(w, 200, `{}`)
		})
		c := o.client(t, nil)
		if _, _, err := c.Identity(t.Context()); err != nil { // fetch token-1 first
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := c.Limits(t.Context()); err != nil {
					t.Errorf("Limits: %v", err)
				}
			})
		}
		wg.Wait()
		if got := o.tokenCalls.Load(); got != 2 {
			t.Errorf("token requests: got %v, want 2", got)
		}
	})
}

// Ensure that many concurrent first calls make exactly one token request.
func TestClient_ConcurrentFirstCalls(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, `{}`) })
	c := o.client(t, nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := c.Limits(t.Context()); err != nil {
				t.Errorf("Limits: %v", err)
			}
		})
	}
	wg.Wait()
	if got := o.tokenCalls.Load(); got != 1 {
		t.Errorf("token requests: got %v, want 1", got)
	}
}

// Ensure that a redirect is followed for a GET and refused, with the URL to
// configure, for POST, PATCH and DELETE (reference §6, Redirects).
func TestClient_Redirects(t *testing.T) {
	var newHits []string
	var mu sync.Mutex
	canonical := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		newHits = append(newHits, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			t.Errorf("Authorization lost on the followed redirect")
		}
		writeRaw(w, 200, `{"DailyApiRequests":{"Max":5,"Remaining":4}}`)
	}))
	defer canonical.Close()
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, canonical.URL+r.URL.Path, http.StatusFound)
	})
	obs := &observer{}
	c := o.client(t, func(cfg *salesforce.Config) { cfg.Observe = obs.observe })
	ctx := t.Context()

	if m, err := c.Limits(ctx); err != nil || m["DailyApiRequests"].Max != 5 {
		t.Fatalf("GET through a redirect: got %v, %v", m, err)
	}
	writes := []struct {
		method string
		call   func() error
	}{
		{"POST", func() error {
			_, err := c.CreateMany(ctx, "Account", []salesforce.Record{{"Name": "A"}}, false)
			return err
		}},
		{"PATCH", func() error {
			_, err := c.UpsertMany(ctx, "Account", "Source_Id__c", []salesforce.Record{{"Source_Id__c": "1"}}, false)
			return err
		}},
		{"DELETE", func() error { return c.Delete(ctx, "Account", "001R00000033I6AIAU") }},
		{"POST", func() error {
			_, err := c.Call(ctx, "POST", "/services/apexrest/arrify/v1/accounts", []byte(`{"Name":"A"}`), "")
			return err
		}},
	}
	for _, w := range writes {
		err := w.call()
		var re *salesforce.RedirectError
		if !errors.As(err, &re) {
			t.Fatalf("%s: got %v, want *RedirectError", w.method, err)
		}
		if re.Method != w.method || !strings.HasPrefix(re.URL, o.URL) || !strings.HasPrefix(re.Location, canonical.URL) {
			t.Errorf("%s: got %+v", w.method, *re)
		}
		if !strings.Contains(err.Error(), "configure "+canonical.URL+" as the org URL") {
			t.Errorf("%s: message %q does not name %s", w.method, err, canonical.URL)
		}
		if got := salesforce.Classify(err); got != salesforce.Configuration {
			t.Errorf("%s: class: got %v, want configuration", w.method, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"GET /services/data/v61.0/limits"}; !reflect.DeepEqual(newHits, want) {
		t.Errorf("requests reaching the redirect target: got %v, want %v", newHits, want)
	}
	wantRoutes := []string{"GET /limits 200", "POST /composite/sobjects 302", "PATCH /composite/sobjects/Account/{field} 302",
		"DELETE /sobjects/Account/{id} 302", "POST /apexrest/arrify/v1/accounts 302"}
	if got := obs.routes(); !reflect.DeepEqual(got, wantRoutes) {
		t.Errorf("observed: got %v, want %v", got, wantRoutes)
	}
}

// Ensure that a gzip response is decompressed.
func TestClient_Gzip(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Errorf("Accept-Encoding: got %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Sforce-Limit-Info", "api-usage=9/10")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account"},"Name":"Zipped"}]}`)
		_ = zw.Close()
	})
	c := o.client(t, nil)
	page, err := c.QueryPage(t.Context(), "SELECT Name FROM Account")
	if err != nil || len(page.Records) != 1 || page.Records[0]["Name"] != "Zipped" {
		t.Fatalf("got %+v, %v", page, err)
	}
	// Call hands back the decompressed body too.
	resp, err := c.Call(t.Context(), "GET", "/services/data/v61.0/query?q=x", nil, "")
	if err != nil || !strings.Contains(string(resp.Body), "Zipped") {
		t.Errorf("Call: got %v, %v", resp, err)
	}
	if u, _ := c.Usage(); u.Used != 9 {
		t.Errorf("Usage: got %+v", u)
	}
}

// Ensure that Config.Timeout bounds a call whose ctx has no deadline, and a
// caller's deadline wins when set.
func TestClient_Timeout(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the client gives up
	})
	obs := &observer{}
	c := o.client(t, func(cfg *salesforce.Config) { cfg.Timeout = 100 * time.Millisecond; cfg.Observe = obs.observe })
	start := time.Now()
	_, err := c.Limits(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if got := salesforce.Classify(err); got != salesforce.Transient {
		t.Errorf("class: got %v, want transient", got)
	}
	if !strings.HasPrefix(err.Error(), "salesforce: GET /limits: ") {
		t.Errorf("message: got %q", err)
	}
	if calls := obs.calls; len(calls) != 1 || calls[0].Status != 0 || calls[0].Err == nil {
		t.Errorf("observed: got %+v, want one call with status 0 and an error", calls)
	}

	c = o.client(t, func(cfg *salesforce.Config) { cfg.Timeout = time.Hour })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Limits(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: got %v, want DeadlineExceeded", err)
	}
}

// Ensure that Call sends raw requests with auth and headers, hands non-2xx
// answers to the caller, and reports budget exhaustion as an error.
func TestClient_Call(t *testing.T) {
	var o *testOrg
	o = newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/services/apexrest/arrify/v1/accounts":
			checkAPIRequest(t, r, o, http.MethodPost, "/services/apexrest/arrify/v1/accounts")
			body, _ := io.ReadAll(r.Body)
			if string(body) != `{"Name":""}` || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("body: got %s %s", body, r.Header.Get("Content-Type"))
			}
			writeRaw(w, 400, `{"success":false,"accountId":null,"accountName":null,"message":"Account Name is required","errorDetails":"REQUIRED_FIELD_MISSING"}`)
		case "/services/data/v61.0/sobjects/Account/001R00000033I6AIAU":
			sfError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		case "/services/data/v61.0/sobjects/Account/001R00000064wdtIAA":
			sfError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
		}
	})
	obs := &observer{}
	c := o.client(t, func(cfg *salesforce.Config) { cfg.Observe = obs.observe })
	resp, err := c.Call(t.Context(), "POST", "/services/apexrest/arrify/v1/accounts", []byte(`{"Name":""}`), "")
	if err != nil || resp.Status != 400 || !strings.Contains(string(resp.Body), "Account Name is required") {
		t.Fatalf("Call: got %+v, %v", resp, err)
	}
	_, err = c.Call(t.Context(), "GET", "/services/data/v61.0/sobjects/Account/001R00000033I6AIAU", nil, "")
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || salesforce.Classify(err) != salesforce.Budget {
		t.Errorf("budget 403: got %v (class %v), want budget *APIError", err, salesforce.Classify(err))
	}
	if got, want := err.Error(), "salesforce: GET /sobjects/Account/{id}: 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."; got != want {
		t.Errorf("Error(): got %v, want %v", got, want)
	}
	resp, err = c.Call(t.Context(), "GET", "/services/data/v61.0/sobjects/Account/001R00000064wdtIAA", nil, "")
	if err != nil || resp.Status != 403 {
		t.Errorf("other 403: got %v, %v, want the response", resp, err)
	}
	want := []string{"POST /apexrest/arrify/v1/accounts 400", "GET /sobjects/Account/{id} 403", "GET /sobjects/Account/{id} 403"}
	if got := obs.routes(); !reflect.DeepEqual(got, want) {
		t.Errorf("routes: got %v, want %v", got, want)
	}
	for _, bad := range []string{"services/x", "https://evil.example/x", "//evil.example/x"} {
		if _, err := c.Call(t.Context(), "GET", bad, nil, ""); !errors.Is(err, salesforce.ErrInvalidRequest) {
			t.Errorf("Call(%q): got %v, want ErrInvalidRequest", bad, err)
		}
	}
}

// Ensure that error bodies that are not Salesforce's array (HTML from a
// proxy, an empty 503) become transient *APIErrors.
func TestClient_NonJSONErrors(t *testing.T) {
	status := 0
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		switch status {
		case 503:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "<html><body><h1>Maintenance</h1></body></html>")
		case 405:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(405)
			_, _ = io.WriteString(w, "<!DOCTYPE html><html>Method Not Allowed</html>")
		case 502:
			w.WriteHeader(502)
		case 500:
			sfError(w, 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 1234")
		}
	})
	c := o.client(t, nil)
	for _, s := range []int{503, 405, 502, 500} {
		status = s
		_, err := c.Limits(t.Context())
		var ae *salesforce.APIError
		if !errors.As(err, &ae) || ae.StatusCode != s {
			t.Errorf("%d: got %v", s, err)
			continue
		}
		if got := salesforce.Classify(err); got != salesforce.Transient {
			t.Errorf("%d: class: got %v, want transient (%v)", s, got, err)
		}
	}
}

// Ensure that NewClient checks its config and that the API version shows in paths.
func TestNewClient(t *testing.T) {
	if _, err := salesforce.NewClient(salesforce.Config{}); err == nil {
		t.Errorf("NewClient without Auth: no error")
	}
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/data/v63.0/limits" {
			t.Errorf("path: got %v", r.URL.Path)
		}
		if r.Header.Get("Sforce-Call-Options") != "" {
			t.Errorf("Sforce-Call-Options sent when unset")
		}
		writeRaw(w, 200, `{}`)
	})
	if _, err := salesforce.NewClient(salesforce.Config{Auth: o.auth(t), APIVersion: "sixty"}); err == nil {
		t.Errorf("bad APIVersion accepted")
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: o.auth(t), APIVersion: "v63.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.APIVersion(); got != "63.0" {
		t.Errorf("APIVersion: got %v, want 63.0", got)
	}
	if _, err := c.Limits(t.Context()); err != nil {
		t.Error(err)
	}
	def, _ := salesforce.NewClient(salesforce.Config{Auth: o.auth(t)})
	if got := def.APIVersion(); got != "61.0" {
		t.Errorf("default APIVersion: got %v, want 61.0", got)
	}
	org, user, err := c.Identity(t.Context())
	if err != nil || org != testOrgID || user != testUserID {
		t.Errorf("Identity: got %v %v %v", org, user, err)
	}
}

// Ensure that a GET redirected to another Salesforce host keeps the bearer
// token (net/http would drop it across domains) and that a redirect to any
// other host does not get it.
func TestClient_RedirectTokenPolicy(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // host → Authorization
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host] = r.Header.Get("Authorization")
		mu.Unlock()
		switch r.Host {
		case "old.lightning.force.com":
			target := "https://acme.my.salesforce.com"
			if r.URL.Path != "/services/data/v61.0/limits" {
				target = "https://evil.example.com"
			}
			http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusMovedPermanently)
		case "acme.my.salesforce.com":
			writeRaw(w, 200, `{"DailyApiRequests":{"Max":1,"Remaining":1}}`)
		default:
			sfError(w, 401, "INVALID_SESSION_ID", "Session expired or invalid")
		}
	}))
	defer ts.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", ts.Listener.Addr().String())
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test server's certificate names none of these hosts
	}
	defer tr.CloseIdleConnections()
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{AccessToken: "00D!tok", InstanceURL: "https://old.lightning.force.com"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: a, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Limits(t.Context()); err != nil {
		t.Fatalf("Limits through a redirect: %v", err)
	}
	if _, err := c.Call(t.Context(), "GET", "/services/data/v61.0/query?q=x", nil, ""); err == nil {
		t.Errorf("Call redirected to a foreign host: no error")
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{"old.lightning.force.com": "Bearer 00D!tok", "acme.my.salesforce.com": "Bearer 00D!tok", "evil.example.com": ""}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("Authorization by host: got %v, want %v", seen, want)
	}
}
