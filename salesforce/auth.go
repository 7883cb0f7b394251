package salesforce

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
)

// Flow names, as returned by Auth.Flow.
const (
	FlowClientCredentials = "client_credentials"
	FlowJWTBearer         = "jwt_bearer"
	FlowRefreshToken      = "refresh_token"
	FlowStatic            = "static"
)

// JWT bearer audiences: production and Developer Edition orgs, and sandboxes.
const (
	DefaultJWTAudience = "https://login.salesforce.com"
	SandboxJWTAudience = "https://test.salesforce.com"
)

const (
	tokenPath = "/services/oauth2/token"
	// jwtLifetime is the assertion's lifetime: Salesforce wants exp "within 3 minutes".
	jwtLifetime = 3 * time.Minute
	// tokenTimeout bounds one token request when the HTTP client has no timeout.
	tokenTimeout = 30 * time.Second
)

// AuthConfig selects and configures an OAuth 2.0 flow. See NewAuth for
// which fields pick which flow.
type AuthConfig struct {
	// URL is the org's My Domain URL (e.g. https://acme.my.salesforce.com)
	// or, for the JWT bearer and refresh-token flows, a login URL
	// (https://login.salesforce.com, https://test.salesforce.com). The token
	// endpoint is URL + "/services/oauth2/token". The client credentials flow
	// only works against the My Domain URL.
	URL string

	// ClientID and ClientSecret are the connected app's consumer key and
	// secret (client credentials flow; refresh-token flow, where the secret
	// is optional; ClientID is the JWT issuer).
	ClientID, ClientSecret string

	// Username and JWTKey select the JWT bearer flow: Username is the
	// subject, JWTKey a PEM RSA private key (PKCS#1 or PKCS#8, unencrypted).
	Username string
	JWTKey   []byte
	// JWTAudience is the assertion's aud: DefaultJWTAudience when empty,
	// SandboxJWTAudience for sandboxes, or an Experience Cloud site URL.
	JWTAudience string

	// RefreshToken selects the refresh-token flow.
	RefreshToken string

	// AccessToken and InstanceURL are a static token for development; the
	// token is never refreshed. InstanceURL defaults to URL.
	AccessToken, InstanceURL string

	// HTTPClient is used for token calls; nil means a default one with
	// timeouts. Its CheckRedirect is replaced by the package's policy (a
	// redirect of the token POST is a *RedirectError).
	HTTPClient *http.Client

	// Logger receives token fetches (never a secret); nil discards.
	Logger *slog.Logger
}

// String describes the configuration without any secret.
func (c AuthConfig) String() string {
	return fmt.Sprintf("salesforce.AuthConfig{URL:%q ClientID:%q ClientSecret:%s Username:%q JWTKey:%s JWTAudience:%q RefreshToken:%s AccessToken:%s InstanceURL:%q}",
		c.URL, c.ClientID, secretMark(c.ClientSecret != ""), c.Username, secretMark(len(c.JWTKey) > 0),
		c.JWTAudience, secretMark(c.RefreshToken != ""), secretMark(c.AccessToken != ""), c.InstanceURL)
}

// GoString is String, so %#v does not print secrets either.
func (c AuthConfig) GoString() string { return c.String() }

// LogValue keeps secrets out of slog output.
func (c AuthConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

func secretMark(set bool) string {
	if set {
		return "[set]"
	}
	return "[unset]"
}

// Token is an access token and where to use it.
type Token struct {
	AccessToken string
	InstanceURL string // scheme and host of the org's API, from instance_url
	IdentityURL string // the token response's id: https://login.salesforce.com/id/<orgId>/<userId>
	IssuedAt    time.Time
}

// OrgID returns the 18-character organization ID from the identity URL's
// second-to-last segment, or "" when unknown.
func (t *Token) OrgID() string {
	org, _ := t.identity()
	return org
}

// UserID returns the 18-character user ID from the identity URL's last
// segment, or "" when unknown.
func (t *Token) UserID() string {
	_, user := t.identity()
	return user
}

func (t *Token) identity() (org, user string) {
	if t == nil || t.IdentityURL == "" {
		return "", ""
	}
	u, err := url.Parse(t.IdentityURL)
	if err != nil {
		return "", ""
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) < 2 {
		return "", ""
	}
	org, err = NormalizeIDWithPrefix(segs[len(segs)-2], PrefixOrganization)
	if err != nil {
		return "", ""
	}
	user, err = NormalizeIDWithPrefix(segs[len(segs)-1], PrefixUser)
	if err != nil {
		return "", ""
	}
	return org, user
}

// String describes the token without the access token itself.
func (t *Token) String() string {
	if t == nil {
		return "token(nil)"
	}
	s := "token(instance=" + t.InstanceURL
	if org := t.OrgID(); org != "" {
		s += " org=" + org
	}
	if !t.IssuedAt.IsZero() {
		s += " issued=" + t.IssuedAt.UTC().Format(time.RFC3339)
	}
	return s + ")"
}

// GoString is String, so %#v does not print the token either.
func (t *Token) GoString() string { return t.String() }

// LogValue keeps the access token out of slog output.
func (t *Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Auth hands out access tokens for one org and one flow. It caches the
// token until Invalidate drops it (Salesforce tokens carry no expiry: a 401
// INVALID_SESSION_ID is the signal), and concurrent callers share one fetch.
// It is safe for concurrent use.
type Auth struct {
	ctx     context.Context
	flow    string
	baseURL string
	hc      *http.Client
	log     *slog.Logger
	static  *Token
	cc      *clientcredentials.Config
	jwtConf *jwt.Config
	oc      *oauth2.Config
	secrets []string // configured secrets, for redaction

	mu       sync.Mutex
	tok      *Token
	handed   []string // access tokens fetched so far (bounded), for redaction
	refresh  string   // the latest refresh token (Salesforce may rotate it)
	inflight *tokenCall
}

type tokenCall struct {
	done chan struct{}
	tok  *Token
	err  error
}

// NewAuth picks the flow from the fields set, in this order: AccessToken →
// static; RefreshToken → refresh token; JWTKey and Username → JWT bearer;
// ClientID and ClientSecret → client credentials. Otherwise it returns an
// error naming what is missing. No token is fetched yet.
//
// Like x/oauth2's token sources, Auth keeps ctx and fetches every later token
// with it, so ctx must live as long as the Auth (the process's root context):
// once it is cancelled, every token fetch fails. A caller's own ctx passed
// to Token only bounds how long that caller waits.
func NewAuth(ctx context.Context, cfg AuthConfig) (*Auth, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	a := &Auth{ctx: ctx, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, s := range []string{cfg.ClientSecret, cfg.RefreshToken, cfg.AccessToken} {
		if s != "" {
			a.secrets = append(a.secrets, s)
		}
	}

	if cfg.AccessToken != "" {
		inst := cfg.InstanceURL
		if inst == "" {
			inst = cfg.URL
		}
		if inst == "" {
			return nil, errors.New("salesforce: a static access token needs InstanceURL (or URL)")
		}
		u, err := baseURL(inst)
		if err != nil {
			return nil, a.redactErr(fmt.Errorf("salesforce: InstanceURL: %w", err))
		}
		a.flow = FlowStatic
		a.static = &Token{AccessToken: cfg.AccessToken, InstanceURL: u}
		a.tok = a.static
		return a, nil
	}

	switch {
	case cfg.RefreshToken != "":
		a.flow = FlowRefreshToken
		if cfg.ClientID == "" {
			return nil, errors.New("salesforce: the refresh-token flow needs ClientID")
		}
	case len(cfg.JWTKey) > 0 || (cfg.Username != "" && cfg.ClientSecret == ""):
		a.flow = FlowJWTBearer
		switch {
		case cfg.Username == "":
			return nil, errors.New("salesforce: the JWT bearer flow needs Username")
		case len(cfg.JWTKey) == 0:
			return nil, errors.New("salesforce: the JWT bearer flow needs JWTKey (the connected app's RSA private key)")
		case cfg.ClientID == "":
			return nil, errors.New("salesforce: the JWT bearer flow needs ClientID (the consumer key, used as iss)")
		}
		if err := checkRSAKey(cfg.JWTKey); err != nil {
			return nil, err
		}
	case cfg.ClientID != "" || cfg.ClientSecret != "":
		a.flow = FlowClientCredentials
		switch {
		case cfg.ClientID == "":
			return nil, errors.New("salesforce: the client credentials flow needs ClientID")
		case cfg.ClientSecret == "":
			return nil, errors.New("salesforce: the client credentials flow needs ClientSecret")
		}
	default:
		return nil, errors.New("salesforce: no credentials: set AccessToken (static token), RefreshToken (refresh-token flow), " +
			"JWTKey and Username (JWT bearer flow), or ClientID and ClientSecret (client credentials flow)")
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("salesforce: the %s flow needs URL (the org's My Domain URL or a login URL)", a.flow)
	}
	u, err := baseURL(strings.TrimSuffix(strings.TrimRight(cfg.URL, "/"), tokenPath))
	if err != nil {
		return nil, a.redactErr(fmt.Errorf("salesforce: URL: %w", err))
	}
	a.baseURL = u
	tokenURL := u + tokenPath
	a.hc = tokenHTTPClient(cfg.HTTPClient)

	switch a.flow {
	case FlowRefreshToken:
		a.refresh = cfg.RefreshToken
		a.oc = &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		}
	case FlowJWTBearer:
		aud := cfg.JWTAudience
		if aud == "" {
			aud = DefaultJWTAudience
		}
		a.jwtConf = &jwt.Config{
			Email:      cfg.ClientID,
			Subject:    cfg.Username,
			PrivateKey: cfg.JWTKey,
			Audience:   aud,
			TokenURL:   tokenURL,
			Expires:    jwtLifetime,
		}
	case FlowClientCredentials:
		a.cc = &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     tokenURL,
			AuthStyle:    oauth2.AuthStyleInParams,
		}
	}
	return a, nil
}

// checkRSAKey parses the key now so that a bad key fails at start-up. The
// error never quotes the key.
func checkRSAKey(key []byte) error {
	der := key
	if block, _ := pem.Decode(key); block != nil {
		if block.Headers["Proc-Type"] != "" || strings.Contains(block.Type, "ENCRYPTED") {
			return errors.New("salesforce: JWTKey is an encrypted PEM key; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		}
		der = block.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if _, ok := k.(*rsa.PrivateKey); ok {
			return nil
		}
		return fmt.Errorf("salesforce: JWTKey is a %T, want an RSA private key", k)
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return nil
	}
	return errors.New("salesforce: JWTKey is not a PEM (or DER) RSA private key in PKCS#1 or PKCS#8 form")
}

// baseURL validates an absolute http(s) URL and returns its scheme, host and
// path without a trailing slash.
func baseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("invalid URL %q", clipText(s, 100))
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("want an absolute http(s) URL, got %q", clipText(s, 100))
	}
	if u.User != nil {
		return "", errors.New("the URL must not carry credentials")
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

// tokenHTTPClient returns the client for token calls: a copy of hc, or a
// default with timeouts. fetch installs the redirect policy on each use.
func tokenHTTPClient(hc *http.Client) *http.Client {
	if hc != nil {
		c := *hc
		return &c
	}
	return &http.Client{Transport: defaultTransport(), Timeout: tokenTimeout}
}

// Flow returns "client_credentials", "jwt_bearer", "refresh_token" or "static".
func (a *Auth) Flow() string { return a.flow }

// Token returns the cached token, or fetches one. Concurrent callers share
// one fetch; ctx bounds only this caller's wait (the fetch itself runs under
// the context given to NewAuth). Errors are *AuthError for an OAuth error
// answer, *RedirectError for a redirected token request, or a wrapped
// network or context error.
func (a *Auth) Token(ctx context.Context) (*Token, error) {
	a.mu.Lock()
	if t := a.tok; t != nil {
		a.mu.Unlock()
		return t, nil
	}
	c := a.inflight
	if c == nil {
		c = &tokenCall{done: make(chan struct{})}
		a.inflight = c
		go a.run(c)
	}
	a.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("salesforce: waiting for a token: %w", ctx.Err())
	}
}

// Invalidate drops t if it is still the cached token, so that the next Token
// call fetches a new one. A static token is never dropped.
func (a *Auth) Invalidate(t *Token) {
	if t == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flow != FlowStatic && a.tok == t {
		a.tok = nil
	}
}

func (a *Auth) run(c *tokenCall) {
	start := time.Now()
	tok, err := a.fetch()
	a.mu.Lock()
	if err == nil {
		a.tok = tok
		a.handed = append(a.handed, tok.AccessToken)
		if len(a.handed) > 8 {
			a.handed = a.handed[len(a.handed)-8:]
		}
	}
	a.inflight = nil
	a.mu.Unlock()
	if err != nil {
		err = a.redactErr(err)
		a.log.Warn("salesforce token request failed", "flow", a.flow, "url", a.baseURL,
			"duration", time.Since(start), "class", Classify(err).String(), "err", err)
	} else {
		a.log.Debug("salesforce token", "flow", a.flow, "instance", tok.InstanceURL, "duration", time.Since(start))
	}
	c.tok, c.err = tok, err
	close(c.done)
}

// fetch does one token request.
func (a *Auth) fetch() (*Token, error) {
	if a.flow == FlowStatic {
		return a.static, nil
	}
	ctx := a.ctx
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("salesforce: token request (%s): %w", a.flow, err)
	}
	if _, ok := ctx.Deadline(); !ok && a.hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tokenTimeout)
		defer cancel()
	}

	// A per-fetch client records the transport error or refused redirect, so
	// that they survive x/oauth2's error formatting with their type.
	rec := &fetchRecorder{base: a.hc.Transport}
	if rec.base == nil {
		rec.base = http.DefaultTransport
	}
	hc := *a.hc
	hc.Transport = rec
	hc.CheckRedirect = redirectPolicy(a.hc.CheckRedirect, func(e *RedirectError) { rec.setRedirect(e) })
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &hc)

	var (
		ot  *oauth2.Token
		err error
	)
	switch a.flow {
	case FlowClientCredentials:
		ot, err = a.cc.Token(ctx)
	case FlowJWTBearer:
		ot, err = a.jwtConf.TokenSource(ctx).Token()
	case FlowRefreshToken:
		a.mu.Lock()
		rt := a.refresh
		a.mu.Unlock()
		ot, err = a.oc.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	default:
		return nil, fmt.Errorf("salesforce: unknown flow %q", a.flow)
	}
	if err != nil {
		return nil, a.tokenError(ctx, err, rec)
	}
	if a.flow == FlowRefreshToken && ot.RefreshToken != "" {
		a.mu.Lock()
		if ot.RefreshToken != a.refresh {
			a.refresh = ot.RefreshToken
			a.secrets = append(a.secrets, ot.RefreshToken)
		}
		a.mu.Unlock()
	}
	return a.tokenFrom(ot)
}

// tokenFrom reads Salesforce's fields from the token response.
func (a *Auth) tokenFrom(ot *oauth2.Token) (*Token, error) {
	t := &Token{AccessToken: ot.AccessToken}
	if s, _ := ot.Extra("instance_url").(string); s != "" {
		u, err := baseURL(s)
		if err != nil {
			return nil, &AuthError{StatusCode: http.StatusOK, Code: "invalid_response", Flow: a.flow,
				Description: "instance_url: " + err.Error()}
		}
		t.InstanceURL = u
	} else {
		t.InstanceURL = a.baseURL
	}
	t.IdentityURL, _ = ot.Extra("id").(string)
	switch v := ot.Extra("issued_at").(type) {
	case string:
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			t.IssuedAt = time.UnixMilli(ms)
		}
	case float64:
		t.IssuedAt = time.UnixMilli(int64(v))
	}
	if t.IssuedAt.IsZero() {
		t.IssuedAt = time.Now()
	}
	return t, nil
}

// tokenError turns an x/oauth2 error into this package's types.
func (a *Auth) tokenError(ctx context.Context, err error, rec *fetchRecorder) error {
	if r := rec.redirect(); r != nil {
		return r
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		ae := &AuthError{Flow: a.flow, Code: re.ErrorCode, Description: re.ErrorDescription}
		if re.Response != nil {
			ae.StatusCode = re.Response.StatusCode
		}
		if ae.Code == "" {
			// x/oauth2/jwt does not decode the error body.
			ae.Code, ae.Description = parseOAuthError(re.Body, re.Response)
		}
		// Redact before clipping, so that no half of a secret survives.
		ae.Description = clipText(a.redact(ae.Description), 300)
		return ae
	}
	if terr := rec.err(); terr != nil {
		return fmt.Errorf("salesforce: token request (%s): %w", a.flow, terr)
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("salesforce: token request (%s): %w", a.flow, cerr)
	}
	// x/oauth2's own messages ("server response missing access_token",
	// "cannot parse json") carry no secret.
	return fmt.Errorf("salesforce: token request (%s): %v", a.flow, err)
}

// parseOAuthError reads {"error": …, "error_description": …}; for another
// body it describes what came instead.
func parseOAuthError(body []byte, resp *http.Response) (code, desc string) {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error, e.Description
	}
	if resp != nil {
		if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "" {
			return "", "unexpected " + ct + " response"
		}
	}
	return "", "unexpected response"
}

// redact replaces every secret the Auth knows of in s.
func (a *Auth) redact(s string) string {
	if a == nil || s == "" {
		return s
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, list := range [][]string{a.secrets, a.handed} {
		for _, sec := range list {
			if len(sec) >= 4 && strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, "[redacted]")
			}
		}
	}
	return s
}

// redactErr wraps err so that its message carries no secret; errors.As and
// errors.Is still reach the original.
func (a *Auth) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := a.redact(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// fetchRecorder remembers the transport error and refused redirect of one
// token fetch.
type fetchRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	terr error
	rerr *RedirectError
}

func (r *fetchRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		r.mu.Lock()
		r.terr = err
		r.mu.Unlock()
	}
	return resp, err
}

func (r *fetchRecorder) setRedirect(e *RedirectError) {
	r.mu.Lock()
	r.rerr = e
	r.mu.Unlock()
}

func (r *fetchRecorder) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terr
}

func (r *fetchRecorder) redirect() *RedirectError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rerr
}

// redirectPolicy returns a CheckRedirect that follows redirects of GET and
// HEAD (at most 10, then calls next if set) and refuses any other method with
// a *RedirectError, reported to onRefuse when set.
func redirectPolicy(next func(*http.Request, []*http.Request) error, onRefuse func(*RedirectError)) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		for _, prev := range via {
			if prev.Method != http.MethodGet && prev.Method != http.MethodHead {
				e := &RedirectError{Method: prev.Method, URL: stripQuery(via[len(via)-1].URL), Location: stripQuery(req.URL)}
				if onRefuse != nil {
					onRefuse(e)
				}
				return e
			}
		}
		if len(via) >= 10 {
			return errors.New("salesforce: stopped after 10 redirects")
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// stripQuery returns u without query, fragment or user info.
func stripQuery(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment, c.User, c.ForceQuery = "", "", nil, false
	return c.String()
}
