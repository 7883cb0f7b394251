package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var listening = regexp.MustCompile(`^fakeorg listening on (http://127\.0\.0\.1:\d+)\n$`)

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun_ServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	env := map[string]string{"ORGSYNC_DAILY_API_LIMIT": "77", "ORGSYNC_CLIENT_SECRET": "from-env"}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-client-secret", "cli-secret", "-reject-name", "^No"}, func(k string) string { return env[k] }, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read stdout: %v (stderr %s)", err, stderr.String())
	}
	m := listening.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("stdout line %q", line)
	}
	base := m[1]
	go io.Copy(io.Discard, pr)

	// The command line's secret wins over the environment's.
	res, err := http.PostForm(base+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo"}, "client_secret": {"cli-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/services/data/v63.0/limits", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Sforce-Limit-Info"); got != "api-usage=0/77" {
		t.Errorf("Sforce-Limit-Info: got %q, want api-usage=0/77 (limit from the environment)", got)
	}
	if strings.Contains(stderr.String(), "cli-secret") || strings.Contains(stderr.String(), tok.AccessToken) {
		t.Errorf("a secret was logged: %s", stderr.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code: got %d, want 0; stderr %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := http.Get(base + "/services/data"); err == nil {
		t.Errorf("still serving after shutdown")
	}
}

func TestRun_BadFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(notPEM, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"-nope"}, nil, "nope"},
		{"bad rate", []string{"-fail-rate", "x"}, nil, "fail-rate"},
		{"rate out of range", []string{"-fail-rate", "2"}, nil, "fail_rate"},
		{"bad env", nil, map[string]string{"ORGSYNC_LATENCY": "soon"}, "ORGSYNC_LATENCY"},
		{"bad org id", []string{"-org-id", "xyz"}, nil, "org id"},
		{"bad regexp", []string{"-reject-name", "("}, nil, "reject_name"},
		{"missing cert", []string{"-jwt-cert", filepath.Join(dir, "missing.pem")}, nil, "jwt-cert"},
		{"not a cert", []string{"-jwt-cert", notPEM}, nil, "jwt-cert"},
		{"positional", []string{"extra"}, nil, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
}

func TestRun_JWTCert(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // serve, print, stop at once
	var stdout, stderr syncBuffer
	if code := run(ctx, []string{"-addr", "127.0.0.1:0", "-jwt-cert", file}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	if !listening.MatchString(stdout.String()) {
		t.Errorf("stdout: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "jwt=true") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestRun_Help(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Errorf("exit code: got %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-daily-api-limit") {
		t.Errorf("usage: %s", stderr.String())
	}
}
