package salesforce_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"orgsync/salesforce"
)

// Ensure that no error string and no log line carries a secret, even when
// a hostile or buggy server echoes every secret it was sent.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	const (
		clientSecret = "S3cr3t-Client-Secret-4711"
		refreshToken = "5Aep861-Refresh-Token-4711"
		accessToken  = "00Dxx0000001!AccessToken-4711"
		staticToken  = "00Dxx0000001!StaticToken-4711"
	)
	_, keyPEM, _ := rsaKey(t)
	keyBody := strings.Split(string(keyPEM), "\n")[1] // a line of the key's base64
	secrets := []string{clientSecret, refreshToken, accessToken, staticToken, keyBody, "PRIVATE KEY"}

	logs := &logBuffer{}
	log := logs.logger()
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Errorf("expected an error")
			return
		}
		errs = append(errs, err)
	}

	// A token endpoint that echoes the whole request into its error.
	echoToken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		var all []string
		for k, v := range r.PostForm {
			all = append(all, k+"="+strings.Join(v, ","))
		}
		all = append(all, "authorization="+r.Header.Get("Authorization"))
		desc := strings.Join(all, " ")
		switch r.URL.Query().Get("mode") {
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": desc})
		}
	}))
	defer echoToken.Close()
	htmlToken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(500)
		fmt.Fprintf(w, "<html>%s %s</html>", r.PostForm.Get("client_secret"), r.PostForm.Get("refresh_token"))
	}))
	defer htmlToken.Close()
	redirectToken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		http.Redirect(w, r, "https://elsewhere.example/services/oauth2/token?client_secret="+url.QueryEscape(r.PostForm.Get("client_secret")), http.StatusFound)
	}))
	defer redirectToken.Close()

	for _, base := range []string{echoToken.URL, htmlToken.URL, redirectToken.URL} {
		for _, cfg := range []salesforce.AuthConfig{
			{URL: base, ClientID: testClientID, ClientSecret: clientSecret, Logger: log},
			{URL: base, ClientID: testClientID, ClientSecret: clientSecret, RefreshToken: refreshToken, Logger: log},
			{URL: base, ClientID: testClientID, Username: "u@example.com", JWTKey: keyPEM, Logger: log},
		} {
			a, err := salesforce.NewAuth(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Token(t.Context())
			collect(err)
		}
	}

	// Bad configurations.
	for _, cfg := range []salesforce.AuthConfig{
		{URL: "https://login.salesforce.com", ClientID: "id", Username: "u", JWTKey: []byte(strings.Replace(string(keyPEM), keyBody, keyBody[:10]+"!!"+keyBody[12:], 1))},
		{URL: "https://login.salesforce.com", ClientID: "id", Username: "u", JWTKey: []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + keyBody + "\n-----END ENCRYPTED PRIVATE KEY-----\n")},
		{URL: "https://login.salesforce.com", ClientID: "id", Username: "u", JWTKey: []byte(keyBody)},
		{URL: "::" + clientSecret, ClientID: "id", ClientSecret: clientSecret},
		{AccessToken: staticToken},
	} {
		_, err := salesforce.NewAuth(t.Context(), cfg)
		collect(err)
	}

	// An API that echoes the Authorization header into every kind of error.
	api := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/services/data/v61.0/limits":
			sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid: "+authz)
		case "/services/data/v61.0/composite/sobjects":
			writeJSON(w, 200, []map[string]any{{"success": false, "errors": []map[string]any{{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "rejected " + authz}}}})
		case "/services/data/v61.0/sobjects/Account/describe":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			// Put the token at the clipping boundary too.
			fmt.Fprintf(w, "<html>%s%s</html>", strings.Repeat("x", 500), authz)
		case "/services/data/v61.0/sobjects/Account":
			sfError(w, 400, "INVALID_FIELD", "bad "+authz)
		default:
			http.Redirect(w, r, "https://elsewhere.example/x?token="+url.QueryEscape(authz), http.StatusFound)
		}
	})
	// The org issues tokens "00D!token-N": make them secret-looking by using
	// a static token against the same API.
	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{AccessToken: staticToken, InstanceURL: api.URL, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: a, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = c.Limits(ctx)
	collect(err)
	res, err := c.CreateMany(ctx, "Account", []salesforce.Record{{"Name": "x"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	collect(res[0].Err())
	_, err = c.Describe(ctx, "Account")
	collect(err)
	_, err = c.Create(ctx, "Account", salesforce.Record{"Name": "x"})
	collect(err)
	collect(c.Delete(ctx, "Account", "001R00000033I6AIAU"))

	// The client credentials flow against the echoing API: fetched tokens
	// are redacted as well.
	tokAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			writeJSON(w, 200, tokenResponse("http://"+r.Host, accessToken))
			return
		}
		sfError(w, 401, "INVALID_SESSION_ID", "expired: "+r.Header.Get("Authorization"))
	}))
	defer tokAPI.Close()
	a2, _ := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: tokAPI.URL, ClientID: testClientID, ClientSecret: clientSecret, Logger: log})
	c2, _ := salesforce.NewClient(salesforce.Config{Auth: a2, Logger: log})
	_, err = c2.Limits(ctx)
	collect(err)
	_, err = c2.Call(ctx, "GET", "/services/data/v61.0/limits", nil, "")
	collect(err)
	tok, err := a2.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Printing configuration and tokens.
	cfg := salesforce.AuthConfig{URL: "https://x", ClientID: "id", ClientSecret: clientSecret, RefreshToken: refreshToken,
		AccessToken: staticToken, JWTKey: keyPEM}
	printed := []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(&cfg),
		fmt.Sprintf("%v", tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), tok.String(),
	}
	log.Info("config", "cfg", cfg, "token", tok)
	slog.New(slog.NewJSONHandler(logs, nil)).Info("config", "cfg", cfg, "token", tok)

	if len(errs) < 20 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for _, err := range errs {
		printed = append(printed, err.Error(), fmt.Sprintf("%+v", err))
		if b, jerr := json.Marshal(err); jerr == nil {
			printed = append(printed, string(b))
		}
	}
	printed = append(printed, logs.String())
	for _, p := range printed {
		for _, s := range secrets {
			if strings.Contains(p, s) {
				t.Errorf("secret %q leaked in %q", s, p)
			}
		}
	}
	if !strings.Contains(logs.String(), "salesforce token request failed") {
		t.Errorf("token failures were not logged:\n%s", logs.String())
	}
}
