package fakeorg

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"

	"orgsync/salesforce"
)

// maxUndelete is the most IDs one undelete call takes, as the SOAP API's
// undelete() (200 records per call).
const maxUndelete = 200

// Undelete restores accounts from the recycle bin, as the SOAP API's
// undelete() and Apex's Database.undelete do (the REST API has none). It
// answers one result per ID, in order; each restored account becomes an
// UNDELETE change carrying its whole record. origin is the changeOrigin of
// the changes ("" for none). An ID that is malformed, unknown, not deleted,
// or whose external ID a live account now holds, fails alone.
func (o *Org) Undelete(ids []string, origin string) []UndeleteResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]UndeleteResult, len(ids))
	tx := directTxn(origin)
	for i, raw := range ids {
		out[i] = o.undeleteOne(raw, tx)
	}
	return out
}

// UndeleteResult is the outcome of undeleting one record, shaped like the
// REST API's save results. A failed result keeps the record's 18-character
// ID when the given one was well formed, as SOAP's UndeleteResult does.
type UndeleteResult struct {
	ID      string        `json:"id,omitempty"`
	Success bool          `json:"success"`
	Errors  []recordError `json:"errors"`
}

// undeleteOne restores one account. The caller holds o.mu.
func (o *Org) undeleteOne(raw string, tx *txn) UndeleteResult {
	id, err := salesforce.NormalizeIDWithPrefix(raw, salesforce.PrefixAccount)
	if err != nil {
		return UndeleteResult{Errors: []recordError{fieldsError("MALFORMED_ID", "malformed id "+raw, nil).record()}}
	}
	fail := func(e *Error) UndeleteResult { return UndeleteResult{ID: id, Errors: []recordError{e.record()}} }
	a, ok := o.accounts[id]
	switch {
	case !ok:
		return fail(fieldsError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil))
	case !a.deleted:
		return fail(fieldsError("UNDELETE_FAILED", "Entity is not in the recycle bin", nil))
	}
	if v, ok := a.f[o.schema.extID.Name].(string); ok && o.schema.extIDUnique && len(o.lookupExternal(v)) > 0 {
		return fail(fieldsError("DUPLICATE_VALUE", "duplicate value found: "+o.schema.extID.Name+
			" duplicates value on record with id: "+o.lookupExternal(v)[0], []string{o.schema.extID.Name}))
	}
	old := a.f
	f := maps.Clone(old)
	f["IsDeleted"] = false
	o.stampModified(f, o.nowUTC(), tx)
	a.f, a.deleted = f, false
	o.indexAdd(id, f)
	o.noteChange(tx, ChangeUndelete, old, f)
	return UndeleteResult{ID: id, Success: true, Errors: []recordError{}}
}

// serveUndelete answers POST /_fake/undelete {"ids":["001…",…]}: the
// fake-only stand-in for SOAP undelete(). A Sforce-Call-Options header
// names the client in the changeOrigin, which reads
// com/salesforce/api/soap/<newest version>.
func (o *Org) serveUndelete(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, adminError{"use POST"})
		return
	}
	var in struct {
		IDs []string `json:"ids"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{`bad body: ` + err.Error() + `; want {"ids":["001…"]}`})
		return
	}
	switch {
	case len(in.IDs) == 0:
		writeJSON(w, http.StatusBadRequest, adminError{`no ids; want {"ids":["001…"]}`})
		return
	case len(in.IDs) > maxUndelete:
		writeJSON(w, http.StatusBadRequest, adminError{"at most " + strconv.Itoa(maxUndelete) + " ids per call"})
		return
	}
	writeJSON(w, http.StatusOK, o.Undelete(in.IDs, changeOrigin(apiSOAP, newestVersion(), r.Header)))
}
