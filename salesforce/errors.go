package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Class is a failure class of docs/failures.md: what a caller should do about an error.
type Class int

// The failure classes. The zero Class means "no error" (Classify(nil)).
const (
	// Transient: retry with backoff (network trouble, 5xx, lock contention,
	// concurrent-request limits, an upsert race on the external ID).
	Transient Class = iota + 1
	// AuthFailure: the credentials or the org configuration are wrong; no
	// record can cure it. Pause and alert.
	AuthFailure
	// Budget: the org's daily API allocation is used up. Pause until it frees.
	Budget
	// Permanent: this record (or request) will fail the same way again.
	Permanent
	// Configuration: the target org is not set up for the call (the
	// external ID field is missing or invisible, a Bulk job is refused at
	// creation, a write is answered by a redirect). No record can succeed
	// until someone fixes the org or orgsync's settings.
	Configuration
)

// String returns "transient", "auth", "budget", "permanent" or
// "configuration" ("none" for the zero Class).
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case AuthFailure:
		return "auth"
	case Budget:
		return "budget"
	case Permanent:
		return "permanent"
	case Configuration:
		return "configuration"
	case 0:
		return "none"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Sentinel errors.
var (
	// ErrTooManyRecords is returned before anything is sent when a collection
	// call gets more than MaxCollection records. Class: Permanent.
	ErrTooManyRecords = errors.New("salesforce: more than 200 records in one collection call")
	// ErrInvalidRequest is wrapped by errors about arguments the client refuses
	// to send (a bad sObject or field name, an empty id, records that do not
	// encode as JSON). Class: Permanent.
	ErrInvalidRequest = errors.New("salesforce: invalid request")
)

// Error codes used by the classifier and by callers.
const (
	CodeInvalidSessionID       = "INVALID_SESSION_ID"
	CodeRequestLimitExceeded   = "REQUEST_LIMIT_EXCEEDED"
	CodeUnableToLockRow        = "UNABLE_TO_LOCK_ROW"
	CodeServerUnavailable      = "SERVER_UNAVAILABLE"
	CodeAllOrNoneRolledBack    = "ALL_OR_NONE_OPERATION_ROLLED_BACK"
	CodeProcessingHalted       = "PROCESSING_HALTED"
	CodeQueryTimeout           = "QUERY_TIMEOUT"
	CodeDuplicateValue         = "DUPLICATE_VALUE"
	CodeInvalidField           = "INVALID_FIELD"
	CodeEntityIsDeleted        = "ENTITY_IS_DELETED"
	CodeNotFound               = "NOT_FOUND"
	CodeMultipleChoices        = "MULTIPLE_CHOICES" // synthesised for a 300 answer to an upsert (several records match)
	CodeRequestRunningTooLong  = "REQUEST_RUNNING_TOO_LONG"
	CodeInvalidQueryLocator    = "INVALID_QUERY_LOCATOR"
	CodeUnknownException       = "UNKNOWN_EXCEPTION"
	CodeInvalidAuthHeader      = "INVALID_AUTH_HEADER"
	CodeInvalidOperationExpPwd = "INVALID_OPERATION_WITH_EXPIRED_PASSWORD"
	CodeInvalidJob             = "INVALIDJOB"
	// CodeUndeleteFailed: the record is not in the recycle bin (it was never
	// deleted, or it was purged): "Entity is not in the recycle bin".
	CodeUndeleteFailed = "UNDELETE_FAILED"
	CodeMalformedID    = "MALFORMED_ID"
	// CodeInvalidCrossReferenceKey names a record that does not exist: the
	// record's own Id, or a reference field (ParentId) in it.
	CodeInvalidCrossReferenceKey = "INVALID_CROSS_REFERENCE_KEY"
	// CodeUnsupportedAPIVersion is the SOAP fault for a version the org
	// does not serve.
	CodeUnsupportedAPIVersion = "UNSUPPORTED_API_VERSION"
)

// ErrorItem is one element of a REST error array:
// [{"message": "...", "errorCode": "...", "fields": [...]}].
// When decoding it also accepts "statusCode" in place of "errorCode".
type ErrorItem struct {
	Code    string   `json:"errorCode"`
	Message string   `json:"message"`
	Fields  []string `json:"fields"`
}

// UnmarshalJSON accepts both the REST envelope ("errorCode") and the
// collections shape ("statusCode").
func (e *ErrorItem) UnmarshalJSON(b []byte) error {
	var w wireError
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = ErrorItem{Code: w.code(), Message: w.Message, Fields: w.Fields}
	return nil
}

// wireError decodes either spelling of a Salesforce error object.
type wireError struct {
	ErrorCode  string   `json:"errorCode"`
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func (w wireError) code() string {
	if w.ErrorCode != "" {
		return w.ErrorCode
	}
	return w.StatusCode
}

// APIError is a non-2xx answer of the REST API.
type APIError struct {
	StatusCode int
	Code       string   // errorCode of the first item; "" when the body was not a Salesforce error
	Message    string   // message of the first item
	Fields     []string // fields of the first item
	Errors     []ErrorItem
	Method     string
	Route      string // the templated route as in CallInfo, e.g. "GET /limits"
	// Raw is a short, secret-free excerpt of a body that was not a Salesforce
	// error array (an HTML page from a proxy or a maintenance page).
	Raw string
	// Fault marks a SOAP fault (the SOAP API answers every fault with HTTP
	// 500, whatever its cause): Code is its exception code, and it is
	// classified by the code, not the status.
	Fault bool
}

// Error returns e.g. "salesforce: GET /limits: 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("salesforce: ")
	switch {
	case e.Route != "" && e.Method != "" && !strings.HasPrefix(e.Route, e.Method+" "):
		b.WriteString(e.Method + " " + e.Route + ": ")
	case e.Route != "":
		b.WriteString(e.Route + ": ")
	case e.Method != "":
		b.WriteString(e.Method + ": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if len(e.Fields) > 0 {
		b.WriteString(" (fields: " + strings.Join(e.Fields, ", ") + ")")
	}
	if n := len(e.Errors); n > 1 {
		fmt.Fprintf(&b, " (and %d more)", n-1)
	}
	return b.String()
}

// ParseAPIError decodes the body of a non-2xx REST answer. It never fails:
// a body that is not a Salesforce error array (an object, a list of URLs for
// a 300, HTML, plain text, nothing) still gives an *APIError with a message.
// Method and Route are left empty.
func ParseAPIError(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		e.Message = http.StatusText(status)
	case trimmed[0] == '[':
		var items []ErrorItem
		if err := json.Unmarshal(trimmed, &items); err == nil {
			items = nonEmptyItems(items)
			if len(items) > 0 {
				e.setItems(items)
				return e
			}
		}
		var urls []string
		if err := json.Unmarshal(trimmed, &urls); err == nil && len(urls) > 0 {
			// 300 Multiple Choices: the external ID matches several records.
			e.Code = CodeMultipleChoices
			e.Message = "the external id matches several records: " + clipText(strings.Join(urls, ", "), 400)
			return e
		}
		e.Message = "undecodable error body"
		e.Raw = clipText(string(trimmed), 512)
	case trimmed[0] == '{':
		var obj struct {
			wireError
			OAuthError       string `json:"error"`
			OAuthDescription string `json:"error_description"`
		}
		if err := json.Unmarshal(trimmed, &obj); err == nil {
			switch {
			case obj.code() != "" || obj.Message != "":
				e.setItems([]ErrorItem{{Code: obj.code(), Message: obj.Message, Fields: obj.Fields}})
				return e
			case obj.OAuthError != "":
				e.setItems([]ErrorItem{{Code: obj.OAuthError, Message: obj.OAuthDescription}})
				return e
			}
		}
		e.Message = "undecodable error body"
		e.Raw = clipText(string(trimmed), 512)
	default:
		if looksHTML(string(trimmed)) {
			e.Message = "unexpected HTML response"
		} else {
			e.Message = "unexpected non-JSON response"
		}
		e.Raw = clipText(string(trimmed), 512)
	}
	return e
}

func nonEmptyItems(items []ErrorItem) []ErrorItem {
	out := items[:0]
	for _, it := range items {
		if it.Code != "" || it.Message != "" {
			out = append(out, it)
		}
	}
	return out
}

func (e *APIError) setItems(items []ErrorItem) {
	e.Errors = items
	e.Code, e.Message, e.Fields = items[0].Code, items[0].Message, items[0].Fields
}

// RecordError is one error of one record in a collection or save result:
// {"statusCode": "...", "message": "...", "fields": [...]}.
// When decoding it also accepts "errorCode" in place of "statusCode".
type RecordError struct {
	Code    string   `json:"statusCode"`
	Message string   `json:"message"`
	Fields  []string `json:"fields"`
}

// UnmarshalJSON accepts both "statusCode" and "errorCode".
func (e *RecordError) UnmarshalJSON(b []byte) error {
	var w wireError
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = RecordError{Code: w.code(), Message: w.Message, Fields: w.Fields}
	return nil
}

// Error returns e.g. "salesforce: REQUIRED_FIELD_MISSING: Required fields are missing: [Name] (fields: Name)".
func (e *RecordError) Error() string {
	s := "salesforce: " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if len(e.Fields) > 0 {
		s += " (fields: " + strings.Join(e.Fields, ", ") + ")"
	}
	return s
}

// Class classifies the error; externalIDField is the field the records were
// upserted on ("" for creates), used to tell an upsert race from a real
// duplicate.
func (e *RecordError) Class(externalIDField string) Class {
	return ClassifyRecord(e, externalIDField)
}

// AuthError is an error answer of the OAuth token endpoint,
// {"error": "invalid_grant", "error_description": "authentication failure"}.
type AuthError struct {
	StatusCode  int
	Code        string // "invalid_grant", "invalid_client", …; "" when the body was not an OAuth error
	Description string
	Flow        string // the flow that asked for the token, as Auth.Flow
}

// Error returns e.g. "salesforce: token request (client_credentials): 400 invalid_grant: authentication failure".
func (e *AuthError) Error() string {
	s := "salesforce: token request"
	if e.Flow != "" {
		s += " (" + e.Flow + ")"
	}
	s += ": " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// RedirectError is a redirect answered to a call that cannot follow it: a
// POST, PATCH or DELETE would be turned into a GET and lose its body. It is a
// configuration error: the URL given to orgsync is not the org's canonical one.
type RedirectError struct {
	Method   string
	URL      string // the URL called (without query)
	Location string // where the server redirected to
}

// Error names the URL to configure instead.
func (e *RedirectError) Error() string {
	return fmt.Sprintf("salesforce: %s %s was redirected to %s; a %s cannot follow a redirect: configure %s as the org URL instead",
		e.Method, e.URL, e.Location, e.Method, e.ConfigureURL())
}

// ConfigureURL is the scheme and host of Location: the URL to configure.
func (e *RedirectError) ConfigureURL() string {
	if i := strings.Index(e.Location, "://"); i >= 0 {
		rest := e.Location[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		return e.Location[:i+3] + rest
	}
	return e.Location
}

// Classify returns the failure class of any error of this package, of a
// network or context error, or of an error wrapping one of them. Unknown
// errors are Transient (a retry is bounded by the caller's delivery limit);
// Classify(nil) is 0.
func Classify(err error) Class {
	if err == nil {
		return 0
	}
	var (
		apiErr   *APIError
		recErr   *RecordError
		authErr  *AuthError
		redirErr *RedirectError
	)
	switch {
	case errors.As(err, &redirErr):
		return Configuration
	case errors.As(err, &authErr):
		return classifyAuth(authErr)
	case errors.As(err, &apiErr):
		return classifyAPI(apiErr)
	case errors.As(err, &recErr):
		return ClassifyRecord(recErr, "")
	case errors.Is(err, ErrTooManyRecords), errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrInvalidID),
		errors.Is(err, ErrNoIdentity):
		return Permanent
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Transient
	}
	// Network errors (net.Error, io.ErrUnexpectedEOF, a reset connection),
	// undecodable 2xx bodies and anything else unknown: retry.
	return Transient
}

// ClassifyRecord returns the failure class of one record's error.
// externalIDField is the field of an upsert ("" for other calls): a
// DUPLICATE_VALUE on it is a race between two concurrent upserts of the same
// key (Transient: the retry finds the record and updates it), on any other
// field it is Permanent.
func ClassifyRecord(e *RecordError, externalIDField string) Class {
	if e == nil {
		return 0
	}
	return classifyItem(0, e.Code, e.Message, e.Fields, externalIDField)
}

func classifyAuth(e *AuthError) Class {
	switch strings.ToLower(e.Code) {
	case "invalid_grant", "invalid_client", "invalid_client_id", "unauthorized_client",
		"unsupported_grant_type", "invalid_request", "invalid_scope", "access_denied", "inactive_user", "inactive_org":
		return AuthFailure
	case "temporarily_unavailable", "server_error":
		return Transient
	}
	if e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout {
		return Transient
	}
	return AuthFailure
}

func classifyAPI(e *APIError) Class {
	if IsMissingExternalIDField(e) {
		return Configuration
	}
	for _, it := range e.Errors {
		if isLock(it.Code, it.Message) {
			return Transient
		}
	}
	if e.Fault && e.Code != "" {
		return classifyItem(0, e.Code, e.Message, e.Fields, "")
	}
	if e.Code == "" {
		if looksHTML(e.Raw) {
			return Transient // a proxy's or a maintenance page, whatever the status
		}
		return classifyStatus(e.StatusCode)
	}
	return classifyItem(e.StatusCode, e.Code, e.Message, e.Fields, "")
}

// classifyItem applies the table of reference §6 to one error code and message.
// status is 0 for per-record errors.
func classifyItem(status int, code, message string, fields []string, extIDField string) Class {
	if isLock(code, message) {
		return Transient
	}
	switch code {
	case CodeServerUnavailable, CodeAllOrNoneRolledBack, CodeProcessingHalted, CodeQueryTimeout,
		CodeRequestRunningTooLong, CodeInvalidQueryLocator, CodeUnknownException:
		return Transient
	case CodeRequestLimitExceeded:
		// Concurrent-request limits clear in seconds; the daily allocation
		// ("TotalRequests Limit exceeded.") only as the 24 h window rolls.
		if strings.Contains(strings.ToLower(message), "concurrent") {
			return Transient
		}
		return Budget
	case CodeInvalidSessionID, CodeInvalidAuthHeader, CodeInvalidOperationExpPwd:
		return AuthFailure
	case CodeApexBadRequest, CodeApexDMLError:
		return Permanent
	case CodeApexUnexpected:
		return Transient
	case CodeInvalidJob, CodeUnsupportedAPIVersion:
		// A Bulk job refused at creation: the object, the operation or the
		// external ID field does not suit this org; or the configured API
		// version is one the org does not serve.
		return Configuration
	case CodeDuplicateValue:
		if extIDField != "" && duplicateOnField(message, fields, extIDField) {
			return Transient
		}
		return Permanent
	case "":
		if status != 0 {
			return classifyStatus(status)
		}
		return Permanent
	}
	if status >= 500 {
		return Transient
	}
	if status == http.StatusUnauthorized {
		return AuthFailure
	}
	return Permanent
}

func classifyStatus(status int) Class {
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return Transient
	case status == http.StatusUnauthorized:
		return AuthFailure
	case status >= 300:
		return Permanent
	}
	return Transient
}

// isLock reports a row-lock failure, including one wrapped in another code's
// message (e.g. CANNOT_EXECUTE_FLOW_TRIGGER "… UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record …").
func isLock(code, message string) bool {
	return IsLock(code, message)
}

// IsLock reports a row-lock failure from an error code and message, also
// when the lock is wrapped in another code's message.
func IsLock(code, message string) bool {
	if code == CodeUnableToLockRow {
		return true
	}
	return strings.Contains(message, CodeUnableToLockRow) ||
		strings.Contains(strings.ToLower(message), "unable to obtain exclusive access")
}

// duplicateMessage matches "duplicate value found: <Field> duplicates value on record with id: <id>".
var duplicateMessage = regexp.MustCompile(`(?i)duplicate value found:\s*([A-Za-z0-9_.]+)\s+duplicates`)

func duplicateOnField(message string, fields []string, field string) bool {
	for _, f := range fields {
		if strings.EqualFold(f, field) {
			return true
		}
	}
	if m := duplicateMessage.FindStringSubmatch(message); m != nil {
		return strings.EqualFold(m[1], field)
	}
	return false
}

// missingParentMessage matches Salesforce's answer for a reference by external
// ID whose target does not exist:
// "Foreign key external ID: <value> not found for field <field> in entity Account".
var missingParentMessage = regexp.MustCompile(`Foreign key external ID: (.*?) not found for field (\S+) in entity (\w+)`)

// MissingParent reports whether err (an *RecordError or *APIError, possibly
// wrapped) is the missing-parent INVALID_FIELD error, and returns the
// external ID value and the external ID field that were not found.
func MissingParent(err error) (value, field string, ok bool) {
	var recErr *RecordError
	if errors.As(err, &recErr) {
		return parseMissingParent(recErr.Message)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if v, f, ok := parseMissingParent(apiErr.Message); ok {
			return v, f, ok
		}
		for _, it := range apiErr.Errors {
			if v, f, ok := parseMissingParent(it.Message); ok {
				return v, f, ok
			}
		}
	}
	return "", "", false
}

func parseMissingParent(message string) (value, field string, ok bool) {
	m := missingParentMessage.FindStringSubmatch(message)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// looksHTML reports a markup body (HTML or XML), which Salesforce's REST API
// never sends on purpose: it comes from a proxy, a load balancer or a
// maintenance page.
func looksHTML(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && s[0] == '<'
}

// clipText shortens a server-supplied text before it goes into an error.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// IsMissingExternalIDField reports Salesforce's answer to an upsert by an
// external ID field that the object lacks or the user cannot see:
// 404 NOT_FOUND "Provided external ID field does not exist or is not
// accessible: <field>".
func IsMissingExternalIDField(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Code != CodeNotFound {
		return false
	}
	return strings.Contains(strings.ToLower(ae.Message), "external id field")
}

// IsEntityDeleted reports whether err (a *RecordError from a SaveResult,
// an *APIError, possibly wrapped) is ENTITY_IS_DELETED: the record is in
// the recycle bin or purged. A delete of such a record is already done; an
// update of it finds that the record is gone from the org.
func IsEntityDeleted(err error) bool {
	return hasCode(err, CodeEntityIsDeleted)
}

// IsNotInRecycleBin reports whether err is the UNDELETE_FAILED of an
// undelete: the record is not in the recycle bin (never deleted, or
// purged), so it cannot be undeleted.
func IsNotInRecycleBin(err error) bool {
	return hasCode(err, CodeUndeleteFailed)
}

// hasCode reports whether err is a *RecordError or *APIError with code. A
// nil *RecordError (SaveResult.Err of a success) has none.
func hasCode(err error, code string) bool {
	var recErr *RecordError
	if errors.As(err, &recErr) {
		return recErr != nil && recErr.Code == code
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr != nil {
		for _, it := range apiErr.Errors {
			if it.Code == code {
				return true
			}
		}
		return apiErr.Code == code
	}
	return false
}

// IsNetwork reports an error with no answer from the server: a refused or
// reset connection, a DNS failure, a timeout. It is Transient, but unlike a
// 5xx it says nothing about the org: the caller's own path to it may be
// broken.
func IsNetwork(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		apiErr   *APIError
		recErr   *RecordError
		authErr  *AuthError
		redirErr *RedirectError
	)
	if errors.As(err, &apiErr) || errors.As(err, &recErr) || errors.As(err, &authErr) || errors.As(err, &redirErr) {
		return false
	}
	var ne net.Error
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.As(err, &oe) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
