package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"reflect"
	"syscall"
	"testing"

	"orgsync/salesforce"
)

const lockMessage = "unable to obtain exclusive access to this record or 1 records: 001R00000033I6AIAU"

// Every code of reference §6, the ambiguous cases of the issue, and the
// non-API errors, each with the class docs/failures.md gives it.
func TestClassify_APIErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		code    string
		message string
		fields  []string
		raw     string
		want    salesforce.Class
	}{
		// Transient.
		{name: "lock", status: 400, code: "UNABLE_TO_LOCK_ROW", message: lockMessage, want: salesforce.Transient},
		{name: "lock wrapped in a flow trigger error", status: 400, code: "CANNOT_EXECUTE_FLOW_TRIGGER",
			message: "The record couldn’t be saved because it failed to trigger a flow. A flow trigger failed to execute the flow with version ID 301. Flow error messages: UNABLE_TO_LOCK_ROW, " + lockMessage, want: salesforce.Transient},
		{name: "lock wrapped without the code", status: 400, code: "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
			message: "AccountTrigger: execution of AfterInsert caused by: System.DmlException: Update failed. Unable to obtain exclusive access to this record", want: salesforce.Transient},
		{name: "server unavailable", status: 503, code: "SERVER_UNAVAILABLE", message: "Server temporarily unavailable", want: salesforce.Transient},
		{name: "concurrent requests", status: 403, code: "REQUEST_LIMIT_EXCEEDED", message: "ConcurrentRequests (Concurrent API Requests) Limit exceeded.", want: salesforce.Transient},
		{name: "concurrent long apex", status: 403, code: "REQUEST_LIMIT_EXCEEDED", message: "ConcurrentPerOrgLongTxn Limit exceeded", want: salesforce.Transient},
		{name: "all or none rolled back", status: 400, code: "ALL_OR_NONE_OPERATION_ROLLED_BACK",
			message: "Record rolled back because not all records were valid and the request was using AllOrNone header", want: salesforce.Transient},
		{name: "processing halted", status: 400, code: "PROCESSING_HALTED",
			message: "The transaction was rolled back since another operation in the same transaction failed.", want: salesforce.Transient},
		{name: "query timeout", status: 400, code: "QUERY_TIMEOUT", message: "Your query request was running for too long.", want: salesforce.Transient},
		{name: "html 503", status: 503, raw: "<html><body>Maintenance</body></html>", message: "unexpected HTML response", want: salesforce.Transient},
		{name: "html 405 after a bad redirect", status: 405, raw: "<!DOCTYPE html><html></html>", message: "unexpected HTML response", want: salesforce.Transient},
		{name: "empty 502", status: 502, message: "Bad Gateway", want: salesforce.Transient},
		{name: "empty 504", status: 504, message: "Gateway Timeout", want: salesforce.Transient},
		{name: "unknown exception 500", status: 500, code: "UNKNOWN_EXCEPTION", message: "An unexpected error occurred.", want: salesforce.Transient},
		{name: "unknown code 5xx", status: 500, code: "APEX_ERROR", message: "System.NullPointerException", want: salesforce.Transient},
		{name: "429", status: 429, want: salesforce.Transient},

		// Budget.
		{name: "daily limit", status: 403, code: "REQUEST_LIMIT_EXCEEDED", message: "TotalRequests Limit exceeded.", want: salesforce.Budget},

		// Auth.
		{name: "session expired", status: 401, code: "INVALID_SESSION_ID", message: "Session expired or invalid", want: salesforce.AuthFailure},
		{name: "session not valid for REST", status: 401, code: "INVALID_SESSION_ID", message: "This session is not valid for use with the REST API", want: salesforce.AuthFailure},
		{name: "bare 401", status: 401, want: salesforce.AuthFailure},

		// Permanent.
		{name: "required field", status: 400, code: "REQUIRED_FIELD_MISSING", message: "Required fields are missing: [Name]", fields: []string{"Name"}, want: salesforce.Permanent},
		{name: "duplicate on another field", status: 400, code: "DUPLICATE_VALUE", message: "duplicate value found: AccountNumber duplicates value on record with id: 001R00000033I6A", want: salesforce.Permanent},
		{name: "duplicates detected", status: 400, code: "DUPLICATES_DETECTED", message: "Use one of these records?", want: salesforce.Permanent},
		{name: "validation rule", status: 400, code: "FIELD_CUSTOM_VALIDATION_EXCEPTION", message: "Phone is required for customers", want: salesforce.Permanent},
		{name: "invalid field", status: 400, code: "INVALID_FIELD", message: "No such column 'Foo__c' on sobject of type Account", want: salesforce.Permanent},
		{name: "missing parent", status: 400, code: "INVALID_FIELD", message: "Foreign key external ID: SRC-1 not found for field Source_Id__c in entity Account", want: salesforce.Permanent},
		{name: "invalid field for insert update", status: 400, code: "INVALID_FIELD_FOR_INSERT_UPDATE", message: "Unable to create/update fields: CreatedDate.", want: salesforce.Permanent},
		{name: "json parser", status: 400, code: "JSON_PARSER_ERROR", message: "Unexpected character", want: salesforce.Permanent},
		{name: "malformed query", status: 400, code: "MALFORMED_QUERY", message: "unexpected token: FROMM", want: salesforce.Permanent},
		{name: "string too long", status: 400, code: "STRING_TOO_LONG", message: "Account Name: data value too large: xxx (max length=255)", fields: []string{"Name"}, want: salesforce.Permanent},
		{name: "malformed id", status: 400, code: "MALFORMED_ID", message: "Account ID: id value of incorrect type: 001900K0001pPuOAAU", fields: []string{"Id"}, want: salesforce.Permanent},
		{name: "invalid cross reference", status: 400, code: "INVALID_CROSS_REFERENCE_KEY", message: "invalid cross reference id", want: salesforce.Permanent},
		{name: "entity is deleted", status: 404, code: "ENTITY_IS_DELETED", message: "entity is deleted", want: salesforce.Permanent},
		{name: "not found", status: 404, code: "NOT_FOUND", message: "The requested resource does not exist", want: salesforce.Permanent},
		{name: "insufficient access", status: 403, code: "INSUFFICIENT_ACCESS_OR_READONLY", message: "insufficient access rights on object id", want: salesforce.Permanent},
		{name: "insufficient access cross ref", status: 400, code: "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", message: "insufficient access rights on cross-reference id", want: salesforce.Permanent},
		{name: "exceeded id limit", status: 400, code: "EXCEEDED_ID_LIMIT", message: "record limit reached. cannot submit more than 200 records into this call", want: salesforce.Permanent},
		{name: "multiple choices", status: 300, code: "MULTIPLE_CHOICES", message: "the external id matches several records", want: salesforce.Permanent},
		{name: "unknown 4xx code", status: 400, code: "SOMETHING_NEW", message: "whatever", want: salesforce.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &salesforce.APIError{StatusCode: tt.status, Code: tt.code, Message: tt.message, Fields: tt.fields, Raw: tt.raw, Method: "PATCH", Route: "PATCH /sobjects/Account/{id}"}
			if tt.code != "" {
				e.Errors = []salesforce.ErrorItem{{Code: tt.code, Message: tt.message, Fields: tt.fields}}
			}
			if got := salesforce.Classify(e); got != tt.want {
				t.Errorf("Classify(*APIError): got %v, want %v", got, tt.want)
			}
			if got := salesforce.Classify(fmt.Errorf("upsert batch: %w", e)); got != tt.want {
				t.Errorf("Classify(wrapped): got %v, want %v", got, tt.want)
			}
			// The same code as a per-record error (no HTTP status).
			if tt.code == "" || tt.status == 401 || tt.status >= 500 && tt.code == "APEX_ERROR" {
				return
			}
			re := &salesforce.RecordError{Code: tt.code, Message: tt.message, Fields: tt.fields}
			if got := salesforce.ClassifyRecord(re, "Source_Id__c"); got != tt.want {
				t.Errorf("ClassifyRecord: got %v, want %v", got, tt.want)
			}
		})
	}
}

// DUPLICATE_VALUE is an upsert race only on the external ID field.
func TestClassifyRecord_DuplicateValue(t *testing.T) {
	tests := []struct {
		name    string
		message string
		fields  []string
		extID   string
		want    salesforce.Class
	}{
		{name: "on the ext id by message", message: "duplicate value found: Source_Id__c duplicates value on record with id: 001R00000033I6A", extID: "Source_Id__c", want: salesforce.Transient},
		{name: "on the ext id by fields", message: "duplicate value found", fields: []string{"Source_Id__c"}, extID: "Source_Id__c", want: salesforce.Transient},
		{name: "case-insensitive field", message: "duplicate value found: source_id__c duplicates value on record with id: 001R00000033I6A", extID: "Source_Id__C", want: salesforce.Transient},
		{name: "on another field", message: "duplicate value found: AccountNumber duplicates value on record with id: 001R00000033I6A", extID: "Source_Id__c", want: salesforce.Permanent},
		{name: "other field in fields", message: "duplicate value found", fields: []string{"AccountNumber"}, extID: "Source_Id__c", want: salesforce.Permanent},
		{name: "create (no ext id)", message: "duplicate value found: Source_Id__c duplicates value on record with id: 001R00000033I6A", want: salesforce.Permanent},
		{name: "prefix of the field name", message: "duplicate value found: Source_Id__c2 duplicates value on record with id: 1", extID: "Source_Id__c", want: salesforce.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &salesforce.RecordError{Code: "DUPLICATE_VALUE", Message: tt.message, Fields: tt.fields}
			if got := salesforce.ClassifyRecord(e, tt.extID); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := e.Class(tt.extID); got != tt.want {
				t.Errorf("Class: got %v, want %v", got, tt.want)
			}
		})
	}
	if got := salesforce.ClassifyRecord(nil, ""); got != 0 {
		t.Errorf("ClassifyRecord(nil): got %v, want 0", got)
	}
}

func TestClassify_OtherErrors(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want salesforce.Class
	}{
		{name: "nil", err: nil, want: 0},
		{name: "net op error", err: opErr, want: salesforce.Transient},
		{name: "url error", err: &url.Error{Op: "Post", URL: "https://x", Err: opErr}, want: salesforce.Transient},
		{name: "unexpected eof", err: fmt.Errorf("salesforce: x: %w", io.ErrUnexpectedEOF), want: salesforce.Transient},
		{name: "deadline", err: fmt.Errorf("salesforce: x: %w", context.DeadlineExceeded), want: salesforce.Transient},
		{name: "canceled", err: context.Canceled, want: salesforce.Transient},
		{name: "unknown", err: errors.New("something odd"), want: salesforce.Transient},
		{name: "too many records", err: fmt.Errorf("%w (201)", salesforce.ErrTooManyRecords), want: salesforce.Permanent},
		{name: "invalid request", err: salesforce.ErrInvalidRequest, want: salesforce.Permanent},
		{name: "invalid id", err: salesforce.ErrInvalidID, want: salesforce.Permanent},
		{name: "no identity", err: salesforce.ErrNoIdentity, want: salesforce.Permanent},
		{name: "redirect", err: &salesforce.RedirectError{Method: "PATCH", URL: "https://a", Location: "https://b/x"}, want: salesforce.Configuration},
		{name: "missing external ID field", err: &salesforce.APIError{StatusCode: 404, Code: "NOT_FOUND", Message: "Provided external ID field does not exist or is not accessible: Missing_Id__c"}, want: salesforce.Configuration},
		{name: "other 404", err: &salesforce.APIError{StatusCode: 404, Code: "NOT_FOUND", Message: "The requested resource does not exist"}, want: salesforce.Permanent},
		{name: "bulk job refused", err: &salesforce.APIError{StatusCode: 400, Code: "INVALIDJOB", Message: "InvalidJob : Field name not found : Source_Id__c"}, want: salesforce.Configuration},
		{name: "apex bad request", err: &salesforce.APIError{StatusCode: 400, Code: salesforce.CodeApexBadRequest, Message: "Name is required"}, want: salesforce.Permanent},
		{name: "apex dml error", err: &salesforce.APIError{StatusCode: 500, Code: salesforce.CodeApexDMLError, Message: "Database error: x"}, want: salesforce.Permanent},
		{name: "apex unexpected", err: &salesforce.APIError{StatusCode: 500, Code: salesforce.CodeApexUnexpected, Message: "Unexpected error: x"}, want: salesforce.Transient},
		{name: "invalid_grant", err: &salesforce.AuthError{StatusCode: 400, Code: "invalid_grant", Description: "authentication failure"}, want: salesforce.AuthFailure},
		{name: "invalid_client", err: &salesforce.AuthError{StatusCode: 400, Code: "invalid_client", Description: "invalid client credentials"}, want: salesforce.AuthFailure},
		{name: "invalid_client_id", err: &salesforce.AuthError{StatusCode: 400, Code: "invalid_client_id", Description: "client identifier invalid"}, want: salesforce.AuthFailure},
		{name: "token endpoint 503", err: &salesforce.AuthError{StatusCode: 503, Description: "unexpected text/html response"}, want: salesforce.Transient},
		{name: "token endpoint 400 without code", err: &salesforce.AuthError{StatusCode: 400}, want: salesforce.AuthFailure},
		{name: "record error", err: &salesforce.RecordError{Code: "STRING_TOO_LONG"}, want: salesforce.Permanent},
		{name: "record lock", err: &salesforce.RecordError{Code: "UNABLE_TO_LOCK_ROW"}, want: salesforce.Transient},
		{name: "second item is a lock", err: &salesforce.APIError{StatusCode: 400, Code: "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", Message: "x",
			Errors: []salesforce.ErrorItem{{Code: "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", Message: "x"}, {Code: "UNABLE_TO_LOCK_ROW", Message: lockMessage}}}, want: salesforce.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := salesforce.Classify(tt.err); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClass_String(t *testing.T) {
	for c, want := range map[salesforce.Class]string{
		salesforce.Transient: "transient", salesforce.AuthFailure: "auth", salesforce.Budget: "budget",
		salesforce.Permanent: "permanent", 0: "none", 9: "class(9)",
	} {
		if got := c.String(); got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

func TestMissingParent(t *testing.T) {
	const msg = "Foreign key external ID: SRC 001/AAA not found for field Source_Id__c in entity Account"
	tests := []struct {
		name      string
		err       error
		wantValue string
		wantField string
		wantOK    bool
	}{
		{name: "record error", err: &salesforce.RecordError{Code: "INVALID_FIELD", Message: msg}, wantValue: "SRC 001/AAA", wantField: "Source_Id__c", wantOK: true},
		{name: "api error", err: &salesforce.APIError{StatusCode: 400, Code: "INVALID_FIELD", Message: msg,
			Errors: []salesforce.ErrorItem{{Code: "INVALID_FIELD", Message: msg}}}, wantValue: "SRC 001/AAA", wantField: "Source_Id__c", wantOK: true},
		{name: "api error second item", err: &salesforce.APIError{StatusCode: 400, Code: "X", Message: "y",
			Errors: []salesforce.ErrorItem{{Code: "X", Message: "y"}, {Code: "INVALID_FIELD", Message: msg}}}, wantValue: "SRC 001/AAA", wantField: "Source_Id__c", wantOK: true},
		{name: "wrapped", err: fmt.Errorf("record 3: %w", &salesforce.RecordError{Code: "INVALID_FIELD", Message: msg}), wantValue: "SRC 001/AAA", wantField: "Source_Id__c", wantOK: true},
		{name: "other invalid field", err: &salesforce.RecordError{Code: "INVALID_FIELD", Message: "No such column 'Foo' on sobject of type Account"}},
		{name: "nil", err: nil},
		{name: "plain", err: errors.New(msg[:20])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, f, ok := salesforce.MissingParent(tt.err)
			if v != tt.wantValue || f != tt.wantField || ok != tt.wantOK {
				t.Errorf("got %q %q %v, want %q %q %v", v, f, ok, tt.wantValue, tt.wantField, tt.wantOK)
			}
		})
	}
}

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   salesforce.APIError
	}{
		{name: "envelope", status: 404, body: `[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]`,
			want: salesforce.APIError{StatusCode: 404, Code: "ENTITY_IS_DELETED", Message: "entity is deleted", Fields: []string{},
				Errors: []salesforce.ErrorItem{{Code: "ENTITY_IS_DELETED", Message: "entity is deleted", Fields: []string{}}}}},
		{name: "statusCode spelling", status: 400, body: `[{"statusCode":"STRING_TOO_LONG","message":"too long","fields":["Name"]}]`,
			want: salesforce.APIError{StatusCode: 400, Code: "STRING_TOO_LONG", Message: "too long", Fields: []string{"Name"},
				Errors: []salesforce.ErrorItem{{Code: "STRING_TOO_LONG", Message: "too long", Fields: []string{"Name"}}}}},
		{name: "two items", status: 400, body: `[{"message":"a","errorCode":"A"},{"message":"b","errorCode":"B"}]`,
			want: salesforce.APIError{StatusCode: 400, Code: "A", Message: "a",
				Errors: []salesforce.ErrorItem{{Code: "A", Message: "a"}, {Code: "B", Message: "b"}}}},
		{name: "object", status: 400, body: `{"errorCode":"X","message":"y"}`,
			want: salesforce.APIError{StatusCode: 400, Code: "X", Message: "y", Errors: []salesforce.ErrorItem{{Code: "X", Message: "y"}}}},
		{name: "oauth shape", status: 401, body: `{"error":"invalid_token","error_description":"bad"}`,
			want: salesforce.APIError{StatusCode: 401, Code: "invalid_token", Message: "bad", Errors: []salesforce.ErrorItem{{Code: "invalid_token", Message: "bad"}}}},
		{name: "300 urls", status: 300, body: `["/a","/b"]`,
			want: salesforce.APIError{StatusCode: 300, Code: "MULTIPLE_CHOICES", Message: "the external id matches several records: /a, /b"}},
		{name: "html", status: 503, body: "<html>down</html>",
			want: salesforce.APIError{StatusCode: 503, Message: "unexpected HTML response", Raw: "<html>down</html>"}},
		{name: "text", status: 500, body: "oops",
			want: salesforce.APIError{StatusCode: 500, Message: "unexpected non-JSON response", Raw: "oops"}},
		{name: "empty", status: 502, body: "",
			want: salesforce.APIError{StatusCode: 502, Message: "Bad Gateway"}},
		{name: "empty array", status: 400, body: "[]",
			want: salesforce.APIError{StatusCode: 400, Message: "undecodable error body", Raw: "[]"}},
		{name: "array of empties", status: 400, body: "[{}]",
			want: salesforce.APIError{StatusCode: 400, Message: "undecodable error body", Raw: "[{}]"}},
		{name: "broken", status: 400, body: `[{"message":`,
			want: salesforce.APIError{StatusCode: 400, Message: "undecodable error body", Raw: `[{"message":`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := salesforce.ParseAPIError(tt.status, []byte(tt.body))
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&salesforce.APIError{StatusCode: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded.", Method: "GET", Route: "GET /limits"},
			"salesforce: GET /limits: 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."},
		{&salesforce.APIError{StatusCode: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded.", Method: "GET", Route: "/limits"},
			"salesforce: GET /limits: 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."},
		{&salesforce.APIError{StatusCode: 400, Code: "A", Message: "a", Fields: []string{"Name"}, Errors: make([]salesforce.ErrorItem, 3)},
			"salesforce: 400 A: a (fields: Name) (and 2 more)"},
		{&salesforce.AuthError{StatusCode: 400, Code: "invalid_grant", Description: "authentication failure", Flow: "jwt_bearer"},
			"salesforce: token request (jwt_bearer): 400 invalid_grant: authentication failure"},
		{&salesforce.RecordError{Code: "STRING_TOO_LONG", Message: "too long", Fields: []string{"Name"}},
			"salesforce: STRING_TOO_LONG: too long (fields: Name)"},
		{&salesforce.RedirectError{Method: "POST", URL: "https://old.example/services/data/v61.0/composite/sobjects", Location: "https://acme.my.salesforce.com/services/data/v61.0/composite/sobjects"},
			"salesforce: POST https://old.example/services/data/v61.0/composite/sobjects was redirected to https://acme.my.salesforce.com/services/data/v61.0/composite/sobjects; a POST cannot follow a redirect: configure https://acme.my.salesforce.com as the org URL instead"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %v, want %v", got, tt.want)
		}
	}
}

func TestSaveResult_Err(t *testing.T) {
	if err := (salesforce.SaveResult{Success: true}).Err(); err != nil {
		t.Errorf("success: got %v", err)
	}
	if err := (salesforce.SaveResult{}).Err(); err == nil || err.Code != "UNKNOWN_ERROR" {
		t.Errorf("failure without errors: got %v", err)
	}
	r := salesforce.SaveResult{Errors: []salesforce.RecordError{{Code: "A"}, {Code: "B"}}}
	if err := r.Err(); err == nil || err.Code != "A" {
		t.Errorf("first error: got %v", err)
	}
}
