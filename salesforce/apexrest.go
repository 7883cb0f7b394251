package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The seed's custom Apex REST endpoint (ArrifyAccountsApi): one Account per
// call, body {"Name": …}, answer {success, accountId, accountName, message,
// errorDetails} with 201, 400 or 500. It carries no Salesforce error codes,
// so these codes stand for its answers.
const (
	// CodeApexBadRequest: 400, the request was refused (Permanent).
	CodeApexBadRequest = "APEX_BAD_REQUEST"
	// CodeApexDMLError: 500 "Database error: …", a DML failure such as a
	// validation rule (Permanent; a row lock is Transient and carries
	// CodeUnableToLockRow instead).
	CodeApexDMLError = "APEX_DML_ERROR"
	// CodeApexUnexpected: 500 "Unexpected error: …" or any other answer
	// (Transient).
	CodeApexUnexpected = "APEX_UNEXPECTED_ERROR"
)

// ApexAccountResponse is the seed's ArrifyAccountsApi.ResponseWrapper.
type ApexAccountResponse struct {
	Success      bool   `json:"success"`
	AccountID    string `json:"accountId"`
	AccountName  string `json:"accountName"`
	Message      string `json:"message"`
	ErrorDetails string `json:"errorDetails"`
}

// PostApexAccount posts one Account to the seed's Apex REST endpoint at
// path and returns the new record's ID. A failure answer is an *APIError
// whose Code is one of the CodeApex… codes (or CodeUnableToLockRow), so
// Classify gives its class; a call that got no answer returns the
// transport's error.
func (c *Client) PostApexAccount(ctx context.Context, path string, fields map[string]any) (string, error) {
	body, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("%w: apex rest body: %v", ErrInvalidRequest, err)
	}
	resp, err := c.Call(ctx, http.MethodPost, path, body, contentTypeJSON)
	if err != nil {
		return "", err
	}
	return ParseApexAccountResponse(resp.Status, resp.Body)
}

// ParseApexAccountResponse interprets one answer of the seed's endpoint:
// 201 with success and an accountId is the record's ID; 400 is
// CodeApexBadRequest (Permanent); 500 "Database error: …" is
// CodeApexDMLError (Permanent) or, for a row lock, CodeUnableToLockRow
// (Transient); anything else is CodeApexUnexpected (Transient).
func ParseApexAccountResponse(status int, body []byte) (string, error) {
	var ar ApexAccountResponse
	decoded := json.Unmarshal(body, &ar) == nil
	if status == http.StatusCreated && decoded && ar.Success && ar.AccountID != "" {
		return ar.AccountID, nil
	}
	msg := ar.Message
	if !decoded || msg == "" {
		msg = fmt.Sprintf("HTTP %d: %s", status, clipText(string(body), 200))
	}
	e := &APIError{StatusCode: status, Message: msg, Route: "POST apexrest"}
	switch {
	case status == http.StatusBadRequest:
		e.Code = CodeApexBadRequest
	case status == http.StatusInternalServerError && strings.HasPrefix(ar.Message, "Database error"):
		e.Code = CodeApexDMLError
		if IsLock("", ar.Message) {
			e.Code = CodeUnableToLockRow
		}
	default:
		e.Code = CodeApexUnexpected
	}
	return "", e
}
