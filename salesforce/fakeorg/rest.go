package fakeorg

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// API versions the fake serves (vNN.0 for NN in this range).
const (
	minVersion = 20
	maxVersion = 66
)

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 32 << 20

// call is the per-request state of a REST or Apex REST call.
type call struct {
	version string   // as requested, e.g. "63.0"
	major   int      // 63
	segs    []string // decoded path segments after /services/data/vNN.N
	base    string   // scheme://host
	route   string   // stats key, e.g. "GET /sobjects/Account/{id}"
	// comp is the composite call this is a subrequest of (nil: none): its
	// writes are recorded so that allOrNone can roll them back.
	comp *compositeRun
	// origin is the changeOrigin of the call's writes (changes.go).
	origin string
}

// newTxn returns a transaction for a call's writes, recorded in the
// composite call, if any.
func (c *call) newTxn() *txn {
	t := &txn{origin: c.origin, inComposite: c.comp != nil}
	if c.comp != nil {
		c.comp.txns = append(c.comp.txns, t)
	}
	return t
}

// txn is newTxn for single-record writes, which need a transaction that
// can roll back only inside a composite call (a direct one otherwise).
func (c *call) txn() *txn {
	if c.comp == nil {
		return directTxn(c.origin)
	}
	return c.newTxn()
}

// versionPath is the path prefix for the requested version: /services/data/v63.0.
func (c *call) versionPath() string { return "/services/data/v" + c.version }

type handler func(w http.ResponseWriter, r *http.Request, c *call)

// handleVersions answers GET /services/data: the version list, without
// authentication and without Sforce-Limit-Info.
func (o *Org) handleVersions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeErrors(w, http.StatusMethodNotAllowed, errMethod(r.Method, "GET"))
		return
	}
	out := make([]map[string]string, 0, maxVersion-minVersion+1)
	for v := minVersion; v <= maxVersion; v++ {
		out = append(out, map[string]string{
			"label": releaseLabel(v), "url": fmt.Sprintf("/services/data/v%d.0", v), "version": fmt.Sprintf("%d.0", v),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// releaseLabel names the release of API version v: 60 is "Spring '24", and
// there are three releases a year (Spring, Summer, Winter of the next year).
func releaseLabel(v int) string {
	k := v - 60
	cycle := k / 3
	if k%3 < 0 {
		cycle--
	}
	pos := k - 3*cycle
	year := 24 + cycle
	if pos == 2 {
		year++
	}
	return fmt.Sprintf("%s '%02d", [...]string{"Spring", "Summer", "Winter"}[pos], year%100)
}

// parseVersion accepts "v63.0" and returns "63.0" and 63.
func parseVersion(s string) (string, int, bool) {
	if len(s) < 4 || s[0] != 'v' {
		return "", 0, false
	}
	major, minor, ok := strings.Cut(s[1:], ".")
	if !ok || minor != "0" {
		return "", 0, false
	}
	n, err := strconv.Atoi(major)
	if err != nil || n < minVersion || n > maxVersion || strconv.Itoa(n) != major {
		return "", 0, false
	}
	return s[1:], n, true
}

// splitPath splits an escaped path into decoded segments, dropping empty
// ones (a trailing slash). Decoding per segment keeps %2F inside a value.
func splitPath(escaped string) ([]string, bool) {
	var out []string
	for _, s := range strings.Split(escaped, "/") {
		if s == "" {
			continue
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		out = append(out, d)
	}
	return out, true
}

// serveREST runs the REST pipeline: authentication, routing, API
// accounting and the daily limit, latency, injected outages, then the handler.
func (o *Org) serveREST(w http.ResponseWriter, r *http.Request) {
	segs, ok := splitPath(strings.TrimPrefix(r.URL.EscapedPath(), "/services/data/"))
	if !ok || len(segs) == 0 {
		writeErrors(w, http.StatusNotFound, errNotFound())
		return
	}
	if !o.authenticate(w, r) {
		return
	}
	version, major, ok := parseVersion(segs[0])
	if !ok {
		// An unknown version is counted in the stats but answered, like
		// Salesforce, without Sforce-Limit-Info
		// (testdata/recorded/not_found_bad_version.json).
		o.mu.Lock()
		o.apiCalls++
		o.byRoute[r.Method+" /{unknown}"]++
		o.mu.Unlock()
		writeErrors(w, http.StatusNotFound, errNotFound())
		return
	}
	c := &call{version: version, major: major, segs: segs[1:], base: baseURL(r),
		origin: changeOrigin(apiREST, version, r.Header)}
	tmpl, methods, exempt := o.routeREST(c.segs)
	c.route = r.Method + " " + tmpl
	h, allowed := methods[r.Method]
	if !o.begin(w, r, c.route, exempt) {
		return
	}
	switch {
	case methods == nil:
		writeErrors(w, http.StatusNotFound, errNotFound())
	case !allowed:
		names := make([]string, 0, len(methods))
		for m := range methods {
			names = append(names, m)
		}
		sort.Strings(names)
		writeErrors(w, http.StatusMethodNotAllowed, errMethod(r.Method, strings.Join(names, ",")))
	default:
		if err := limitBodyN(w, r, bodyLimit(c.route)); err != nil {
			writeErrors(w, http.StatusBadRequest, err)
			return
		}
		h(w, r, c)
	}
}

// limitBody bounds the request body and undoes a gzip Content-Encoding
// (go-salesforce can compress request bodies).
func limitBody(w http.ResponseWriter, r *http.Request) *Error {
	return limitBodyN(w, r, maxBodyBytes)
}

// limitBodyN is limitBody with a given bound.
func limitBodyN(w http.ResponseWriter, r *http.Request, limit int64) *Error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if !strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		return nil
	}
	// Clients that compress send the header on every request, GET and
	// DELETE included: an empty body is simply empty.
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); err == io.EOF {
		r.Body = io.NopCloser(br)
		return nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return jsonParserError("The request body is not valid gzip data")
	}
	r.Body = http.MaxBytesReader(w, zr, limit)
	return nil
}

func errMethod(method, allowed string) *Error {
	return newError("METHOD_NOT_ALLOWED", fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", method, allowed))
}

// routeREST maps the segments after the version to a stats template and
// the handlers by method (nil: no such resource). exempt marks calls that
// neither count toward nor are refused by the daily API limit.
func (o *Org) routeREST(segs []string) (tmpl string, methods map[string]handler, exempt bool) {
	isAccount := func(s string) bool { return strings.EqualFold(s, "Account") }
	n := len(segs)
	switch {
	case n == 0:
		return "/", map[string]handler{http.MethodGet: o.handleResources}, false
	case segs[0] == "jobs":
		return o.routeJobs(segs)
	case segs[0] == "limits" && n == 1:
		return "/limits", map[string]handler{http.MethodGet: o.handleLimits}, true
	case segs[0] == "sobjects" && n == 1:
		return "/sobjects", map[string]handler{http.MethodGet: o.handleDescribeGlobal}, false
	case segs[0] == "sobjects" && !isAccount(segs[1]):
		return "/sobjects/{sobject}" + strings.Repeat("/{segment}", n-2), nil, false
	case segs[0] == "sobjects" && n == 2:
		return "/sobjects/Account", map[string]handler{http.MethodGet: o.handleSObjectInfo, http.MethodPost: o.handleCreate}, false
	case segs[0] == "sobjects" && n == 3 && segs[2] == "describe":
		return "/sobjects/Account/describe", map[string]handler{http.MethodGet: o.handleDescribe}, false
	case segs[0] == "sobjects" && n == 3 && segs[2] == "updated":
		return "/sobjects/Account/updated", map[string]handler{http.MethodGet: o.handleUpdated}, false
	case segs[0] == "sobjects" && n == 3 && segs[2] == "deleted":
		return "/sobjects/Account/deleted", map[string]handler{http.MethodGet: o.handleDeleted}, false
	case segs[0] == "sobjects" && n == 3:
		return "/sobjects/Account/{id}", map[string]handler{
			http.MethodGet: o.handleGet, http.MethodPatch: o.handleUpdate, http.MethodDelete: o.handleDelete,
		}, false
	case segs[0] == "sobjects" && n == 4:
		return "/sobjects/Account/{field}/{value}", map[string]handler{
			http.MethodGet: o.handleGetByExternalID, http.MethodPatch: o.handleUpsert, http.MethodDelete: o.handleDeleteByExternalID,
		}, false
	case segs[0] == "composite" && n == 2 && segs[1] == "sobjects":
		return "/composite/sobjects", map[string]handler{
			http.MethodPost: o.handleCollectionCreate, http.MethodPatch: o.handleCollectionUpdate, http.MethodDelete: o.handleCollectionDelete,
		}, false
	case segs[0] == "composite" && n >= 3 && segs[1] == "sobjects" && !isAccount(segs[2]):
		return "/composite/sobjects/{sobject}" + strings.Repeat("/{field}", min(n-3, 1)), nil, false
	case segs[0] == "composite" && n == 3 && segs[1] == "sobjects":
		return "/composite/sobjects/Account", map[string]handler{
			http.MethodPost: o.handleCollectionRetrieve, http.MethodGet: o.handleCollectionRetrieve,
		}, false
	case segs[0] == "composite" && n == 4 && segs[1] == "sobjects":
		return "/composite/sobjects/Account/{field}", map[string]handler{http.MethodPatch: o.handleCollectionUpsert}, false
	case segs[0] == "composite" && n == 1:
		return "/composite", map[string]handler{http.MethodPost: o.handleComposite}, false
	case (segs[0] == "query" || segs[0] == "queryAll") && n == 1:
		return "/" + segs[0], map[string]handler{http.MethodGet: o.handleQuery}, false
	case (segs[0] == "query" || segs[0] == "queryAll") && n == 2:
		return "/" + segs[0] + "/{locator}", map[string]handler{http.MethodGet: o.handleQueryMore}, false
	}
	return "/{unknown}", nil, false
}

// begin accounts for an authenticated call (stats, daily usage, the
// Sforce-Limit-Info header), then applies latency and injected outages.
// It reports whether the call goes on; if not, the answer is written.
func (o *Org) begin(w http.ResponseWriter, r *http.Request, route string, exempt bool) bool {
	used, limit, ok := o.count(route, exempt)
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, limit))
	status, e, goOn := o.admit(r, ok)
	if e != nil {
		writeErrors(w, status, e)
	}
	return goOn
}

// admit applies the daily limit (withinLimit is count's verdict), latency
// and injected outages to a counted call. It returns goOn, or the error
// answer to give (nil when the client went away during the latency).
func (o *Org) admit(r *http.Request, withinLimit bool) (status int, e *Error, goOn bool) {
	if !withinLimit {
		return http.StatusForbidden, newError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), false
	}
	o.mu.Lock()
	latency := o.live.latency
	fail := o.live.failRate > 0 && o.rnd.Float64() < o.live.failRate
	o.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return 0, nil, false
		}
	}
	if fail {
		return http.StatusServiceUnavailable, newError("SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."), false
	}
	return 0, nil, true
}

// recordDelay waits the per-record latency for n records written by the
// call (or until the client goes away).
func (o *Org) recordDelay(r *http.Request, n int) {
	o.mu.Lock()
	d := o.live.perRecord * time.Duration(n)
	o.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// count counts a call in the stats and, unless exempt, in the daily API
// usage, and returns the usage after it. ok is false when the daily limit
// is already used up (the call is then not counted in the usage).
func (o *Org) count(route string, exempt bool) (used, limit int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.apiCalls++
	o.byRoute[route]++
	ok = true
	if !exempt {
		if o.apiUsed >= o.live.dailyLimit {
			ok = false
		} else {
			o.apiUsed++
		}
	}
	return o.apiUsed, o.live.dailyLimit, ok
}

// handleResources answers GET /services/data/vNN.N/.
func (o *Org) handleResources(w http.ResponseWriter, r *http.Request, c *call) {
	p := c.versionPath()
	writeJSON(w, http.StatusOK, map[string]string{
		"sobjects": p + "/sobjects", "query": p + "/query", "queryAll": p + "/queryAll",
		"limits": p + "/limits", "composite": p + "/composite",
	})
}

// handleDescribeGlobal answers GET /sobjects with the one sObject the fake has.
func (o *Org) handleDescribeGlobal(w http.ResponseWriter, r *http.Request, c *call) {
	writeJSON(w, http.StatusOK, map[string]any{
		"encoding": "UTF-8", "maxBatchSize": 200,
		"sobjects": []any{o.accountBasics(c)},
	})
}

// handleSObjectInfo answers GET /sobjects/Account.
func (o *Org) handleSObjectInfo(w http.ResponseWriter, r *http.Request, c *call) {
	writeJSON(w, http.StatusOK, map[string]any{"objectDescribe": o.accountBasics(c), "recentItems": []any{}})
}

func (o *Org) accountBasics(c *call) map[string]any {
	base := c.versionPath() + "/sobjects/Account"
	return map[string]any{
		"name": "Account", "label": "Account", "labelPlural": "Accounts", "keyPrefix": "001", "custom": false,
		"createable": true, "updateable": true, "deletable": true, "queryable": true, "retrieveable": true,
		"searchable": true, "undeletable": true, "replicateable": true, "triggerable": true, "layoutable": true,
		"urls": map[string]string{"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"},
	}
}
