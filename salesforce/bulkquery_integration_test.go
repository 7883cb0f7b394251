package salesforce_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// Ensure that a query job runs against the fake org: created, polled to
// JobComplete, its records read set by set through Sforce-Locator, then
// deleted; each request one call under the fake's route.
func TestFakeOrg_BulkQuery(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ctx := t.Context()
	var recs []salesforce.Record
	for i := range 7 {
		recs = append(recs, salesforce.Record{"Name": fmt.Sprintf("Account %02d", i), "Source_Id__c": fmt.Sprintf("S%d", i)})
	}
	recs[3]["Name"] = "Comma, \"quote\""
	if _, err := c.CreateMany(ctx, "Account", recs, true); err != nil {
		t.Fatal(err)
	}
	before := org.Stats().APICalls
	obs.calls = nil

	j, err := c.CreateQueryJob(ctx, salesforce.BulkQuery, "SELECT Id, Name, Source_Id__c, NumberOfEmployees FROM Account")
	if err != nil || j.State != salesforce.JobStateUploadComplete || !strings.HasPrefix(j.ID, "750") {
		t.Fatalf("CreateQueryJob: %+v, %v", j, err)
	}
	done, err := c.WaitQueryJob(ctx, j.ID, time.Millisecond, nil)
	if err != nil || done.State != salesforce.JobStateJobComplete || done.Processed != 7 {
		t.Fatalf("WaitQueryJob: %+v, %v", done, err)
	}
	var names []string
	for rec, err := range c.QueryJobRecords(ctx, j.ID, 3) {
		if err != nil {
			t.Fatalf("QueryJobRecords: %v", err)
		}
		if rec["NumberOfEmployees"] != "" || len(rec["Id"]) != 18 || !strings.HasPrefix(rec["Source_Id__c"], "S") {
			t.Errorf("record: got %v", rec)
		}
		names = append(names, rec["Name"])
	}
	want := []string{"Account 00", "Account 01", "Account 02", "Comma, \"quote\"", "Account 04", "Account 05", "Account 06"}
	if !slices.Equal(names, want) {
		t.Errorf("names: got %q, want %q", names, want)
	}
	if err := c.DeleteQueryJob(ctx, j.ID); err != nil {
		t.Fatalf("DeleteQueryJob: %v", err)
	}
	wantRoutes := []string{"POST /jobs/query 200", "GET /jobs/query/{id} 200", "GET /jobs/query/{id}/results 200",
		"GET /jobs/query/{id}/results 200", "GET /jobs/query/{id}/results 200", "DELETE /jobs/query/{id} 204"}
	if got := obs.routes(); !slices.Equal(got, wantRoutes) {
		t.Errorf("routes: got %v, want %v", got, wantRoutes)
	}
	if got := org.Stats().APICalls - before; got != len(wantRoutes) {
		t.Errorf("fake's API calls: got %d, want %d", got, len(wantRoutes))
	}

	// A deleted job is NotFound, a permanent failure.
	_, err = c.QueryJob(ctx, j.ID)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || salesforce.Classify(err) != salesforce.Permanent {
		t.Errorf("QueryJob after delete: got %v (%v)", err, salesforce.Classify(err))
	}
}

// Ensure that a refused query and an aborted job come back as typed errors
// the engine's classification understands.
func TestFakeOrg_BulkQueryFailures(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{BulkProcessingDelay: time.Hour})
	c := fakeClient(t, ts.URL, nil)
	ctx := t.Context()

	_, err := c.CreateQueryJob(ctx, salesforce.BulkQuery, "SELECT Nope__c FROM Account")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "INVALID_FIELD" || salesforce.Classify(err) != salesforce.Permanent {
		t.Errorf("bad field: got %v (%v)", err, salesforce.Classify(err))
	}
	if _, err := c.CreateQueryJob(ctx, "delete", "SELECT Id FROM Account"); !errors.Is(err, salesforce.ErrInvalidRequest) {
		t.Errorf("bad operation: got %v", err)
	}

	j, err := c.CreateQueryJob(ctx, salesforce.BulkQueryAll, "SELECT Id FROM Account")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.QueryJob(ctx, j.ID); err != nil || got.State != salesforce.JobStateInProgress {
		t.Fatalf("QueryJob: %+v, %v", got, err)
	}
	_, err = c.QueryJobResults(ctx, j.ID, "", 10)
	if !errors.As(err, &apiErr) || apiErr.Code != "INVALIDJOBSTATE" {
		t.Errorf("results of a running job: got %v", err)
	}
	aborted, err := c.AbortQueryJob(ctx, j.ID)
	if err != nil || aborted.State != salesforce.JobStateAborted {
		t.Fatalf("AbortQueryJob: %+v, %v", aborted, err)
	}
	if done, err := c.WaitQueryJob(ctx, j.ID, time.Millisecond, nil); err != nil || done.State != salesforce.JobStateAborted {
		t.Errorf("WaitQueryJob of an aborted job: %+v, %v", done, err)
	}
	if err := c.DeleteQueryJob(ctx, j.ID); err != nil {
		t.Errorf("DeleteQueryJob: %v", err)
	}
}
