package salesforce

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bulk API 2.0 query operations.
const (
	BulkQuery    = "query"    // live records
	BulkQueryAll = "queryAll" // deleted and archived records too
)

// MaxQueryResultRecords is the most records QueryJobResults asks for per
// set of results (maxRecords); Salesforce may return fewer to stay within
// its size limits.
const MaxQueryResultRecords = 100000

// Route templates of the Bulk query calls, as in CallInfo and the fake
// org's stats.
const (
	routeQueryJobCreate  = "POST /jobs/query"
	routeQueryJobGet     = "GET /jobs/query/{id}"
	routeQueryJobPatch   = "PATCH /jobs/query/{id}"
	routeQueryJobDelete  = "DELETE /jobs/query/{id}"
	routeQueryJobResults = "GET /jobs/query/{id}/results"
)

// queryJobPath is the path of a query job or of one of its resources.
func (c *Client) queryJobPath(jobID, rest string) string {
	return c.dataPath("/jobs/query/" + escapeSegment(jobID) + rest)
}

// CreateQueryJob creates a Bulk API 2.0 query job (POST jobs/query) for
// soql, CSV with LF line endings and comma delimiters. operation is
// BulkQuery or BulkQueryAll. The job starts in UploadComplete: wait for it
// with WaitQueryJob, then read QueryJobResults. A query Salesforce refuses
// (MALFORMED_QUERY, INVALID_FIELD, API_ERROR) is an *APIError.
func (c *Client) CreateQueryJob(ctx context.Context, operation, soql string) (*BulkJob, error) {
	switch operation {
	case BulkQuery, BulkQueryAll:
	default:
		return nil, fmt.Errorf("%w: bulk query operation %q: want query or queryAll", ErrInvalidRequest, clipText(operation, 40))
	}
	if strings.TrimSpace(soql) == "" {
		return nil, fmt.Errorf("%w: empty query", ErrInvalidRequest)
	}
	body := map[string]string{
		"operation": operation, "query": soql, "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA",
	}
	resp, err := c.do(ctx, http.MethodPost, c.dataPath("/jobs/query"), routeQueryJobCreate, body)
	if err != nil {
		return nil, err
	}
	return decodeJob(resp, routeQueryJobCreate)
}

// QueryJob returns a query job's info (GET jobs/query/<id>); Processed
// counts the records found so far.
func (c *Client) QueryJob(ctx context.Context, jobID string) (*BulkJob, error) {
	if err := checkValue("job id", jobID); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, c.queryJobPath(jobID, ""), routeQueryJobGet, nil)
	if err != nil {
		return nil, err
	}
	return decodeJob(resp, routeQueryJobGet)
}

// AbortQueryJob aborts a query job that has not finished (PATCH state
// Aborted).
func (c *Client) AbortQueryJob(ctx context.Context, jobID string) (*BulkJob, error) {
	if err := checkValue("job id", jobID); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPatch, c.queryJobPath(jobID, ""), routeQueryJobPatch, map[string]string{"state": JobStateAborted})
	if err != nil {
		return nil, err
	}
	return decodeJob(resp, routeQueryJobPatch)
}

// DeleteQueryJob deletes a finished query job (JobComplete, Failed or
// Aborted) and its results (DELETE jobs/query/<id>).
func (c *Client) DeleteQueryJob(ctx context.Context, jobID string) error {
	if err := checkValue("job id", jobID); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, c.queryJobPath(jobID, ""), routeQueryJobDelete, nil)
	return err
}

// WaitQueryJob polls a query job every interval (1s when every <= 0) until
// it is JobComplete, Failed or Aborted, as WaitJob does for ingest jobs:
// a Failed or Aborted job is returned without error (read ErrorMessage).
// Each poll is one API call.
func (c *Client) WaitQueryJob(ctx context.Context, jobID string, every time.Duration, onPoll func(*BulkJob)) (*BulkJob, error) {
	return c.waitFor(ctx, jobID, every, onPoll, c.QueryJob)
}

// QueryResults is one set of a query job's results.
type QueryResults struct {
	// Header names the columns as the query's SELECT list spells them.
	Header []string
	// Rows are the records, one value per column; a null is "" (Bulk
	// query CSV cannot tell null from an empty text).
	Rows [][]string
	// Locator reads the next set; "" when this set is the last.
	Locator string
	// NumberOfRecords is the Sforce-NumberOfRecords header: the records in
	// this set.
	NumberOfRecords int
}

// QueryJobResults reads one set of a JobComplete query job's results (GET
// jobs/query/<id>/results?locator=…&maxRecords=…): locator "" reads the
// first set, maxRecords <= 0 lets Salesforce choose (it is capped at
// MaxQueryResultRecords). One API call; the set is held in memory, so
// maxRecords bounds what a caller holds.
func (c *Client) QueryJobResults(ctx context.Context, jobID, locator string, maxRecords int) (*QueryResults, error) {
	if err := checkValue("job id", jobID); err != nil {
		return nil, err
	}
	q := url.Values{}
	if locator != "" {
		q.Set("locator", locator)
	}
	if maxRecords > 0 {
		q.Set("maxRecords", strconv.Itoa(min(maxRecords, MaxQueryResultRecords)))
	}
	path := c.queryJobPath(jobID, "/results")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, apiErr, err := c.send(ctx, call{method: http.MethodGet, path: path, route: routeQueryJobResults, accept: "text/csv"})
	if err != nil {
		return nil, err
	}
	if apiErr != nil {
		return nil, apiErr
	}
	header, rows, err := parseQueryCSV(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("salesforce: %s: %w", routeQueryJobResults, err)
	}
	res := &QueryResults{Header: header, Rows: rows}
	if loc := strings.TrimSpace(resp.Header.Get("Sforce-Locator")); loc != "" && loc != "null" {
		res.Locator = loc
	}
	res.NumberOfRecords = len(rows)
	if n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Sforce-NumberOfRecords"))); err == nil {
		if n != len(rows) {
			return nil, fmt.Errorf("salesforce: %s: Sforce-NumberOfRecords says %d, the body holds %d", routeQueryJobResults, n, len(rows))
		}
	}
	return res, nil
}

// parseQueryCSV parses a query job's results: a header, then rows of as
// many columns. An empty body is no columns and no rows.
func parseQueryCSV(data []byte) ([]string, [][]string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, nil
	}
	r := csv.NewReader(bytes.NewReader(data))
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("query results header: %w", err)
	}
	r.FieldsPerRecord = len(header)
	var rows [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return header, rows, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("query results: %w", err)
		}
		rows = append(rows, rec)
	}
}

// QueryJobRecords reads every record of a JobComplete query job, one set
// of at most maxRecords at a time (see QueryJobResults), following
// Sforce-Locator: memory holds one set. Each record maps column → value.
// An error ends the sequence.
func (c *Client) QueryJobRecords(ctx context.Context, jobID string, maxRecords int) iter.Seq2[map[string]string, error] {
	return func(yield func(map[string]string, error) bool) {
		locator := ""
		for {
			set, err := c.QueryJobResults(ctx, jobID, locator, maxRecords)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, row := range set.Rows {
				rec := make(map[string]string, len(set.Header))
				for i, h := range set.Header {
					rec[h] = row[i]
				}
				if !yield(rec, nil) {
					return
				}
			}
			if set.Locator == "" {
				return
			}
			locator = set.Locator
		}
	}
}
