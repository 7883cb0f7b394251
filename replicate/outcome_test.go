package replicate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"

	"orgsync/salesforce"
)

// Every row of the failure table: a record's class, its deliveries and
// whether it is a link decide one action.
func TestDecide(t *testing.T) {
	const max = 5
	tests := []struct {
		c         class
		delivered int
		link      bool
		want      action
	}{
		{classNone, 1, false, actAck},
		{classNone, 9, true, actAck},
		{classTransient, 1, false, actRetryLater},
		{classTransient, 4, false, actRetryLater},
		{classTransient, 5, false, actDeadLetter}, // failed on its last delivery
		{classAuth, 5, false, actHandBack},        // never dead-lettered, whatever the count
		{classUnreachable, 1, false, actHandBack},
		{classBudget, 1, false, actHold},
		{classBudget, 50, false, actHold}, // a pause of any length dead-letters nothing
		{classConfig, 50, false, actHold},
		{classPermanent, 1, false, actDeadLetter},
		{classParentMissing, 1, false, actLinkLater},
		{classParentMissing, 9, false, actLinkLater}, // a created record never waits for its parent
		{classParentMissing, 1, true, actRetryLater}, // a link waits for it
		{classParentMissing, 5, true, actDeadLetter}, // … until -max-deliver: PARENT_MISSING
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/link=%v", tt.c, tt.delivered, tt.link), func(t *testing.T) {
			if got := decide(tt.c, tt.delivered, max, tt.link); got != tt.want {
				t.Errorf("decide = %v, want %v", got, tt.want)
			}
		})
	}
}

// Every row of the whole-call table. A Bulk job is never split: a job that
// fails as a whole falls back to collections calls.
func TestDecideCall(t *testing.T) {
	tests := []struct {
		c       class
		records int
		bulk    bool
		want    callAction
	}{
		{classTransient, 200, false, callPerRecord},
		{classTransient, 5000, true, callFallBack},
		{classAuth, 200, false, callHandBack},
		{classAuth, 5000, true, callHandBack},
		{classUnreachable, 200, false, callHandBack},
		{classBudget, 200, false, callHold},
		{classBudget, 5000, true, callHold},
		{classConfig, 200, false, callHold},
		{classConfig, 5000, true, callHold}, // INVALIDJOB: pause, do not bisect into more jobs
		{classPermanent, 200, false, callSplit},
		{classPermanent, 1, false, callPerRecord},
		{classPermanent, 5000, true, callFallBack},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/bulk=%v", tt.c, tt.records, tt.bulk), func(t *testing.T) {
			if got := decideCall(tt.c, tt.records, tt.bulk); got != tt.want {
				t.Errorf("decideCall = %v, want %v", got, tt.want)
			}
		})
	}
}

// classOf: the salesforce package's classes plus orgsync's own.
func TestClassOf(t *testing.T) {
	netErr := &url.Error{Op: "Post", URL: "https://x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	tests := []struct {
		name string
		err  error
		want class
	}{
		{"nil", nil, classNone},
		{"over budget", fmt.Errorf("%w: 81 of 100", errOverBudget), classBudget},
		{"daily limit", &salesforce.APIError{StatusCode: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded."}, classBudget},
		{"concurrent limit", &salesforce.APIError{StatusCode: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "ConcurrentPerOrgLongTxn Limit exceeded."}, classTransient},
		{"missing field", &salesforce.APIError{StatusCode: 404, Code: "NOT_FOUND", Message: "Provided external ID field does not exist or is not accessible: X__c"}, classConfig},
		{"bulk job refused", &salesforce.APIError{StatusCode: 400, Code: "INVALIDJOB", Message: "InvalidJob : Field name provided, X__c does not match an External ID for Account"}, classConfig},
		{"redirect", &salesforce.RedirectError{Method: "PATCH", URL: "https://a", Location: "https://b"}, classConfig},
		{"bad credentials", &salesforce.AuthError{StatusCode: 400, Code: "invalid_client"}, classAuth},
		{"network", netErr, classTransient}, // unreachable only for a whole call: see writeAndSettle
		{"missing parent", &salesforce.RecordError{Code: "INVALID_FIELD", Message: "Foreign key external ID: 001x not found for field Source_Id__c in entity Account"}, classParentMissing},
		{"validation", &salesforce.RecordError{Code: "FIELD_CUSTOM_VALIDATION_EXCEPTION", Message: "no"}, classPermanent},
		{"bulk job failed", fmt.Errorf("%w: Failed", errBulkJobFailed), classTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classOf(tt.err); got != tt.want {
				t.Errorf("classOf = %v, want %v", got, tt.want)
			}
		})
	}
	if !salesforce.IsNetwork(netErr) {
		t.Error("IsNetwork(connection refused) = false")
	}
}

// An upsert race on the external ID field is transient; a duplicate on any
// other field is permanent.
func TestRecordFailure(t *testing.T) {
	race := &salesforce.RecordError{Code: "DUPLICATE_VALUE", Message: "duplicate value found: Source_Id__c duplicates value on record with id: 001x", Fields: []string{"Source_Id__c"}}
	if o := recordFailure(race, "Source_Id__c"); o.class != classTransient || o.code != "DUPLICATE_VALUE" {
		t.Errorf("race: %+v", o)
	}
	dup := &salesforce.RecordError{Code: "DUPLICATE_VALUE", Message: "duplicate value found: AccountNumber duplicates value on record with id: 001x", Fields: []string{"AccountNumber"}}
	if o := recordFailure(dup, "Source_Id__c"); o.class != classPermanent {
		t.Errorf("duplicate: %+v", o)
	}
}
