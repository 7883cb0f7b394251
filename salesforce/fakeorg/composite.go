package fakeorg

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// Limits of one POST /composite call, as Salesforce documents them: at most
// 25 subrequests, at most 5 of them sObject Collections or query operations.
const (
	maxCompositeSubrequests = 25
	maxCompositeCollections = 5
)

// compositeRun is one composite call in progress: the transactions of its
// subrequests' writes, for an allOrNone rollback.
type compositeRun struct {
	txns []*txn
}

func (cr *compositeRun) rollback() {
	for i := len(cr.txns) - 1; i >= 0; i-- {
		cr.txns[i].rollback()
	}
}

// commit reports the changes of the call's subrequests, in order, once the
// call was not rolled back. The caller holds o.mu.
func (cr *compositeRun) commit() {
	for _, t := range cr.txns {
		t.inComposite = false
		t.commit()
	}
}

// compositeSub is one subrequest as sent.
type compositeSub struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	ReferenceID string            `json:"referenceId"`
	Body        json.RawMessage   `json:"body"`
	HTTPHeaders map[string]string `json:"httpHeaders"`
}

// compositeResult is one subrequest's answer.
type compositeResult struct {
	Body           json.RawMessage   `json:"body"`
	HTTPHeaders    map[string]string `json:"httpHeaders"`
	HTTPStatusCode int               `json:"httpStatusCode"`
	ReferenceID    *string           `json:"referenceId"`
}

var compositeRefID = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func errLimitExceeded(msg string) *Error { return newError("LIMIT_EXCEEDED", msg) }

// errProcessingHalted is the answer of every other subrequest of an
// allOrNone composite call in which one subrequest failed.
func errProcessingHalted() *Error {
	return newError("PROCESSING_HALTED", "The transaction was rolled back since another operation in the same transaction failed.")
}

// handleComposite answers POST /composite: the subrequests run in order,
// each through the same handlers as a call of its own but without being
// counted (the composite call counts as one API request) and without
// latency or injected outages of their own. References between
// subrequests (@{ref.field}) are not resolved.
func (o *Org) handleComposite(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		AllOrNone          *bool           `json:"allOrNone"`
		CollateSubrequests *bool           `json:"collateSubrequests"`
		CompositeRequest   json.RawMessage `json:"compositeRequest"`
	}
	if err := readBody(r, &body); err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	var subs []compositeSub
	if len(body.CompositeRequest) == 0 || string(body.CompositeRequest) == "null" {
		writeErrors(w, http.StatusBadRequest, newError("JSON_PARSER_ERROR", "Required field is missing: compositeRequest"))
		return
	}
	if err := json.Unmarshal(body.CompositeRequest, &subs); err != nil {
		writeErrors(w, http.StatusBadRequest, jsonParserError(parserMessage(body.CompositeRequest, err)))
		return
	}
	if len(subs) == 0 {
		writeErrors(w, http.StatusBadRequest, newError("INVALID_INPUT", "compositeRequest must contain at least one subrequest"))
		return
	}
	if len(subs) > maxCompositeSubrequests {
		compositeRefused(w, errLimitExceeded("The request can’t contain more than 25 operations."))
		return
	}
	seen := make(map[string]bool, len(subs))
	collections := 0
	for _, s := range subs {
		switch {
		case s.Method == "" || s.URL == "":
			writeErrors(w, http.StatusBadRequest, newError("INVALID_INPUT", "Every subrequest needs a method and a url"))
			return
		case !compositeRefID.MatchString(s.ReferenceID):
			writeErrors(w, http.StatusBadRequest, newError("INVALID_INPUT",
				"The referenceId "+s.ReferenceID+" is invalid: use only letters, digits and underscores"))
			return
		case seen[s.ReferenceID]:
			writeErrors(w, http.StatusBadRequest, newError("INVALID_INPUT", "Duplicate ReferenceId provided in the request: "+s.ReferenceID))
			return
		}
		seen[s.ReferenceID] = true
		if isCollectionOrQuery(s.URL) {
			collections++
		}
	}
	if collections > maxCompositeCollections {
		// Undocumented: Salesforce documents the limit, not its error. The
		// fake refuses the call like one with too many subrequests.
		compositeRefused(w, errLimitExceeded("The request can’t contain more than 5 sObject Collections or query operations."))
		return
	}
	allOrNone := body.AllOrNone != nil && *body.AllOrNone
	run := &compositeRun{}
	results := make([]compositeResult, len(subs))
	failed := -1
	for i, s := range subs {
		ref := s.ReferenceID
		results[i].ReferenceID = &ref
		if failed >= 0 {
			results[i].setError(http.StatusBadRequest, errProcessingHalted())
			continue
		}
		o.serveSubrequest(r, c, run, s, &results[i])
		if allOrNone && results[i].HTTPStatusCode >= 400 {
			failed = i
		}
	}
	o.mu.Lock()
	if failed >= 0 {
		run.rollback()
	}
	run.commit()
	o.mu.Unlock()
	if failed >= 0 {
		for i := range failed {
			results[i].setError(http.StatusBadRequest, errProcessingHalted())
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"compositeResponse": results})
}

// compositeRefused answers a composite call refused as a whole the way
// Salesforce answers one with too many subrequests: HTTP 200 and one
// result carrying the error with httpStatusCode 400.
func compositeRefused(w http.ResponseWriter, e *Error) {
	var res compositeResult
	res.setError(http.StatusBadRequest, e)
	writeJSON(w, http.StatusOK, map[string]any{"compositeResponse": []compositeResult{res}})
}

func (res *compositeResult) setError(status int, errs ...*Error) {
	out := make([]restError, len(errs))
	for i, e := range errs {
		out[i] = e.rest()
	}
	b, _ := marshalNoEscape(out)
	res.Body, res.HTTPStatusCode, res.HTTPHeaders = bytes.TrimSuffix(b, []byte("\n")), status, map[string]string{}
}

// isCollectionOrQuery reports a subrequest that counts toward the five
// sObject Collections or query operations of one composite call.
func isCollectionOrQuery(url string) bool {
	segs, ok := splitPath(strings.TrimPrefix(strings.SplitN(url, "?", 2)[0], "/services/data/"))
	if !ok || len(segs) < 2 {
		return false
	}
	switch segs[1] {
	case "query", "queryAll":
		return true
	case "composite":
		return len(segs) >= 3 && segs[2] == "sobjects"
	}
	return false
}

// serveSubrequest runs one subrequest through the REST routes and records
// its answer in res.
func (o *Org) serveSubrequest(r *http.Request, parent *call, run *compositeRun, s compositeSub, res *compositeResult) {
	path, query, _ := strings.Cut(s.URL, "?")
	if !strings.HasPrefix(path, "/services/data/") {
		res.setError(http.StatusNotFound, errNotFound())
		return
	}
	segs, ok := splitPath(strings.TrimPrefix(path, "/services/data/"))
	if !ok || len(segs) == 0 {
		res.setError(http.StatusNotFound, errNotFound())
		return
	}
	version, major, ok := parseVersion(segs[0])
	if !ok {
		res.setError(http.StatusNotFound, errNotFound())
		return
	}
	c := &call{version: version, major: major, segs: segs[1:], base: parent.base, comp: run, origin: parent.origin}
	tmpl, methods, _ := o.routeREST(c.segs)
	method := strings.ToUpper(s.Method)
	c.route = method + " " + tmpl
	o.mu.Lock()
	o.subRoutes[c.route]++
	o.mu.Unlock()
	h, allowed := methods[method]
	switch {
	case methods == nil:
		res.setError(http.StatusNotFound, errNotFound())
		return
	case !allowed || tmpl == "/composite":
		res.setError(http.StatusMethodNotAllowed, errMethod(method, "a resource other than composite"))
		return
	}
	var body []byte
	if len(s.Body) > 0 && string(s.Body) != "null" {
		body = s.Body
	}
	u := *r.URL
	u.Path, u.RawPath, u.RawQuery = path, "", query
	sub, err := http.NewRequestWithContext(r.Context(), method, u.String(), bytes.NewReader(body))
	if err != nil {
		res.setError(http.StatusBadRequest, newError("INVALID_INPUT", "The subrequest url is invalid"))
		return
	}
	sub.Host = r.Host
	sub.Header.Set("Content-Type", "application/json")
	for k, v := range s.HTTPHeaders {
		sub.Header.Set(k, v)
	}
	rec := &subWriter{header: http.Header{}}
	if e := limitBodyN(rec, sub, maxBodyBytes); e != nil {
		res.setError(http.StatusBadRequest, e)
		return
	}
	h(rec, sub, c)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	res.HTTPStatusCode = rec.status
	res.HTTPHeaders = map[string]string{}
	if loc := rec.header.Get("Location"); loc != "" {
		res.HTTPHeaders["Location"] = loc
	}
	if b := bytes.TrimSpace(rec.buf.Bytes()); len(b) > 0 {
		res.Body = b
	}
}

// subWriter records a subrequest's answer.
type subWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (s *subWriter) Header() http.Header { return s.header }

func (s *subWriter) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

func (s *subWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.buf.Write(b)
}
