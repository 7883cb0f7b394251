package fakeorg

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"orgsync/salesforce/fakeorg/internal/soql"
)

// maxLocators bounds the open query cursors; the oldest is dropped first.
const maxLocators = 100

// locator is an open query cursor: the rendered rows of a query result and
// its page size.
type locator struct {
	rows []any
	size int
}

// queryPage is the body of a query answer.
type queryPage struct {
	TotalSize      int    `json:"totalSize"`
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl,omitempty"`
	Records        []any  `json:"records"`
}

// soqlError converts a parser error to the REST error answer.
func soqlError(q string, err error) *Error {
	var se *soql.Error
	if errors.As(err, &se) {
		return newError(se.Code, se.Detail(q))
	}
	return newError("MALFORMED_QUERY", err.Error())
}

// handleQuery answers GET /query?q= and /queryAll?q= (deleted rows
// included, with IsDeleted=true).
func (o *Org) handleQuery(w http.ResponseWriter, r *http.Request, c *call) {
	all := c.segs[0] == "queryAll"
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		writeErrors(w, http.StatusBadRequest, newError("MALFORMED_QUERY", "A query string has to be specified"))
		return
	}
	parsed, err := soql.Parse(q)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, soqlError(q, err))
		return
	}
	if !strings.EqualFold(parsed.Object, "Account") {
		writeErrors(w, http.StatusBadRequest, errUnsupportedType(parsed.Object))
		return
	}
	parsed.Object = "Account"
	if err := parsed.Resolve(o.schema.soqlLookup); err != nil {
		writeErrors(w, http.StatusBadRequest, soqlError(q, err))
		return
	}
	page := o.runQuery(parsed, all, batchSize(r), c)
	writeJSON(w, http.StatusOK, page)
}

// batchSize reads the Sforce-Query-Options batchSize hint (200 to 2000);
// 0 means the org's page size.
func batchSize(r *http.Request) int {
	for _, opt := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
		if strings.EqualFold(k, "batchSize") {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return min(max(n, 200), 2000)
			}
		}
	}
	return 0
}

// runQuery evaluates a resolved query and returns its first page, opening a
// cursor when there are more.
func (o *Org) runQuery(q *soql.Query, all bool, size int, c *call) *queryPage {
	o.mu.Lock()
	defer o.mu.Unlock()
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
		sort.SliceStable(matches, func(i, j int) bool {
			return q.Compare(getter(matches[i].f), getter(matches[j].f)) < 0
		})
	}
	matches = matches[min(q.Offset, len(matches)):]
	if q.Limit >= 0 && q.Limit < len(matches) {
		matches = matches[:q.Limit]
	}
	if q.Count {
		return &queryPage{TotalSize: len(matches), Done: true, Records: []any{}}
	}
	rows := make([]any, len(matches))
	for i, a := range matches {
		rows[i] = o.render(a, q.Fields, c.version)
	}
	if size == 0 {
		size = o.live.pageSize
	}
	return o.pageLocked(&locator{rows: rows, size: size}, "", 0, c)
}

func getter(f Record) func(string) any {
	return func(name string) any { return f[name] }
}

// pageLocked returns the page of loc's rows starting at from; when rows
// remain it links the next page through the cursor locID (opened if empty).
func (o *Org) pageLocked(loc *locator, locID string, from int, c *call) *queryPage {
	rows := loc.rows
	end := min(from+loc.size, len(rows))
	page := &queryPage{TotalSize: len(rows), Done: end == len(rows), Records: rows[from:end]}
	if !page.Done {
		if locID == "" {
			locID = o.ids.next(prefixQueryLocator)
			o.locators[locID] = loc
			o.locOrder = append(o.locOrder, locID)
			if len(o.locOrder) > maxLocators {
				delete(o.locators, o.locOrder[0])
				o.locOrder = o.locOrder[1:]
			}
		}
		page.NextRecordsURL = c.versionPath() + "/query/" + locID + "-" + strconv.Itoa(end)
	}
	return page
}

// handleQueryMore answers GET /query/{locator} (and /queryAll/{locator})
// with a locator like 01gXXXXXXXXXXXXXXX-2000.
func (o *Org) handleQueryMore(w http.ResponseWriter, r *http.Request, c *call) {
	locID, offset, ok := strings.Cut(c.segs[1], "-")
	from, err := strconv.Atoi(offset)
	o.mu.Lock()
	loc, found := o.locators[locID]
	var page *queryPage
	if ok && err == nil && found && from >= 0 && from <= len(loc.rows) {
		page = o.pageLocked(loc, locID, from, c)
	}
	o.mu.Unlock()
	if page == nil {
		writeErrors(w, http.StatusBadRequest, newError("INVALID_QUERY_LOCATOR", "invalid query locator"))
		return
	}
	writeJSON(w, http.StatusOK, page)
}
