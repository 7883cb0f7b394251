package fakeorg

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"orgsync/salesforce"
)

// Grant types of the token endpoint.
const (
	grantPassword          = "password"
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

const tokenAlphabet = base62 + "._"

// accessToken is an issued access token.
type accessToken struct {
	issued  time.Time
	refresh string // the refresh token it was minted from, if any
}

// refreshToken is an issued refresh token.
type refreshToken struct {
	issued time.Time
}

// oauthError is the token endpoint's error body, sent with status 400.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// tokenResponse is the token endpoint's success body. Salesforce sends no
// expires_in.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Signature    string `json:"signature"`
	Scope        string `json:"scope"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`
	TokenType    string `json:"token_type"`
	IssuedAt     string `json:"issued_at"`
}

var (
	errAuthFailure      = &oauthError{"invalid_grant", "authentication failure"}
	errExpiredToken     = &oauthError{"invalid_grant", "expired access/refresh token"}
	errUnsupportedGrant = &oauthError{"unsupported_grant_type", "grant type not supported"}
	errClientID         = &oauthError{"invalid_client_id", "client identifier invalid"}
	errClientSecret     = &oauthError{"invalid_client", "invalid client credentials"}
	errWrongDomain      = &oauthError{"invalid_grant", "request not supported on this domain"}
)

// handleToken answers POST /services/oauth2/token.
func (o *Org) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusBadRequest, &oauthError{"invalid_request", "must use HTTP POST"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, &oauthError{"invalid_request", "invalid request body"})
		return
	}
	grant := r.Form.Get("grant_type")
	var oerr *oauthError
	refresh := ""
	switch grant {
	case grantPassword:
		oerr = o.checkClient(r.Form.Get("client_id"), r.Form.Get("client_secret"), true)
		if oerr == nil && (!equal(r.Form.Get("username"), o.username) || !equal(r.Form.Get("password"), o.password)) {
			oerr = errAuthFailure
		}
	case grantClientCredentials:
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		switch {
		case o.loginHosts[strings.ToLower(r.Host)]:
			oerr = errWrongDomain
		default:
			oerr = o.checkClient(id, secret, true)
		}
	case grantRefreshToken:
		oerr = o.checkClient(r.Form.Get("client_id"), r.Form.Get("client_secret"), false)
		if oerr == nil {
			refresh = r.Form.Get("refresh_token")
			o.mu.Lock()
			_, ok := o.refresh[refresh]
			o.mu.Unlock()
			if !ok {
				oerr = errExpiredToken
			}
		}
	case grantJWTBearer:
		oerr = o.verifyAssertion(r.Form.Get("assertion"), baseURL(r))
	default:
		oerr = errUnsupportedGrant
	}
	if oerr != nil {
		o.log.Debug("token refused", "grant_type", grant, "error", oerr.Error, "description", oerr.Description)
		writeJSON(w, http.StatusBadRequest, oerr)
		return
	}
	tok := o.mintAccessToken(refresh)
	writeJSON(w, http.StatusOK, o.tokenResponse(r, tok))
}

// checkClient validates the connected app's credentials. The secret is
// checked when given, and required when needSecret.
func (o *Org) checkClient(id, secret string, needSecret bool) *oauthError {
	if !equal(id, o.clientID) {
		return errClientID
	}
	if (needSecret || secret != "") && !equal(secret, o.clientSecret) {
		return errClientSecret
	}
	return nil
}

// equal compares secrets in constant time.
func equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// tokenResponse builds the success body for a freshly minted token.
func (o *Org) tokenResponse(r *http.Request, token string) *tokenResponse {
	base := baseURL(r)
	id := o.identityURL(base)
	issued := strconv.FormatInt(o.now().UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(o.clientSecret))
	mac.Write([]byte(id + issued))
	return &tokenResponse{
		AccessToken: token,
		Signature:   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		Scope:       "api",
		InstanceURL: base,
		ID:          id,
		TokenType:   "Bearer",
		IssuedAt:    issued,
	}
}

func (o *Org) identityURL(base string) string {
	return base + "/id/" + o.orgID + "/" + o.userID
}

// mintAccessToken issues a new access token, optionally tied to a refresh token.
func (o *Org) mintAccessToken(refresh string) string {
	tok := o.orgID[:15] + "!AQ" + randomString(94, tokenAlphabet)
	o.mu.Lock()
	o.tokens[tok] = &accessToken{issued: o.now(), refresh: refresh}
	o.mu.Unlock()
	return tok
}

// IssueRefreshToken mints a refresh token for the integration user, as the
// web-server flow would, for tests of the refresh_token grant.
func (o *Org) IssueRefreshToken() string {
	tok := "5Aep861" + randomString(80, base62+".")
	o.mu.Lock()
	o.refresh[tok] = &refreshToken{issued: o.now()}
	o.mu.Unlock()
	return tok
}

// IssueAccessToken mints an access token directly, for static-token tests.
// It is subject to TokenTTL like any other.
func (o *Org) IssueAccessToken() string {
	return o.mintAccessToken("")
}

// bearer extracts the token of an "Authorization: Bearer …" (or "OAuth …") header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "OAuth "} {
		if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
			return strings.TrimSpace(h[len(p):])
		}
	}
	return ""
}

// validToken reports whether tok is a live access token.
func (o *Org) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.tokens[tok]
	if !ok {
		return false
	}
	if ttl := o.live.tokenTTL; ttl > 0 && !o.now().Before(t.issued.Add(ttl)) {
		return false
	}
	return true
}

// authenticate checks the bearer token of a REST call; on failure it
// writes 401 INVALID_SESSION_ID with WWW-Authenticate: Token and returns
// false.
func (o *Org) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if o.validToken(bearer(r)) {
		return true
	}
	// No Sforce-Limit-Info: a refused session is not an API call of the
	// org (testdata/recorded/invalid_session.json).
	w.Header().Set("WWW-Authenticate", "Token")
	writeErrors(w, http.StatusUnauthorized, newError("INVALID_SESSION_ID", "Session expired or invalid"))
	return false
}

// handleRevoke answers /services/oauth2/revoke (POST form or GET query
// parameter token). Revoking a refresh token revokes its access tokens too.
func (o *Org) handleRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, &oauthError{"invalid_request", "invalid request body"})
		return
	}
	tok := r.Form.Get("token")
	o.mu.Lock()
	_, isAccess := o.tokens[tok]
	_, isRefresh := o.refresh[tok]
	switch {
	case isAccess:
		delete(o.tokens, tok)
	case isRefresh:
		delete(o.refresh, tok)
		for k, t := range o.tokens {
			if t.refresh == tok {
				delete(o.tokens, k)
			}
		}
	}
	o.mu.Unlock()
	if !isAccess && !isRefresh {
		writeJSON(w, http.StatusBadRequest, &oauthError{"invalid_token", "invalid token"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// badOAuthToken is the identity service's answer to a bad token.
func badOAuthToken(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte("Bad_OAuth_Token"))
}

// handleUserInfo answers GET /services/oauth2/userinfo (OpenID Connect).
func (o *Org) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	if !o.validToken(bearer(r)) {
		badOAuthToken(w)
		return
	}
	base := baseURL(r)
	info := o.identity(base)
	out := map[string]any{
		"sub": o.identityURL(base), "user_id": o.userID, "organization_id": o.orgID,
		"preferred_username": o.username, "nickname": info["nick_name"], "name": info["display_name"],
		"email": o.username, "email_verified": true, "given_name": "Integration", "family_name": "User",
		"zoneinfo": "GMT", "photos": info["photos"], "profile": base + "/" + o.userID,
		"picture": base + "/img/userprofile/default_profile_200_v2.png", "address": map[string]any{},
		"is_salesforce_integration_user": true, "urls": info["urls"], "active": true,
		"user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
		"updated_at": sfTime(o.now()), "is_app_installed": true,
	}
	writeJSON(w, http.StatusOK, out)
}

// handleIdentity answers GET /id/<orgId>/<userId> (the token's "id" URL).
func (o *Org) handleIdentity(w http.ResponseWriter, r *http.Request) {
	if !o.validToken(bearer(r)) && !o.validToken(r.URL.Query().Get("oauth_token")) {
		badOAuthToken(w)
		return
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/id/"), "/"), "/")
	if len(parts) != 2 || !salesforce.SameID(parts[0], o.orgID) || !salesforce.SameID(parts[1], o.userID) {
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Bad_Id"))
		return
	}
	writeJSON(w, http.StatusOK, o.identity(baseURL(r)))
}

// identity is the identity service's description of the integration user.
func (o *Org) identity(base string) map[string]any {
	data := base + "/services/data/v{version}/"
	return map[string]any{
		"id": o.identityURL(base), "asserted_user": true, "user_id": o.userID, "organization_id": o.orgID,
		"username": o.username, "nick_name": "integration", "display_name": "Integration User",
		"email": o.username, "email_verified": true, "first_name": "Integration", "last_name": "User",
		"timezone": "GMT", "photos": map[string]string{
			"picture":   base + "/img/userprofile/default_profile_200_v2.png",
			"thumbnail": base + "/img/userprofile/default_profile_45_v2.png",
		},
		"addr_street": nil, "addr_city": nil, "addr_state": nil, "addr_country": nil, "addr_zip": nil,
		"mobile_phone": nil, "mobile_phone_verified": false, "is_lightning_login_user": false,
		"status": map[string]any{"created_date": nil, "body": nil},
		"urls": map[string]string{
			"enterprise": base + "/services/Soap/c/{version}/" + o.orgID[:15],
			"metadata":   base + "/services/Soap/m/{version}/" + o.orgID[:15],
			"partner":    base + "/services/Soap/u/{version}/" + o.orgID[:15],
			"rest":       data, "sobjects": data + "sobjects/", "search": data + "search/",
			"query": data + "query/", "recent": data + "recent/",
			"tooling_soap": base + "/services/Soap/T/{version}/" + o.orgID[:15],
			"tooling_rest": data + "tooling/", "profile": base + "/" + o.userID,
			"feeds": data + "chatter/feeds", "groups": data + "chatter/groups", "users": data + "chatter/users",
			"feed_items": data + "chatter/feed-items", "feed_elements": data + "chatter/feed-elements",
			"custom_domain": base,
		},
		"active": true, "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
		"last_modified_date": sfTime(o.now()), "is_app_installed": true,
	}
}
