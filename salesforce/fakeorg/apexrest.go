package fakeorg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apexAccountsPath is the urlMapping of the seed's ArrifyAccountsApi class.
const apexAccountsPath = "/arrify/v1/accounts"

// Stack trace lines of ArrifyAccountsApi.createAccount, counted in the seed's
// listing of the class: JSON.deserializeUntyped, the Name check, insert.
const (
	apexLineDeserialize = 35
	apexLineNameCheck   = 37
	apexLineInsert      = 47
)

// apexResponse is ArrifyAccountsApi.ResponseWrapper; Apex serializes its
// null fields.
type apexResponse struct {
	Success      bool    `json:"success"`
	AccountID    *string `json:"accountId"`
	AccountName  *string `json:"accountName"`
	Message      string  `json:"message"`
	ErrorDetails *string `json:"errorDetails"`
}

func apexStack(line int) *string {
	s := fmt.Sprintf("Class.ArrifyAccountsApi.createAccount: line %d, column 1", line)
	return &s
}

// serveApexREST answers /services/apexrest/…: only the seed's
// POST /services/apexrest/arrify/v1/accounts exists. Calls are
// authenticated and counted like REST calls.
func (o *Org) serveApexREST(w http.ResponseWriter, r *http.Request) {
	if !o.authenticate(w, r) {
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/services/apexrest")
	known := strings.TrimSuffix(p, "/") == apexAccountsPath
	route := r.Method + " /apexrest/{unknown}"
	if known {
		route = r.Method + " /apexrest" + apexAccountsPath
	}
	if !o.begin(w, r, route, false) {
		return
	}
	switch {
	case !known:
		writeErrors(w, http.StatusNotFound, newError("NOT_FOUND", "Could not find a match for URL "+p))
	case r.Method != http.MethodPost:
		writeErrors(w, http.StatusMethodNotAllowed, errMethod(r.Method, "POST"))
	default:
		if err := limitBody(w, r); err != nil {
			writeErrors(w, http.StatusBadRequest, err)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeErrors(w, http.StatusBadRequest, jsonParserError("Unable to read the request body"))
			return
		}
		status, resp := o.createAccountApex(body, changeOrigin(apiREST, newestVersion(), r.Header))
		o.recordDelay(r, 1)
		writeJSON(w, status, resp)
	}
}

// newestVersion is the API version in the changeOrigin of writes made
// through calls whose URLs name none (Apex REST, /_fake/undelete): the
// fake's newest version.
func newestVersion() string { return strconv.Itoa(maxVersion) + ".0" }

// createAccountApex is ArrifyAccountsApi.createAccount; origin is the
// changeOrigin of its insert.
func (o *Org) createAccountApex(body []byte, origin string) (int, *apexResponse) {
	resp := &apexResponse{}
	if strings.TrimSpace(string(body)) == "" {
		resp.Message = "Request body is empty"
		return http.StatusBadRequest, resp
	}
	unexpected := func(msg string, line int) (int, *apexResponse) {
		resp.Message = "Unexpected error: " + msg
		resp.ErrorDetails = apexStack(line)
		return http.StatusInternalServerError, resp
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return unexpected(apexJSONMessage(body, err), apexLineDeserialize)
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return unexpected("Attempt to de-reference a null object", apexLineNameCheck)
		}
		return unexpected(fmt.Sprintf("Invalid conversion from runtime type %s to Map<String,ANY>", apexType(v)), apexLineDeserialize)
	}
	raw, has := m["Name"] // Apex map keys are case-sensitive
	name, isString := raw.(string)
	if has && raw != nil && !isString {
		return unexpected(fmt.Sprintf("Invalid conversion from runtime type %s to String", apexType(raw)), apexLineNameCheck)
	}
	if !has || strings.TrimSpace(name) == "" {
		resp.Message = "Account Name is required"
		return http.StatusBadRequest, resp
	}
	in := &recordInput{values: map[string]any{"Name": name}}
	o.mu.Lock()
	merged, err := o.prepare(in, nil, "", writeOpts{single: true, faults: true})
	id := ""
	if err == nil {
		id = o.commitCreate(merged, time.Time{}, directTxn(origin))
	}
	o.mu.Unlock()
	if err != nil {
		resp.Message = "Database error: " + err.Message
		resp.ErrorDetails = apexStack(apexLineInsert)
		return http.StatusInternalServerError, resp
	}
	resp.Success = true
	resp.AccountID = &id
	resp.AccountName = &name
	resp.Message = "Account created successfully"
	return http.StatusCreated, resp
}

// apexType names the Apex runtime type of a value from JSON.deserializeUntyped.
func apexType(v any) string {
	switch x := v.(type) {
	case string:
		return "String"
	case bool:
		return "Boolean"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "Decimal"
		}
		if _, err := x.Int64(); err == nil && len(x) < 10 {
			return "Integer"
		}
		return "Long"
	case []any:
		return "List<ANY>"
	case map[string]any:
		return "Map<String,ANY>"
	}
	return "Object"
}

// apexJSONMessage phrases a JSON syntax error like Apex's JSONException.
func apexJSONMessage(body []byte, err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) && syn.Offset > 0 && int(syn.Offset) <= len(body) {
		c := body[syn.Offset-1]
		line, col := position(body, syn.Offset-1)
		return fmt.Sprintf("Unexpected character ('%c' (code %d)): expected a valid value (number, String, array, object, 'true', 'false' or 'null') at input location [%d,%d]", c, c, line, col)
	}
	line, col := position(body, int64(len(body)))
	return fmt.Sprintf("Unexpected end-of-input: expected close marker for OBJECT at input location [%d,%d]", line, col)
}
