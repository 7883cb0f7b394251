package salesforce

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Bulk API 2.0 job states.
const (
	JobStateOpen           = "Open"
	JobStateUploadComplete = "UploadComplete"
	JobStateInProgress     = "InProgress"
	JobStateJobComplete    = "JobComplete"
	JobStateFailed         = "Failed"
	JobStateAborted        = "Aborted"
)

// Bulk API 2.0 ingest operations.
const (
	BulkInsert = "insert"
	BulkUpdate = "update"
	BulkUpsert = "upsert"
	BulkDelete = "delete"
)

// BulkNull is the CSV value that sets a field to null in Bulk API 2.0 (an
// empty value leaves the field alone).
const BulkNull = "#N/A"

// Route templates of the Bulk calls, as in CallInfo and the fake org's stats.
const (
	routeJobCreate      = "POST /jobs/ingest"
	routeJobUpload      = "PUT /jobs/ingest/{id}/batches"
	routeJobPatch       = "PATCH /jobs/ingest/{id}"
	routeJobGet         = "GET /jobs/ingest/{id}"
	routeJobDelete      = "DELETE /jobs/ingest/{id}"
	routeJobResultsBase = "GET /jobs/ingest/{id}/"
)

// maxPollFailures is how many polls in a row WaitJob lets fail with a
// Transient error before it returns the error.
const maxPollFailures = 5

// BulkJob is a Bulk API 2.0 ingest job's info.
type BulkJob struct {
	ID              string
	State           string // JobState…
	Object          string
	Operation       string // insert, update, upsert, delete
	ExternalIDField string // of an upsert
	ErrorMessage    string // why a Failed job failed
	// Processed and Failed count records (Processed includes Failed); they
	// are 0 in the answers of CreateIngestJob, CloseJob and AbortJob.
	Processed, Failed int
	APIVersion        string
	CreatedDate       string // as Salesforce renders it: 2026-01-01T00:00:00.000+0000
	SystemModstamp    string
	// TotalProcessingTime is the processing time Salesforce reports.
	TotalProcessingTime time.Duration
	Retries             int
}

// Done reports a terminal state: JobComplete, Failed or Aborted.
func (j *BulkJob) Done() bool {
	switch j.State {
	case JobStateJobComplete, JobStateFailed, JobStateAborted:
		return true
	}
	return false
}

// wireJob is a job info answer.
type wireJob struct {
	ID                     string      `json:"id"`
	State                  string      `json:"state"`
	Object                 string      `json:"object"`
	Operation              string      `json:"operation"`
	ExternalIDFieldName    string      `json:"externalIdFieldName"`
	ErrorMessage           string      `json:"errorMessage"`
	NumberRecordsProcessed json.Number `json:"numberRecordsProcessed"`
	NumberRecordsFailed    json.Number `json:"numberRecordsFailed"`
	APIVersion             json.Number `json:"apiVersion"`
	CreatedDate            string      `json:"createdDate"`
	SystemModstamp         string      `json:"systemModstamp"`
	TotalProcessingTime    json.Number `json:"totalProcessingTime"`
	Retries                json.Number `json:"retries"`
}

func (w *wireJob) job() *BulkJob {
	num := func(n json.Number) int {
		f, err := n.Float64()
		if err != nil || f < 0 || f > math.MaxInt32 {
			return 0
		}
		return int(f)
	}
	v := string(w.APIVersion)
	if v != "" && !strings.Contains(v, ".") {
		v += ".0"
	}
	return &BulkJob{
		ID: w.ID, State: w.State, Object: w.Object, Operation: w.Operation, ExternalIDField: w.ExternalIDFieldName,
		ErrorMessage: w.ErrorMessage, Processed: num(w.NumberRecordsProcessed), Failed: num(w.NumberRecordsFailed),
		APIVersion: v, CreatedDate: w.CreatedDate, SystemModstamp: w.SystemModstamp,
		TotalProcessingTime: time.Duration(num(w.TotalProcessingTime)) * time.Millisecond, Retries: num(w.Retries),
	}
}

// jobPath is the path of a job or of one of its resources.
func (c *Client) jobPath(jobID, rest string) string {
	return c.dataPath("/jobs/ingest/" + escapeSegment(jobID) + rest)
}

// decodeJob decodes a job info answer.
func decodeJob(resp *Response, route string) (*BulkJob, error) {
	var w wireJob
	if err := decode(resp, route, &w); err != nil {
		return nil, err
	}
	if w.ID == "" || w.State == "" {
		return nil, fmt.Errorf("salesforce: %s: the %d response has no job id or state", route, resp.Status)
	}
	return w.job(), nil
}

// CreateIngestJob creates a Bulk API 2.0 ingest job for CSV with LF line
// endings and comma delimiters (POST jobs/ingest). operation is insert,
// update, upsert or delete; extIDField names the external ID field of an
// upsert and must be empty otherwise. The job is Open: upload its data
// with UploadJobData, then CloseJob. A refusal is an *APIError (INVALIDJOB,
// API_ERROR).
func (c *Client) CreateIngestJob(ctx context.Context, object, operation, extIDField string) (*BulkJob, error) {
	if err := checkName("sobject", object); err != nil {
		return nil, err
	}
	switch operation {
	case BulkInsert, BulkUpdate, BulkDelete:
		if extIDField != "" {
			return nil, fmt.Errorf("%w: an external id field is only for upsert, not %s", ErrInvalidRequest, operation)
		}
	case BulkUpsert:
		if err := checkName("external id field", extIDField); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: bulk operation %q: want insert, update, upsert or delete", ErrInvalidRequest, clipText(operation, 40))
	}
	body := map[string]string{
		"object": object, "operation": operation, "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA",
	}
	if extIDField != "" {
		body["externalIdFieldName"] = extIDField
	}
	resp, err := c.do(ctx, http.MethodPost, c.dataPath("/jobs/ingest"), routeJobCreate, body)
	if err != nil {
		return nil, err
	}
	return decodeJob(resp, routeJobCreate)
}

// UploadJobData uploads the CSV of an Open job (PUT jobs/ingest/<id>/batches,
// text/csv), as made by EncodeCSV. Salesforce takes one upload per job, of
// at most 100 MB: split larger data into several jobs.
func (c *Client) UploadJobData(ctx context.Context, jobID string, data []byte) error {
	if err := checkValue("job id", jobID); err != nil {
		return err
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty job data", ErrInvalidRequest)
	}
	_, apiErr, err := c.send(ctx, call{
		method: http.MethodPut, path: c.jobPath(jobID, "/batches"), route: routeJobUpload, body: data, ctype: "text/csv",
	})
	if err != nil {
		return err
	}
	if apiErr != nil {
		return apiErr
	}
	return nil
}

func (c *Client) setJobState(ctx context.Context, jobID, state string) (*BulkJob, error) {
	if err := checkValue("job id", jobID); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPatch, c.jobPath(jobID, ""), routeJobPatch, map[string]string{"state": state})
	if err != nil {
		return nil, err
	}
	return decodeJob(resp, routeJobPatch)
}

// CloseJob marks an Open job's upload complete (PATCH state UploadComplete):
// Salesforce then processes it. Poll it with Job or WaitJob.
func (c *Client) CloseJob(ctx context.Context, jobID string) (*BulkJob, error) {
	return c.setJobState(ctx, jobID, JobStateUploadComplete)
}

// AbortJob aborts a job that has not finished (PATCH state Aborted).
// Records already processed stay written; the others are unprocessed.
func (c *Client) AbortJob(ctx context.Context, jobID string) (*BulkJob, error) {
	return c.setJobState(ctx, jobID, JobStateAborted)
}

// DeleteJob deletes a job in state UploadComplete, JobComplete, Aborted or
// Failed, with its data and results (DELETE jobs/ingest/<id>).
func (c *Client) DeleteJob(ctx context.Context, jobID string) error {
	if err := checkValue("job id", jobID); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, c.jobPath(jobID, ""), routeJobDelete, nil)
	return err
}

// Job returns a job's info with its counters (GET jobs/ingest/<id>).
func (c *Client) Job(ctx context.Context, jobID string) (*BulkJob, error) {
	if err := checkValue("job id", jobID); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, c.jobPath(jobID, ""), routeJobGet, nil)
	if err != nil {
		return nil, err
	}
	return decodeJob(resp, routeJobGet)
}

// WaitJob polls a job every interval (1s when every <= 0) until it reaches
// a terminal state (JobComplete, Failed or Aborted) and returns it; a
// Failed or Aborted job is not an error: read its ErrorMessage and its
// results. onPoll, if not nil, gets every job info read (a worker sends its
// queue's InProgress there). Up to 4 polls in a row may fail with a
// Transient error; the 5th such error, any other error and the end of ctx
// (wrapped, errors.Is works) are returned with the last job info read.
// Each poll is one API call.
func (c *Client) WaitJob(ctx context.Context, jobID string, every time.Duration, onPoll func(*BulkJob)) (*BulkJob, error) {
	return c.waitFor(ctx, jobID, every, onPoll, c.Job)
}

// waitFor polls get(jobID) as WaitJob describes.
func (c *Client) waitFor(ctx context.Context, jobID string, every time.Duration, onPoll func(*BulkJob),
	get func(context.Context, string) (*BulkJob, error)) (*BulkJob, error) {
	if every <= 0 {
		every = time.Second
	}
	var last *BulkJob
	failures := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("salesforce: waiting for bulk job %s: %w", jobID, ctx.Err())
		case <-t.C:
		}
		j, err := get(ctx, jobID)
		switch {
		case err != nil && ctx.Err() != nil:
			return last, fmt.Errorf("salesforce: waiting for bulk job %s: %w", jobID, ctx.Err())
		case err != nil && Classify(err) == Transient && failures+1 < maxPollFailures:
			failures++
			c.log.Debug("salesforce bulk job poll failed; polling on", "job", jobID, "failures", failures, "err", err)
		case err != nil:
			return last, err
		default:
			failures = 0
			last = j
			if onPoll != nil {
				onPoll(j)
			}
			if j.Done() {
				return j, nil
			}
		}
		t.Reset(every)
	}
}

// BulkResult is one row of a job's results: successful (Error nil), failed
// (Error set) or unprocessed (neither ID nor Error). Row holds the row's
// uploaded columns, by header name, as uploaded (BulkNull included): match
// results to inputs by a key column such as the external ID, since
// Salesforce does not keep the upload's order.
type BulkResult struct {
	ID      string // sf__Id: the record's ID; for a failed row only when known (update, delete)
	Created bool   // sf__Created
	Error   *RecordError
	Row     map[string]string
}

// JobResults reads a finished job's successful, failed and unprocessed
// rows (GET …/successfulResults, …/failedResults, …/unprocessedrecords:
// three API calls).
func (c *Client) JobResults(ctx context.Context, jobID string) (successful, failed, unprocessed []BulkResult, err error) {
	if err := checkValue("job id", jobID); err != nil {
		return nil, nil, nil, err
	}
	get := func(kind string) ([]BulkResult, error) {
		route := routeJobResultsBase + kind
		resp, apiErr, err := c.send(ctx, call{method: http.MethodGet, path: c.jobPath(jobID, "/"+kind), route: route, accept: "text/csv"})
		if err != nil {
			return nil, err
		}
		if apiErr != nil {
			return nil, apiErr
		}
		res, err := ParseBulkResults(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("salesforce: %s: %w", route, err)
		}
		for i := range res {
			if e := res[i].Error; e != nil {
				e.Message = c.auth.redact(e.Message)
			}
		}
		return res, nil
	}
	if successful, err = get("successfulResults"); err != nil {
		return nil, nil, nil, err
	}
	if failed, err = get("failedResults"); err != nil {
		return nil, nil, nil, err
	}
	if unprocessed, err = get("unprocessedrecords"); err != nil {
		return nil, nil, nil, err
	}
	return successful, failed, unprocessed, nil
}

// ParseBulkResults parses a Bulk API 2.0 results CSV (comma-delimited, LF
// or CRLF): the sf__Id, sf__Created and sf__Error columns fill ID, Created
// and Error, the others Row. An empty body is no rows.
func ParseBulkResults(data []byte) ([]BulkResult, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("bulk results header: %w", err)
	}
	idCol, createdCol, errCol := -1, -1, -1
	for i, h := range header {
		switch h {
		case "sf__Id":
			idCol = i
		case "sf__Created":
			createdCol = i
		case "sf__Error":
			errCol = i
		}
	}
	var out []BulkResult
	for {
		rec, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("bulk results: %w", err)
		}
		res := BulkResult{Row: make(map[string]string, len(header))}
		for i, v := range rec {
			switch i {
			case idCol:
				res.ID = v
			case createdCol:
				res.Created = strings.EqualFold(v, "true")
			case errCol:
				res.Error = ParseBulkError(v)
			default:
				res.Row[header[i]] = v
			}
		}
		out = append(out, res)
	}
}

// bulkErrorFields matches the field list ending an sf__Error value:
// ":Name --", ":Name, Phone --", ":--".
var bulkErrorFields = regexp.MustCompile(`:\s*((?:[A-Za-z][A-Za-z0-9_.]*(?:,\s*|\s+))*)--\s*$`)

var bulkErrorCode = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// ParseBulkError parses an sf__Error value,
// "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
// (code, message, then the fields and " --"). A value without a code gives
// UNKNOWN_ERROR with the whole text as message; "" gives nil.
func ParseBulkError(s string) *RecordError {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	code, rest, ok := strings.Cut(s, ":")
	if !ok || !bulkErrorCode.MatchString(code) {
		return &RecordError{Code: "UNKNOWN_ERROR", Message: s, Fields: []string{}}
	}
	e := &RecordError{Code: code, Message: rest, Fields: []string{}}
	if m := bulkErrorFields.FindStringSubmatchIndex(rest); m != nil {
		e.Message = rest[:m[0]]
		e.Fields = append(e.Fields, strings.FieldsFunc(rest[m[2]:m[3]], func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return e
}

// EncodeCSV encodes records as Bulk API 2.0 job data: a header row of
// fields, then one row per record, comma-delimited with LF line endings,
// quoted where needed. A field "Parent.Source_Id__c" takes its value from
// the nested reference {"Parent": {"Source_Id__c": "x"}}. A missing key is
// an empty value (the field is left alone); nil and "" are BulkNull (the
// field is cleared, as an empty text is in the REST API). Values may be
// string, json.Number, float32/64, the integer types, bool or time.Time
// (written as UTC 2006-01-02T15:04:05.000Z); anything else, a duplicate or
// malformed field, or a record key with no column (other than
// "attributes") is an ErrInvalidRequest.
func EncodeCSV(fields []string, records []Record) ([]byte, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: no csv columns", ErrInvalidRequest)
	}
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if err := checkFieldPath(f); err != nil {
			return nil, err
		}
		if seen[strings.ToLower(f)] {
			return nil, fmt.Errorf("%w: csv column %q twice", ErrInvalidRequest, f)
		}
		seen[strings.ToLower(f)] = true
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(fields); err != nil {
		return nil, err
	}
	row := make([]string, len(fields))
	for i, rec := range records {
		for k := range rec {
			if k != "attributes" && !seen[strings.ToLower(k)] && !hasColumnUnder(seen, k) {
				return nil, fmt.Errorf("%w: record %d: key %q has no csv column", ErrInvalidRequest, i, k)
			}
		}
		for j, f := range fields {
			v, present, err := lookupPath(rec, f)
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: %s: %v", ErrInvalidRequest, i, f, err)
			}
			if !present {
				row[j] = ""
				continue
			}
			s, err := csvValue(v)
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: %s: %v", ErrInvalidRequest, i, f, err)
			}
			row[j] = s
		}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hasColumnUnder reports a column "key.<something>" among the lower-cased columns.
func hasColumnUnder(columns map[string]bool, key string) bool {
	prefix := strings.ToLower(key) + "."
	for c := range columns {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// lookupPath finds a column's value: "Name" or "Parent.Source_Id__c"
// through nested maps. Keys match exactly, as they do in a Record.
func lookupPath(rec Record, path string) (any, bool, error) {
	parts := strings.Split(path, ".")
	var cur any = map[string]any(rec)
	for i, p := range parts {
		var m map[string]any
		switch t := cur.(type) {
		case map[string]any:
			m = t
		case Record:
			m = t
		case nil:
			return nil, i > 0, nil // a null reference: the column is null
		default:
			return nil, false, fmt.Errorf("%s is a %T, not a reference", strings.Join(parts[:i], "."), cur)
		}
		v, ok := m[p]
		if !ok {
			return nil, false, nil
		}
		cur = v
	}
	return cur, true, nil
}

// csvValue formats one value as Bulk API 2.0 expects it.
func csvValue(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return BulkNull, nil
	case string:
		if t == "" {
			return BulkNull, nil
		}
		return t, nil
	case json.Number:
		return t.String(), nil
	case bool:
		return strconv.FormatBool(t), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return "", fmt.Errorf("%v is not a number Salesforce takes", t)
		}
		return strconv.FormatFloat(t, 'f', -1, 64), nil
	case float32:
		f := float64(t)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("%v is not a number Salesforce takes", t)
		}
		return strconv.FormatFloat(f, 'f', -1, 32), nil
	case int:
		return strconv.Itoa(t), nil
	case int8, int16, int32, int64:
		return fmt.Sprint(t), nil
	case uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(t), nil
	case time.Time:
		return t.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	}
	return "", fmt.Errorf("a %T cannot go into a csv column", v)
}

// CSVColumns returns the columns EncodeCSV needs for records: every key
// but "attributes", nested references flattened to "Parent.Source_Id__c",
// sorted.
func CSVColumns(records []Record) []string {
	set := make(map[string]bool)
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if k == "attributes" {
				continue
			}
			switch t := v.(type) {
			case map[string]any:
				walk(prefix+k+".", t)
			case Record:
				walk(prefix+k+".", t)
			default:
				set[prefix+k] = true
			}
		}
	}
	for _, r := range records {
		walk("", r)
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
