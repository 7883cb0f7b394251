package fakeorg_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// jobInfo is the part of a Bulk job's info the tests read.
type jobInfo struct {
	ID                     string  `json:"id"`
	State                  string  `json:"state"`
	Object                 string  `json:"object"`
	Operation              string  `json:"operation"`
	ExternalIDFieldName    string  `json:"externalIdFieldName"`
	ContentURL             string  `json:"contentUrl"`
	APIVersion             float64 `json:"apiVersion"`
	LineEnding             string  `json:"lineEnding"`
	ColumnDelimiter        string  `json:"columnDelimiter"`
	ConcurrencyMode        string  `json:"concurrencyMode"`
	ContentType            string  `json:"contentType"`
	CreatedByID            string  `json:"createdById"`
	CreatedDate            string  `json:"createdDate"`
	JobType                string  `json:"jobType"`
	NumberRecordsProcessed *int    `json:"numberRecordsProcessed"`
	NumberRecordsFailed    *int    `json:"numberRecordsFailed"`
	ErrorMessage           string  `json:"errorMessage"`
}

func (f *fixture) createJob(body map[string]any) jobInfo {
	f.t.Helper()
	var j jobInfo
	f.do(http.MethodPost, B+"/jobs/ingest", body).want(f.t, http.StatusOK).decode(f.t, &j)
	return j
}

func (f *fixture) upload(id, data string) *response {
	f.t.Helper()
	return f.doWith(http.MethodPut, B+"/jobs/ingest/"+id+"/batches", data,
		map[string]string{"Authorization": "Bearer " + f.token, "Content-Type": "text/csv"})
}

func (f *fixture) setState(id, state string) *response {
	f.t.Helper()
	return f.do(http.MethodPatch, B+"/jobs/ingest/"+id, map[string]string{"state": state})
}

func (f *fixture) job(id string) jobInfo {
	f.t.Helper()
	var j jobInfo
	f.do(http.MethodGet, B+"/jobs/ingest/"+id, nil).want(f.t, http.StatusOK).decode(f.t, &j)
	return j
}

// waitJob polls until the job leaves UploadComplete/InProgress.
func (f *fixture) waitJob(id string) jobInfo {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := f.job(id)
		switch j.State {
		case "JobComplete", "Failed", "Aborted":
			return j
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("job %s still %s", id, j.State)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runJob creates, fills, closes and waits for a job.
func (f *fixture) runJob(body map[string]any, data string) jobInfo {
	f.t.Helper()
	j := f.createJob(body)
	f.upload(j.ID, data).want(f.t, http.StatusCreated)
	f.setState(j.ID, "UploadComplete").want(f.t, http.StatusOK)
	return f.waitJob(j.ID)
}

func (f *fixture) results(id, kind string) (string, [][]string) {
	f.t.Helper()
	res := f.do(http.MethodGet, B+"/jobs/ingest/"+id+"/"+kind+"/", nil).want(f.t, http.StatusOK)
	if ct := res.header.Get("Content-Type"); ct != "text/csv" {
		f.t.Errorf("%s Content-Type: got %q, want text/csv", kind, ct)
	}
	comma := ','
	if strings.HasPrefix(string(res.body), `"sf__Id";`) {
		comma = ';'
	}
	rows, err := readCSV(string(res.body), comma)
	if err != nil {
		f.t.Fatalf("%s: %v\n%s", kind, err, res.body)
	}
	return string(res.body), rows
}

func upsertJob() map[string]any {
	return map[string]any{"object": "Account", "operation": "upsert", "externalIdFieldName": "Source_Id__c", "contentType": "CSV", "lineEnding": "LF"}
}

// Ensure that an upsert job runs through the states of Salesforce and
// answers results in Salesforce's CSV shapes.
func TestBulk_UpsertLifecycle(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	existing := f.create(map[string]any{"Name": "Old", "Source_Id__c": "K1"})

	j := f.createJob(upsertJob())
	if !strings.HasPrefix(j.ID, "750") || !salesforce.ValidID(j.ID) || j.State != "Open" {
		t.Fatalf("create: got %+v", j)
	}
	if j.ContentURL != "services/data/v63.0/jobs/ingest/"+j.ID+"/batches" || j.APIVersion != 63 ||
		j.Object != "Account" || j.Operation != "upsert" || j.ExternalIDFieldName != "Source_Id__c" ||
		j.LineEnding != "LF" || j.ColumnDelimiter != "COMMA" || j.ConcurrencyMode != "Parallel" || j.ContentType != "CSV" ||
		j.CreatedByID != f.org.UserID() || j.CreatedDate != "2026-01-01T00:00:00.000+0000" || j.NumberRecordsProcessed != nil {
		t.Errorf("create: got %+v", j)
	}
	data := "Name,Source_Id__c,Phone,NumberOfEmployees\n" +
		"\"New, Inc.\",K1,#N/A,10\n" + // update: Phone cleared
		"Second,K2,\"555 \"\"x\"\"\",\n" + // create; empty employees left alone
		",K3,,\n" + // no Name
		"Bad,K4,,many\n" // not a number
	res := f.upload(j.ID, data).want(t, http.StatusCreated)
	if len(res.body) != 0 {
		t.Errorf("upload body: got %q, want none", res.body)
	}
	var closed jobInfo
	f.setState(j.ID, "UploadComplete").want(t, http.StatusOK).decode(t, &closed)
	if closed.State != "UploadComplete" || closed.ID != j.ID {
		t.Errorf("close: got %+v", closed)
	}
	done := f.waitJob(j.ID)
	if done.State != "JobComplete" || *done.NumberRecordsProcessed != 4 || *done.NumberRecordsFailed != 2 || done.JobType != "V2Ingest" {
		t.Fatalf("done: got %+v", done)
	}

	body, ok := f.results(j.ID, "successfulResults")
	if !strings.HasPrefix(body, `"sf__Id","sf__Created",Name,Source_Id__c,Phone,NumberOfEmployees`+"\n") {
		t.Errorf("successful header: got %q", body)
	}
	if len(ok) != 3 || ok[1][0] != existing || ok[1][1] != "false" || ok[1][2] != "New, Inc." || ok[2][1] != "true" || ok[2][3] != "K2" {
		t.Errorf("successful rows: got %q", ok)
	}
	if !strings.Contains(body, "\n\""+existing+"\",\"false\",\"New, Inc.\",\"K1\",\"#N/A\",\"10\"\n") {
		t.Errorf("rows quote every value and echo the upload: got %q", body)
	}
	body, failed := f.results(j.ID, "failedResults")
	if !strings.HasPrefix(body, `"sf__Id","sf__Error",Name,Source_Id__c,Phone,NumberOfEmployees`+"\n") || len(failed) != 3 {
		t.Fatalf("failed: got %q", body)
	}
	if got := failed[1][:2]; got[0] != "" || got[1] != "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --" {
		t.Errorf("failed row: got %q", got)
	}
	if got := failed[2][1]; got != "INVALID_TYPE_ON_FIELD_IN_RECORD:Employees: value not of required type: many:NumberOfEmployees --" {
		t.Errorf("failed row: got %q", got)
	}
	body, _ = f.results(j.ID, "unprocessedrecords")
	if body != "Name,Source_Id__c,Phone,NumberOfEmployees\n" {
		t.Errorf("unprocessed: got %q", body)
	}

	got, _ := f.org.Account(existing)
	if got["Name"] != "New, Inc." || got["Phone"] != nil || got["NumberOfEmployees"] != 10 {
		t.Errorf("updated account: got %v", got)
	}
	for _, a := range f.org.Accounts() {
		if a["Source_Id__c"] == "K2" && (a["Phone"] != `555 "x"` || a["NumberOfEmployees"] != nil) {
			t.Errorf("created account: got %v", a)
		}
	}
	if n := len(f.org.Accounts()); n != 2 {
		t.Errorf("accounts: got %d, want 2", n)
	}

	// Each Bulk call is one API call, under its route template.
	st := f.org.Stats()
	for route, want := range map[string]int{
		"POST /jobs/ingest": 1, "PUT /jobs/ingest/{id}/batches": 1, "PATCH /jobs/ingest/{id}": 1,
		"GET /jobs/ingest/{id}/successfulResults": 1, "GET /jobs/ingest/{id}/failedResults": 1,
		"GET /jobs/ingest/{id}/unprocessedrecords": 1,
	} {
		if st.ByRoute[route] != want {
			t.Errorf("ByRoute[%q]: got %d, want %d (%v)", route, st.ByRoute[route], want, st.ByRoute)
		}
	}
	if st.ByRoute["GET /jobs/ingest/{id}"] < 1 {
		t.Errorf("polls not counted: %v", st.ByRoute)
	}

	// DailyBulkApiBatches counts the job's one batch.
	var limits map[string]struct{ Max, Remaining int }
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK).decode(t, &limits)
	if l := limits["DailyBulkApiBatches"]; l.Max != 15000 || l.Remaining != 14999 {
		t.Errorf("DailyBulkApiBatches: got %+v", l)
	}

	// Listed, then deleted.
	var list struct {
		Done    bool      `json:"done"`
		Records []jobInfo `json:"records"`
	}
	f.do(http.MethodGet, B+"/jobs/ingest", nil).want(t, http.StatusOK).decode(t, &list)
	if !list.Done || len(list.Records) != 1 || list.Records[0].ID != j.ID {
		t.Errorf("list: got %+v", list)
	}
	f.do(http.MethodDelete, B+"/jobs/ingest/"+j.ID, nil).want(t, http.StatusNoContent)
	f.do(http.MethodGet, B+"/jobs/ingest/"+j.ID, nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
}

// Ensure that insert, update and delete jobs write like their REST
// counterparts and report sf__Id and sf__Created as Salesforce does.
func TestBulk_InsertUpdateDelete(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	parent := f.create(map[string]any{"Name": "Parent", "Source_Id__c": "P1"})

	// With the default COMMA delimiter the quote inside the one column is bare.
	j := f.runJob(map[string]any{"object": "Account", "operation": "insert"},
		"Name;Parent.Source_Id__c;Description\nChild;P1;\"multi\nline; text\"\n")
	if j.State != "Failed" {
		t.Errorf("comma job: got %+v", j)
	}
	j = f.runJob(map[string]any{"object": "Account", "operation": "insert", "columnDelimiter": "SEMICOLON", "lineEnding": "CRLF"},
		"Name;Parent.Source_Id__c;Description\r\nChild;P1;\"multi\nline; text\"\r\nOrphan;P404;\r\n",
	)
	if j.State != "JobComplete" || *j.NumberRecordsProcessed != 2 || *j.NumberRecordsFailed != 1 {
		t.Fatalf("insert: got %+v", j)
	}
	body, ok := f.results(j.ID, "successfulResults")
	if !strings.HasPrefix(body, `"sf__Id";"sf__Created";Name;Parent.Source_Id__c;Description`+"\r\n") {
		t.Errorf("insert header: got %q", body)
	}
	rows, err := readCSV(body, ';')
	if err != nil || len(rows) != 2 || rows[1][1] != "true" {
		t.Fatalf("insert results: got %q, %v (%q)", rows, err, ok)
	}
	child := rows[1][0]
	if a, found := f.org.Account(child); !found || a["ParentId"] != parent || a["Description"] != "multi\nline; text" {
		t.Errorf("child: got %v", a)
	}
	body, _ = f.results(j.ID, "failedResults")
	if !strings.Contains(body, `"";"INVALID_FIELD:Foreign key external ID: P404 not found for field Source_Id__c in entity Account:--";"Orphan";"P404";""`) {
		t.Errorf("insert failure: got %q", body)
	}

	// Update by Id: sf__Id is the Id given, sf__Created false; a missing
	// record fails with its Id.
	missing := salesforce.ID18("001000000000XYZ")
	j = f.runJob(map[string]any{"object": "Account", "operation": "update"},
		"Id,Name\n"+child+",Renamed\n"+missing+",Ghost\n")
	if j.State != "JobComplete" || *j.NumberRecordsFailed != 1 {
		t.Fatalf("update: got %+v", j)
	}
	_, ok = f.results(j.ID, "successfulResults")
	if len(ok) != 2 || ok[1][0] != child || ok[1][1] != "false" {
		t.Errorf("update results: got %q", ok)
	}
	_, failed := f.results(j.ID, "failedResults")
	if len(failed) != 2 || failed[1][0] != missing || !strings.HasPrefix(failed[1][1], "INVALID_CROSS_REFERENCE_KEY:") {
		t.Errorf("update failures: got %q", failed)
	}
	if a, _ := f.org.Account(child); a["Name"] != "Renamed" {
		t.Errorf("renamed: got %v", a["Name"])
	}

	// Delete.
	j = f.runJob(map[string]any{"object": "Account", "operation": "delete"}, "Id\n"+child+"\n")
	if j.State != "JobComplete" || *j.NumberRecordsFailed != 0 {
		t.Fatalf("delete: got %+v", j)
	}
	if _, found := f.org.Account(child); found {
		t.Errorf("child not deleted")
	}
}

// Ensure that duplicate external IDs within one job fail both rows, and
// that lock faults and the validation rule hit rows one by one.
func TestBulk_PerRecordFaults(t *testing.T) {
	f := newFixture(t, fakeorg.Config{RejectName: "^Reject", LockRate: 0.2, Seed: 7})
	var b strings.Builder
	b.WriteString("Source_Id__c,Name\n")
	const n = 1000
	for i := range n {
		name := fmt.Sprintf("Acct %d", i)
		if i%10 == 0 {
			name = "Reject " + name
		}
		fmt.Fprintf(&b, "K%d,%s\n", i, name)
	}
	b.WriteString("dup,A\nDUP,B\n")
	j := f.runJob(upsertJob(), b.String())
	if j.State != "JobComplete" || *j.NumberRecordsProcessed != n+2 {
		t.Fatalf("job: got %+v", j)
	}
	_, ok := f.results(j.ID, "successfulResults")
	_, failed := f.results(j.ID, "failedResults")
	codes := map[string]int{}
	for _, row := range failed[1:] {
		code, _, _ := strings.Cut(row[1], ":")
		codes[code]++
	}
	if codes["FIELD_CUSTOM_VALIDATION_EXCEPTION"] == 0 || codes["UNABLE_TO_LOCK_ROW"] == 0 || codes["DUPLICATE_VALUE"] != 2 {
		t.Errorf("failure codes: got %v", codes)
	}
	if len(ok)-1+len(failed)-1 != n+2 || *j.NumberRecordsFailed != len(failed)-1 {
		t.Errorf("rows: %d ok + %d failed, want %d (%+v)", len(ok)-1, len(failed)-1, n+2, j)
	}
	if len(f.org.Accounts()) != len(ok)-1 {
		t.Errorf("accounts: got %d, want %d", len(f.org.Accounts()), len(ok)-1)
	}
}

// Ensure that create-time validation answers Salesforce's codes.
func TestBulk_CreateErrors(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	tests := []struct {
		name string
		body any
		code string
	}{
		{"bad operation", map[string]any{"object": "Account", "operation": "merge"}, "API_ERROR"},
		{"no operation", map[string]any{"object": "Account"}, "API_ERROR"},
		{"unknown object", map[string]any{"object": "Contact", "operation": "insert"}, "INVALIDJOB"},
		{"upsert without external id", map[string]any{"object": "Account", "operation": "upsert"}, "INVALIDJOB"},
		{"upsert on a plain field", map[string]any{"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}, "INVALIDJOB"},
		{"hardDelete", map[string]any{"object": "Account", "operation": "hardDelete"}, "INVALIDJOB"},
		{"json content", map[string]any{"object": "Account", "operation": "insert", "contentType": "JSON"}, "API_ERROR"},
		{"bad line ending", map[string]any{"object": "Account", "operation": "insert", "lineEnding": "CR"}, "API_ERROR"},
		{"bad delimiter", map[string]any{"object": "Account", "operation": "insert", "columnDelimiter": "COLON"}, "API_ERROR"},
		{"bad json", "{", "JSON_PARSER_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.do(http.MethodPost, B+"/jobs/ingest", tt.body).wantError(t, http.StatusBadRequest, tt.code)
		})
	}
	e := f.do(http.MethodPost, B+"/jobs/ingest", map[string]any{"object": "Contact", "operation": "insert"}).wantError(t, http.StatusBadRequest, "INVALIDJOB")
	if e.Message != "InvalidJob : Unable to find object: Contact" {
		t.Errorf("message: got %q", e.Message)
	}
}

// Ensure that the state machine refuses what Salesforce refuses.
func TestBulk_StateErrors(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	insert := map[string]any{"object": "Account", "operation": "insert"}

	// Wrong Content-Type; unknown and malformed job IDs.
	j := f.createJob(insert)
	f.doWith(http.MethodPut, B+"/jobs/ingest/"+j.ID+"/batches", "Name\nA\n",
		map[string]string{"Authorization": "Bearer " + f.token, "Content-Type": "application/json"}).
		wantError(t, http.StatusBadRequest, "INVALIDCONTENTTYPE")
	f.do(http.MethodGet, B+"/jobs/ingest/"+salesforce.ID18("750000000000XYZ"), nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.do(http.MethodGet, B+"/jobs/ingest/nope", nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
	f.upload("nope", "Name\nA\n").wantError(t, http.StatusNotFound, "NOT_FOUND")

	// Results and delete before the job finished; bad state values.
	f.do(http.MethodGet, B+"/jobs/ingest/"+j.ID+"/successfulResults", nil).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.do(http.MethodDelete, B+"/jobs/ingest/"+j.ID, nil).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.setState(j.ID, "JobComplete").wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")

	// Upload to a closed job.
	f.upload(j.ID, "Name\nA\n").want(t, http.StatusCreated)
	f.setState(j.ID, "UploadComplete").want(t, http.StatusOK)
	f.upload(j.ID, "Name\nB\n").wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.setState(j.ID, "UploadComplete").wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	if got := f.waitJob(j.ID); got.State != "JobComplete" {
		t.Fatalf("got %+v", got)
	}
	f.setState(j.ID, "Aborted").wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.upload(j.ID, "Name\nC\n").wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")

	// Two uploads: the close is refused with Salesforce's message.
	j = f.createJob(insert)
	f.upload(j.ID, "Name\nA\n").want(t, http.StatusCreated)
	f.upload(j.ID, "Name\nB\n").want(t, http.StatusCreated)
	e := f.setState(j.ID, "UploadComplete").wantError(t, http.StatusBadRequest, "INVALIDJOB")
	if !strings.HasPrefix(e.Message, "Found multipe contents for job: <"+j.ID[:15]+">") {
		t.Errorf("message: got %q", e.Message)
	}
	if n := len(f.org.Accounts()); n != 1 {
		t.Errorf("accounts: got %d, want 1", n)
	}
}

// Ensure that an aborted job processes nothing and reports its rows as
// unprocessed, and that a job whose CSV names an unknown column fails whole.
func TestBulk_AbortAndFailed(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	j := f.createJob(map[string]any{"object": "Account", "operation": "insert"})
	f.upload(j.ID, "Name\nA\nB\n").want(t, http.StatusCreated)
	var aborted jobInfo
	f.setState(j.ID, "Aborted").want(t, http.StatusOK).decode(t, &aborted)
	if aborted.State != "Aborted" || f.job(j.ID).State != "Aborted" {
		t.Fatalf("abort: got %+v", aborted)
	}
	f.upload(j.ID, "Name\nC\n").wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.do(http.MethodDelete, B+"/jobs/ingest/"+j.ID, nil).want(t, http.StatusNoContent)

	j = f.runJob(map[string]any{"object": "Account", "operation": "insert"}, "Name,Nope__c\nA,1\nB,2\n")
	if j.State != "Failed" || j.ErrorMessage != "InvalidBatch : Field name not found : Nope__c" || *j.NumberRecordsProcessed != 0 {
		t.Fatalf("failed job: got %+v", j)
	}
	body, _ := f.results(j.ID, "unprocessedrecords")
	if body != "Name,Nope__c\n\"A\",\"1\"\n\"B\",\"2\"\n" {
		t.Errorf("unprocessed: got %q", body)
	}
	body, _ = f.results(j.ID, "failedResults")
	if body != "\"sf__Id\",\"sf__Error\",Name,Nope__c\n" {
		t.Errorf("failed: got %q", body)
	}

	// Malformed CSV (a bare quote, a short row) fails the job too.
	for _, data := range []string{"Name\n\"A\n", "Name,Phone\nA\n", ""} {
		j = f.runJob(map[string]any{"object": "Account", "operation": "insert"}, data)
		if j.State != "Failed" || !strings.HasPrefix(j.ErrorMessage, "InvalidBatch : ") {
			t.Errorf("%q: got %+v", data, j)
		}
	}
	if n := len(f.org.Accounts()); n != 0 {
		t.Errorf("accounts: got %d, want 0", n)
	}
}

// Ensure that BulkProcessingDelay keeps a processed job InProgress on the
// org's clock, so that clients poll.
func TestBulk_ProcessingDelay(t *testing.T) {
	f := newFixture(t, fakeorg.Config{BulkProcessingDelay: 3 * time.Second})
	j := f.createJob(map[string]any{"object": "Account", "operation": "insert"})
	f.upload(j.ID, "Name\nA\n").want(t, http.StatusCreated)
	f.setState(j.ID, "UploadComplete").want(t, http.StatusOK)
	deadline := time.Now().Add(5 * time.Second)
	for len(f.org.Accounts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := f.job(j.ID); got.State != "InProgress" || *got.NumberRecordsProcessed != 1 {
		t.Fatalf("after processing: got %+v", got)
	}
	f.do(http.MethodGet, B+"/jobs/ingest/"+j.ID+"/successfulResults", nil).wantError(t, http.StatusBadRequest, "INVALIDJOBSTATE")
	f.clock.Advance(3 * time.Second)
	if got := f.job(j.ID); got.State != "JobComplete" {
		t.Fatalf("after the delay: got %+v", got)
	}

	// The knob over PUT /_fake/config.
	var cfg map[string]any
	f.do(http.MethodPut, "/_fake/config", map[string]any{"bulk_processing_delay": "250ms"}).want(t, http.StatusOK).decode(t, &cfg)
	if cfg["bulk_processing_delay"] != "250ms" {
		t.Errorf("config: got %v", cfg)
	}
	f.do(http.MethodPut, "/_fake/config", map[string]any{"bulk_processing_delay": "-1s"}).want(t, http.StatusBadRequest)
}

// Ensure that Reset forgets jobs and the batch usage.
func TestBulk_Reset(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	j := f.runJob(map[string]any{"object": "Account", "operation": "insert"}, "Name\nA\n")
	f.org.Reset()
	f.do(http.MethodGet, B+"/jobs/ingest/"+j.ID, nil).wantError(t, http.StatusNotFound, "NOT_FOUND")
	var limits map[string]struct{ Max, Remaining int }
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK).decode(t, &limits)
	if l := limits["DailyBulkApiBatches"]; l.Remaining != 15000 {
		t.Errorf("DailyBulkApiBatches after reset: got %+v", l)
	}
}

func readCSV(s string, comma rune) ([][]string, error) {
	r := csv.NewReader(strings.NewReader(s))
	r.Comma = comma
	return r.ReadAll()
}
