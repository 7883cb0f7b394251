package salesforce_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"orgsync/salesforce"
)

// Ensure that the client credentials flow posts the form of reference §1.2
// to the My Domain URL and reads the token response of §1.3.
func TestAuth_ClientCredentials(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/services/oauth2/token" {
			t.Errorf("request: got %v %v, want POST /services/oauth2/token", r.Method, r.URL.Path)
		}
		if got, want := r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
			t.Errorf("Content-Type: got %v, want %v", got, want)
		}
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("Authorization: got %q, want none (credentials in the body)", got)
		}
		body, _ := io.ReadAll(r.Body)
		form := parseForm(t, string(body))
		want := map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testClientSecret}
		for k, v := range want {
			if form[k] != v {
				t.Errorf("form %s: got %q, want %q", k, form[k], v)
			}
		}
		if len(form) != len(want) {
			t.Errorf("form: got %v, want exactly %v", form, want)
		}
		writeJSON(w, http.StatusOK, tokenResponse("https://fake-org.my.salesforce.com/", "00D!AQ8AQ.tok"))
	}))
	defer ts.Close()

	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: ts.URL + "/", ClientID: testClientID, ClientSecret: testClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Flow(), "client_credentials"; got != want {
		t.Errorf("Flow: got %v, want %v", got, want)
	}
	if calls.Load() != 0 {
		t.Errorf("NewAuth fetched a token")
	}
	tok, err := a.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ what, got, want string }{
		{"AccessToken", tok.AccessToken, "00D!AQ8AQ.tok"},
		{"InstanceURL", tok.InstanceURL, "https://fake-org.my.salesforce.com"},
		{"IdentityURL", tok.IdentityURL, "https://login.salesforce.com/id/" + testOrgID + "/" + testUserID},
		{"OrgID", tok.OrgID(), testOrgID},
		{"UserID", tok.UserID(), testUserID},
		{"IssuedAt", tok.IssuedAt.UTC().Format(time.RFC3339), "2026-01-01T00:00:00Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, s := range []string{tok.String(), fmt.Sprintf("%v", tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok)} {
		if strings.Contains(s, tok.AccessToken) || !strings.Contains(s, "instance=https://fake-org.my.salesforce.com") {
			t.Errorf("String: got %q, want the instance and no token", s)
		}
	}
	// Cached.
	if again, err := a.Token(t.Context()); err != nil || again != tok {
		t.Errorf("second Token: got %v, %v, want the cached token", again, err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("token requests: got %v, want 1", got)
	}
	// Invalidate drops it; an already replaced token is not dropped again.
	a.Invalidate(tok)
	tok2, err := a.Token(t.Context())
	if err != nil || tok2 == tok {
		t.Fatalf("Token after Invalidate: got %v, %v, want a new token", tok2, err)
	}
	a.Invalidate(tok)
	if again, _ := a.Token(t.Context()); again != tok2 {
		t.Errorf("Invalidate of an old token dropped the current one")
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("token requests: got %v, want 2", got)
	}
}

func parseForm(t *testing.T, body string) map[string]string {
	t.Helper()
	vals, err := url.ParseQuery(body)
	if err != nil {
		t.Fatalf("bad form %q: %v", body, err)
	}
	out := map[string]string{}
	for k, v := range vals {
		if len(v) != 1 {
			t.Errorf("form %s: got %d values, want 1", k, len(v))
		}
		out[k] = v[0]
	}
	return out
}

// Ensure that the JWT bearer flow sends an RS256 assertion with iss, sub,
// aud and a short exp, for both key encodings and both audiences.
func TestAuth_JWTBearer(t *testing.T) {
	key, pkcs8, pkcs1 := rsaKey(t)
	tests := []struct {
		name     string
		pem      []byte
		audience string
		wantAud  string
	}{
		{name: "pkcs8 default audience", pem: pkcs8, wantAud: "https://login.salesforce.com"},
		{name: "pkcs1 sandbox audience", pem: pkcs1, audience: "https://test.salesforce.com", wantAud: "https://test.salesforce.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/services/oauth2/token" {
					t.Errorf("path: got %v", r.URL.Path)
				}
				if err := r.ParseForm(); err != nil {
					t.Fatal(err)
				}
				if got, want := r.PostForm.Get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer"; got != want {
					t.Errorf("grant_type: got %v, want %v", got, want)
				}
				if r.PostForm.Has("client_secret") {
					t.Errorf("client_secret sent in the JWT flow")
				}
				claims := verifyJWT(t, r.PostForm.Get("assertion"), &key.PublicKey)
				if got, want := claims["iss"], testClientID; got != want {
					t.Errorf("iss: got %v, want %v", got, want)
				}
				if got, want := claims["sub"], "integration@example.com"; got != want {
					t.Errorf("sub: got %v, want %v", got, want)
				}
				if got := claims["aud"]; got != tt.wantAud {
					t.Errorf("aud: got %v, want %v", got, tt.wantAud)
				}
				exp, _ := claims["exp"].(float64)
				if d := time.Until(time.Unix(int64(exp), 0)); d <= 0 || d > 3*time.Minute+5*time.Second {
					t.Errorf("exp: %v from now, want within 3 minutes", d)
				}
				resp := tokenResponse("https://jwt.my.salesforce.com", "00D!jwt")
				writeJSON(w, http.StatusOK, resp)
			}))
			defer ts.Close()
			a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{
				URL: ts.URL, ClientID: testClientID, Username: "integration@example.com", JWTKey: tt.pem, JWTAudience: tt.audience,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := a.Flow(), "jwt_bearer"; got != want {
				t.Errorf("Flow: got %v, want %v", got, want)
			}
			tok, err := a.Token(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "00D!jwt" || tok.InstanceURL != "https://jwt.my.salesforce.com" {
				t.Errorf("token: got %q %q", tok.AccessToken, tok.InstanceURL)
			}
		})
	}
}

// verifyJWT checks an RS256 compact JWS with pub and returns its claims.
func verifyJWT(t *testing.T, assertion string, pub *rsa.PublicKey) map[string]any {
	t.Helper()
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion has %d parts, want 3", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var header map[string]any
	if err := json.Unmarshal(hb, &header); err != nil {
		t.Fatal(err)
	}
	if header["alg"] != "RS256" {
		t.Errorf("alg: got %v, want RS256", header["alg"])
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature: %v", err)
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(cb, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// Ensure that the refresh-token flow posts refresh_token and the client
// credentials, and uses a rotated refresh token for the next refresh.
func TestAuth_RefreshToken(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		wantRT := "5Aep861-refresh-1"
		if n > 1 {
			wantRT = "5Aep861-refresh-2"
		}
		want := map[string]string{"grant_type": "refresh_token", "refresh_token": wantRT, "client_id": testClientID, "client_secret": testClientSecret}
		for k, v := range want {
			if got := r.PostForm.Get(k); got != v {
				t.Errorf("call %d form %s: got %q, want %q", n, k, got, v)
			}
		}
		resp := tokenResponse("https://refresh.my.salesforce.com", fmt.Sprintf("00D!refreshed-%d", n))
		if n == 1 {
			resp["refresh_token"] = "5Aep861-refresh-2"
		}
		writeJSON(w, http.StatusOK, resp)
	}))
	defer ts.Close()
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{
		URL: ts.URL, ClientID: testClientID, ClientSecret: testClientSecret, RefreshToken: "5Aep861-refresh-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Flow(), "refresh_token"; got != want {
		t.Errorf("Flow: got %v, want %v", got, want)
	}
	tok, err := a.Token(t.Context())
	if err != nil || tok.AccessToken != "00D!refreshed-1" {
		t.Fatalf("Token: got %v, %v", tok, err)
	}
	a.Invalidate(tok)
	tok, err = a.Token(t.Context())
	if err != nil || tok.AccessToken != "00D!refreshed-2" {
		t.Fatalf("Token after rotation: got %v, %v", tok, err)
	}
}

// Ensure that a static token makes no token call, is never dropped, and that
// a 401 with it is not retried.
func TestAuth_Static(t *testing.T) {
	var apiCalls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiCalls.Add(1)
		if r.URL.Path == "/services/oauth2/token" {
			t.Errorf("static flow called the token endpoint")
		}
		if got := r.Header.Get("Authorization"); got != "Bearer 00D!static" {
			t.Errorf("Authorization: got %v", got)
		}
		if r.URL.Path == "/services/data/v61.0/limits" {
			writeJSON(w, http.StatusOK, map[string]any{"DailyApiRequests": map[string]int{"Max": 15000, "Remaining": 14000}})
			return
		}
		sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
	}))
	defer ts.Close()
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{AccessToken: "00D!static", InstanceURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Flow(), "static"; got != want {
		t.Errorf("Flow: got %v, want %v", got, want)
	}
	tok, _ := a.Token(t.Context())
	a.Invalidate(tok)
	if again, _ := a.Token(t.Context()); again != tok {
		t.Errorf("static token dropped by Invalidate")
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Limits(t.Context()); err != nil {
		t.Fatalf("Limits: %v", err)
	}
	_, err = c.Describe(t.Context(), "Account")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Describe: got %v, want a 401 *APIError", err)
	}
	if got := salesforce.Classify(err); got != salesforce.AuthFailure {
		t.Errorf("class: got %v, want auth", got)
	}
	if got := apiCalls.Load(); got != 2 {
		t.Errorf("API calls: got %v, want 2 (no retry with a static token)", got)
	}
	if _, _, err := c.Identity(t.Context()); !errors.Is(err, salesforce.ErrNoIdentity) {
		t.Errorf("Identity: got %v, want ErrNoIdentity", err)
	}
}

// Ensure that NewAuth picks a flow or names what is missing.
func TestNewAuth_Config(t *testing.T) {
	_, pkcs8, _ := rsaKey(t)
	tests := []struct {
		name     string
		cfg      salesforce.AuthConfig
		wantFlow string
		wantErr  string
	}{
		{name: "nothing", cfg: salesforce.AuthConfig{URL: "https://x.my.salesforce.com"}, wantErr: "no credentials"},
		{name: "client id only", cfg: salesforce.AuthConfig{URL: "https://x.my.salesforce.com", ClientID: "id"}, wantErr: "ClientSecret"},
		{name: "secret only", cfg: salesforce.AuthConfig{URL: "https://x.my.salesforce.com", ClientSecret: "s"}, wantErr: "ClientID"},
		{name: "client credentials without URL", cfg: salesforce.AuthConfig{ClientID: "id", ClientSecret: "s"}, wantErr: "needs URL"},
		{name: "client credentials", cfg: salesforce.AuthConfig{URL: "https://x.my.salesforce.com", ClientID: "id", ClientSecret: "s"}, wantFlow: "client_credentials"},
		{name: "relative URL", cfg: salesforce.AuthConfig{URL: "x.my.salesforce.com", ClientID: "id", ClientSecret: "s"}, wantErr: "absolute"},
		{name: "jwt without username", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", ClientID: "id", JWTKey: pkcs8}, wantErr: "Username"},
		{name: "jwt without key", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", ClientID: "id", Username: "u@x"}, wantErr: "JWTKey"},
		{name: "jwt without client id", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", Username: "u@x", JWTKey: pkcs8}, wantErr: "ClientID"},
		{name: "jwt bad key", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", ClientID: "id", Username: "u@x", JWTKey: []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")}, wantErr: "not a PEM"},
		{name: "jwt", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", ClientID: "id", Username: "u@x", JWTKey: pkcs8}, wantFlow: "jwt_bearer"},
		{name: "refresh without client id", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", RefreshToken: "r"}, wantErr: "ClientID"},
		{name: "refresh", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", ClientID: "id", RefreshToken: "r"}, wantFlow: "refresh_token"},
		{name: "refresh wins over client credentials", cfg: salesforce.AuthConfig{URL: "https://login.salesforce.com", ClientID: "id", ClientSecret: "s", RefreshToken: "r"}, wantFlow: "refresh_token"},
		{name: "static without instance", cfg: salesforce.AuthConfig{AccessToken: "t"}, wantErr: "InstanceURL"},
		{name: "static", cfg: salesforce.AuthConfig{AccessToken: "t", InstanceURL: "https://x.my.salesforce.com", ClientID: "id", ClientSecret: "s"}, wantFlow: "static"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := salesforce.NewAuth(t.Context(), tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "salesforce: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want flow %v", err, tt.wantFlow)
			}
			if got := a.Flow(); got != tt.wantFlow {
				t.Errorf("Flow: got %v, want %v", got, tt.wantFlow)
			}
		})
	}
}

// Ensure that OAuth error answers become *AuthError of the right class, for
// every flow (x/oauth2/jwt does not decode error bodies itself).
func TestAuth_Errors(t *testing.T) {
	_, pkcs8, _ := rsaKey(t)
	tests := []struct {
		name      string
		status    int
		body      string
		ctype     string
		wantCode  string
		wantClass salesforce.Class
	}{
		{name: "invalid_grant", status: 400, body: `{"error":"invalid_grant","error_description":"authentication failure"}`, wantCode: "invalid_grant", wantClass: salesforce.AuthFailure},
		{name: "invalid_client", status: 400, body: `{"error":"invalid_client","error_description":"invalid client credentials"}`, wantCode: "invalid_client", wantClass: salesforce.AuthFailure},
		{name: "invalid_client_id", status: 400, body: `{"error":"invalid_client_id","error_description":"client identifier invalid"}`, wantCode: "invalid_client_id", wantClass: salesforce.AuthFailure},
		{name: "expired refresh", status: 400, body: `{"error":"invalid_grant","error_description":"expired access/refresh token"}`, wantCode: "invalid_grant", wantClass: salesforce.AuthFailure},
		{name: "unsupported grant", status: 400, body: `{"error":"unsupported_grant_type","error_description":"grant type not supported"}`, wantCode: "unsupported_grant_type", wantClass: salesforce.AuthFailure},
		{name: "html 503", status: 503, body: `<html><body>Down for maintenance</body></html>`, ctype: "text/html", wantClass: salesforce.Transient},
	}
	flows := map[string]salesforce.AuthConfig{
		"client_credentials": {ClientID: testClientID, ClientSecret: testClientSecret},
		"jwt_bearer":         {ClientID: testClientID, Username: "u@example.com", JWTKey: pkcs8},
		"refresh_token":      {ClientID: testClientID, RefreshToken: "refresh-xyz"},
	}
	for flow, base := range flows {
		for _, tt := range tests {
			t.Run(flow+"/"+tt.name, func(t *testing.T) {
				ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ct := tt.ctype
					if ct == "" {
						ct = "application/json;charset=UTF-8"
					}
					w.Header().Set("Content-Type", ct)
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.body)
				}))
				defer ts.Close()
				cfg := base
				cfg.URL = ts.URL
				a, err := salesforce.NewAuth(t.Context(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, err = a.Token(t.Context())
				var ae *salesforce.AuthError
				if !errors.As(err, &ae) {
					t.Fatalf("got %T %v, want *AuthError", err, err)
				}
				if ae.StatusCode != tt.status || ae.Code != tt.wantCode || ae.Flow != flow {
					t.Errorf("got %+v, want status %v code %q flow %v", *ae, tt.status, tt.wantCode, flow)
				}
				if got := salesforce.Classify(err); got != tt.wantClass {
					t.Errorf("class: got %v, want %v", got, tt.wantClass)
				}
				if !strings.HasPrefix(err.Error(), "salesforce: token request ("+flow+"): ") {
					t.Errorf("message: got %q", err.Error())
				}
			})
		}
	}
}

// Ensure that an unreachable token endpoint and a redirected token POST are
// classified (transient, auth) with their types intact.
func TestAuth_TransportAndRedirect(t *testing.T) {
	_, pkcs8, _ := rsaKey(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed: %s %s", r.Method, r.URL)
	}))
	defer target.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirecting.Close()

	for _, cfg := range []salesforce.AuthConfig{
		{ClientID: testClientID, ClientSecret: testClientSecret},
		{ClientID: testClientID, Username: "u@example.com", JWTKey: pkcs8},
	} {
		cfg.URL = deadURL
		a, err := salesforce.NewAuth(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Token(t.Context())
		if err == nil || salesforce.Classify(err) != salesforce.Transient {
			t.Errorf("%s: dead endpoint: got %v (class %v), want transient", a.Flow(), err, salesforce.Classify(err))
		}
		cfg.URL = redirecting.URL
		a, _ = salesforce.NewAuth(t.Context(), cfg)
		_, err = a.Token(t.Context())
		var re *salesforce.RedirectError
		if !errors.As(err, &re) {
			t.Fatalf("%s: redirect: got %v, want *RedirectError", a.Flow(), err)
		}
		if re.Method != http.MethodPost || !strings.HasPrefix(re.Location, target.URL) || !strings.Contains(err.Error(), target.URL) {
			t.Errorf("%s: redirect: got %+v / %q", a.Flow(), *re, err)
		}
		if got := salesforce.Classify(err); got != salesforce.Configuration {
			t.Errorf("%s: redirect class: got %v, want configuration", a.Flow(), got)
		}
	}
}

// Ensure that concurrent callers share one token fetch. The fetch is held in
// the transport until every caller is blocked (synctest), so all of them
// really are concurrent.
func TestAuth_ConcurrentCallersShareOneFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var fetches atomic.Int32
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			fetches.Add(1)
			<-release
			body, _ := json.Marshal(tokenResponse("https://x.my.salesforce.com", "00D!shared"))
			return &http.Response{
				StatusCode: http.StatusOK,
				Header:     http.Header{"Content-Type": {"application/json"}},
				Body:       io.NopCloser(strings.NewReader(string(body))),
				Request:    r,
			}, nil
		})
		a, err := salesforce.NewAuth(context.Background(), salesforce.AuthConfig{
			URL: "https://x.my.salesforce.com", ClientID: "id", ClientSecret: "secret",
			HTTPClient: &http.Client{Transport: rt},
		})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		toks := make([]*salesforce.Token, n)
		for i := range n {
			wg.Go(func() {
				tok, err := a.Token(context.Background())
				if err != nil {
					t.Errorf("Token: %v", err)
				}
				toks[i] = tok
			})
		}
		synctest.Wait() // every caller is blocked: one in the transport, the others on the shared fetch
		if got := fetches.Load(); got != 1 {
			t.Errorf("fetches in flight: got %v, want 1", got)
		}
		close(release)
		wg.Wait()
		for i, tok := range toks {
			if tok != toks[0] || tok == nil {
				t.Fatalf("caller %d got a different token", i)
			}
		}
		if got := fetches.Load(); got != 1 {
			t.Errorf("fetches: got %v, want 1", got)
		}
	})
}

// Ensure that a caller whose ctx ends stops waiting, while the shared fetch
// goes on for the others.
func TestAuth_WaiterContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-release
			body, _ := json.Marshal(tokenResponse("https://x.my.salesforce.com", "00D!late"))
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(string(body))), Request: r}, nil
		})
		a, _ := salesforce.NewAuth(context.Background(), salesforce.AuthConfig{
			URL: "https://x.my.salesforce.com", ClientID: "id", ClientSecret: "secret", HTTPClient: &http.Client{Transport: rt},
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			_, err := a.Token(ctx)
			done <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter: got %v, want context.Canceled", err)
		}
		close(release)
		tok, err := a.Token(context.Background())
		if err != nil || tok.AccessToken != "00D!late" {
			t.Errorf("Token: got %v, %v", tok, err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Ensure that the ids come from the identity URL in 18-character form, and
// that a missing or malformed URL gives "".
func TestToken_Identity(t *testing.T) {
	tests := []struct {
		name, url, wantOrg, wantUser string
	}{
		{name: "18", url: "https://login.salesforce.com/id/" + testOrgID + "/" + testUserID, wantOrg: testOrgID, wantUser: testUserID},
		{name: "15", url: "https://login.salesforce.com/id/" + testOrgID15 + "/" + testUserID15, wantOrg: testOrgID, wantUser: testUserID},
		{name: "trailing slash", url: "https://test.salesforce.com/id/" + testOrgID + "/" + testUserID + "/", wantOrg: testOrgID, wantUser: testUserID},
		{name: "empty"},
		{name: "one segment", url: "https://login.salesforce.com/" + testOrgID},
		{name: "bad ids", url: "https://login.salesforce.com/id/00DFAKE000000001AAA/005FAKE000000001AAA"},
		{name: "swapped", url: "https://login.salesforce.com/id/" + testUserID + "/" + testOrgID},
		{name: "garbage", url: "::%%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &salesforce.Token{IdentityURL: tt.url}
			if got := tok.OrgID(); got != tt.wantOrg {
				t.Errorf("OrgID: got %v, want %v", got, tt.wantOrg)
			}
			if got := tok.UserID(); got != tt.wantUser {
				t.Errorf("UserID: got %v, want %v", got, tt.wantUser)
			}
		})
	}
}
