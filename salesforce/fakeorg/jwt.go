package fakeorg

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Audiences a JWT bearer assertion may name besides the fake's own URL.
var jwtAudiences = []string{"https://login.salesforce.com", "https://test.salesforce.com"}

// maxAssertionLifetime bounds how far in the future an assertion's exp may
// be. Salesforce documents "within 3 minutes" but clients differ:
// go-salesforce sends now+5min and golang.org/x/oauth2/jwt defaults to
// now-10s+1h, so the fake accepts up to an hour plus slack.
const maxAssertionLifetime = time.Hour + 5*time.Minute

var (
	errInvalidAssertion = &oauthError{"invalid_grant", "invalid assertion"}
	errAudience         = &oauthError{"invalid_grant", "audience is invalid"}
	errUserNotApproved  = &oauthError{"invalid_grant", "user hasn't approved this consumer"}
)

// ParsePublicKey reads the public key that verifies JWT bearer assertions
// from PEM: an X.509 certificate (as uploaded to a connected app), a PKIX
// "PUBLIC KEY" or a PKCS #1 "RSA PUBLIC KEY". The key must be RSA.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("fakeorg: no certificate or public key in PEM data")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fakeorg: parse %s: %w", strings.ToLower(block.Type), err)
		}
		if err := checkJWTKey(key); err != nil {
			return nil, err
		}
		return key, nil
	}
}

func checkJWTKey(key crypto.PublicKey) error {
	if _, ok := key.(*rsa.PublicKey); !ok {
		return fmt.Errorf("fakeorg: jwt key is %T, want an RSA public key (RS256)", key)
	}
	return nil
}

// jwtClaims are the assertion claims the fake checks.
type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Prn string          `json:"prn"` // old name of sub, still sent by x/oauth2/jwt
	Aud json.RawMessage `json:"aud"` // a string or an array of strings
	Exp json.RawMessage `json:"exp"` // seconds, a number or a string (go-salesforce)
}

// verifyAssertion checks a jwt-bearer assertion: RS256 signature against the
// configured key, iss = client id, sub = username, aud = a login host or the
// fake's own base URL, exp in the future but not too far.
func (o *Org) verifyAssertion(assertion, base string) *oauthError {
	key, _ := o.jwtKey.(*rsa.PublicKey)
	if key == nil {
		return errInvalidAssertion
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return errInvalidAssertion
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if decodeSegment(parts[0], &header) != nil || header.Alg != "RS256" {
		return errInvalidAssertion
	}
	sig, err := decodeB64(parts[2])
	if err != nil {
		return errInvalidAssertion
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return errInvalidAssertion
	}
	var c jwtClaims
	if decodeSegment(parts[1], &c) != nil {
		return errInvalidAssertion
	}
	if c.Iss != o.clientID {
		return errClientID
	}
	if !audienceOK(c.Aud, base) {
		return errAudience
	}
	exp, ok := parseExp(c.Exp)
	if !ok {
		return errInvalidAssertion
	}
	now := o.now()
	if !now.Before(exp) || exp.After(now.Add(maxAssertionLifetime)) {
		return errInvalidAssertion
	}
	sub := c.Sub
	if sub == "" {
		sub = c.Prn
	}
	if !strings.EqualFold(sub, o.username) {
		return errUserNotApproved
	}
	return nil
}

func decodeB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func decodeSegment(s string, v any) error {
	b, err := decodeB64(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// audienceOK accepts aud as a string or an array holding an allowed audience.
func audienceOK(raw json.RawMessage, base string) bool {
	var auds []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(raw, &auds) != nil {
		return false
	}
	for _, a := range auds {
		a = strings.TrimSuffix(a, "/")
		if strings.EqualFold(a, base) {
			return true
		}
		for _, ok := range jwtAudiences {
			if a == ok {
				return true
			}
		}
	}
	return false
}

// parseExp reads exp as seconds since the epoch, a JSON number or string.
func parseExp(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return time.Time{}, false
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, false
		}
	} else {
		s = string(raw)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
