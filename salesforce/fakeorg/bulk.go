package fakeorg

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"orgsync/salesforce"
)

// Bulk API 2.0 ingest: jobs under /services/data/vNN.N/jobs/ingest.

// Bulk job states, as Salesforce names them.
const (
	jobOpen           = "Open"
	jobUploadComplete = "UploadComplete"
	jobInProgress     = "InProgress"
	jobComplete       = "JobComplete"
	jobFailed         = "Failed"
	jobAborted        = "Aborted"
)

const (
	// maxBulkUpload bounds the CSV of one job: Salesforce takes 150 MB once
	// base64-encoded, about 100 MB raw.
	maxBulkUpload = 100 << 20
	// bulkChunk is the number of records processed per transaction (and per
	// hold of the org's lock), as Salesforce chunks a job into 200-record
	// transactions.
	bulkChunk = 200
	// bulkBatchRecords is the number of records one internal batch holds; each
	// counts against DailyBulkApiBatches.
	bulkBatchRecords = 10000
	// dailyBulkBatches is the DailyBulkApiBatches allocation.
	dailyBulkBatches = 15000
)

// columnDelimiters maps the columnDelimiter values to their character.
var columnDelimiters = map[string]rune{
	"COMMA": ',', "TAB": '\t', "PIPE": '|', "SEMICOLON": ';', "CARET": '^', "BACKQUOTE": '`',
}

// bulkJob is one ingest job. The org's mutex guards every field.
type bulkJob struct {
	id, object, operation, extField string
	lineEnding, delimiter           string
	apiVersion                      string // "63.0"
	origin                          string // changeOrigin of its writes, from the create request
	state                           string // Open, UploadComplete (closed), Aborted, Failed, JobComplete
	created, modstamp               time.Time
	closedAt                        time.Time
	delay                           time.Duration // BulkProcessingDelay when the job was closed
	data                            []byte
	uploads                         int
	errorMessage                    string

	// Set by the processing goroutine.
	started, finished bool
	finishedAt        time.Time
	header            []string    // the uploaded header, as sent
	rows              [][]string  // the uploaded rows, as sent
	results           []rowResult // one per row; done=false: unprocessed
	processed, failed int
}

// rowResult is the outcome of one CSV row.
type rowResult struct {
	done    bool
	id      string
	created bool
	err     *recordError
}

// jobInfo is a job as the API renders it. The counters appear only in
// the full form (GET), as in Salesforce's answers.
type jobInfo struct {
	ID                      string      `json:"id"`
	Operation               string      `json:"operation"`
	Object                  string      `json:"object"`
	CreatedByID             string      `json:"createdById"`
	CreatedDate             string      `json:"createdDate"`
	SystemModstamp          string      `json:"systemModstamp"`
	State                   string      `json:"state"`
	ExternalIDFieldName     string      `json:"externalIdFieldName,omitempty"`
	ConcurrencyMode         string      `json:"concurrencyMode"`
	ContentType             string      `json:"contentType"`
	APIVersion              json.Number `json:"apiVersion"`
	ContentURL              string      `json:"contentUrl,omitempty"`
	LineEnding              string      `json:"lineEnding"`
	ColumnDelimiter         string      `json:"columnDelimiter"`
	JobType                 string      `json:"jobType,omitempty"`
	NumberRecordsProcessed  *int        `json:"numberRecordsProcessed,omitempty"`
	NumberRecordsFailed     *int        `json:"numberRecordsFailed,omitempty"`
	Retries                 *int        `json:"retries,omitempty"`
	TotalProcessingTime     *int64      `json:"totalProcessingTime,omitempty"`
	APIActiveProcessingTime *int64      `json:"apiActiveProcessingTime,omitempty"`
	ApexProcessingTime      *int64      `json:"apexProcessingTime,omitempty"`
	ErrorMessage            string      `json:"errorMessage,omitempty"`
}

// routeJobs maps /jobs/… to a stats template and handlers (see routeREST).
func (o *Org) routeJobs(segs []string) (string, map[string]handler, bool) {
	n := len(segs)
	if n >= 2 && segs[1] == "query" {
		return o.routeQueryJobs(segs)
	}
	if n < 2 || segs[1] != "ingest" {
		return "/{unknown}", nil, false
	}
	switch {
	case n == 2:
		return "/jobs/ingest", map[string]handler{http.MethodPost: o.handleJobCreate, http.MethodGet: o.handleJobList}, false
	case n == 3:
		return "/jobs/ingest/{id}", map[string]handler{
			http.MethodGet: o.handleJobGet, http.MethodPatch: o.handleJobPatch, http.MethodDelete: o.handleJobDelete,
		}, false
	case n == 4 && segs[3] == "batches":
		return "/jobs/ingest/{id}/batches", map[string]handler{http.MethodPut: o.handleJobUpload}, false
	case n == 4 && (segs[3] == "successfulResults" || segs[3] == "failedResults" || segs[3] == "unprocessedrecords"):
		return "/jobs/ingest/{id}/" + segs[3], map[string]handler{http.MethodGet: o.handleJobResults}, false
	}
	return "/jobs/ingest/{id}/{unknown}", nil, false
}

// bodyLimit is the request body bound of a route.
func bodyLimit(route string) int64 {
	if route == "PUT /jobs/ingest/{id}/batches" {
		return maxBulkUpload
	}
	return maxBodyBytes
}

func errInvalidJob(msg string) *Error { return newError("INVALIDJOB", "InvalidJob : "+msg) }

func errJobState(msg string) *Error { return newError("INVALIDJOBSTATE", msg) }

func errInvalidValue(property, v string) *Error {
	return newError("API_ERROR", fmt.Sprintf("Invalid value: '%s' supplied for property: '%s'", v, property))
}

// handleJobCreate answers POST /jobs/ingest.
func (o *Org) handleJobCreate(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		Object              string `json:"object"`
		Operation           string `json:"operation"`
		ExternalIDFieldName string `json:"externalIdFieldName"`
		ContentType         string `json:"contentType"`
		LineEnding          string `json:"lineEnding"`
		ColumnDelimiter     string `json:"columnDelimiter"`
		AssignmentRuleID    string `json:"assignmentRuleId"`
	}
	if err := readBody(r, &body); err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	j := &bulkJob{
		object: body.Object, operation: body.Operation, apiVersion: c.version,
		origin:     changeOrigin(apiBulk, c.version, r.Header),
		lineEnding: cmpOr(body.LineEnding, "LF"), delimiter: cmpOr(body.ColumnDelimiter, "COMMA"), state: jobOpen,
	}
	switch body.Operation {
	case "insert", "update", "upsert", "delete":
	case "hardDelete":
		writeErrors(w, http.StatusBadRequest, errInvalidJob("the fake org does not implement hardDelete"))
		return
	default:
		writeErrors(w, http.StatusBadRequest, errInvalidValue("operation", body.Operation))
		return
	}
	if !strings.EqualFold(body.Object, "Account") {
		writeErrors(w, http.StatusBadRequest, errInvalidJob("Unable to find object: "+body.Object))
		return
	}
	j.object = "Account"
	if ct := cmpOr(body.ContentType, "CSV"); ct != "CSV" {
		writeErrors(w, http.StatusBadRequest, errInvalidValue("contentType", ct))
		return
	}
	if j.lineEnding != "LF" && j.lineEnding != "CRLF" {
		writeErrors(w, http.StatusBadRequest, errInvalidValue("lineEnding", j.lineEnding))
		return
	}
	if _, ok := columnDelimiters[j.delimiter]; !ok {
		writeErrors(w, http.StatusBadRequest, errInvalidValue("columnDelimiter", j.delimiter))
		return
	}
	if body.Operation == "upsert" {
		f, ok := o.schema.lookup(body.ExternalIDFieldName)
		if !ok || !f.ExternalID {
			writeErrors(w, http.StatusBadRequest, errInvalidJob(fmt.Sprintf(
				"Field name provided, %s does not match an External ID for Account", body.ExternalIDFieldName)))
			return
		}
		j.extField = f.Name
	}
	o.mu.Lock()
	j.id = o.ids.next(salesforce.PrefixBulkJob)
	j.created = o.nowUTC()
	j.modstamp = j.created
	o.jobs[j.id] = j
	o.jobOrder = append(o.jobOrder, j.id)
	info := o.jobInfoLocked(j, false)
	o.mu.Unlock()
	info.ContentURL = "services/data/v" + c.version + "/jobs/ingest/" + j.id + "/batches"
	writeJSON(w, http.StatusOK, info)
}

// findJob resolves the job ID of a path. The caller holds o.mu.
func (o *Org) findJob(raw string) (*bulkJob, *Error) {
	id, err := salesforce.NormalizeIDWithPrefix(raw, salesforce.PrefixBulkJob)
	if err != nil {
		return nil, errNotFound()
	}
	j, ok := o.jobs[id]
	if !ok {
		return nil, errNotFound()
	}
	return j, nil
}

// stateLocked returns the job's state as clients see it now, moving a
// processed job to JobComplete once its processing delay has passed.
func (o *Org) stateLocked(j *bulkJob) string {
	if j.state != jobUploadComplete {
		return j.state
	}
	switch {
	case !j.started:
		return jobUploadComplete
	case !j.finished:
		return jobInProgress
	}
	now := o.nowUTC()
	if now.Before(j.closedAt.Add(j.delay)) {
		return jobInProgress
	}
	j.state = jobComplete
	j.modstamp = maxTime(j.finishedAt, j.closedAt.Add(j.delay)).Truncate(time.Millisecond)
	return j.state
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// jobInfoLocked renders a job; full adds the counters of GET. The caller
// holds o.mu.
func (o *Org) jobInfoLocked(j *bulkJob, full bool) jobInfo {
	state := o.stateLocked(j) // may move the job on, and its modstamp
	info := jobInfo{
		ID: j.id, Operation: j.operation, Object: j.object, CreatedByID: o.userID,
		CreatedDate: sfTime(j.created), SystemModstamp: sfTime(j.modstamp), State: state,
		ExternalIDFieldName: j.extField, ConcurrencyMode: "Parallel", ContentType: "CSV",
		APIVersion: json.Number(j.apiVersion), LineEnding: j.lineEnding, ColumnDelimiter: j.delimiter,
	}
	if !full {
		return info
	}
	var total int64
	if j.finished {
		total = j.finishedAt.Sub(j.closedAt).Milliseconds()
	}
	info.JobType = "V2Ingest"
	info.NumberRecordsProcessed, info.NumberRecordsFailed = ptr(j.processed), ptr(j.failed)
	info.Retries, info.TotalProcessingTime = ptr(0), ptr(total)
	info.APIActiveProcessingTime, info.ApexProcessingTime = ptr(total), ptr(int64(0))
	info.ErrorMessage = j.errorMessage
	return info
}

// handleJobList answers GET /jobs/ingest: every job, in creation order.
func (o *Org) handleJobList(w http.ResponseWriter, r *http.Request, c *call) {
	o.mu.Lock()
	records := make([]jobInfo, 0, len(o.jobOrder))
	for _, id := range o.jobOrder {
		if j, ok := o.jobs[id]; ok {
			records = append(records, o.jobInfoLocked(j, true))
		}
	}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"done": true, "records": records, "nextRecordsUrl": nil})
}

// handleJobGet answers GET /jobs/ingest/{id}.
func (o *Org) handleJobGet(w http.ResponseWriter, r *http.Request, c *call) {
	o.mu.Lock()
	j, err := o.findJob(c.segs[2])
	var info jobInfo
	if err == nil {
		info = o.jobInfoLocked(j, true)
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleJobUpload answers PUT /jobs/ingest/{id}/batches with 201 and no body.
func (o *Org) handleJobUpload(w http.ResponseWriter, r *http.Request, c *call) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/csv" {
		writeErrors(w, http.StatusBadRequest, newError("INVALIDCONTENTTYPE",
			"The Content-Type of job data must be text/csv, not "+clip(r.Header.Get("Content-Type"), 100)))
		return
	}
	data, rerr := io.ReadAll(r.Body)
	if rerr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(rerr, &tooBig) {
			writeErrors(w, http.StatusBadRequest, newError("ClientInputError",
				fmt.Sprintf("The job data exceeds %d bytes; split it into several jobs", tooBig.Limit)))
			return
		}
		writeErrors(w, http.StatusBadRequest, newError("ClientInputError", "Unable to read the job data"))
		return
	}
	o.mu.Lock()
	j, err := o.findJob(c.segs[2])
	status := http.StatusNotFound
	if err == nil && o.stateLocked(j) != jobOpen {
		err, status = errJobState(fmt.Sprintf("Job %s is in state %s; data can only be uploaded to an Open job", j.id, o.stateLocked(j))), http.StatusBadRequest
	}
	if err == nil {
		j.data = data
		j.uploads++
		j.modstamp = o.nowUTC()
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// handleJobPatch answers PATCH /jobs/ingest/{id} with {"state":"UploadComplete"}
// (close; processing starts) or {"state":"Aborted"}.
func (o *Org) handleJobPatch(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		State string `json:"state"`
	}
	if err := readBody(r, &body); err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	o.mu.Lock()
	j, err := o.findJob(c.segs[2])
	status := http.StatusNotFound
	start := false
	if err == nil {
		status = http.StatusBadRequest
		state := o.stateLocked(j)
		switch body.State {
		case jobUploadComplete:
			switch {
			case state != jobOpen:
				err = errJobState(fmt.Sprintf("Job %s is in state %s; only an Open job can be closed", j.id, state))
			case j.uploads > 1:
				// Salesforce's own text, spelling included.
				err = newError("INVALIDJOB", fmt.Sprintf("Found multipe contents for job: <%s>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.", j.id[:15]))
			default:
				j.state = jobUploadComplete
				j.closedAt = o.nowUTC()
				j.modstamp = j.closedAt
				j.delay = o.live.bulkDelay
				start = true
			}
		case jobAborted:
			switch state {
			case jobOpen, jobUploadComplete, jobInProgress:
				j.state = jobAborted
				j.modstamp = o.nowUTC()
			default:
				err = errJobState(fmt.Sprintf("Job %s is in state %s and can no longer be aborted", j.id, state))
			}
		default:
			err = errJobState(fmt.Sprintf("Invalid state %q: a job can only be set to UploadComplete or Aborted", body.State))
		}
	}
	var info jobInfo
	if err == nil {
		info = o.jobInfoLocked(j, false)
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	if start {
		go o.runJob(j)
	}
	writeJSON(w, http.StatusOK, info)
}

// handleJobDelete answers DELETE /jobs/ingest/{id} with 204, for a job in
// state UploadComplete, JobComplete, Aborted or Failed.
func (o *Org) handleJobDelete(w http.ResponseWriter, r *http.Request, c *call) {
	o.mu.Lock()
	j, err := o.findJob(c.segs[2])
	status := http.StatusNotFound
	if err == nil {
		switch state := o.stateLocked(j); state {
		case jobUploadComplete, jobComplete, jobAborted, jobFailed:
			if state == jobUploadComplete {
				j.state = jobAborted // stops the processing
			}
			delete(o.jobs, j.id)
		default:
			err, status = errJobState(fmt.Sprintf("Job %s is in state %s; only a job in state UploadComplete, JobComplete, Aborted or Failed can be deleted", j.id, state)), http.StatusBadRequest
		}
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleJobResults answers GET …/successfulResults, …/failedResults and
// …/unprocessedrecords with CSV: "sf__Id","sf__Created" or "sf__Id","sf__Error"
// then the uploaded columns (none for unprocessed records), in upload order.
func (o *Org) handleJobResults(w http.ResponseWriter, r *http.Request, c *call) {
	kind := c.segs[3]
	o.mu.Lock()
	j, err := o.findJob(c.segs[2])
	status := http.StatusNotFound
	var out []byte
	if err == nil {
		state := o.stateLocked(j)
		switch {
		case state == jobOpen || state == jobUploadComplete || state == jobInProgress:
			err, status = errJobState(fmt.Sprintf("Job %s is in state %s; results are available once it is JobComplete, Failed or Aborted", j.id, state)), http.StatusBadRequest
		default:
			out = j.resultsCSV(kind)
		}
	}
	o.mu.Unlock()
	if err != nil {
		writeErrors(w, status, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// resultsCSV renders one kind of result. The caller holds o.mu.
func (j *bulkJob) resultsCSV(kind string) []byte {
	var buf bytes.Buffer
	comma := columnDelimiters[j.delimiter]
	header := j.header
	switch kind {
	case "successfulResults":
		buf.WriteString(`"sf__Id"` + string(comma) + `"sf__Created"`)
	case "failedResults":
		buf.WriteString(`"sf__Id"` + string(comma) + `"sf__Error"`)
	}
	// Salesforce quotes its own columns and echoes the uploaded header
	// names; data rows quote every value.
	for i, h := range header {
		if i > 0 || kind != "unprocessedrecords" {
			buf.WriteRune(comma)
		}
		buf.WriteString(csvField(h, comma, false))
	}
	eol := "\n"
	if j.lineEnding == "CRLF" {
		eol = "\r\n"
	}
	buf.WriteString(eol)
	for i, row := range j.rows {
		var res rowResult
		if i < len(j.results) {
			res = j.results[i]
		}
		var lead []string
		switch {
		case kind == "successfulResults" && res.done && res.err == nil:
			lead = []string{res.id, fmt.Sprint(res.created)}
		case kind == "failedResults" && res.done && res.err != nil:
			lead = []string{res.id, sfError(res.err)}
		case kind == "unprocessedrecords" && !res.done:
		default:
			continue
		}
		for k, v := range append(lead, row...) {
			if k > 0 {
				buf.WriteRune(comma)
			}
			buf.WriteString(csvField(v, comma, true))
		}
		buf.WriteString(eol)
	}
	return buf.Bytes()
}

// csvField renders one CSV value, quoted when always is set or when the
// value needs it.
func csvField(v string, comma rune, always bool) string {
	if always || v != "" && (strings.ContainsRune(v, comma) || strings.ContainsAny(v, "\"\r\n") || v[0] == ' ') {
		return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
	}
	return v
}

// sfError formats a record error as Bulk API results do:
// "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --", or
// "CODE:message:--" when no field is named.
func sfError(e *recordError) string {
	fields := "--"
	if len(e.Fields) > 0 {
		fields = strings.Join(e.Fields, ", ") + " --"
	}
	return e.StatusCode + ":" + e.Message + ":" + fields
}

// bulkColumn is one resolved column of an uploaded CSV.
type bulkColumn struct {
	field  *field // nil for Id and parent references
	isID   bool
	parent *field // the external ID field of "Parent.<field>"
}

// columns resolves the header of a job's CSV; an unknown column fails the
// whole job, as Salesforce does ("InvalidBatch : Field name not found : X").
func (o *Org) columns(header []string) ([]bulkColumn, string) {
	cols := make([]bulkColumn, len(header))
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		name := strings.TrimSpace(h)
		key := strings.ToLower(name)
		if seen[key] {
			return nil, "InvalidBatch : Duplicate field name: " + name
		}
		seen[key] = true
		if strings.EqualFold(name, "Id") {
			cols[i].isID = true
			continue
		}
		if rel, fname, ok := strings.Cut(name, "."); ok {
			f, found := o.schema.lookup(fname)
			if !strings.EqualFold(rel, "Parent") || !found || !f.ExternalID {
				return nil, "InvalidBatch : Field name not found : " + name
			}
			cols[i].parent = f
			continue
		}
		f, ok := o.schema.lookup(name)
		if !ok {
			return nil, "InvalidBatch : Field name not found : " + name
		}
		cols[i].field = f
	}
	return cols, ""
}

// parseJobCSV reads a job's data strictly (RFC 4180 quoting, the job's
// delimiter, every row as wide as the header).
func parseJobCSV(data []byte, delimiter string) ([]string, [][]string, error) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = columnDelimiters[delimiter]
	cr.FieldsPerRecord = 0
	all, err := cr.ReadAll()
	if err != nil {
		return nil, nil, err
	}
	if len(all) == 0 {
		return nil, nil, errors.New("the job data has no header row")
	}
	if len(all[0]) > 0 {
		all[0][0] = strings.TrimPrefix(all[0][0], "\ufeff")
	}
	return all[0], all[1:], nil
}

// rowInput converts a CSV row to a record input: an empty value leaves the
// field alone, #N/A sets it to null, Parent.<ext field> references the parent
// by external ID.
func rowInput(cols []bulkColumn, row []string) (*recordInput, *Error) {
	in := &recordInput{values: make(map[string]any, len(row))}
	for k, col := range cols {
		v := row[k]
		if v == "" {
			continue
		}
		null := v == "#N/A"
		switch {
		case col.isID:
			if !null {
				in.id, in.hasID = v, true
			}
		case col.parent != nil:
			if null {
				in.values["ParentId"] = nil
			} else {
				in.parent = &parentRef{field: col.parent.Name, value: v}
			}
		case null:
			in.values[col.field.Name] = nil
		default:
			cv, err := convertValue(col.field, v)
			if err != nil {
				return nil, fieldsError("INVALID_TYPE_ON_FIELD_IN_RECORD",
					fmt.Sprintf("%s: value not of required type: %s", col.field.Label, v), []string{col.field.Name})
			}
			in.values[col.field.Name] = cv
		}
	}
	return in, nil
}

// runJob processes a closed job: parse, then write the records in chunks of
// bulkChunk with the same validation, upsert logic and faults as sObject
// Collections, releasing the lock between chunks. Abort stops it between
// chunks; the rest stays unprocessed.
func (o *Org) runJob(j *bulkJob) {
	o.mu.Lock()
	data, delimiter := j.data, j.delimiter
	o.mu.Unlock()
	header, rows, perr := parseJobCSV(data, delimiter)

	o.mu.Lock()
	fail := func(msg string) {
		j.state, j.errorMessage = jobFailed, msg
		j.finished, j.finishedAt = true, o.nowUTC()
		j.modstamp = j.finishedAt
		o.mu.Unlock()
	}
	if perr == nil {
		j.header, j.rows = header, rows
		j.results = make([]rowResult, len(rows))
	}
	if j.state != jobUploadComplete { // aborted or deleted before it started
		o.mu.Unlock()
		return
	}
	j.started = true
	if perr != nil {
		fail("InvalidBatch : Failed to parse CSV: " + perr.Error())
		return
	}
	cols, msg := o.columns(header)
	if msg != "" {
		fail(msg)
		return
	}
	if len(rows) > 0 {
		o.bulkBatches += (len(rows) + bulkBatchRecords - 1) / bulkBatchRecords
	}
	var extField *field
	if j.extField != "" {
		extField, _ = o.schema.lookup(j.extField)
	}
	o.mu.Unlock()

	// Decode every row, then find duplicate external IDs across the job.
	ins := make([]*recordInput, len(rows))
	rowErr := make([]*Error, len(rows))
	var valid []*recordInput
	var validIdx []int
	for i, row := range rows {
		ins[i], rowErr[i] = rowInput(cols, row)
		if rowErr[i] == nil {
			valid = append(valid, ins[i])
			validIdx = append(validIdx, i)
		}
	}
	dups := make(map[int]*Error)
	if j.operation == "upsert" || j.operation == "update" || j.operation == "insert" {
		for k, e := range o.duplicateExternalIDs(valid) {
			dups[validIdx[k]] = e
		}
	}

	for from := 0; from < len(rows); from += bulkChunk {
		o.mu.Lock()
		if j.state != jobUploadComplete {
			o.mu.Unlock()
			break
		}
		for i := from; i < min(from+bulkChunk, len(rows)); i++ {
			res := o.processRow(j, extField, ins[i], cmpErr(rowErr[i], dups[i]))
			j.results[i] = res
			j.processed++
			if res.err != nil {
				j.failed++
			}
		}
		o.mu.Unlock()
	}
	o.mu.Lock()
	j.finished, j.finishedAt = true, o.nowUTC()
	if j.state == jobUploadComplete {
		j.modstamp = j.finishedAt
	}
	o.mu.Unlock()
}

func cmpErr(a, b *Error) *Error {
	if a != nil {
		return a
	}
	return b
}

// processRow writes one record of a job. The caller holds o.mu.
func (o *Org) processRow(j *bulkJob, extField *field, in *recordInput, pre *Error) rowResult {
	id := ""
	if in != nil && in.hasID {
		id = in.id
		if n, err := salesforce.NormalizeID(id); err == nil {
			id = n
		}
	}
	failed := func(e *Error) rowResult {
		re := e.record()
		return rowResult{done: true, id: id, err: &re}
	}
	if pre != nil {
		if j.operation == "insert" || j.operation == "upsert" {
			id = ""
		}
		return failed(pre)
	}
	switch j.operation {
	case "insert":
		merged, err := o.prepare(in, nil, "", writeOpts{faults: true})
		if err != nil {
			id = ""
			return failed(err)
		}
		return rowResult{done: true, id: o.commitCreate(merged, time.Time{}, directTxn(j.origin)), created: true}
	case "upsert":
		res := o.upsertOne(extField, in, nil, directTxn(j.origin))
		if !res.Success {
			return rowResult{done: true, err: &res.Errors[0]}
		}
		return rowResult{done: true, id: res.ID, created: res.Created != nil && *res.Created}
	case "update":
		if !in.hasID || in.id == "" {
			return failed(fieldsError("MISSING_ARGUMENT", "Id not specified in an update call", nil))
		}
		if err := o.updateLocked(in.id, in, writeOpts{faults: true}, directTxn(j.origin)); err != nil {
			return failed(recordErr(err))
		}
		return rowResult{done: true, id: id}
	default: // delete
		if !in.hasID || in.id == "" {
			return failed(fieldsError("MISSING_ARGUMENT", "Id not specified in a delete call", nil))
		}
		a, err := o.findAccount(in.id)
		if err == nil {
			err = o.softDelete(a, directTxn(j.origin), true)
		}
		if err != nil {
			if err.Code == "MALFORMED_ID" {
				err = fieldsError("MALFORMED_ID", "malformed id "+in.id, nil)
			}
			return failed(recordErr(err))
		}
		return rowResult{done: true, id: id}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
