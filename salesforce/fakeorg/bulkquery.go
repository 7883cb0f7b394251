package fakeorg

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg/internal/soql"
)

// Bulk API 2.0 query: jobs under /services/data/vNN.N/jobs/query.

const (
	// defaultQueryResults is the size of a set of results when the client
	// names no maxRecords: Salesforce sizes sets by bytes, the fake by rows.
	defaultQueryResults = 50000
	// maxQueryResults caps maxRecords.
	maxQueryResults = 100000
)

// queryJob is one query job. The org's mutex guards every field.
type queryJob struct {
	id, operation, query string
	apiVersion           string
	state                string // UploadComplete until ready (then JobComplete), Aborted
	created, modstamp    time.Time
	delay                time.Duration // BulkProcessingDelay when the job was created
	header               []string
	rows                 [][]string // the results, snapshot at creation
}

// queryJobInfo is a query job as the API renders it.
type queryJobInfo struct {
	ID                     string      `json:"id"`
	Operation              string      `json:"operation"`
	Object                 string      `json:"object"`
	CreatedByID            string      `json:"createdById"`
	CreatedDate            string      `json:"createdDate"`
	SystemModstamp         string      `json:"systemModstamp"`
	State                  string      `json:"state"`
	ConcurrencyMode        string      `json:"concurrencyMode"`
	ContentType            string      `json:"contentType"`
	APIVersion             json.Number `json:"apiVersion"`
	LineEnding             string      `json:"lineEnding"`
	ColumnDelimiter        string      `json:"columnDelimiter"`
	JobType                string      `json:"jobType,omitempty"`
	NumberRecordsProcessed *int        `json:"numberRecordsProcessed,omitempty"`
	Retries                *int        `json:"retries,omitempty"`
	TotalProcessingTime    *int64      `json:"totalProcessingTime,omitempty"`
}

// routeQueryJobs maps /jobs/query/… to a stats template and handlers.
func (o *Org) routeQueryJobs(segs []string) (string, map[string]handler, bool) {
	switch n := len(segs); {
	case n == 2:
		return "/jobs/query", map[string]handler{http.MethodPost: o.handleQueryJobCreate}, false
	case n == 3:
		return "/jobs/query/{id}", map[string]handler{
			http.MethodGet: o.handleQueryJobGet, http.MethodPatch: o.handleQueryJobPatch, http.MethodDelete: o.handleQueryJobDelete,
		}, false
	case n == 4 && segs[3] == "results":
		return "/jobs/query/{id}/results", map[string]handler{http.MethodGet: o.handleQueryJobResults}, false
	}
	return "/jobs/query/{id}/{unknown}", nil, false
}

// handleQueryJobCreate answers POST /jobs/query: the query is checked and
// run at once (its results are a snapshot of that moment); the job is
// UploadComplete, then JobComplete once BulkProcessingDelay has passed.
func (o *Org) handleQueryJobCreate(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		Operation       string `json:"operation"`
		Query           string `json:"query"`
		ContentType     string `json:"contentType"`
		LineEnding      string `json:"lineEnding"`
		ColumnDelimiter string `json:"columnDelimiter"`
	}
	if err := readBody(r, &body); err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	switch {
	case body.Operation != "query" && body.Operation != "queryAll":
		writeErrors(w, http.StatusBadRequest, errInvalidValue("operation", body.Operation))
		return
	case cmpOr(body.ContentType, "CSV") != "CSV":
		writeErrors(w, http.StatusBadRequest, errInvalidValue("contentType", body.ContentType))
		return
	case cmpOr(body.LineEnding, "LF") != "LF":
		writeErrors(w, http.StatusBadRequest, newError("API_ERROR", "the fake org writes query results with LF line endings only"))
		return
	case cmpOr(body.ColumnDelimiter, "COMMA") != "COMMA":
		writeErrors(w, http.StatusBadRequest, newError("API_ERROR", "the fake org writes query results comma-delimited only"))
		return
	case strings.TrimSpace(body.Query) == "":
		writeErrors(w, http.StatusBadRequest, newError("API_ERROR", "Invalid value: '' supplied for property: 'query'"))
		return
	}
	q, err := soql.Parse(body.Query)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, soqlError(body.Query, err))
		return
	}
	if !strings.EqualFold(q.Object, "Account") {
		writeErrors(w, http.StatusBadRequest, errQueryType(body.Query, q.Object))
		return
	}
	q.Object = "Account"
	if q.Count {
		writeErrors(w, http.StatusBadRequest, newError("API_ERROR", "Aggregate Relationships and COUNT() are not supported in Bulk API 2.0 query"))
		return
	}
	if err := q.Resolve(o.schema.soqlLookup); err != nil {
		writeErrors(w, http.StatusBadRequest, soqlError(body.Query, err))
		return
	}
	j := &queryJob{operation: body.Operation, query: body.Query, apiVersion: c.version, state: jobUploadComplete}
	o.mu.Lock()
	j.header, j.rows = o.queryRowsLocked(q, body.Operation == "queryAll")
	j.id = o.ids.next(salesforce.PrefixBulkJob)
	j.created = o.nowUTC()
	j.modstamp = j.created
	j.delay = o.live.bulkDelay
	o.qjobs[j.id] = j
	info := o.queryJobInfoLocked(j, false)
	info.State = jobUploadComplete // as Salesforce answers a create, however fast the job
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

// queryRowsLocked evaluates q and renders its rows as CSV values.
func (o *Org) queryRowsLocked(q *soql.Query, all bool) ([]string, [][]string) {
	var matches []*account
	for _, id := range o.order {
		a := o.accounts[id]
		if a.deleted && !all {
			continue
		}
		if q.Match(getter(a.f)) {
			matches = append(matches, a)
		}
	}
	if len(q.OrderBy) > 0 {
		sortAccounts(matches, q)
	}
	matches = matches[min(q.Offset, len(matches)):]
	if q.Limit >= 0 && q.Limit < len(matches) {
		matches = matches[:q.Limit]
	}
	rows := make([][]string, len(matches))
	for i, a := range matches {
		row := make([]string, len(q.Fields))
		for k, n := range q.Fields {
			row[k] = csvText(o.fieldValue(a.f, n))
		}
		rows[i] = row
	}
	return append([]string(nil), q.Fields...), rows
}

// csvText renders a value as Bulk API 2.0 query results do: null is empty.
func csvText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		return t.String()
	case map[string]any: // a compound address: Bulk query leaves it out
		return ""
	}
	return fmt.Sprint(v)
}

// queryStateLocked returns the job's state as clients see it now.
func (o *Org) queryStateLocked(j *queryJob) string {
	if j.state != jobUploadComplete {
		return j.state
	}
	if o.nowUTC().Before(j.created.Add(j.delay)) {
		return jobInProgress
	}
	j.state = jobComplete
	j.modstamp = j.created.Add(j.delay).Truncate(time.Millisecond)
	return j.state
}

func (o *Org) queryJobInfoLocked(j *queryJob, full bool) queryJobInfo {
	state := o.queryStateLocked(j)
	info := queryJobInfo{
		ID: j.id, Operation: j.operation, Object: "Account", CreatedByID: o.userID,
		CreatedDate: sfTime(j.created), SystemModstamp: sfTime(j.modstamp), State: state,
		ConcurrencyMode: "Parallel", ContentType: "CSV", APIVersion: json.Number(j.apiVersion),
		LineEnding: "LF", ColumnDelimiter: "COMMA",
	}
	if !full {
		return info
	}
	processed := 0
	var total int64
	if state == jobComplete {
		processed = len(j.rows)
		total = j.delay.Milliseconds()
	}
	info.JobType = "V2Query"
	info.NumberRecordsProcessed, info.Retries, info.TotalProcessingTime = ptr(processed), ptr(0), ptr(total)
	return info
}

// findQueryJob resolves the job ID of a path. The caller holds o.mu.
func (o *Org) findQueryJob(raw string) (*queryJob, *Error) {
	id, err := salesforce.NormalizeIDWithPrefix(raw, salesforce.PrefixBulkJob)
	if err != nil {
		return nil, errNotFound()
	}
	j, ok := o.qjobs[id]
	if !ok {
		return nil, errNotFound()
	}
	return j, nil
}

// handleQueryJobGet answers GET /jobs/query/{id}.
func (o *Org) handleQueryJobGet(w http.ResponseWriter, r *http.Request, c *call) {
	o.mu.Lock()
	j, err := o.findQueryJob(c.segs[2])
	var info queryJobInfo
	if err == nil {
		info = o.queryJobInfoLocked(j, true)
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleQueryJobPatch answers PATCH /jobs/query/{id} {"state":"Aborted"}.
func (o *Org) handleQueryJobPatch(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		State string `json:"state"`
	}
	if err := readBody(r, &body); err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	o.mu.Lock()
	j, err := o.findQueryJob(c.segs[2])
	status := http.StatusNotFound
	var info queryJobInfo
	if err == nil {
		status = http.StatusBadRequest
		switch state := o.queryStateLocked(j); {
		case body.State != jobAborted:
			err = errJobState(fmt.Sprintf("Invalid state %q: a query job can only be set to Aborted", body.State))
		case state != jobUploadComplete && state != jobInProgress:
			err = errJobState(fmt.Sprintf("Job %s is in state %s and can no longer be aborted", j.id, state))
		default:
			j.state, j.rows = jobAborted, nil
			j.modstamp = o.nowUTC()
			info = o.queryJobInfoLocked(j, false)
		}
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleQueryJobDelete answers DELETE /jobs/query/{id} with 204, for a job
// in state JobComplete, Aborted or Failed.
func (o *Org) handleQueryJobDelete(w http.ResponseWriter, r *http.Request, c *call) {
	o.mu.Lock()
	j, err := o.findQueryJob(c.segs[2])
	status := http.StatusNotFound
	if err == nil {
		switch state := o.queryStateLocked(j); state {
		case jobComplete, jobAborted, jobFailed:
			delete(o.qjobs, j.id)
		default:
			err, status = errJobState(fmt.Sprintf("Job %s is in state %s; only a job in state JobComplete, Aborted or Failed can be deleted", j.id, state)), http.StatusBadRequest
		}
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// locatorOf encodes a row offset as Salesforce-like opaque locator text.
func locatorOf(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset)))
}

// offsetOf decodes a locator; ok is false for one the fake did not issue.
func offsetOf(loc string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(loc)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil && n >= 0
}

// handleQueryJobResults answers GET /jobs/query/{id}/results?locator=&maxRecords=
// with a set of CSV rows, Sforce-Locator (the next set, "null" after the
// last) and Sforce-NumberOfRecords.
func (o *Org) handleQueryJobResults(w http.ResponseWriter, r *http.Request, c *call) {
	size := defaultQueryResults
	if s := r.URL.Query().Get("maxRecords"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeErrors(w, http.StatusBadRequest, errInvalidValue("maxRecords", clip(s, 40)))
			return
		}
		size = min(n, maxQueryResults)
	}
	from := 0
	if s := r.URL.Query().Get("locator"); s != "" {
		n, ok := offsetOf(s)
		if !ok {
			writeErrors(w, http.StatusBadRequest, newError("INVALID_LOCATOR", "Invalid locator: "+clip(s, 40)))
			return
		}
		from = n
	}
	o.mu.Lock()
	j, err := o.findQueryJob(c.segs[2])
	status := http.StatusNotFound
	var header []string
	var rows [][]string
	next := "null"
	if err == nil {
		status = http.StatusBadRequest
		switch state := o.queryStateLocked(j); {
		case state != jobComplete:
			err = errJobState(fmt.Sprintf("Job %s is in state %s; results are only available for a JobComplete job", j.id, state))
		case from > len(j.rows):
			err = newError("INVALID_LOCATOR", "Invalid locator: "+clip(r.URL.Query().Get("locator"), 40))
		default:
			end := min(from+size, len(j.rows))
			header, rows = j.header, j.rows[from:end]
			if end < len(j.rows) {
				next = locatorOf(end)
			}
		}
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(header)
	_ = cw.WriteAll(rows) // a bytes.Buffer does not fail
	w.Header().Set("Content-Type", "text/csv")
	w.Header().Set("Sforce-Locator", next)
	w.Header().Set("Sforce-NumberOfRecords", strconv.Itoa(len(rows)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
