package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// Ensure that a 10,000-record upsert job with rejected and locked records
// gives one result per input, matched back by the external ID column, and
// that the client's route templates are the fake's.
func TestBulk_Upsert10000(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{RejectName: "^Reject", LockRate: 0.02, Seed: 3})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()
	if _, err := org.InsertAccount(fakeorg.Record{"Name": "Parent", "Source_Id__c": "P"}, time.Time{}); err != nil {
		t.Fatal(err)
	}

	const n = 10000
	records := make([]salesforce.Record, n)
	rejected := map[string]bool{}
	for i := range records {
		key := fmt.Sprintf("K%05d", i)
		name := fmt.Sprintf("Account %d, \"quoted\"", i)
		if i%97 == 0 {
			name = "Reject " + name
			rejected[key] = true
		}
		records[i] = salesforce.Record{"Source_Id__c": key, "Name": name, "NumberOfEmployees": json.Number(fmt.Sprint(i)),
			"Parent": map[string]any{"Source_Id__c": "P"}, "Phone": nil}
	}
	data, err := salesforce.EncodeCSV(salesforce.CSVColumns(records), records)
	if err != nil {
		t.Fatal(err)
	}
	before := org.Stats().APICalls

	job, err := c.CreateIngestJob(ctx, "Account", salesforce.BulkUpsert, "Source_Id__c")
	if err != nil || job.State != salesforce.JobStateOpen || !strings.HasPrefix(job.ID, "750") || job.ExternalIDField != "Source_Id__c" {
		t.Fatalf("CreateIngestJob: got %+v, %v", job, err)
	}
	if err := c.UploadJobData(ctx, job.ID, data); err != nil {
		t.Fatalf("UploadJobData: %v", err)
	}
	closed, err := c.CloseJob(ctx, job.ID)
	if err != nil || closed.State != salesforce.JobStateUploadComplete {
		t.Fatalf("CloseJob: got %+v, %v", closed, err)
	}
	polls := 0
	done, err := c.WaitJob(ctx, job.ID, 5*time.Millisecond, func(*salesforce.BulkJob) { polls++ })
	if err != nil || done.State != salesforce.JobStateJobComplete || done.Processed != n {
		t.Fatalf("WaitJob: got %+v, %v", done, err)
	}
	ok, failed, unprocessed, err := c.JobResults(ctx, job.ID)
	if err != nil {
		t.Fatalf("JobResults: %v", err)
	}
	calls := org.Stats().APICalls - before
	t.Logf("%d records: %d ok, %d failed, %d API calls (%d polls): %.0f records per call",
		n, len(ok), len(failed), calls, polls, float64(n)/float64(calls))
	if calls != 6+polls {
		t.Errorf("API calls: got %d, want create+upload+close+%d polls+3 results", calls, polls)
	}

	seen := map[string]int{}
	locked := 0
	for _, r := range ok {
		key := r.Row["Source_Id__c"]
		seen[key]++
		if !r.Created || !salesforce.ValidID(r.ID) || r.Error != nil || rejected[key] {
			t.Fatalf("successful row: got %+v", r)
		}
	}
	for _, r := range failed {
		key := r.Row["Source_Id__c"]
		seen[key]++
		switch {
		case r.Error == nil:
			t.Fatalf("failed row without error: %+v", r)
		case rejected[key]:
			if r.Error.Code != "FIELD_CUSTOM_VALIDATION_EXCEPTION" || r.Error.Class("Source_Id__c") != salesforce.Permanent {
				t.Errorf("rejected %s: got %+v", key, r.Error)
			}
		case r.Error.Code == salesforce.CodeUnableToLockRow:
			locked++
			if r.Error.Class("Source_Id__c") != salesforce.Transient {
				t.Errorf("lock is not transient: %+v", r.Error)
			}
		default:
			t.Errorf("unexpected failure %s: %+v", key, r.Error)
		}
	}
	if len(unprocessed) != 0 {
		t.Errorf("unprocessed: got %d", len(unprocessed))
	}
	if locked == 0 || done.Failed != len(failed) {
		t.Errorf("locked %d, failed %d, job says %d", locked, len(failed), done.Failed)
	}
	for i := range n {
		if key := fmt.Sprintf("K%05d", i); seen[key] != 1 {
			t.Fatalf("%s: %d results, want 1", key, seen[key])
		}
	}
	if len(seen) != n {
		t.Errorf("results for %d keys, want %d", len(seen), n)
	}
	// The values made the round trip.
	for _, a := range org.Accounts() {
		if a["Source_Id__c"] == "K00001" && (a["Name"] != `Account 1, "quoted"` || a["NumberOfEmployees"] != 1 || a["ParentId"] == nil) {
			t.Errorf("K00001: got %v", a)
		}
	}

	// Client route templates are the fake's stats keys.
	stats := org.Stats().ByRoute
	for _, ci := range obs.calls {
		if strings.Contains(ci.Route, "/jobs/") && stats[ci.Route] == 0 {
			t.Errorf("client route %q is not a fake route (%v)", ci.Route, stats)
		}
	}
	if err := c.DeleteJob(ctx, job.ID); err != nil {
		t.Errorf("DeleteJob: %v", err)
	}
}

// Ensure that an insert job reports created records, and that the job's
// errors come back parsed.
func TestBulk_Insert(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()
	recs := []salesforce.Record{{"Name": "A", "Description": "line 1\nline 2"}, {"Description": "no name"}}
	data, err := salesforce.EncodeCSV([]string{"Name", "Description"}, recs)
	if err != nil {
		t.Fatal(err)
	}
	job, err := c.CreateIngestJob(ctx, "Account", salesforce.BulkInsert, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, data); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	done, err := c.WaitJob(ctx, job.ID, time.Millisecond, nil)
	if err != nil || done.State != salesforce.JobStateJobComplete || done.Processed != 2 || done.Failed != 1 {
		t.Fatalf("WaitJob: got %+v, %v", done, err)
	}
	ok, failed, _, err := c.JobResults(ctx, job.ID)
	if err != nil || len(ok) != 1 || len(failed) != 1 {
		t.Fatalf("JobResults: %v %v %v", ok, failed, err)
	}
	if !ok[0].Created || ok[0].Row["Description"] != "line 1\nline 2" {
		t.Errorf("ok: got %+v", ok[0])
	}
	want := salesforce.RecordError{Code: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [Name]", Fields: []string{"Name"}}
	if e := failed[0].Error; e == nil || e.Code != want.Code || e.Message != want.Message || strings.Join(e.Fields, ",") != "Name" {
		t.Errorf("failed: got %+v, want %+v", failed[0].Error, want)
	}
	if failed[0].ID != "" || failed[0].Row["Name"] != "" {
		t.Errorf("failed row: got %+v", failed[0])
	}
}

// Ensure that an aborted job ends Aborted with its rows unprocessed, and
// that an upload to a closed job is refused.
func TestBulk_AbortAndClosed(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()
	data, _ := salesforce.EncodeCSV([]string{"Name"}, []salesforce.Record{{"Name": "A"}, {"Name": "B"}})

	job, err := c.CreateIngestJob(ctx, "Account", salesforce.BulkInsert, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, data); err != nil {
		t.Fatal(err)
	}
	aborted, err := c.AbortJob(ctx, job.ID)
	if err != nil || aborted.State != salesforce.JobStateAborted || !aborted.Done() {
		t.Fatalf("AbortJob: got %+v, %v", aborted, err)
	}
	done, err := c.WaitJob(ctx, job.ID, time.Millisecond, nil)
	if err != nil || done.State != salesforce.JobStateAborted {
		t.Fatalf("WaitJob: got %+v, %v", done, err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err == nil {
		t.Errorf("closing an aborted job: no error")
	}

	job, err = c.CreateIngestJob(ctx, "Account", salesforce.BulkInsert, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, data); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	err = c.UploadJobData(ctx, job.ID, data)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "INVALIDJOBSTATE" ||
		apiErr.Route != "PUT /jobs/ingest/{id}/batches" || salesforce.Classify(err) != salesforce.Permanent {
		t.Errorf("upload to a closed job: got %v", err)
	}

	// Refused before any call.
	for _, tc := range []struct{ op, ext string }{{"merge", ""}, {"upsert", ""}, {"insert", "Source_Id__c"}} {
		if _, err := c.CreateIngestJob(ctx, "Account", tc.op, tc.ext); !errors.Is(err, salesforce.ErrInvalidRequest) {
			t.Errorf("CreateIngestJob(%q, %q): got %v", tc.op, tc.ext, err)
		}
	}
	// Refused by the org.
	_, err = c.CreateIngestJob(ctx, "Contact", salesforce.BulkInsert, "")
	if !errors.As(err, &apiErr) || apiErr.Code != "INVALIDJOB" {
		t.Errorf("CreateIngestJob(Contact): got %v", err)
	}
	if _, err := c.Job(ctx, salesforce.ID18("750000000000XYZ")); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("Job(unknown): got %v", err)
	}
}

// Ensure that WaitJob polls while the job is InProgress and that it stops
// on the end of its ctx.
func TestBulk_WaitJobPolls(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	org, ts := startFakeOrg(t, fakeorg.Config{Now: clock.Now, BulkProcessingDelay: time.Minute})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()
	data, _ := salesforce.EncodeCSV([]string{"Name"}, []salesforce.Record{{"Name": "A"}})
	job, err := c.CreateIngestJob(ctx, "Account", salesforce.BulkInsert, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, data); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}

	// The delay is on the org's clock, which stands still: ctx ends first.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	last, err := c.WaitJob(short, job.ID, 5*time.Millisecond, nil)
	if !errors.Is(err, context.DeadlineExceeded) || last == nil || last.Done() {
		t.Fatalf("WaitJob on a short ctx: got %+v, %v", last, err)
	}

	// The first poll sees the job in progress; then the org's clock passes
	// the processing delay.
	var states []string
	done, err := c.WaitJob(ctx, job.ID, 5*time.Millisecond, func(j *salesforce.BulkJob) {
		states = append(states, j.State)
		if len(states) == 1 {
			clock.Advance(time.Minute)
		}
	})
	if err != nil || done.State != salesforce.JobStateJobComplete {
		t.Fatalf("WaitJob: got %+v, %v", done, err)
	}
	if len(states) < 2 || states[0] != salesforce.JobStateInProgress && states[0] != salesforce.JobStateUploadComplete ||
		states[len(states)-1] != salesforce.JobStateJobComplete {
		t.Errorf("polled states: got %v", states)
	}
	if n := len(org.Accounts()); n != 1 {
		t.Errorf("accounts: got %d", n)
	}
}

// Ensure that WaitJob polls through transient failures.
func TestBulk_WaitJobTransient(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()
	data, _ := salesforce.EncodeCSV([]string{"Name"}, []salesforce.Record{{"Name": "A"}})
	job, err := c.CreateIngestJob(ctx, "Account", salesforce.BulkInsert, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, data); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	one := 1.0
	if err := org.Configure(fakeorg.ConfigPatch{FailRate: &one}); err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitJob(ctx, job.ID, time.Millisecond, nil)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != salesforce.CodeServerUnavailable {
		t.Fatalf("WaitJob with every poll failing: got %v", err)
	}
	if got := org.Stats().ByRoute["GET /jobs/ingest/{id}"]; got != 5 {
		t.Errorf("polls: got %d, want 5", got)
	}
}

func TestEncodeCSV(t *testing.T) {
	when := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.FixedZone("x", 3600))
	tests := []struct {
		name    string
		fields  []string
		records []salesforce.Record
		want    string
		wantErr bool
	}{
		{"plain", []string{"Name", "Phone"}, []salesforce.Record{{"Name": "Acme", "Phone": "555"}}, "Name,Phone\nAcme,555\n", false},
		{"quotes commas newlines", []string{"Name", "Description"},
			[]salesforce.Record{{"Name": `Say "hi", please`, "Description": "a\nb\r\nc"}},
			"Name,Description\n\"Say \"\"hi\"\", please\",\"a\nb\r\nc\"\n", false},
		{"leading space quoted", []string{"Name"}, []salesforce.Record{{"Name": " x"}}, "Name\n\" x\"\n", false},
		{"null, empty and missing", []string{"Name", "Phone", "Fax"}, []salesforce.Record{{"Name": "A", "Phone": nil, "Fax": ""}, {"Name": "B"}},
			"Name,Phone,Fax\nA,#N/A,#N/A\nB,,\n", false},
		{"numbers bools times", []string{"A", "B", "C", "D", "E", "F"},
			[]salesforce.Record{{"A": json.Number("12.50"), "B": 3.25, "C": 7, "D": true, "E": int64(-9), "F": when}},
			"A,B,C,D,E,F\n12.50,3.25,7,true,-9,2026-03-04T04:06:07.008Z\n", false},
		{"big float not exponent", []string{"A"}, []salesforce.Record{{"A": 1e21}}, "A\n1000000000000000000000\n", false},
		{"nested reference", []string{"Name", "Parent.Source_Id__c"},
			[]salesforce.Record{{"Name": "C", "Parent": map[string]any{"Source_Id__c": "P,1"}}, {"Name": "D", "Parent": nil}, {"Name": "E"}},
			"Name,Parent.Source_Id__c\nC,\"P,1\"\nD,#N/A\nE,\n", false},
		{"attributes ignored", []string{"Name"}, []salesforce.Record{{"Name": "A", "attributes": map[string]any{"type": "Account"}}}, "Name\nA\n", false},
		{"no records", []string{"Name"}, nil, "Name\n", false},
		{"key without column", []string{"Name"}, []salesforce.Record{{"Name": "A", "Phone": "1"}}, "", true},
		{"map in a plain column", []string{"Parent"}, []salesforce.Record{{"Parent": map[string]any{"X": "1"}}}, "", true},
		{"reference not a map", []string{"Parent.X"}, []salesforce.Record{{"Parent": "p"}}, "", true},
		{"slice", []string{"A"}, []salesforce.Record{{"A": []any{1}}}, "", true},
		{"NaN", []string{"A"}, []salesforce.Record{{"A": nanValue()}}, "", true},
		{"bad column", []string{"Na me"}, nil, "", true},
		{"duplicate column", []string{"Name", "name"}, nil, "", true},
		{"no columns", nil, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := salesforce.EncodeCSV(tt.fields, tt.records)
			if tt.wantErr {
				if !errors.Is(err, salesforce.ErrInvalidRequest) {
					t.Errorf("got %q, %v, want ErrInvalidRequest", got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestCSVColumns(t *testing.T) {
	got := salesforce.CSVColumns([]salesforce.Record{
		{"Name": "A", "attributes": map[string]any{"type": "Account"}, "Parent": map[string]any{"Source_Id__c": "P"}},
		{"Phone": nil, "Name": "B"},
	})
	if strings.Join(got, ",") != "Name,Parent.Source_Id__c,Phone" {
		t.Errorf("got %v", got)
	}
}

func TestParseBulkError(t *testing.T) {
	tests := []struct {
		in                  string
		code, msg, fieldsCS string
	}{
		{"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --", "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", "Name"},
		{"INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--", "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ""},
		{"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Industry:Industry:--", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value for restricted picklist field: Industry:Industry", ""},
		{"X_Y:two fields:Name, Phone --", "X_Y", "two fields", "Name,Phone"},
		{"FIELD_CUSTOM_VALIDATION_EXCEPTION:Custom validation rule violated.", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Custom validation rule violated.", ""},
		{"something broke", "UNKNOWN_ERROR", "something broke", ""},
	}
	for _, tt := range tests {
		e := salesforce.ParseBulkError(tt.in)
		if e == nil || e.Code != tt.code || e.Message != tt.msg || strings.Join(e.Fields, ",") != tt.fieldsCS {
			t.Errorf("ParseBulkError(%q): got %+v", tt.in, e)
		}
	}
	if salesforce.ParseBulkError("") != nil {
		t.Errorf("empty: not nil")
	}
}

func TestParseBulkResults(t *testing.T) {
	got, err := salesforce.ParseBulkResults([]byte("\"sf__Id\",\"sf__Created\",Name,Source_Id__c\r\n\"001\",\"true\",\"A, Inc.\",\"K1\"\r\n"))
	if err != nil || len(got) != 1 || got[0].ID != "001" || !got[0].Created || got[0].Row["Name"] != "A, Inc." || len(got[0].Row) != 2 {
		t.Errorf("got %+v, %v", got, err)
	}
	if got, err := salesforce.ParseBulkResults(nil); err != nil || got != nil {
		t.Errorf("empty: got %v, %v", got, err)
	}
	if _, err := salesforce.ParseBulkResults([]byte("a,b\n1\n")); err == nil {
		t.Errorf("short row: no error")
	}
}

func FuzzParseBulkResults(f *testing.F) {
	for _, s := range []string{
		"\"sf__Id\",\"sf__Created\",Name\n\"001\",\"true\",\"A\"\n",
		"\"sf__Id\",\"sf__Error\",Name\n\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --\",\"\"\n",
		"\"sf__Id\",\"sf__Error\",Id\n\"001\",\"INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--\",\"001\"\r\n",
		"Name\n\"multi\nline\"\n", "", "\"", "a,b\n1\n", "sf__Error\n:--\n", "sf__Error\nX:a:b, c --\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := salesforce.ParseBulkResults(data)
		if err != nil {
			if res != nil {
				t.Fatalf("error %v with results", err)
			}
			return
		}
		for _, r := range res {
			if r.Row == nil {
				t.Fatalf("nil Row")
			}
			if e := r.Error; e != nil && (e.Code == "" || e.Fields == nil) {
				t.Fatalf("error without code or fields: %+v", e)
			}
		}
	})
}

// Job results are CSV: the client asks for text/csv, as Salesforce's docs
// and other clients do.
func TestJobResultsAcceptCSV(t *testing.T) {
	var accepts []string
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		accepts = append(accepts, r.Header.Get("Accept"))
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte("\"sf__Id\",\"sf__Created\",Name\n"))
	})
	c := o.client(t, nil)
	if _, _, _, err := c.JobResults(t.Context(), "750000000000001AAA"); err != nil {
		t.Fatal(err)
	}
	if len(accepts) != 3 {
		t.Fatalf("%d result requests, want 3", len(accepts))
	}
	for _, a := range accepts {
		if a != "text/csv" {
			t.Errorf("Accept = %q, want text/csv", a)
		}
	}
}
