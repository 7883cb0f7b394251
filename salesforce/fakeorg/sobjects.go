package fakeorg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// saveResult is a SaveResult / UpsertResult as the REST API renders it.
// Failed records carry no id.
type saveResult struct {
	ID      string        `json:"id,omitempty"`
	Success bool          `json:"success"`
	Errors  []recordError `json:"errors"`
	Created *bool         `json:"created,omitempty"`
}

func okResult(id string) saveResult {
	return saveResult{ID: id, Success: true, Errors: []recordError{}}
}

func failResult(e *Error) saveResult {
	return saveResult{Errors: []recordError{e.record()}}
}

// readBody reads a JSON request body into v, reporting Salesforce's
// JSON_PARSER_ERROR on failure.
func readBody(r *http.Request, v any) *Error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return jsonParserError(fmt.Sprintf("Request body exceeds %d bytes", tooBig.Limit))
		}
		return jsonParserError("Unable to read the request body")
	}
	return decodeJSON(body, v)
}

// decodeJSON decodes exactly one JSON value, numbers kept as json.Number.
func decodeJSON(body []byte, v any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return jsonParserError("The request body is either invalid or incomplete.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonParserError(parserMessage(body, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonParserError("Unexpected character after the end of the JSON value")
	}
	return nil
}

// parserMessage phrases a JSON decoding error with a line and column, the
// way Salesforce's parser does.
func parserMessage(body []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(body, syn.Offset)
		return fmt.Sprintf("Unexpected character: %s at [line:%d, column:%d]", syn.Error(), line, col)
	case errors.As(err, &typ):
		line, col := position(body, typ.Offset)
		what := typ.Field
		if what == "" {
			what = typ.Type.String()
		}
		return fmt.Sprintf("Cannot deserialize instance of %s from %s value at [line:%d, column:%d]", what, strings.ToUpper(typ.Value), line, col)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "Unexpected end-of-input: expected close marker"
	}
	return err.Error()
}

func position(body []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset && i < int64(len(body)); i++ {
		if body[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// readRecord reads and decodes a single-record body.
func (o *Org) readRecord(r *http.Request) (*recordInput, *Error) {
	var raw map[string]any
	if err := readBody(r, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, jsonParserError("The request body is either invalid or incomplete.")
	}
	return o.parseRecord(raw)
}

// statusOf picks the HTTP status of a single-record error.
func statusOf(e *Error) int {
	switch e.Code {
	case "NOT_FOUND", "ENTITY_IS_DELETED":
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// handleCreate answers POST /sobjects/Account.
func (o *Org) handleCreate(w http.ResponseWriter, r *http.Request, c *call) {
	in, err := o.readRecord(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	o.mu.Lock()
	merged, err := o.prepare(in, nil, "", writeOpts{single: true, faults: true})
	id := ""
	if err == nil {
		id = o.commitCreate(merged, time.Time{}, c.txn())
	}
	o.mu.Unlock()
	o.recordDelay(r, 1)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	w.Header().Set("Location", c.versionPath()+"/sobjects/Account/"+id)
	writeJSON(w, http.StatusCreated, okResult(id))
}

// parseFieldList validates a comma-separated ?fields= list.
func (o *Org) parseFieldList(list string) ([]string, *Error) {
	names := []string{"Id"}
	seen := map[string]bool{"Id": true}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		f, ok := o.schema.lookup(n)
		if !ok {
			return nil, newError("INVALID_FIELD", fmt.Sprintf(
				"No such column '%s' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", n))
		}
		if !seen[f.Name] {
			seen[f.Name] = true
			names = append(names, f.Name)
		}
	}
	return names, nil
}

// handleGet answers GET /sobjects/Account/{id}[?fields=a,b].
func (o *Org) handleGet(w http.ResponseWriter, r *http.Request, c *call) {
	var names []string
	if list := r.URL.Query().Get("fields"); list != "" {
		var err *Error
		if names, err = o.parseFieldList(list); err != nil {
			writeErrors(w, http.StatusBadRequest, err)
			return
		}
	}
	o.mu.Lock()
	a, err := o.findAccount(c.segs[2])
	var out *orderedObject
	if err == nil {
		out = o.render(a, names, c.version)
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleUpdate answers PATCH /sobjects/Account/{id} with 204.
func (o *Org) handleUpdate(w http.ResponseWriter, r *http.Request, c *call) {
	in, err := o.readRecord(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	o.mu.Lock()
	err = o.updateLocked(c.segs[2], in, writeOpts{single: true, faults: true}, c.txn())
	o.mu.Unlock()
	o.recordDelay(r, 1)
	if err != nil {
		writeErrors(w, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// updateLocked validates and applies an update of the account rawID. The
// caller holds o.mu.
func (o *Org) updateLocked(rawID string, in *recordInput, opts writeOpts, tx *txn) *Error {
	a, err := o.findAccount(rawID)
	if err != nil {
		return err
	}
	self := a.f["Id"].(string)
	if in.hasID && in.id != "" && !strings.EqualFold(in.id, self) && !strings.EqualFold(in.id, self[:15]) {
		return newError("INVALID_ID_FIELD", "The Id in the request body does not match the Id in the URL", "Id")
	}
	merged, err := o.prepare(in, a.f, self, opts)
	if err != nil {
		return err
	}
	o.commitUpdate(a, merged, tx)
	return nil
}

// handleDelete answers DELETE /sobjects/Account/{id} with 204.
func (o *Org) handleDelete(w http.ResponseWriter, r *http.Request, c *call) {
	o.mu.Lock()
	a, err := o.findAccount(c.segs[2])
	if err == nil {
		err = o.softDelete(a, c.txn(), true)
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, statusOf(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// externalField resolves the {field} of an external-ID path.
func (o *Org) externalField(name string) (*field, *Error) {
	f, ok := o.schema.lookup(name)
	if !ok || !f.ExternalID {
		return nil, newError("NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+name)
	}
	return f, nil
}

// multipleChoices answers 300 with the URLs of the matching records.
func multipleChoices(w http.ResponseWriter, c *call, ids []string) {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = c.versionPath() + "/sobjects/Account/" + id
	}
	writeJSON(w, http.StatusMultipleChoices, urls)
}

// handleUpsert answers PATCH /sobjects/Account/{field}/{value}: 201 when it
// creates, 200 with created:false when it updates (204 before v46.0), 300
// when several records match.
func (o *Org) handleUpsert(w http.ResponseWriter, r *http.Request, c *call) {
	f, err := o.externalField(c.segs[2])
	if err != nil {
		writeErrors(w, http.StatusNotFound, err)
		return
	}
	value := c.segs[3]
	in, err := o.readRecord(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	updateOnly := strings.EqualFold(r.URL.Query().Get("updateOnly"), "true")
	o.mu.Lock()
	ids := append([]string(nil), o.lookupExternal(value)...)
	var id string
	switch {
	case len(ids) > 1:
	case len(ids) == 1:
		delete(in.values, f.Name) // the path value names the record; keep its stored spelling
		id = ids[0]
		err = o.updateLocked(id, in, writeOpts{single: true, faults: true}, c.txn())
	case updateOnly:
		err = errNotFound()
	default:
		in.values[f.Name] = value
		var merged Record
		if merged, err = o.prepare(in, nil, "", writeOpts{single: true, faults: true}); err == nil {
			id = o.commitCreate(merged, time.Time{}, c.txn())
		}
	}
	o.mu.Unlock()
	o.recordDelay(r, 1)
	switch {
	case len(ids) > 1:
		multipleChoices(w, c, ids)
	case err != nil:
		writeErrors(w, statusOf(err), err)
	case len(ids) == 0:
		res := okResult(id)
		if c.major >= 46 { // before v46.0 the answer has no "created" (testdata/recorded/upsert_created_pre46.json)
			res.Created = ptr(true)
		}
		w.Header().Set("Location", c.versionPath()+"/sobjects/Account/"+id)
		writeJSON(w, http.StatusCreated, res)
	case c.major < 46:
		w.WriteHeader(http.StatusNoContent)
	default:
		res := okResult(id)
		res.Created = ptr(false)
		writeJSON(w, http.StatusOK, res)
	}
}

// handleGetByExternalID answers GET /sobjects/Account/{field}/{value}.
func (o *Org) handleGetByExternalID(w http.ResponseWriter, r *http.Request, c *call) {
	if _, err := o.externalField(c.segs[2]); err != nil {
		writeErrors(w, http.StatusNotFound, err)
		return
	}
	o.mu.Lock()
	ids := append([]string(nil), o.lookupExternal(c.segs[3])...)
	var out *orderedObject
	if len(ids) == 1 {
		out = o.render(o.accounts[ids[0]], nil, c.version)
	}
	o.mu.Unlock()
	switch {
	case len(ids) == 0:
		writeErrors(w, http.StatusNotFound, errNotFound())
	case len(ids) > 1:
		multipleChoices(w, c, ids)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// handleDeleteByExternalID answers DELETE /sobjects/Account/{field}/{value}.
func (o *Org) handleDeleteByExternalID(w http.ResponseWriter, r *http.Request, c *call) {
	if _, err := o.externalField(c.segs[2]); err != nil {
		writeErrors(w, http.StatusNotFound, err)
		return
	}
	o.mu.Lock()
	ids := append([]string(nil), o.lookupExternal(c.segs[3])...)
	var err *Error
	if len(ids) == 1 {
		err = o.softDelete(o.accounts[ids[0]], c.txn(), true)
	}
	o.mu.Unlock()
	switch {
	case len(ids) == 0:
		writeErrors(w, http.StatusNotFound, errNotFound())
	case len(ids) > 1:
		multipleChoices(w, c, ids)
	case err != nil:
		writeErrors(w, statusOf(err), err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func ptr[T any](v T) *T { return &v }
