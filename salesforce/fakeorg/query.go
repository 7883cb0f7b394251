package fakeorg

import (
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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

// soqlError converts a parser error to the REST error answer, worded as
// the recorded answers (testdata/recorded/query_*.json) are: a query that
// does not start with SELECT gets a bare "unexpected token: X"; an unknown
// column is shown in the query like a syntax error.
func soqlError(q string, err error) *Error {
	var se *soql.Error
	if !errors.As(err, &se) {
		return newError("MALFORMED_QUERY", err.Error())
	}
	if se.Code == soql.CodeMalformedQuery && se.Row == 1 {
		lead := len(q) - len(strings.TrimLeft(q, " \t\r\n"))
		first, _, _ := strings.Cut(strings.TrimLeft(q, " \t\r\n"), " ")
		if se.Column == lead+1 && first != "" && !strings.EqualFold(first, "SELECT") {
			return newError(se.Code, "unexpected token: "+first)
		}
	}
	if se.Row == 0 && se.Code == soql.CodeInvalidField && strings.HasPrefix(se.Message, "No such column '") {
		name, _, _ := strings.Cut(strings.TrimPrefix(se.Message, "No such column '"), "'")
		if pos := wordIndex(q, name, 0); pos >= 0 {
			return newError(se.Code, positioned(q, pos, se.Code, se.Message))
		}
	}
	return newError(se.Code, se.Detail(q))
}

// errQueryType is INVALID_TYPE for a FROM object the org does not have,
// shown in the query.
func errQueryType(q, object string) *Error {
	e := errUnsupportedType(object)
	from := fromKeyword.FindStringIndex(q)
	if from == nil {
		return e
	}
	if pos := wordIndex(q, object, from[1]); pos >= 0 {
		e.Message = positioned(q, pos, e.Code, e.Message)
	}
	return e
}

var fromKeyword = regexp.MustCompile(`(?i)\bfrom\b`)

// wordIndex returns the byte offset of the first whole-word, case-insensitive
// occurrence of word in q at or after from, or -1.
func wordIndex(q, word string, from int) int {
	re, err := regexp.Compile(`(?i)\b` + regexp.QuoteMeta(word) + `\b`)
	if err != nil || from > len(q) {
		return -1
	}
	loc := re.FindStringIndex(q[from:])
	if loc == nil {
		return -1
	}
	return from + loc[0]
}

// positioned renders msg with the excerpt, caret and "ERROR at
// Row:R:Column:C" of the token at byte offset pos.
func positioned(q string, pos int, code, msg string) string {
	before := q[:pos]
	row := 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	e := &soql.Error{Code: code, Message: msg, Row: row, Column: 1 + utf8.RuneCountInString(before)}
	return e.Detail(q)
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
		writeErrors(w, http.StatusBadRequest, errQueryType(q, parsed.Object))
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
		sortAccounts(matches, q)
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

// sortAccounts sorts matches by q's ORDER BY.
func sortAccounts(matches []*account, q *soql.Query) {
	sort.SliceStable(matches, func(i, j int) bool {
		return q.Compare(getter(matches[i].f), getter(matches[j].f)) < 0
	})
}
