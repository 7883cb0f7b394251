package fakeorg_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"orgsync/salesforce/fakeorg"
)

// B is the REST base path the tests use.
const B = "/services/data/v63.0"

// clock is an injectable, advanceable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a fake org behind an httptest server with a valid token.
type fixture struct {
	t     testing.TB
	org   *fakeorg.Org
	srv   *httptest.Server
	token string
	clock *clock
}

func newFixture(t testing.TB, cfg fakeorg.Config) *fixture {
	t.Helper()
	f := &fixture{t: t}
	if cfg.Now == nil {
		f.clock = newClock()
		cfg.Now = f.clock.Now
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	org, err := fakeorg.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.org = org
	f.srv = httptest.NewServer(org)
	t.Cleanup(f.srv.Close)
	f.token = org.IssueAccessToken()
	return f
}

// response is a recorded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the fixture's token. body is a string (sent as
// is) or any other value (sent as JSON); nil sends none.
func (f *fixture) do(method, path string, body any) *response {
	f.t.Helper()
	return f.doWith(method, path, body, map[string]string{"Authorization": "Bearer " + f.token})
}

func (f *fixture) doWith(method, path string, body any, hdr map[string]string) *response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatalf("new request: %v", err)
	}
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatalf("read body: %v", err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: raw}
}

// form posts a url-encoded form without a token.
func (f *fixture) form(path, body string, hdr map[string]string) *response {
	f.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range hdr {
		h[k] = v
	}
	return f.doWith(http.MethodPost, path, body, h)
}

func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// want checks the status and, for JSON answers, the content type.
func (r *response) want(t testing.TB, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %d, want %d; body %s", r.status, status, r.body)
	}
	if len(r.body) > 0 && (r.body[0] == '{' || r.body[0] == '[') {
		if got := r.header.Get("Content-Type"); got != "application/json;charset=UTF-8" {
			t.Errorf("Content-Type: got %q, want application/json;charset=UTF-8", got)
		}
	}
	return r
}

// restError is a REST error array element.
type restError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

// wantError checks a REST error answer with one element.
func (r *response) wantError(t testing.TB, status int, code string) restError {
	t.Helper()
	r.want(t, status)
	var errs []restError
	r.decode(t, &errs)
	if len(errs) != 1 || errs[0].ErrorCode != code {
		t.Fatalf("errors: got %s, want one %s", r.body, code)
	}
	return errs[0]
}

// saveResult is a collections result element.
type saveResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Created *bool  `json:"created"`
	Errors  []struct {
		StatusCode string   `json:"statusCode"`
		Message    string   `json:"message"`
		Fields     []string `json:"fields"`
	} `json:"errors"`
}

func (s saveResult) code() string {
	if len(s.Errors) == 0 {
		return ""
	}
	return s.Errors[0].StatusCode
}

// create makes an account through the REST API and returns its ID.
func (f *fixture) create(fields map[string]any) string {
	f.t.Helper()
	var res saveResult
	f.do(http.MethodPost, B+"/sobjects/Account", fields).want(f.t, http.StatusCreated).decode(f.t, &res)
	return res.ID
}

func collection(allOrNone bool, recs ...map[string]any) map[string]any {
	out := make([]any, len(recs))
	for i, r := range recs {
		m := map[string]any{"attributes": map[string]any{"type": "Account"}}
		for k, v := range r {
			m[k] = v
		}
		out[i] = m
	}
	return map[string]any{"allOrNone": allOrNone, "records": out}
}

func errorsAs(err error, target **fakeorg.Error) bool {
	return errors.As(err, target)
}
