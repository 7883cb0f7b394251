package salesforce_test

import (
	"errors"
	"testing"

	"orgsync/salesforce"
)

// The seed's Apex REST endpoint answers with its own wrapper and no
// Salesforce error codes: each answer maps to a code and a class.
func TestParseApexAccountResponse(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantID    string
		wantCode  string
		wantClass salesforce.Class
	}{
		{"created", 201, `{"success":true,"accountId":"001000000000001AAA","accountName":"Acme","message":"Account created successfully"}`, "001000000000001AAA", "", 0},
		{"created without an id", 201, `{"success":true}`, "", salesforce.CodeApexUnexpected, salesforce.Transient},
		{"bad request", 400, `{"success":false,"message":"Name is required"}`, "", salesforce.CodeApexBadRequest, salesforce.Permanent},
		{"validation rule", 500, `{"success":false,"message":"Database error: FIELD_CUSTOM_VALIDATION_EXCEPTION, no"}`, "", salesforce.CodeApexDMLError, salesforce.Permanent},
		{"row lock", 500, `{"success":false,"message":"Database error: UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record"}`, "", salesforce.CodeUnableToLockRow, salesforce.Transient},
		{"unexpected", 500, `{"success":false,"message":"Unexpected error: System.NullPointerException"}`, "", salesforce.CodeApexUnexpected, salesforce.Transient},
		{"platform 503 page", 503, `<html>down</html>`, "", salesforce.CodeApexUnexpected, salesforce.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := salesforce.ParseApexAccountResponse(tt.status, []byte(tt.body))
			if id != tt.wantID {
				t.Errorf("id = %q, want %q", id, tt.wantID)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ae *salesforce.APIError
			if !errors.As(err, &ae) || ae.Code != tt.wantCode {
				t.Fatalf("err = %v, want code %s", err, tt.wantCode)
			}
			if got := salesforce.Classify(err); got != tt.wantClass {
				t.Errorf("class = %v, want %v", got, tt.wantClass)
			}
		})
	}
}
