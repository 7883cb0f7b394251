package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Limits of one POST /composite call: at most MaxCompositeSubrequests
// subrequests, at most MaxCompositeCollections of them sObject Collections
// or query operations. Salesforce counts the whole call as one API request.
const (
	MaxCompositeSubrequests = 25
	MaxCompositeCollections = 5
)

// CompositeSubrequest is one subrequest of a Composite call. URL is
// instance-relative ("/services/data/v61.0/composite/sobjects/Account/Ext__c");
// Body, when not nil, is encoded as JSON.
type CompositeSubrequest struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	ReferenceID string            `json:"referenceId"`
	Body        any               `json:"body,omitempty"`
	HTTPHeaders map[string]string `json:"httpHeaders,omitempty"`
}

// CompositeResult is the answer to one subrequest, in request order.
type CompositeResult struct {
	ReferenceID    string            `json:"referenceId"`
	HTTPStatusCode int               `json:"httpStatusCode"`
	HTTPHeaders    map[string]string `json:"httpHeaders"`
	Body           json.RawMessage   `json:"body"`
	route          string
}

// Err returns the subrequest's failure as a whole, an *APIError with its
// status and the route of the subrequest, or nil for a 2xx answer.
func (r CompositeResult) Err() error {
	if r.HTTPStatusCode >= 200 && r.HTTPStatusCode <= 299 {
		return nil
	}
	e := ParseAPIError(r.HTTPStatusCode, r.Body)
	e.Method, _, _ = strings.Cut(r.route, " ")
	e.Route = r.route
	return e
}

// referenceIDPattern is what a referenceId may hold.
var referenceIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,80}$`)

type compositeRequest struct {
	AllOrNone          bool                  `json:"allOrNone"`
	CollateSubrequests bool                  `json:"collateSubrequests"`
	CompositeRequest   []CompositeSubrequest `json:"compositeRequest"`
}

type compositeResponse struct {
	CompositeResponse []CompositeResult `json:"compositeResponse"`
}

// Composite sends the subrequests in one POST /composite call (collation
// off: subrequests run in order) and returns one result per subrequest, in
// order. With allOrNone, one failed subrequest rolls back all; the others
// then answer 400 PROCESSING_HALTED. More than MaxCompositeSubrequests
// subrequests are refused with ErrTooManyRecords before anything is sent.
// An error is returned for a failure of the call as a whole (an *APIError,
// a transport error) or an answer whose results do not match the
// subrequests; a failed subrequest is in its result (see CompositeResult.Err).
func (c *Client) Composite(ctx context.Context, allOrNone bool, subs []CompositeSubrequest) ([]CompositeResult, error) {
	const route = "POST /composite"
	if len(subs) > MaxCompositeSubrequests {
		return nil, fmt.Errorf("%w: %d subrequests, at most %d in one composite call", ErrTooManyRecords, len(subs), MaxCompositeSubrequests)
	}
	if len(subs) == 0 {
		return []CompositeResult{}, nil
	}
	seen := make(map[string]bool, len(subs))
	for _, s := range subs {
		if !referenceIDPattern.MatchString(s.ReferenceID) || seen[s.ReferenceID] {
			return nil, fmt.Errorf("%w: composite referenceId %q must be unique letters, digits and _", ErrInvalidRequest, clipText(s.ReferenceID, 100))
		}
		seen[s.ReferenceID] = true
		if !strings.HasPrefix(s.URL, "/services/") {
			return nil, fmt.Errorf("%w: composite subrequest url %q must start with /services/", ErrInvalidRequest, clipText(s.URL, 100))
		}
	}
	data, err := json.Marshal(compositeRequest{AllOrNone: allOrNone, CompositeRequest: subs})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: encode body: %v", ErrInvalidRequest, route, err)
	}
	refs := make([]subrequestRef, len(subs))
	for i, s := range subs {
		refs[i] = subrequestRef{id: s.ReferenceID, route: s.Method + " " + routeOf(s.URL)}
	}
	return c.postComposite(ctx, data, refs)
}

// subrequestRef is what a composite answer is checked against.
type subrequestRef struct {
	id, route string
}

// postComposite sends an encoded composite body and checks the answer
// against the subrequests.
func (c *Client) postComposite(ctx context.Context, body []byte, refs []subrequestRef) ([]CompositeResult, error) {
	const route = "POST /composite"
	resp, err := c.doBody(ctx, http.MethodPost, c.dataPath("/composite"), route, body)
	if err != nil {
		return nil, err
	}
	var out compositeResponse
	if err := decode(resp, route, &out); err != nil {
		return nil, err
	}
	res := out.CompositeResponse
	if len(res) == 1 && len(refs) > 1 && res[0].HTTPStatusCode >= 400 {
		// The call refused as a whole (e.g. LIMIT_EXCEEDED) answers one
		// result for the request.
		res[0].route = route
		return nil, c.redactAPIError(res[0].Err())
	}
	if len(res) != len(refs) {
		return nil, fmt.Errorf("salesforce: %s: %d results for %d subrequests", route, len(res), len(refs))
	}
	for i := range res {
		if res[i].ReferenceID != refs[i].id {
			return nil, fmt.Errorf("salesforce: %s: result %d is for %q, not %q", route, i, clipText(res[i].ReferenceID, 100), refs[i].id)
		}
		res[i].route = refs[i].route
	}
	return res, nil
}

// doBody sends an encoded JSON body; any non-2xx answer becomes an *APIError.
func (c *Client) doBody(ctx context.Context, method, path, route string, body []byte) (*Response, error) {
	resp, apiErr, err := c.send(ctx, call{method: method, path: path, route: route, body: body, ctype: contentTypeJSON})
	if err != nil {
		return nil, err
	}
	if apiErr != nil {
		return nil, apiErr
	}
	return resp, nil
}

func (c *Client) redactAPIError(err error) error {
	if e, ok := err.(*APIError); ok {
		e.Message = c.auth.redact(e.Message)
		for i := range e.Errors {
			e.Errors[i].Message = c.auth.redact(e.Errors[i].Message)
		}
	}
	return err
}

// CollectionResult is the outcome of one collections subrequest of
// UpsertComposite: Err is its failure as a whole (an *APIError, to be
// passed to Classify), otherwise Results has one result per record.
type CollectionResult struct {
	Results []SaveResult
	Err     error
}

// UpsertComposite upserts up to MaxCompositeCollections lists of up to
// MaxCollection records each in one POST /composite call (counted as one
// API request): one sObject Collections upsert by extIDField per list,
// allOrNone false both for the composite and for each list, so every list
// and every record stands on its own. It returns one CollectionResult per
// list, in order. Limits are checked before anything is sent
// (ErrTooManyRecords); an empty list is not sent and gets no results.
func (c *Client) UpsertComposite(ctx context.Context, sobject, extIDField string, lists [][]Record) ([]CollectionResult, error) {
	sizes := make([]int, len(lists))
	n := 0
	for i, recs := range lists {
		sizes[i] = len(recs)
		n += len(recs)
	}
	return c.upsertComposite(ctx, sobject, extIDField, sizes, 128+n*256, func(b []byte, i int) ([]byte, error) {
		return appendCollectionBody(b, sobject, false, lists[i])
	})
}

// UpsertCompositeRaw is UpsertComposite for records already encoded (see
// RawRecord): the same call, the same body but for the order of the fields.
func (c *Client) UpsertCompositeRaw(ctx context.Context, sobject, extIDField string, lists [][]RawRecord) ([]CollectionResult, error) {
	sizes := make([]int, len(lists))
	n := 0
	for i, recs := range lists {
		sizes[i] = len(recs)
		n += rawSize(recs)
	}
	return c.upsertComposite(ctx, sobject, extIDField, sizes, 128+n, func(b []byte, i int) ([]byte, error) {
		return appendRawCollectionBody(b, sobject, false, lists[i]), nil
	})
}

// upsertComposite sends lists of sizes[i] records, each list's collection
// body written by list, in one composite call of about size bytes.
func (c *Client) upsertComposite(ctx context.Context, sobject, extIDField string, sizes []int, size int, list func(b []byte, i int) ([]byte, error)) ([]CollectionResult, error) {
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	if err := checkName("external id field", extIDField); err != nil {
		return nil, err
	}
	url := c.dataPath("/composite/sobjects/" + sobject + "/" + extIDField)
	return c.collectionsComposite(ctx, http.MethodPatch, "upsert", func(int) string { return url }, sizes, size, list)
}

// UpdateComposite updates up to MaxCompositeCollections lists of up to
// MaxCollection records each in one POST /composite call (counted as one
// API request): one sObject Collections update (PATCH
// /composite/sobjects) per list, allOrNone false both for the composite
// and for each list. Each record names its record by Id, as for
// UpdateMany. It returns one CollectionResult per list, in order; limits
// and missing Ids are refused before anything is sent, and an empty list
// is not sent.
func (c *Client) UpdateComposite(ctx context.Context, sobject string, lists [][]Record) ([]CollectionResult, error) {
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	sizes := make([]int, len(lists))
	n := 0
	for i, recs := range lists {
		for j, rec := range recs {
			if id := recordID(rec); strings.TrimSpace(id) == "" {
				return nil, fmt.Errorf("%w: record %d of update list %d has no Id", ErrInvalidRequest, j, i)
			}
		}
		sizes[i] = len(recs)
		n += len(recs)
	}
	url := c.dataPath("/composite/sobjects")
	return c.collectionsComposite(ctx, http.MethodPatch, "update", func(int) string { return url }, sizes, 128+n*256, func(b []byte, i int) ([]byte, error) {
		return appendCollectionBody(b, sobject, false, lists[i])
	})
}

// DeleteComposite deletes up to MaxCompositeCollections lists of up to
// MaxCollection record IDs each in one POST /composite call (counted as one
// API request): one sObject Collections delete (DELETE
// /composite/sobjects?ids=…&allOrNone=false) per list. Results are as
// DeleteMany's, one CollectionResult per list, in order; bad IDs and limits
// are refused before anything is sent, and an empty list is not sent.
func (c *Client) DeleteComposite(ctx context.Context, lists [][]string) ([]CollectionResult, error) {
	sizes := make([]int, len(lists))
	for i, ids := range lists {
		if err := checkIDList(ids); err != nil {
			return nil, fmt.Errorf("delete list %d: %w", i, err)
		}
		sizes[i] = len(ids)
	}
	urlOf := func(i int) string {
		q := url.Values{"ids": {strings.Join(lists[i], ",")}, "allOrNone": {"false"}}
		return c.dataPath("/composite/sobjects?" + q.Encode())
	}
	return c.collectionsComposite(ctx, http.MethodDelete, "delete", urlOf, sizes, 128, nil)
}

// collectionsComposite sends lists of sizes[i] records as sObject
// Collections subrequests (method on urlOf(i), the body written by list,
// none when list is nil) in one composite call of about size bytes, and
// decodes each list's save results.
func (c *Client) collectionsComposite(ctx context.Context, method, refPrefix string, urlOf func(i int) string, sizes []int, size int, list func(b []byte, i int) ([]byte, error)) ([]CollectionResult, error) {
	if len(sizes) > MaxCompositeCollections {
		return nil, fmt.Errorf("%w: %d collections, at most %d in one composite call", ErrTooManyRecords, len(sizes), MaxCompositeCollections)
	}
	out := make([]CollectionResult, len(sizes))
	for i, n := range sizes {
		if n > MaxCollection {
			return nil, fmt.Errorf("%w (%d in list %d)", ErrTooManyRecords, n, i)
		}
	}
	body := make([]byte, 0, size)
	body = append(body, `{"allOrNone":false,"collateSubrequests":false,"compositeRequest":[`...)
	refs := make([]subrequestRef, 0, len(sizes))
	index := make([]int, 0, len(sizes))
	for i, n := range sizes {
		if n == 0 {
			continue
		}
		ref := refPrefix + strconv.Itoa(i)
		if len(refs) > 0 {
			body = append(body, ',')
		}
		u := urlOf(i)
		body = append(body, `{"method":`...)
		body = appendString(body, method)
		body = append(body, `,"url":`...)
		body = appendString(body, u)
		body = append(body, `,"referenceId":`...)
		body = appendString(body, ref)
		if list != nil {
			body = append(body, `,"body":`...)
			var err error
			if body, err = list(body, i); err != nil {
				return nil, err
			}
		}
		body = append(body, '}')
		refs = append(refs, subrequestRef{id: ref, route: method + " " + routeOf(u)})
		index = append(index, i)
	}
	body = append(body, "]}"...)
	if len(refs) == 0 {
		return out, nil
	}
	res, err := c.postComposite(ctx, body, refs)
	if err != nil {
		return nil, err
	}
	for j, r := range res {
		i := index[j]
		if err := r.Err(); err != nil {
			out[i].Err = c.redactAPIError(err)
			continue
		}
		results, ok := fastSaveResults(r.Body)
		var derr error
		if !ok {
			results = nil
			derr = json.Unmarshal(r.Body, &results)
		}
		if derr != nil {
			out[i].Err = fmt.Errorf("salesforce: %s: decoding subrequest %s: %w", r.route, r.ReferenceID, derr)
			continue
		}
		if len(results) != sizes[i] {
			out[i].Err = fmt.Errorf("salesforce: %s: subrequest %s: %d results for %d records", r.route, r.ReferenceID, len(results), sizes[i])
			continue
		}
		c.redactResults(results)
		out[i].Results = results
	}
	return out, nil
}
