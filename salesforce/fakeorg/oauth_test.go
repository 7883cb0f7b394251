package fakeorg_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

type tokenBody struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`
	TokenType    string `json:"token_type"`
	IssuedAt     string `json:"issued_at"`
	Signature    string `json:"signature"`
	Scope        string `json:"scope"`
}

type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (r *response) wantOAuthError(t *testing.T, code, desc string) {
	t.Helper()
	r.want(t, http.StatusBadRequest)
	var e oauthErr
	r.decode(t, &e)
	if e.Error != code || e.Description != desc {
		t.Errorf("got %+v, want %s / %s", e, code, desc)
	}
}

// checkToken verifies a token answer's shape and returns it.
func checkToken(t *testing.T, f *fixture, r *response) tokenBody {
	t.Helper()
	r.want(t, http.StatusOK)
	var raw map[string]any
	r.decode(t, &raw)
	if _, ok := raw["expires_in"]; ok {
		t.Errorf("token answer has expires_in: %s", r.body)
	}
	var tb tokenBody
	r.decode(t, &tb)
	if tb.AccessToken == "" || tb.TokenType != "Bearer" || tb.Scope == "" {
		t.Errorf("token answer: %s", r.body)
	}
	if tb.InstanceURL != f.srv.URL {
		t.Errorf("instance_url: got %q, want %q", tb.InstanceURL, f.srv.URL)
	}
	wantID := f.srv.URL + "/id/" + f.org.OrgID() + "/" + f.org.UserID()
	if tb.ID != wantID {
		t.Errorf("id: got %q, want %q", tb.ID, wantID)
	}
	parts := strings.Split(tb.ID, "/")
	if !strings.HasPrefix(parts[len(parts)-2], "00D") || !strings.HasPrefix(parts[len(parts)-1], "005") {
		t.Errorf("id does not end in /00D…/005…: %q", tb.ID)
	}
	ms, err := strconv.ParseInt(tb.IssuedAt, 10, 64)
	if err != nil || ms != f.clock.Now().UnixMilli() {
		t.Errorf("issued_at: got %q, want %d", tb.IssuedAt, f.clock.Now().UnixMilli())
	}
	mac := hmac.New(sha256.New, []byte(fakeorg.DefaultClientSecret))
	mac.Write([]byte(tb.ID + tb.IssuedAt))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); tb.Signature != want {
		t.Errorf("signature: got %q, want %q", tb.Signature, want)
	}
	// The token works on a REST call.
	f.doWith(http.MethodGet, B+"/limits", nil, map[string]string{"Authorization": "Bearer " + tb.AccessToken}).want(t, http.StatusOK)
	return tb
}

func TestToken_Password(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	body := "grant_type=password&client_id=demo&client_secret=demo-secret&username=integration%40example.com&password=demo-password"
	tb := checkToken(t, f, f.form("/services/oauth2/token", body, nil))
	if tb.RefreshToken != "" {
		t.Errorf("password flow issued a refresh token")
	}
	tests := []struct {
		name, body, code, desc string
	}{
		{"wrong password", "grant_type=password&client_id=demo&client_secret=demo-secret&username=integration%40example.com&password=nope", "invalid_grant", "authentication failure"},
		{"wrong user", "grant_type=password&client_id=demo&client_secret=demo-secret&username=x%40example.com&password=demo-password", "invalid_grant", "authentication failure"},
		{"wrong client id", "grant_type=password&client_id=other&client_secret=demo-secret&username=integration%40example.com&password=demo-password", "invalid_client_id", "client identifier invalid"},
		{"wrong secret", "grant_type=password&client_id=demo&client_secret=nope&username=integration%40example.com&password=demo-password", "invalid_client", "invalid client credentials"},
		{"unknown grant", "grant_type=magic", "unsupported_grant_type", "grant type not supported"},
		{"no grant", "", "unsupported_grant_type", "grant type not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.form("/services/oauth2/token", tt.body, nil).wantOAuthError(t, tt.code, tt.desc)
		})
	}
}

func TestToken_ClientCredentials(t *testing.T) {
	f := newFixture(t, fakeorg.Config{LoginHosts: []string{"login.example.test"}})
	tb := checkToken(t, f, f.form("/services/oauth2/token", "grant_type=client_credentials&client_id=demo&client_secret=demo-secret", nil))
	if tb.RefreshToken != "" {
		t.Errorf("client credentials flow issued a refresh token")
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("demo:demo-secret"))
	checkToken(t, f, f.form("/services/oauth2/token", "grant_type=client_credentials", map[string]string{"Authorization": basic}))

	badBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte("demo:wrong"))
	f.form("/services/oauth2/token", "grant_type=client_credentials", map[string]string{"Authorization": badBasic}).
		wantOAuthError(t, "invalid_client", "invalid client credentials")
	f.form("/services/oauth2/token", "grant_type=client_credentials&client_id=demo&client_secret=demo-secret",
		map[string]string{"Host": "login.example.test"}).
		wantOAuthError(t, "invalid_grant", "request not supported on this domain")

	// The token endpoint answers on the instance host, where go-salesforce refreshes.
	res := f.doWith(http.MethodPost, strings.TrimPrefix(tb.InstanceURL, f.srv.URL)+"/services/oauth2/token",
		"grant_type=client_credentials&client_id=demo&client_secret=demo-secret",
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	checkToken(t, f, res)

	f.doWith(http.MethodGet, "/services/oauth2/token", nil, nil).want(t, http.StatusBadRequest)
}

func TestToken_RefreshAndRevoke(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	rt := f.org.IssueRefreshToken()
	tb := checkToken(t, f, f.form("/services/oauth2/token", "grant_type=refresh_token&client_id=demo&refresh_token="+url.QueryEscape(rt), nil))
	f.form("/services/oauth2/token", "grant_type=refresh_token&client_id=demo&refresh_token=junk", nil).
		wantOAuthError(t, "invalid_grant", "expired access/refresh token")
	f.form("/services/oauth2/token", "grant_type=refresh_token&client_id=nope&refresh_token="+url.QueryEscape(rt), nil).
		wantOAuthError(t, "invalid_client_id", "client identifier invalid")
	f.form("/services/oauth2/revoke", "token=junk", nil).wantOAuthError(t, "invalid_token", "invalid token")

	// Revoking the refresh token revokes the access tokens minted from it.
	f.form("/services/oauth2/revoke", "token="+url.QueryEscape(rt), nil).want(t, http.StatusOK)
	f.doWith(http.MethodGet, B+"/limits", nil, map[string]string{"Authorization": "Bearer " + tb.AccessToken}).
		wantError(t, http.StatusUnauthorized, "INVALID_SESSION_ID")
	f.form("/services/oauth2/token", "grant_type=refresh_token&client_id=demo&refresh_token="+url.QueryEscape(rt), nil).
		wantOAuthError(t, "invalid_grant", "expired access/refresh token")

	// Revoking an access token.
	f.do(http.MethodGet, B+"/limits", nil).want(t, http.StatusOK)
	f.form("/services/oauth2/revoke", "token="+url.QueryEscape(f.token), nil).want(t, http.StatusOK)
	res := f.do(http.MethodGet, B+"/limits", nil)
	e := res.wantError(t, http.StatusUnauthorized, "INVALID_SESSION_ID")
	if e.Message != "Session expired or invalid" {
		t.Errorf("message: got %q", e.Message)
	}
	if got := res.header.Get("WWW-Authenticate"); got != "Token" {
		t.Errorf("WWW-Authenticate: got %q, want Token", got)
	}
}

func TestToken_RefreshWithWrongSecret(t *testing.T) {
	// A wrong secret on refresh is an invalid_client error.
	f := newFixture(t, fakeorg.Config{})
	rt := f.org.IssueRefreshToken()
	f.form("/services/oauth2/token", "grant_type=refresh_token&client_id=demo&client_secret=bad&refresh_token="+url.QueryEscape(rt), nil).
		wantOAuthError(t, "invalid_client", "invalid client credentials")
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	for _, auth := range []string{"", "Bearer nope", "Basic abc"} {
		res := f.doWith(http.MethodGet, B+"/sobjects/Account/describe", nil, map[string]string{"Authorization": auth})
		res.wantError(t, http.StatusUnauthorized, "INVALID_SESSION_ID")
		// As recorded (testdata/recorded/invalid_session.json): no Sforce-Limit-Info.
		if res.header.Get("WWW-Authenticate") != "Token" || res.header.Get("Sforce-Limit-Info") != "" {
			t.Errorf("401 headers: %v", res.header)
		}
	}
	f.doWith(http.MethodPost, "/services/apexrest/arrify/v1/accounts", `{"Name":"x"}`, nil).
		wantError(t, http.StatusUnauthorized, "INVALID_SESSION_ID")
	// "OAuth <token>" is accepted as well as Bearer.
	f.doWith(http.MethodGet, B+"/limits", nil, map[string]string{"Authorization": "OAuth " + f.token}).want(t, http.StatusOK)
	if got := f.org.Stats().APICalls; got != 1 {
		t.Errorf("api calls: got %d, want 1 (401s are not counted)", got)
	}
}

func TestUserInfoAndIdentity(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	var info map[string]any
	f.do(http.MethodGet, "/services/oauth2/userinfo", nil).want(t, http.StatusOK).decode(t, &info)
	if info["user_id"] != f.org.UserID() || info["organization_id"] != f.org.OrgID() {
		t.Errorf("userinfo: %v", info)
	}
	var id map[string]any
	f.do(http.MethodGet, "/id/"+f.org.OrgID()+"/"+f.org.UserID(), nil).want(t, http.StatusOK).decode(t, &id)
	if id["user_id"] != f.org.UserID() || id["username"] != fakeorg.DefaultUsername {
		t.Errorf("identity: %v", id)
	}
	urls, _ := id["urls"].(map[string]any)
	if want := f.srv.URL + "/services/data/v{version}/"; urls["rest"] != want {
		t.Errorf("urls.rest: got %v, want %v", urls["rest"], want)
	}
	// 15-character forms name the same identity.
	f.do(http.MethodGet, "/id/"+f.org.OrgID()[:15]+"/"+f.org.UserID()[:15], nil).want(t, http.StatusOK)
	if res := f.doWith(http.MethodGet, "/services/oauth2/userinfo", nil, nil); res.status != http.StatusForbidden {
		t.Errorf("userinfo without token: got %d, want 403", res.status)
	}
	if res := f.do(http.MethodGet, "/id/"+f.org.OrgID()+"/005000000000001AAA", nil); res.status != http.StatusForbidden {
		t.Errorf("identity of another user: got %d, want 403", res.status)
	}
}

// testKey returns an RSA key and its PEM encodings (PKCS #1 private key,
// self-signed certificate).
func testKey(t *testing.T) (*rsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orgsync test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, priv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// signJWT builds an RS256 assertion by hand.
func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestParsePublicKey(t *testing.T) {
	key, priv, cert := testKey(t)
	pkix, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pem     []byte
		wantErr bool
	}{
		{"certificate", cert, false},
		{"pkix public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}), false},
		{"pkcs1 public key", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)}), false},
		{"private key only", priv, true},
		{"not pem", []byte("hello"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fakeorg.ParsePublicKey(tt.pem)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !key.PublicKey.Equal(got) {
				t.Errorf("got a different key")
			}
		})
	}
}

func TestToken_JWTBearer(t *testing.T) {
	key, priv, cert := testKey(t)
	other, _, _ := testKey(t)
	pub, err := fakeorg.ParsePublicKey(cert)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	f := newFixture(t, fakeorg.Config{JWTPublicKey: pub, Now: clk.Now})
	f.clock = clk

	// golang.org/x/oauth2/jwt as the client: exp = now-10s+1h, prn and sub set.
	conf := &jwt.Config{
		Email: fakeorg.DefaultClientID, Subject: fakeorg.DefaultUsername, PrivateKey: priv,
		Audience: "https://login.salesforce.com", TokenURL: f.srv.URL + "/services/oauth2/token",
	}
	tok, err := conf.TokenSource(context.Background()).Token()
	if err != nil {
		t.Fatalf("x/oauth2/jwt token: %v", err)
	}
	if tok.AccessToken == "" || tok.Extra("instance_url") != f.srv.URL {
		t.Errorf("token: %+v instance_url %v", tok, tok.Extra("instance_url"))
	}
	client := oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(tok))
	res, err := client.Get(f.srv.URL + B + "/limits")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REST call with the JWT token: %v %v", res, err)
	}
	res.Body.Close()

	now := clk.Now()
	base := func() map[string]any {
		return map[string]any{"iss": "demo", "sub": fakeorg.DefaultUsername, "aud": "https://login.salesforce.com",
			"exp": now.Add(3 * time.Minute).Unix()}
	}
	with := func(k string, v any) map[string]any {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name       string
		key        *rsa.PrivateKey
		claims     map[string]any
		code, desc string
	}{
		{"exp as string", key, with("exp", strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10)), "", ""},
		{"sandbox audience", key, with("aud", "https://test.salesforce.com"), "", ""},
		{"own url audience", key, with("aud", f.srv.URL), "", ""},
		{"audience array", key, with("aud", []string{"https://login.salesforce.com"}), "", ""},
		{"prn instead of sub", key, func() map[string]any { c := with("sub", nil); c["prn"] = fakeorg.DefaultUsername; return c }(), "", ""},
		{"expired", key, with("exp", now.Add(-time.Second).Unix()), "invalid_grant", "invalid assertion"},
		{"exp far ahead", key, with("exp", now.Add(3*time.Hour).Unix()), "invalid_grant", "invalid assertion"},
		{"no exp", key, with("exp", nil), "invalid_grant", "invalid assertion"},
		{"bad signature", other, base(), "invalid_grant", "invalid assertion"},
		{"unknown sub", key, with("sub", "someone@example.com"), "invalid_grant", "user hasn't approved this consumer"},
		{"wrong audience", key, with("aud", "https://evil.example.com"), "invalid_grant", "audience is invalid"},
		{"wrong iss", key, with("iss", "other"), "invalid_client_id", "client identifier invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + signJWT(t, tt.key, tt.claims)
			res := f.form("/services/oauth2/token", body, nil)
			if tt.code == "" {
				checkToken(t, f, res)
				return
			}
			res.wantOAuthError(t, tt.code, tt.desc)
		})
	}
	f.form("/services/oauth2/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c", nil).
		wantOAuthError(t, "invalid_grant", "invalid assertion")

	// Without a configured key the flow is refused.
	g := newFixture(t, fakeorg.Config{})
	g.form("/services/oauth2/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="+signJWT(t, key, base()), nil).
		wantOAuthError(t, "invalid_grant", "invalid assertion")
}

func TestNew_InvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  fakeorg.Config
	}{
		{"bad org id", fakeorg.Config{OrgID: "001000000000001"}},
		{"standard ext field", fakeorg.Config{ExternalIDField: "Name"}},
		{"not custom", fakeorg.Config{ExternalIDField: "Source"}},
		{"fail rate", fakeorg.Config{FailRate: 2}},
		{"lock rate", fakeorg.Config{LockRate: -1}},
		{"regexp", fakeorg.Config{RejectName: "("}},
		{"page size", fakeorg.Config{PageSize: 5000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := fakeorg.New(tt.cfg); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
	o, err := fakeorg.New(fakeorg.Config{OrgID: "00D000000000ABC"})
	if err != nil {
		t.Fatal(err)
	}
	if want := salesforce.ID18("00D000000000ABC"); o.OrgID() != want {
		t.Errorf("OrgID: got %q, want %q", o.OrgID(), want)
	}
}
