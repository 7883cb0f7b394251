// Package salesforce is orgsync's client for the Salesforce REST API: OAuth
// 2.0 token flows (client credentials, JWT bearer, refresh token, static
// token) on golang.org/x/oauth2, sObject Collections create and upsert,
// single-record calls, sObject Collections update and delete, SOQL queries
// (query and queryAll) with paging, describe, limits, the SOAP API's
// undelete() (which the REST API lacks), API usage tracking
// (Sforce-Limit-Info, and the SOAP LimitInfoHeader), typed errors with
// their failure class, and 15/18-character record IDs.
//
// # Tokens
//
// Salesforce tokens carry no expiry. An Auth caches its token until a call is
// answered 401 (or, on the SOAP API, with an INVALID_SESSION_ID fault); the
// Client then drops it, fetches a new one (concurrent callers share that
// fetch) and repeats the call once. A second refusal is returned as an
// *APIError of class AuthFailure.
//
// # Errors
//
// Every error can be passed to Classify, which returns one of the failure
// classes of docs/failures.md: Transient, AuthFailure, Budget, Permanent, Configuration. Per-record
// outcomes of collection calls are SaveResults whose RecordError has its own
// ClassifyRecord. No error string and no log line carries a secret (client
// secret, private key, refresh or access token): messages from the server are
// redacted before they are stored.
package salesforce

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultAPIVersion = "61.0"
	DefaultTimeout    = 60 * time.Second
)

const (
	// maxResponseBody bounds a response body (compressed and decompressed).
	maxResponseBody = 64 << 20
	userAgent       = "orgsync-salesforce"
	contentTypeJSON = "application/json"
)

// ErrNoIdentity is returned by Client.Identity when the token carries no
// identity URL (a static token). Class: Permanent.
var ErrNoIdentity = errors.New("salesforce: the token has no identity url, so the org and user ids are unknown")

// Config configures a Client.
type Config struct {
	Auth *Auth // required
	// APIVersion is the REST API version, "61.0" when empty ("v61.0" is accepted).
	APIVersion string
	// HTTPClient sends the API calls; nil means the package's own transport
	// (dial and TLS timeouts, a larger idle pool). A copy is used whose
	// CheckRedirect follows redirects of GET only (keeping the bearer token
	// when the new host is an https Salesforce host, which net/http alone
	// would drop across domains) and then calls the original CheckRedirect:
	// a redirected POST, PATCH or DELETE is a *RedirectError.
	HTTPClient *http.Client
	// Timeout bounds each HTTP request when the caller's ctx has no deadline;
	// DefaultTimeout (60s) when zero.
	Timeout time.Duration
	// CallOptions, when not empty, is sent as Sforce-Call-Options on every
	// request, e.g. "client=orgsync" (it shows in changeOrigin of change events).
	CallOptions string
	// Observe, when set, is called after every HTTP request (including the
	// one answered 401 before a retry), for metrics. It must be quick.
	Observe func(CallInfo)
	// Logger receives debug lines per call and warnings; nil discards. No
	// token or secret is ever logged.
	Logger *slog.Logger
}

// CallInfo describes one HTTP request to the API, for Config.Observe.
type CallInfo struct {
	Method string
	// Route is the method and the path after /services/data/vNN.N (or after
	// /services for other paths) with ids and values templated, e.g.
	// "PATCH /composite/sobjects/Account/{field}", "GET /query",
	// "GET /query/{locator}", "GET /limits", "POST /apexrest/arrify/v1/accounts";
	// the SOAP undelete() is "POST /Soap/u/undelete".
	Route    string
	Status   int // 0 on a transport error
	Duration time.Duration
	Err      error // the transport error or, for a non-2xx answer, its *APIError
}

// Response is the raw answer of Client.Call.
type Response struct {
	Status int
	Header http.Header
	Body   []byte // decompressed
}

// Record is one sObject record: field name → value. The client adds the
// "attributes" object the collection calls need and strips "attributes"
// (also of nested relationship records) from what it returns. Values decoded
// from responses are string, bool, nil, json.Number (numbers keep their exact
// text), map[string]any (a relationship) or []any.
type Record map[string]any

// Client calls the REST API of one org. It is safe for concurrent use.
type Client struct {
	auth        *Auth
	version     string
	hc          *http.Client
	noFollow    *http.Client // hc without following redirects, for CheckRedirect
	timeout     time.Duration
	callOptions string
	observe     func(CallInfo)
	log         *slog.Logger

	mu        sync.Mutex
	usage     APIUsage
	haveUsage bool
}

var apiVersionPattern = regexp.MustCompile(`^[0-9]{1,3}\.[0-9]$`)

// NewClient checks cfg and returns a Client. It makes no call.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Auth == nil {
		return nil, errors.New("salesforce: Config.Auth is required")
	}
	v := strings.TrimPrefix(strings.TrimSpace(cfg.APIVersion), "v")
	if v == "" {
		v = DefaultAPIVersion
	}
	if !apiVersionPattern.MatchString(v) {
		return nil, fmt.Errorf("salesforce: APIVersion %q: want a version such as %q", cfg.APIVersion, DefaultAPIVersion)
	}
	c := &Client{
		auth:        cfg.Auth,
		version:     v,
		timeout:     cfg.Timeout,
		callOptions: cfg.CallOptions,
		observe:     cfg.Observe,
		log:         cfg.Logger,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc.Transport = defaultTransport()
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = redirectPolicy(func(req *http.Request, via []*http.Request) error {
		c.log.Warn("salesforce GET redirected; configure the new URL to save a round trip",
			"from", stripQuery(via[len(via)-1].URL), "to", stripQuery(req.URL))
		// net/http drops Authorization when the redirect leaves the
		// original domain (lightning.force.com → my.salesforce.com), which
		// would only earn a 401. Keep it for Salesforce's own HTTPS hosts.
		if auth := via[0].Header.Get("Authorization"); auth != "" && req.Header.Get("Authorization") == "" && salesforceHost(req.URL) {
			req.Header.Set("Authorization", auth)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}, nil)
	c.hc = &hc
	probe := hc
	probe.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.noFollow = &probe
	return c, nil
}

// CheckRedirect reports whether a write to path (instance-relative, e.g. the
// collections upsert path) would be answered by a redirect, without writing:
// it sends a GET to path and does not follow a redirect. Salesforce
// redirects by host, whatever the method, so a 3xx here is the same 3xx a
// PATCH or POST would get. It returns a *RedirectError naming the URL to
// configure, nil for any other answer (a 4xx for a GET on a write resource
// is expected), or the error of a call that got no answer.
func (c *Client) CheckRedirect(ctx context.Context, path string) error {
	tok, err := c.auth.Token(ctx)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tok.InstanceURL+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("User-Agent", userAgent)
	start := time.Now()
	info := CallInfo{Method: http.MethodGet, Route: "GET " + routeOf(path)}
	resp, err := c.noFollow.Do(req)
	if err != nil {
		return c.finish(info, start, c.auth.redactErr(fmt.Errorf("salesforce: %s: %w", info.Route, err)))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	info.Status = resp.StatusCode
	c.trackUsage(resp.Header)
	_ = c.finish(info, start, nil)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc := resp.Header.Get("Location")
		if u, err := req.URL.Parse(loc); err == nil {
			loc = stripQuery(u)
		}
		return &RedirectError{Method: http.MethodPatch, URL: stripQuery(req.URL), Location: loc}
	}
	return nil
}

// defaultTransport is http.DefaultTransport's settings with a larger idle
// pool per host (a worker runs several calls to one host at once).
func defaultTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.MaxIdleConnsPerHost = 32
		return t
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// salesforceHost reports an https URL on a Salesforce-owned domain: the
// hosts that may receive the bearer token on a followed redirect.
func salesforceHost(u *url.URL) bool {
	if u.Scheme != "https" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, d := range [...]string{".salesforce.com", ".force.com", ".cloudforce.com", ".database.com"} {
		if strings.HasSuffix(h, d) {
			return true
		}
	}
	return false
}

// APIVersion returns the REST API version in use, e.g. "61.0".
func (c *Client) APIVersion() string { return c.version }

// Identity returns the org and user ids from the token's identity URL,
// without an API call (it may fetch a token). It returns ErrNoIdentity for a
// static token.
func (c *Client) Identity(ctx context.Context) (orgID, userID string, err error) {
	tok, err := c.auth.Token(ctx)
	if err != nil {
		return "", "", err
	}
	org, user := tok.identity()
	if org == "" {
		return "", "", ErrNoIdentity
	}
	return org, user, nil
}

// Call sends a raw request to an instance-relative path such as
// "/services/apexrest/arrify/v1/accounts" (a query string is allowed), with
// the token, the one retry after a 401, limit tracking, Sforce-Call-Options
// and Observe. body may be nil; contentType defaults to application/json
// when there is a body. Call returns an error only for a transport failure,
// a token failure, a refused redirect, a 401 that survives one new token, or
// a 403 REQUEST_LIMIT_EXCEEDED (both *APIError); the caller reads any other
// answer, 2xx or not, from the Response.
func (c *Client) Call(ctx context.Context, method, path string, body []byte, contentType string) (*Response, error) {
	method = strings.ToUpper(method)
	if method == "" || !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return nil, fmt.Errorf("%w: Call needs a method and an instance-relative path starting with /, got %q %q",
			ErrInvalidRequest, method, clipText(path, 100))
	}
	if body != nil && contentType == "" {
		contentType = contentTypeJSON
	}
	resp, apiErr, err := c.send(ctx, call{method: method, path: path, route: method + " " + routeOf(path), body: body, ctype: contentType})
	if err != nil {
		return nil, err
	}
	if apiErr != nil && (resp.Status == http.StatusUnauthorized ||
		resp.Status == http.StatusForbidden && apiErr.Code == CodeRequestLimitExceeded) {
		return nil, apiErr
	}
	return resp, nil
}

// call is one API request.
type call struct {
	method string
	path   string // instance-relative, may carry "?query"
	route  string // "GET /limits"
	body   []byte
	ctype  string
	accept string // "" means application/json
	soap   bool   // a SOAP call: a non-2xx answer is a SOAP fault
}

// dataPath is the instance-relative path of a REST data resource.
func (c *Client) dataPath(rest string) string {
	return "/services/data/v" + c.version + rest
}

// do sends a typed call: body (if not nil) is encoded as JSON, and any
// non-2xx answer becomes an *APIError.
func (c *Client) do(ctx context.Context, method, path, route string, body any) (*Response, error) {
	cl := call{method: method, path: path, route: route}
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: encode body: %v", ErrInvalidRequest, route, err)
		}
		cl.body, cl.ctype = data, contentTypeJSON
	}
	resp, apiErr, err := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	if apiErr != nil {
		return nil, apiErr
	}
	return resp, nil
}

// send performs cl with a token; after a 401 it drops the token and tries
// once more with a new one. apiErr is the decoded error of a non-2xx answer.
func (c *Client) send(ctx context.Context, cl call) (*Response, *APIError, error) {
	for attempt := 1; ; attempt++ {
		tok, err := c.auth.Token(ctx)
		if err != nil {
			return nil, nil, err
		}
		resp, apiErr, err := c.once(ctx, tok, cl)
		if err != nil {
			return nil, nil, err
		}
		if resp.Status == http.StatusUnauthorized {
			c.auth.Invalidate(tok)
			if attempt == 1 && c.auth.Flow() != FlowStatic {
				c.log.Info("salesforce session rejected; retrying with a new token",
					"route", cl.route, "code", apiErr.Code, "flow", c.auth.Flow())
				continue
			}
			c.log.Warn("salesforce session rejected; not retrying", "route", cl.route, "attempt", attempt,
				"code", apiErr.Code, "message", apiErr.Message, "flow", c.auth.Flow())
		}
		return resp, apiErr, nil
	}
}

// once is one HTTP request.
func (c *Client) once(ctx context.Context, tok *Token, cl call) (*Response, *APIError, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, tok.InstanceURL+cl.path, body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, cl.route, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	accept := cl.accept
	if accept == "" {
		accept = contentTypeJSON
	}
	req.Header.Set("Accept", accept)
	// Set explicitly, so that the transport leaves decompression to us
	// whatever transport the caller supplied.
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", userAgent)
	if cl.ctype != "" {
		req.Header.Set("Content-Type", cl.ctype)
	}
	if c.callOptions != "" {
		req.Header.Set("Sforce-Call-Options", c.callOptions)
	}

	start := time.Now()
	info := CallInfo{Method: cl.method, Route: cl.route}
	hresp, err := c.hc.Do(req)
	if err != nil {
		var redir *RedirectError
		if errors.As(err, &redir) {
			err = redir
			if hresp != nil {
				info.Status = hresp.StatusCode
			}
		} else {
			err = c.auth.redactErr(fmt.Errorf("salesforce: %s: %w", cl.route, err))
		}
		return nil, nil, c.finish(info, start, err)
	}
	defer hresp.Body.Close()
	info.Status = hresp.StatusCode
	data, err := readBody(hresp)
	c.trackUsage(hresp.Header)
	if err != nil {
		return nil, nil, c.finish(info, start, c.auth.redactErr(fmt.Errorf("salesforce: %s: reading the %d response: %w", cl.route, hresp.StatusCode, err)))
	}
	resp := &Response{Status: hresp.StatusCode, Header: hresp.Header, Body: data}
	var apiErr *APIError
	if resp.Status < 200 || resp.Status > 299 {
		// Redact the body before parsing: Raw is clipped, and a clipped
		// secret would no longer be recognised.
		parse := ParseAPIError
		if cl.soap {
			parse = ParseSOAPFault
		}
		apiErr = parse(resp.Status, []byte(c.auth.redact(string(data))))
		apiErr.Method, apiErr.Route = cl.method, cl.route
		_ = c.finish(info, start, apiErr)
	} else {
		_ = c.finish(info, start, nil)
	}
	return resp, apiErr, nil
}

// finish reports a request to Observe and the logger and returns err.
func (c *Client) finish(info CallInfo, start time.Time, err error) error {
	info.Duration = time.Since(start)
	info.Err = err
	if c.observe != nil {
		c.observe(info)
	}
	if err != nil && info.Status == 0 {
		c.log.Warn("salesforce call failed", "route", info.Route, "duration", info.Duration, "err", err)
	} else {
		c.log.Debug("salesforce call", "route", info.Route, "status", info.Status, "duration", info.Duration)
	}
	return err
}

// readBody reads (and gunzips) a response body within maxResponseBody.
func readBody(resp *http.Response) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxResponseBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxResponseBody)
	}
	if len(data) == 0 || !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Content-Encoding")), "gzip") {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	plain, err := io.ReadAll(io.LimitReader(zr, maxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(plain) > maxResponseBody {
		return nil, fmt.Errorf("decompressed body larger than %d bytes", maxResponseBody)
	}
	return plain, nil
}

// decode decodes a JSON response body into v, keeping numbers as json.Number.
func decode(resp *Response, route string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("salesforce: %s: decoding the %d response: %w", route, resp.Status, err)
	}
	return nil
}

var versionSegment = regexp.MustCompile(`^/data/v[0-9]+\.[0-9]+`)

// routeOf templates an instance-relative path for CallInfo.Route: it drops
// the query, "/services" and "/data/vNN.N", and replaces record ids and
// query locators.
func routeOf(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimPrefix(p, "/services")
	p = versionSegment.ReplaceAllString(p, "")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case i > 0 && (segs[i-1] == "query" || segs[i-1] == "queryAll") && s != "":
			segs[i] = "{locator}"
		case ValidID(s):
			segs[i] = "{id}"
		}
	}
	p = strings.Join(segs, "/")
	if p == "" {
		p = "/"
	}
	return p
}

var namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)

// checkName validates an sObject or field name before it goes into a path.
func checkName(what, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: %s name %q", ErrInvalidRequest, what, clipText(name, 100))
	}
	return nil
}

// outgoing copies rec for a request body, without "attributes" and without
// the keys in drop (compared without regard to case).
func outgoing(rec Record, drop ...string) map[string]any {
	m := make(map[string]any, len(rec)+1)
outer:
	for k, v := range rec {
		if k == "attributes" {
			continue
		}
		for _, d := range drop {
			if strings.EqualFold(k, d) {
				continue outer
			}
		}
		m[k] = v
	}
	return m
}

// incoming strips "attributes" from a decoded record and from nested
// relationship records and subquery results.
func incoming(m map[string]any) Record {
	if m == nil {
		return nil
	}
	delete(m, "attributes")
	for k, v := range m {
		m[k] = stripAttributes(v)
	}
	return Record(m)
}

func stripAttributes(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return map[string]any(incoming(t))
	case []any:
		for i := range t {
			t[i] = stripAttributes(t[i])
		}
	}
	return v
}
