package salesforce

import (
	"context"
	"fmt"
	"net/http"
)

// MaxCollection is the most records one sObject Collections call takes.
const MaxCollection = 200

// SaveResult is the outcome for one record of a create, update or upsert
// (SaveResult / UpsertResult of the API).
type SaveResult struct {
	ID      string        `json:"id"`
	Success bool          `json:"success"`
	Created bool          `json:"created"`
	Errors  []RecordError `json:"errors"`
}

// Err returns the record's first error, or nil when it succeeded. A failed
// result without errors gets a synthetic UNKNOWN_ERROR.
func (r SaveResult) Err() *RecordError {
	if len(r.Errors) > 0 {
		return &r.Errors[0]
	}
	if !r.Success {
		return &RecordError{Code: "UNKNOWN_ERROR", Message: "the record failed without an error"}
	}
	return nil
}

// CreateMany creates up to MaxCollection records of one sObject type with
// POST composite/sobjects and returns one result per record, in order.
// With allOrNone, one failure rolls back all (the others then fail with
// ALL_OR_NONE_OPERATION_ROLLED_BACK). More than MaxCollection records are
// refused with ErrTooManyRecords before anything is sent; none is a no-op.
// A request-level failure is an *APIError; per-record failures are in the
// results.
func (c *Client) CreateMany(ctx context.Context, sobject string, records []Record, allOrNone bool) ([]SaveResult, error) {
	const route = "POST /composite/sobjects"
	if len(records) > MaxCollection {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRecords, len(records))
	}
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return []SaveResult{}, nil
	}
	body, err := appendCollectionBody(make([]byte, 0, 64+256*len(records)), sobject, allOrNone, records)
	if err != nil {
		return nil, err
	}
	resp, err := c.doBody(ctx, http.MethodPost, c.dataPath("/composite/sobjects"), route, body)
	if err != nil {
		return nil, err
	}
	return c.saveResults(resp, route, len(records))
}

// UpsertMany upserts up to MaxCollection records of one sObject type by the
// external ID field extIDField (each record carries its value) with PATCH
// composite/sobjects/<sobject>/<extIDField>, and returns one result per
// record, in order, with Created telling inserts from updates. Limits and
// errors as CreateMany.
func (c *Client) UpsertMany(ctx context.Context, sobject, extIDField string, records []Record, allOrNone bool) ([]SaveResult, error) {
	route := "PATCH /composite/sobjects/" + sobject + "/{field}"
	if len(records) > MaxCollection {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRecords, len(records))
	}
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	if err := checkName("external id field", extIDField); err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return []SaveResult{}, nil
	}
	body, err := appendCollectionBody(make([]byte, 0, 64+256*len(records)), sobject, allOrNone, records)
	if err != nil {
		return nil, err
	}
	resp, err := c.doBody(ctx, http.MethodPatch, c.dataPath("/composite/sobjects/"+sobject+"/"+extIDField), route, body)
	if err != nil {
		return nil, err
	}
	return c.saveResults(resp, route, len(records))
}

// saveResults decodes a collection answer and checks it has one result per record.
func (c *Client) saveResults(resp *Response, route string, n int) ([]SaveResult, error) {
	results, ok := fastSaveResults(resp.Body)
	if !ok {
		if err := decode(resp, route, &results); err != nil {
			return nil, err
		}
	}
	if len(results) != n {
		return nil, fmt.Errorf("salesforce: %s: %d results for %d records", route, len(results), n)
	}
	c.redactResults(results)
	return results, nil
}

func (c *Client) redactResults(results []SaveResult) {
	for i := range results {
		for j := range results[i].Errors {
			results[i].Errors[j].Message = c.auth.redact(results[i].Errors[j].Message)
		}
	}
}
