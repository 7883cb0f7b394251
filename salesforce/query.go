package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// QueryResult is one page of a SOQL query.
type QueryResult struct {
	TotalSize      int
	Done           bool
	NextRecordsURL string // instance-relative; "" on the last page
	Records        []Record
}

type queryPage struct {
	TotalSize      int              `json:"totalSize"`
	Done           *bool            `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

// QueryPage runs a SOQL query (GET query?q=…) and returns its first page,
// or, given a NextRecordsURL of an earlier page
// ("/services/data/vNN.N/query/01g…-2000"), fetches that page.
func (c *Client) QueryPage(ctx context.Context, soqlOrNextURL string) (*QueryResult, error) {
	return c.queryPage(ctx, "query", soqlOrNextURL)
}

// QueryAllPage is QueryPage with GET queryAll: the rows of deleted records
// (in the recycle bin, IsDeleted true) and of merged ones are included.
func (c *Client) QueryAllPage(ctx context.Context, soqlOrNextURL string) (*QueryResult, error) {
	return c.queryPage(ctx, "queryAll", soqlOrNextURL)
}

// queryPage runs a query on resource ("query" or "queryAll") or fetches a
// next page.
func (c *Client) queryPage(ctx context.Context, resource, soqlOrNextURL string) (*QueryResult, error) {
	var p, route string
	if strings.HasPrefix(soqlOrNextURL, "/services/data/") {
		if strings.ContainsAny(soqlOrNextURL, " \t\r\n") {
			return nil, fmt.Errorf("%w: next records url %q", ErrInvalidRequest, clipText(soqlOrNextURL, 100))
		}
		p, route = soqlOrNextURL, "GET "+routeOf(soqlOrNextURL)
	} else {
		if strings.TrimSpace(soqlOrNextURL) == "" {
			return nil, fmt.Errorf("%w: empty query", ErrInvalidRequest)
		}
		p, route = c.dataPath("/"+resource+"?"+url.Values{"q": {soqlOrNextURL}}.Encode()), "GET /"+resource
	}
	resp, err := c.do(ctx, http.MethodGet, p, route, nil)
	if err != nil {
		return nil, err
	}
	var page queryPage
	if err := decode(resp, route, &page); err != nil {
		return nil, err
	}
	r := &QueryResult{
		TotalSize:      page.TotalSize,
		Done:           page.Done == nil || *page.Done, // an empty result may omit done
		NextRecordsURL: page.NextRecordsURL,
		Records:        make([]Record, len(page.Records)),
	}
	if r.NextRecordsURL != "" {
		r.Done = false
	}
	for i, m := range page.Records {
		r.Records[i] = incoming(m)
	}
	return r, nil
}

// Query runs a SOQL query and yields its records, following nextRecordsUrl
// from page to page. After an error it yields (nil, err) once and stops;
// stopping the loop early fetches no further page.
func (c *Client) Query(ctx context.Context, soql string) iter.Seq2[Record, error] {
	return c.query(ctx, "query", soql)
}

// QueryAll is Query with GET queryAll: deleted records (IsDeleted true, in
// the recycle bin) and merged ones are included. Select IsDeleted to tell
// them apart.
func (c *Client) QueryAll(ctx context.Context, soql string) iter.Seq2[Record, error] {
	return c.query(ctx, "queryAll", soql)
}

func (c *Client) query(ctx context.Context, resource, soql string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		next := soql
		seen := map[string]bool{}
		for {
			page, err := c.queryPage(ctx, resource, next)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range page.Records {
				if !yield(r, nil) {
					return
				}
			}
			if page.Done || page.NextRecordsURL == "" {
				return
			}
			if seen[page.NextRecordsURL] {
				yield(nil, fmt.Errorf("salesforce: GET %s: nextRecordsUrl %q repeats", routeOf(page.NextRecordsURL), clipText(page.NextRecordsURL, 100)))
				return
			}
			seen[page.NextRecordsURL] = true
			next = page.NextRecordsURL
		}
	}
}

// Count runs a "SELECT COUNT() FROM …" query and returns its totalSize.
func (c *Client) Count(ctx context.Context, soql string) (int, error) {
	page, err := c.QueryPage(ctx, soql)
	if err != nil {
		return 0, err
	}
	return page.TotalSize, nil
}

// SOQLString quotes s as a SOQL string literal: 'it\'s'. Backslash,
// quotes, newline, carriage return, tab, backspace and form feed are
// escaped, so any value (an external ID typed by a person) compares equal
// to itself in = and IN. It is not a LIKE pattern: % and _ are left as
// they are, which = and IN take literally.
func SOQLString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// SOQLList renders values as the parenthesised list of an IN condition,
// ('a','b'), each quoted with SOQLString. values must not be empty (SOQL
// has no empty list).
func SOQLList(values []string) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(SOQLString(v))
	}
	b.WriteByte(')')
	return b.String()
}

// QueryAllComposite runs up to MaxCompositeCollections queryAll queries in
// one POST /composite call (counted as one API request) and returns each
// query's records, in order. A result with more pages is followed with
// GET calls of its nextRecordsUrl, as QueryAll does. A query refused (its
// subrequest's *APIError) is the error of the whole call; more than
// MaxCompositeCollections queries, or an empty one, are refused before
// anything is sent.
func (c *Client) QueryAllComposite(ctx context.Context, soqls []string) ([][]Record, error) {
	if len(soqls) > MaxCompositeCollections {
		return nil, fmt.Errorf("%w: %d queries, at most %d in one composite call", ErrTooManyRecords, len(soqls), MaxCompositeCollections)
	}
	subs := make([]CompositeSubrequest, len(soqls))
	for i, q := range soqls {
		if strings.TrimSpace(q) == "" {
			return nil, fmt.Errorf("%w: empty query", ErrInvalidRequest)
		}
		subs[i] = CompositeSubrequest{Method: http.MethodGet, ReferenceID: fmt.Sprint("query", i),
			URL: c.dataPath("/queryAll?" + url.Values{"q": {q}}.Encode())}
	}
	res, err := c.Composite(ctx, false, subs)
	if err != nil {
		return nil, err
	}
	out := make([][]Record, len(res))
	for i, r := range res {
		if err := r.Err(); err != nil {
			return nil, c.redactAPIError(err)
		}
		var page queryPage
		if err := json.Unmarshal(r.Body, &page); err != nil {
			return nil, fmt.Errorf("salesforce: %s: decoding subrequest %s: %w", r.route, r.ReferenceID, err)
		}
		recs := make([]Record, 0, len(page.Records))
		for _, m := range page.Records {
			recs = append(recs, incoming(m))
		}
		if page.NextRecordsURL != "" {
			// The further pages, as QueryAll follows them.
			for rec, err := range c.query(ctx, "queryAll", page.NextRecordsURL) {
				if err != nil {
					return nil, err
				}
				recs = append(recs, rec)
			}
		}
		out[i] = recs
	}
	return out, nil
}
