package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
	return c.upsertMany(ctx, sobject, extIDField, len(records), func() ([]byte, error) {
		return appendCollectionBody(make([]byte, 0, 64+256*len(records)), sobject, allOrNone, records)
	})
}

// UpsertManyRaw is UpsertMany for records already encoded (see RawRecord):
// the same call, the same body but for the order of the fields.
func (c *Client) UpsertManyRaw(ctx context.Context, sobject, extIDField string, records []RawRecord, allOrNone bool) ([]SaveResult, error) {
	return c.upsertMany(ctx, sobject, extIDField, len(records), func() ([]byte, error) {
		return appendRawCollectionBody(make([]byte, 0, 64+rawSize(records)), sobject, allOrNone, records), nil
	})
}

// rawSize is about what records take in a body.
func rawSize(records []RawRecord) int {
	n := 0
	for _, r := range records {
		n += len(r) + 40
	}
	return n
}

func (c *Client) upsertMany(ctx context.Context, sobject, extIDField string, n int, body func() ([]byte, error)) ([]SaveResult, error) {
	route := "PATCH /composite/sobjects/" + sobject + "/{field}"
	if n > MaxCollection {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRecords, n)
	}
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	if err := checkName("external id field", extIDField); err != nil {
		return nil, err
	}
	if n == 0 {
		return []SaveResult{}, nil
	}
	data, err := body()
	if err != nil {
		return nil, err
	}
	resp, err := c.doBody(ctx, http.MethodPatch, c.dataPath("/composite/sobjects/"+sobject+"/"+extIDField), route, data)
	if err != nil {
		return nil, err
	}
	return c.saveResults(resp, route, n)
}

// UpdateMany updates up to MaxCollection records of one sObject type by
// their Id with PATCH composite/sobjects, and returns one result per record,
// in order. Each record carries its Id (the key "Id", any case) and only the
// fields to change; a null value blanks a field. A record of another
// sObject type, a record already deleted (ENTITY_IS_DELETED, see
// IsEntityDeleted) or one that fails validation fails alone unless
// allOrNone. Records without an Id, or more than MaxCollection of them, are
// refused with ErrInvalidRequest or ErrTooManyRecords before anything is
// sent; none is a no-op. A request-level failure is an *APIError.
func (c *Client) UpdateMany(ctx context.Context, sobject string, records []Record, allOrNone bool) ([]SaveResult, error) {
	const route = "PATCH /composite/sobjects"
	if len(records) > MaxCollection {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRecords, len(records))
	}
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	for i, rec := range records {
		if id := recordID(rec); strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("%w: record %d of an update has no Id", ErrInvalidRequest, i)
		}
	}
	if len(records) == 0 {
		return []SaveResult{}, nil
	}
	body, err := appendCollectionBody(make([]byte, 0, 64+256*len(records)), sobject, allOrNone, records)
	if err != nil {
		return nil, err
	}
	resp, err := c.doBody(ctx, http.MethodPatch, c.dataPath("/composite/sobjects"), route, body)
	if err != nil {
		return nil, err
	}
	return c.saveResults(resp, route, len(records))
}

// recordID returns the string value of rec's Id key (compared without
// regard to case), "" when there is none.
func recordID(rec Record) string {
	for k, v := range rec {
		if strings.EqualFold(k, "Id") {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// DeleteMany deletes up to MaxCollection records by ID with DELETE
// composite/sobjects?ids=…&allOrNone=…, and returns one result per ID, in
// order. A record already deleted fails with ENTITY_IS_DELETED (see
// IsEntityDeleted: a caller that wants it gone can count it as done); an ID
// that names no record or is malformed fails alone (MALFORMED_ID, without
// an id in its result) unless allOrNone. Deleted records go to the
// recycle bin (see Undelete). IDs that are empty or hold other characters
// than letters and digits, or more than MaxCollection of them, are refused
// with ErrInvalidRequest or ErrTooManyRecords before anything is sent; none
// is a no-op.
func (c *Client) DeleteMany(ctx context.Context, ids []string, allOrNone bool) ([]SaveResult, error) {
	const route = "DELETE /composite/sobjects"
	if len(ids) > MaxCollection {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRecords, len(ids))
	}
	if err := checkIDList(ids); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []SaveResult{}, nil
	}
	q := url.Values{"ids": {strings.Join(ids, ",")}, "allOrNone": {fmt.Sprint(allOrNone)}}
	resp, err := c.do(ctx, http.MethodDelete, c.dataPath("/composite/sobjects?"+q.Encode()), route, nil)
	if err != nil {
		return nil, err
	}
	return c.saveResults(resp, route, len(ids))
}

// checkIDList refuses record IDs that could not be sent as one item of a
// list: empty, or with characters other than ASCII letters and digits.
// Well-formed but wrong IDs (a bad length or checksum) are left for the
// server to answer per record.
func checkIDList(ids []string) error {
	for i, id := range ids {
		if id == "" {
			return fmt.Errorf("%w: id %d is empty", ErrInvalidRequest, i)
		}
		for j := 0; j < len(id); j++ {
			if c := id[j]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return fmt.Errorf("%w: id %d %q is not a record id", ErrInvalidRequest, i, clipText(id, 40))
			}
		}
	}
	return nil
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
