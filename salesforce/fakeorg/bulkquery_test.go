package fakeorg_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"orgsync/salesforce/fakeorg"
)

func (f *fixture) createQueryJob(soql string) jobInfo {
	f.t.Helper()
	var j jobInfo
	f.do(http.MethodPost, B+"/jobs/query", map[string]any{"operation": "query", "query": soql}).want(f.t, http.StatusOK).decode(f.t, &j)
	return j
}

func (f *fixture) queryJob(id string) jobInfo {
	f.t.Helper()
	var j jobInfo
	f.do(http.MethodGet, B+"/jobs/query/"+id, nil).want(f.t, http.StatusOK).decode(f.t, &j)
	return j
}

// Ensure that a query job answers its results as CSV sets linked by
// Sforce-Locator ("null" after the last), each with Sforce-NumberOfRecords,
// and that every request is one API call under its route.
func TestBulkQuery_ResultsPaging(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	for i := range 5 {
		fields := map[string]any{"Name": fmt.Sprintf("A%d", i), "Source_Id__c": fmt.Sprintf("S%d", i), "NumberOfEmployees": i}
		if i == 2 {
			fields["Name"] = "comma, \"quoted\"\nline"
			delete(fields, "NumberOfEmployees")
		}
		f.create(fields)
	}
	f.create(map[string]any{"Name": "Not matched"})
	before := f.org.Stats()

	j := f.createQueryJob("SELECT Id, Name, NumberOfEmployees FROM Account WHERE Source_Id__c != null ORDER BY Source_Id__c")
	if j.State != "UploadComplete" || j.Operation != "query" || j.Object != "Account" || j.ContentType != "CSV" {
		t.Fatalf("create: got %+v", j)
	}
	if got := f.queryJob(j.ID); got.State != "JobComplete" || got.NumberRecordsProcessed == nil || *got.NumberRecordsProcessed != 5 {
		t.Fatalf("job: got %+v", got)
	}
	var names, employees []string
	locator, sets := "", 0
	for {
		path := B + "/jobs/query/" + j.ID + "/results?maxRecords=2"
		if locator != "" {
			path += "&locator=" + locator
		}
		res := f.do(http.MethodGet, path, nil).want(t, http.StatusOK)
		sets++
		rows, err := readCSV(string(res.body), ',')
		if err != nil {
			t.Fatalf("set %d: %v\n%s", sets, err, res.body)
		}
		if fmt.Sprint(rows[0]) != "[Id Name NumberOfEmployees]" {
			t.Fatalf("header: got %v", rows[0])
		}
		if n, _ := strconv.Atoi(res.header.Get("Sforce-NumberOfRecords")); n != len(rows)-1 {
			t.Errorf("set %d: Sforce-NumberOfRecords %q, %d rows", sets, res.header.Get("Sforce-NumberOfRecords"), len(rows)-1)
		}
		for _, r := range rows[1:] {
			names = append(names, r[1])
			employees = append(employees, r[2])
		}
		locator = res.header.Get("Sforce-Locator")
		if locator == "null" {
			break
		}
		if locator == "" || sets > 5 {
			t.Fatalf("set %d: Sforce-Locator %q", sets, locator)
		}
	}
	if sets != 3 {
		t.Errorf("sets: got %d, want 3 (5 records, 2 per set)", sets)
	}
	want := []string{"A0", "A1", "comma, \"quoted\"\nline", "A3", "A4"}
	if fmt.Sprintf("%q", names) != fmt.Sprintf("%q", want) || fmt.Sprint(employees) != "[0 1  3 4]" {
		t.Errorf("rows: names %q employees %q", names, employees)
	}
	st := f.org.Stats()
	for route, want := range map[string]int{
		"POST /jobs/query": 1, "GET /jobs/query/{id}": 1, "GET /jobs/query/{id}/results": 3,
	} {
		if got := st.ByRoute[route] - before.ByRoute[route]; got != want {
			t.Errorf("ByRoute[%q]: got %d, want %d", route, got, want)
		}
	}
	if got := st.APICalls - before.APICalls; got != 5 {
		t.Errorf("API calls: got %d, want 5", got)
	}

	// A deleted job is gone.
	f.do(http.MethodDelete, B+"/jobs/query/"+j.ID, nil).want(t, http.StatusNoContent)
	f.do(http.MethodGet, B+"/jobs/query/"+j.ID, nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
}

// Ensure that a job stays InProgress for BulkProcessingDelay, answers no
// results meanwhile, and can be aborted then but not after it completes.
func TestBulkQuery_StatesAndAbort(t *testing.T) {
	f := newFixture(t, fakeorg.Config{BulkProcessingDelay: time.Minute})
	f.create(map[string]any{"Name": "A"})
	j := f.createQueryJob("SELECT Id FROM Account")
	if got := f.queryJob(j.ID); got.State != "InProgress" {
		t.Fatalf("before the delay: got %s", got.State)
	}
	f.do(http.MethodGet, B+"/jobs/query/"+j.ID+"/results", nil).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.do(http.MethodDelete, B+"/jobs/query/"+j.ID, nil).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.clock.Advance(time.Minute)
	if got := f.queryJob(j.ID); got.State != "JobComplete" {
		t.Fatalf("after the delay: got %s", got.State)
	}
	f.do(http.MethodPatch, B+"/jobs/query/"+j.ID, map[string]string{"state": "Aborted"}).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")

	k := f.createQueryJob("SELECT Id FROM Account")
	var info jobInfo
	f.do(http.MethodPatch, B+"/jobs/query/"+k.ID, map[string]string{"state": "Aborted"}).want(t, http.StatusOK).decode(t, &info)
	if info.State != "Aborted" || f.queryJob(k.ID).State != "Aborted" {
		t.Fatalf("abort: got %+v", info)
	}
	f.do(http.MethodGet, B+"/jobs/query/"+k.ID+"/results", nil).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.do(http.MethodDelete, B+"/jobs/query/"+k.ID, nil).want(t, http.StatusNoContent)
}

// Ensure that bad jobs and bad result requests are refused with
// Salesforce's error codes.
func TestBulkQuery_Refusals(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	f.create(map[string]any{"Name": "A"})
	for _, tt := range []struct {
		name string
		body map[string]any
		code string
	}{
		{"operation", map[string]any{"operation": "insert", "query": "SELECT Id FROM Account"}, "API_ERROR"},
		{"empty query", map[string]any{"operation": "query", "query": " "}, "API_ERROR"},
		{"malformed", map[string]any{"operation": "query", "query": "SELECT FROM"}, "MALFORMED_QUERY"},
		{"unknown field", map[string]any{"operation": "query", "query": "SELECT Nope__c FROM Account"}, "INVALID_FIELD"},
		{"count", map[string]any{"operation": "query", "query": "SELECT COUNT() FROM Account"}, "API_ERROR"},
		{"content type", map[string]any{"operation": "query", "query": "SELECT Id FROM Account", "contentType": "JSON"}, "API_ERROR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.do(http.MethodPost, B+"/jobs/query", tt.body).wantError(t, http.StatusBadRequest, tt.code)
		})
	}
	j := f.createQueryJob("SELECT Id FROM Account")
	f.do(http.MethodGet, B+"/jobs/query/"+j.ID+"/results?maxRecords=0", nil).wantError(t, http.StatusBadRequest, "API_ERROR")
	f.do(http.MethodGet, B+"/jobs/query/"+j.ID+"/results?locator=%21%21", nil).wantError(t, http.StatusBadRequest, "INVALID_LOCATOR")
	f.do(http.MethodGet, B+"/jobs/query/nope/results", nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
}
