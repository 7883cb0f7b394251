package fakeorg

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"orgsync/salesforce"
)

// maxCollection is the record limit of one sObject Collections call.
const maxCollection = 200

// maxRetrieve is the ID limit of one sObject Collections retrieve.
const maxRetrieve = 2000

func errTooMany() *Error {
	return newError("EXCEEDED_ID_LIMIT", fmt.Sprintf("record limit reached. cannot submit more than %d records into this call", maxCollection))
}

func errRolledBack() *Error {
	return fieldsError("ALL_OR_NONE_OPERATION_ROLLED_BACK",
		"Record rolled back because not all records were valid and the request was using AllOrNone header", nil)
}

func errUnsupportedType(name string) *Error {
	return newError("INVALID_TYPE", fmt.Sprintf(
		"sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", name))
}

// readCollection decodes {"allOrNone":…,"records":[…]}. Every error it
// returns fails the whole request with 400, committing nothing.
func (o *Org) readCollection(r *http.Request) (bool, []*recordInput, *Error) {
	var body map[string]any
	if err := readBody(r, &body); err != nil {
		return false, nil, err
	}
	allOrNone := false
	switch v := body["allOrNone"].(type) {
	case nil:
	case bool:
		allOrNone = v
	default:
		return false, nil, jsonParserError(deserializeMessage("boolean", v))
	}
	raw, ok := body["records"]
	if !ok || raw == nil {
		return false, nil, newError("REQUIRED_FIELD_MISSING", "Required fields are missing: [records]")
	}
	list, ok := raw.([]any)
	if !ok {
		return false, nil, jsonParserError(deserializeMessage("List<SObject>", raw))
	}
	if len(list) > maxCollection {
		return false, nil, errTooMany()
	}
	recs := make([]*recordInput, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return false, nil, jsonParserError(deserializeMessage("SObject", item))
		}
		attrs, _ := m["attributes"].(map[string]any)
		typ, _ := attrs["type"].(string)
		if typ == "" {
			return false, nil, newError("INVALID_TYPE", "The attributes.type property is required for every record in an sObject Collections request")
		}
		if !strings.EqualFold(typ, "Account") {
			return false, nil, errUnsupportedType(typ)
		}
		in, err := o.parseRecord(m)
		if err != nil {
			return false, nil, err
		}
		recs[i] = in
	}
	return allOrNone, recs, nil
}

// duplicateExternalIDs marks the records whose external ID value (ignoring
// case) occurs more than once in one call. Each of them fails with
// DUPLICATE_VALUE: the fake refuses to guess which one should win.
func (o *Org) duplicateExternalIDs(recs []*recordInput) map[int]*Error {
	seen := make(map[string][]int)
	for i, in := range recs {
		if s, ok := in.values[o.schema.extID.Name].(string); ok {
			k := strings.ToLower(s)
			seen[k] = append(seen[k], i)
		}
	}
	out := make(map[int]*Error)
	for _, idx := range seen {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			v := recs[i].values[o.schema.extID.Name].(string)
			out[i] = fieldsError("DUPLICATE_VALUE", "Duplicate external id specified: "+v, nil)
		}
	}
	return out
}

// finish rolls an allOrNone call back when any record failed: successful
// records then fail with ALL_OR_NONE_OPERATION_ROLLED_BACK.
func finish(allOrNone bool, tx *txn, results []saveResult) {
	defer tx.commit()
	if !allOrNone {
		return
	}
	failed := false
	for _, r := range results {
		failed = failed || !r.Success
	}
	if !failed {
		return
	}
	tx.rollback()
	for i, r := range results {
		if r.Success {
			rb := failResult(errRolledBack())
			if r.Created != nil {
				rb.Created = ptr(false)
			}
			results[i] = rb
		}
	}
}

// handleCollectionCreate answers POST /composite/sobjects.
func (o *Org) handleCollectionCreate(w http.ResponseWriter, r *http.Request, c *call) {
	allOrNone, recs, err := o.readCollection(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	dups := o.duplicateExternalIDs(recs)
	results := make([]saveResult, len(recs))
	tx := c.newTxn()
	o.mu.Lock()
	for i, in := range recs {
		if e := dups[i]; e != nil {
			results[i] = failResult(e)
			continue
		}
		merged, err := o.prepare(in, nil, "", writeOpts{faults: true})
		if err != nil {
			results[i] = failResult(err)
			continue
		}
		results[i] = okResult(o.commitCreate(merged, time.Time{}, tx))
	}
	finish(allOrNone, tx, results)
	o.mu.Unlock()
	o.recordDelay(r, len(results))
	writeJSON(w, http.StatusOK, results)
}

// handleCollectionUpdate answers PATCH /composite/sobjects (records carry Id).
func (o *Org) handleCollectionUpdate(w http.ResponseWriter, r *http.Request, c *call) {
	allOrNone, recs, err := o.readCollection(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	dups := o.duplicateExternalIDs(recs)
	results := make([]saveResult, len(recs))
	tx := c.newTxn()
	o.mu.Lock()
	for i, in := range recs {
		id := in.id
		if n, err := salesforce.NormalizeID(id); err == nil {
			id = n
		}
		switch {
		case !in.hasID || in.id == "":
			results[i] = failResult(fieldsError("MISSING_ARGUMENT", "Id not specified in an update call", nil))
		case dups[i] != nil:
			results[i] = failResult(dups[i])
		default:
			if err := o.updateLocked(in.id, in, writeOpts{faults: true}, tx); err != nil {
				results[i] = failResult(recordErr(err))
			} else {
				results[i] = okResult(id)
			}
		}
		if !results[i].Success && in.id != "" {
			results[i].ID = id
		}
	}
	finish(allOrNone, tx, results)
	o.mu.Unlock()
	o.recordDelay(r, len(results))
	writeJSON(w, http.StatusOK, results)
}

// recordErr adapts a single-record error to its per-record form.
func recordErr(e *Error) *Error {
	if e.Code == "NOT_FOUND" {
		return fieldsError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil)
	}
	if e.Code == "MALFORMED_ID" { // an Id in a record body: "Account ID: …"
		return fieldsError("MALFORMED_ID", strings.Replace(e.Message, "Record ID:", "Account ID:", 1), e.Fields)
	}
	return e
}

// handleCollectionDelete answers DELETE /composite/sobjects?ids=a,b[&allOrNone=true].
func (o *Org) handleCollectionDelete(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	var ids []string
	for _, id := range strings.Split(q.Get("ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		writeErrors(w, http.StatusBadRequest, newError("REQUIRED_FIELD_MISSING", "At least 1 Id is required."))
		return
	}
	if len(ids) > maxCollection {
		writeErrors(w, http.StatusBadRequest, errTooMany())
		return
	}
	allOrNone := strings.EqualFold(q.Get("allOrNone"), "true")
	results := make([]saveResult, len(ids))
	tx := c.newTxn()
	o.mu.Lock()
	for i, raw := range ids {
		id := raw
		if n, err := salesforce.NormalizeID(raw); err == nil {
			id = n
		}
		a, err := o.findAccount(raw)
		if err == nil {
			err = o.softDelete(a, tx, true)
		}
		if err != nil {
			results[i] = failResult(recordErr(err))
			if err.Code == "MALFORMED_ID" {
				// As documented: "malformed id X", and no id in the result.
				results[i] = failResult(fieldsError("MALFORMED_ID", "malformed id "+raw, nil))
			} else {
				results[i].ID = id
			}
			continue
		}
		results[i] = okResult(id)
	}
	finish(allOrNone, tx, results)
	o.mu.Unlock()
	o.recordDelay(r, len(results))
	writeJSON(w, http.StatusOK, results)
}

// handleCollectionRetrieve answers POST /composite/sobjects/Account with
// {"ids":[…],"fields":[…]} (or GET with ?ids=&fields=): the records in
// order, null for IDs that match no live record.
func (o *Org) handleCollectionRetrieve(w http.ResponseWriter, r *http.Request, c *call) {
	var ids, fields []string
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		ids = splitList(q.Get("ids"))
		fields = splitList(q.Get("fields"))
	} else {
		var body struct {
			IDs    []string `json:"ids"`
			Fields []string `json:"fields"`
		}
		var raw json.RawMessage
		if err := readBody(r, &raw); err != nil {
			writeErrors(w, http.StatusBadRequest, err)
			return
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			writeErrors(w, http.StatusBadRequest, jsonParserError(parserMessage(raw, err)))
			return
		}
		ids, fields = body.IDs, body.Fields
	}
	if len(ids) == 0 {
		writeErrors(w, http.StatusBadRequest, newError("REQUIRED_FIELD_MISSING", "At least 1 Id is required."))
		return
	}
	if len(fields) == 0 {
		writeErrors(w, http.StatusBadRequest, newError("REQUIRED_FIELD_MISSING", "Required fields are missing: [fields]"))
		return
	}
	if len(ids) > maxRetrieve {
		writeErrors(w, http.StatusBadRequest, newError("EXCEEDED_ID_LIMIT", fmt.Sprintf("cannot retrieve more than %d records in one call", maxRetrieve)))
		return
	}
	names, err := o.parseFieldList(strings.Join(fields, ","))
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	names = append(names[1:], "Id") // requested fields first, then Id
	out := make([]any, len(ids))
	o.mu.Lock()
	for i, id := range ids {
		if a, err := o.findAccount(id); err == nil {
			out[i] = o.render(a, names, c.version)
		}
	}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// handleCollectionUpsert answers PATCH /composite/sobjects/Account/{field}.
// With Id as the field, records without an Id (absent, null or "") are
// created and the others updated by Id, as the recorded Salesforce answer
// shows.
func (o *Org) handleCollectionUpsert(w http.ResponseWriter, r *http.Request, c *call) {
	byID := strings.EqualFold(c.segs[3], "Id")
	var f *field
	if !byID {
		var err *Error
		if f, err = o.externalField(c.segs[3]); err != nil {
			writeErrors(w, http.StatusNotFound, err)
			return
		}
	}
	allOrNone, recs, err := o.readCollection(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	dups := o.duplicateExternalIDs(recs)
	results := make([]saveResult, len(recs))
	tx := c.newTxn()
	o.mu.Lock()
	for i, in := range recs {
		if byID {
			results[i] = o.upsertByID(in, dups[i], tx)
		} else {
			results[i] = o.upsertOne(f, in, dups[i], tx)
		}
	}
	finish(allOrNone, tx, results)
	o.mu.Unlock()
	o.recordDelay(r, len(results))
	writeJSON(w, http.StatusOK, results)
}

// upsertOne writes one record of a collections upsert. The caller holds o.mu.
func (o *Org) upsertOne(f *field, in *recordInput, dup *Error, tx *txn) saveResult {
	fail := func(e *Error) saveResult {
		res := failResult(e)
		res.Created = ptr(false)
		return res
	}
	value, ok := in.values[f.Name].(string)
	switch {
	case !ok:
		return fail(fieldsError("MISSING_ARGUMENT", f.Name+" not specified", nil))
	case dup != nil:
		return fail(dup)
	}
	ids := o.lookupExternal(value)
	switch len(ids) {
	case 0:
		merged, err := o.prepare(in, nil, "", writeOpts{faults: true})
		if err != nil {
			return fail(err)
		}
		res := okResult(o.commitCreate(merged, time.Time{}, tx))
		res.Created = ptr(true)
		return res
	case 1:
		id := ids[0]
		delete(in.values, f.Name)
		if err := o.updateLocked(id, in, writeOpts{faults: true}, tx); err != nil {
			return fail(recordErr(err))
		}
		res := okResult(id)
		res.Created = ptr(false)
		return res
	}
	return fail(fieldsError("DUPLICATE_EXTERNAL_ID", fmt.Sprintf(
		"%s: more than one record found for external id field: [%s]", f.Name, strings.Join(ids, ", ")), nil))
}

// upsertByID writes one record of a collections upsert keyed on Id: a
// record without an Id is created, one with an Id updates that record. The
// caller holds o.mu.
func (o *Org) upsertByID(in *recordInput, dup *Error, tx *txn) saveResult {
	fail := func(e *Error) saveResult {
		res := failResult(e)
		res.Created = ptr(false)
		return res
	}
	if dup != nil {
		return fail(dup)
	}
	if !in.hasID {
		merged, err := o.prepare(in, nil, "", writeOpts{faults: true})
		if err != nil {
			return fail(err)
		}
		res := okResult(o.commitCreate(merged, time.Time{}, tx))
		res.Created = ptr(true)
		return res
	}
	if err := o.updateLocked(in.id, in, writeOpts{faults: true}, tx); err != nil {
		return fail(recordErr(err))
	}
	id, _ := salesforce.NormalizeID(in.id)
	res := okResult(id)
	res.Created = ptr(false)
	return res
}
