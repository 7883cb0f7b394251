package fakeorg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// contentTypeJSON is the Content-Type of every JSON answer, as Salesforce
// sends it (jsforce parses bodies only when it matches ^application/json).
const contentTypeJSON = "application/json;charset=UTF-8"

// Error is a Salesforce error: an API error code (REQUIRED_FIELD_MISSING,
// STRING_TOO_LONG…), its message and the fields it concerns. It is what
// InsertAccount returns for a record that fails validation.
type Error struct {
	Code    string
	Message string
	Fields  []string
}

// Error returns "fakeorg: CODE: message".
func (e *Error) Error() string { return "fakeorg: " + e.Code + ": " + e.Message }

// restError is the element of a REST error array:
// [{"message":…,"errorCode":…,"fields":[…]}].
type restError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitzero"`
}

// recordError is a per-record error inside collection and upsert results:
// {"statusCode":…,"message":…,"fields":[…]}.
type recordError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

func (e *Error) rest() restError {
	return restError{Message: e.Message, ErrorCode: e.Code, Fields: e.Fields}
}

func (e *Error) record() recordError {
	f := e.Fields
	if f == nil {
		f = []string{}
	}
	return recordError{StatusCode: e.Code, Message: e.Message, Fields: f}
}

func newError(code, msg string, fields ...string) *Error {
	return &Error{Code: code, Message: msg, Fields: fields}
}

// fieldsError is newError with an explicit, possibly empty, fields list
// (rendered as "fields":[]).
func fieldsError(code, msg string, fields []string) *Error {
	if fields == nil {
		fields = []string{}
	}
	return &Error{Code: code, Message: msg, Fields: fields}
}

func errNotFound() *Error {
	return newError("NOT_FOUND", "The requested resource does not exist")
}

// writeJSON writes v as a JSON answer with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only programming errors end up here: every value is built by the fake.
		http.Error(w, fmt.Sprintf("fakeorg: encode answer: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeErrors writes a REST error array with the given status.
func writeErrors(w http.ResponseWriter, status int, errs ...*Error) {
	out := make([]restError, len(errs))
	for i, e := range errs {
		out[i] = e.rest()
	}
	writeJSON(w, status, out)
}

// sfTime formats a datetime as Salesforce does: 2026-01-01T00:00:00.000+0000.
func sfTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000-0700")
}

// sfDate formats a date as Salesforce does: 2026-01-01.
func sfDate(t time.Time) string {
	return t.UTC().Format(time.DateOnly)
}

// orderedObject is a JSON object that keeps its keys in insertion order,
// as Salesforce's answers do (attributes first, then fields).
type orderedObject struct {
	keys []string
	vals map[string]any
}

func newOrderedObject(n int) *orderedObject {
	return &orderedObject{keys: make([]string, 0, n), vals: make(map[string]any, n)}
}

func (m *orderedObject) set(k string, v any) {
	if _, ok := m.vals[k]; !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
}

// MarshalJSON writes the object's keys in order.
func (m *orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := marshalNoEscape(m.vals[k])
		if err != nil {
			return nil, err
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
