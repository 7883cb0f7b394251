package salesforce_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"orgsync/salesforce"
)

const (
	testClientID     = "3MVG9-test-client-id"
	testClientSecret = "client-secret-0123456789"
	testOrgID15      = "00D5g000000ABcd"
	testUserID15     = "0055g000001XyZa"
	testOrgID        = testOrgID15 + "EAG"  // salesforce.ID18(testOrgID15), checked in TestTestIDs
	testUserID       = testUserID15 + "AAK" // salesforce.ID18(testUserID15)
)

func TestTestIDs(t *testing.T) {
	if got := salesforce.ID18(testOrgID15); got != testOrgID {
		t.Errorf("got %v, want %v", got, testOrgID)
	}
	if got := salesforce.ID18(testUserID15); got != testUserID {
		t.Errorf("got %v, want %v", got, testUserID)
	}
}

// testOrg is an httptest server with a client-credentials token endpoint
// (issuing "00D!token-1", "00D!token-2", …) and a handler for everything else.
type testOrg struct {
	*httptest.Server
	t          *testing.T
	tokenCalls atomic.Int32
	apiCalls   atomic.Int32
	api        http.HandlerFunc
}

func newTestOrg(t *testing.T, api http.HandlerFunc) *testOrg {
	t.Helper()
	o := &testOrg{t: t, api: api}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *testOrg) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/services/oauth2/token" {
		n := o.tokenCalls.Add(1)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != testClientID ||
			r.PostForm.Get("client_secret") != testClientSecret {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": "invalid client credentials"})
			return
		}
		writeJSON(w, http.StatusOK, tokenResponse(o.URL, fmt.Sprintf("00D!token-%d", n)))
		return
	}
	o.apiCalls.Add(1)
	if o.api == nil {
		o.t.Errorf("unexpected API call %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	o.api(w, r)
}

// currentToken is the last token issued.
func (o *testOrg) currentToken() string {
	return fmt.Sprintf("00D!token-%d", o.tokenCalls.Load())
}

func (o *testOrg) auth(t *testing.T) *salesforce.Auth {
	t.Helper()
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: o.URL, ClientID: testClientID, ClientSecret: testClientSecret})
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	return a
}

func (o *testOrg) client(t *testing.T, mutate func(*salesforce.Config)) *salesforce.Client {
	t.Helper()
	cfg := salesforce.Config{Auth: o.auth(t), CallOptions: "client=orgsync"}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := salesforce.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func tokenResponse(instance, token string) map[string]string {
	return map[string]string{
		"access_token": token,
		"instance_url": instance,
		"id":           "https://login.salesforce.com/id/" + testOrgID + "/" + testUserID,
		"token_type":   "Bearer",
		"issued_at":    "1767225600000",
		"signature":    "q1w2e3r4t5y6u7i8o9p0AbCdEfGhIjKlMnOpQrStUv0=",
		"scope":        "api",
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Sforce-Limit-Info", "api-usage=25/15000")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// sfError writes the REST error envelope.
func sfError(w http.ResponseWriter, status int, code, message string, fields ...string) {
	if fields == nil {
		fields = []string{}
	}
	writeJSON(w, status, []map[string]any{{"message": message, "errorCode": code, "fields": fields}})
}

// checkAPIRequest asserts the headers every API call carries.
func checkAPIRequest(t *testing.T, r *http.Request, o *testOrg, wantMethod, wantPath string) {
	t.Helper()
	if r.Method != wantMethod {
		t.Errorf("method: got %v, want %v", r.Method, wantMethod)
	}
	if r.URL.Path != wantPath {
		t.Errorf("path: got %v, want %v", r.URL.Path, wantPath)
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+o.currentToken(); got != want {
		t.Errorf("Authorization: got %v, want %v", got, want)
	}
	if got, want := r.Header.Get("Sforce-Call-Options"), "client=orgsync"; got != want {
		t.Errorf("Sforce-Call-Options: got %v, want %v", got, want)
	}
	if got := r.Header.Get("Accept-Encoding"); !strings.Contains(got, "gzip") {
		t.Errorf("Accept-Encoding: got %q, want gzip", got)
	}
	if got, want := r.Header.Get("Accept"), "application/json"; got != want {
		t.Errorf("Accept: got %v, want %v", got, want)
	}
}

// readJSON decodes the request body, asserting its content type.
func readJSON(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %v, want application/json", got)
	}
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		t.Errorf("request body: %v", err)
	}
	return m
}

// jsonEqual compares a decoded body with the JSON text want.
func jsonEqual(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s: got %s, want %s", what, gb, wb)
	}
}

// rsaKey returns a fresh 2048-bit key and its PKCS#8 and PKCS#1 PEM forms.
func rsaKey(t *testing.T) (*rsa.PrivateKey, []byte, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return k, pkcs8, pkcs1
}

// observer records CallInfo values.
type observer struct {
	mu    sync.Mutex
	calls []salesforce.CallInfo
}

func (o *observer) observe(ci salesforce.CallInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, ci)
}

func (o *observer) routes() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, c := range o.calls {
		out = append(out, c.Route+" "+strconv.Itoa(c.Status))
	}
	return out
}

// logBuffer is a debug-level text logger writing to a buffer.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
