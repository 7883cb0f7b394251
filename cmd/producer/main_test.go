package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/natsembed"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/store"
)

func natsServer(t *testing.T) (*natsembed.Server, string) {
	t.Helper()
	emb, err := natsembed.Run(natsembed.Config{Dir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	return emb, emb.ClientURL()
}

func streamMsgs(t *testing.T, emb *natsembed.Server) uint64 {
	t.Helper()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), queue.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func runCmd(t *testing.T, args []string, getenv func(string) string, stdin string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func acct(i int) string { return salesforce.ID18(fmt.Sprintf("001000000%06d", i)) }

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{name: "no command", args: nil, wantCode: 2, wantErr: "producer: no command given\nusage"},
		{name: "unknown command", args: []string{"nope"}, wantCode: 2, wantErr: "producer: unknown subcommand \"nope\"\nusage"},
		{name: "bad duration", args: []string{"poll", "-interval", "1"}, wantCode: 2, wantErr: "producer: -interval \"1\": want a duration such as 250ms, 2s or 1m\nRun \"producer poll -h\" for the flags.\n"},
		{name: "negative rate limit", args: []string{"poll", "-rate-limit", "-1"}, wantCode: 2, wantErr: "producer: -rate-limit -1: must be 0 (no cap) or a positive number of calls per second\n"},
		{name: "interval zero", args: []string{"poll", "-interval", "0s"}, wantCode: 2, wantErr: "producer: -interval 0s: must be above 0\n"},
		{name: "page limit", args: []string{"poll", "-page-limit", "5000"}, wantCode: 2, wantErr: "producer: -page-limit 5000: must be in 1..2000\n"},
		{name: "help", args: []string{"-h"}, wantCode: 0},
		{name: "serve without org", args: []string{"serve", "-ingest-token", "x"}, wantCode: 2, wantErr: "-source-org-id is required"},
		{name: "serve without token", args: []string{"serve", "-source-org-id", "00D000000000ABC"}, wantCode: 2, wantErr: "-ingest-token"},
		{name: "serve tls cert alone", args: []string{"serve", "-source-org-id", "00D000000000ABC", "-ingest-token", "x", "-tls-cert", "c.pem"}, wantCode: 2, wantErr: "go together"},
		{name: "publish bad org", args: []string{"publish", "-source-org-id", "001000000000001"}, wantCode: 2, wantErr: "-source-org-id"},
		{name: "static token without org", args: []string{"poll", "-source-url", "https://x.my.salesforce.com", "-source-access-token", "t"}, wantCode: 2, wantErr: "needs -source-org-id"},
		{name: "publish bad org from env", args: []string{"publish"}, env: map[string]string{"ORGSYNC_SOURCE_ORG_ID": "nope"}, wantCode: 2, wantErr: "-source-org-id"},
		{name: "bad fields", args: []string{"publish", "-source-org-id", "00D000000000ABC", "-fields", "Name,OwnerId"}, wantCode: 2, wantErr: "OwnerId"},
		{name: "poll without credentials", args: []string{"poll", "-source-url", "https://x.my.salesforce.com"}, wantCode: 2, wantErr: "no credentials"},
		{name: "poll bad budget", args: []string{"poll", "-api-budget", "2"}, wantCode: 2, wantErr: "producer: -api-budget 2: must be in (0, 1]\n"},
		{name: "poll arguments", args: []string{"poll", "extra"}, wantCode: 2, wantErr: "no arguments"},
		{name: "poll bad changes", args: []string{"poll", "-changes", "updated"}, wantCode: 2, wantErr: "producer: -changes \"updated\": want created or all\n"},
		{name: "skip user without changes all", args: []string{"poll", "-skip-user", "005000000000001"}, wantCode: 2, wantErr: "-skip-user needs -changes all"},
		{name: "skip user not a user", args: []string{"poll", "-changes", "all", "-skip-user", "001000000000001"}, wantCode: 2, wantErr: "-skip-user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args, env(tt.env), "")
			if code != tt.wantCode {
				t.Errorf("got exit %d (%s), want %d", code, stderr, tt.wantCode)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("got stderr %q, want it to contain %q", stderr, tt.wantErr)
			}
		})
	}
}

// Ensure that publish reports counts, names bad lines, exits non-zero after
// publishing the good ones, and that -file reads no environment.
func TestPublish(t *testing.T) {
	emb, url := natsServer(t)
	lines := `{"Id":"` + acct(1) + `","Name":"One"}` + "\n" +
		`{"Id":"bad"}` + "\n" +
		`{"Id":"` + acct(2) + `","Name":"Two"}` + "\n"
	file := filepath.Join(t.TempDir(), "accounts.ndjson")
	if err := os.WriteFile(file, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, []string{"publish", "-nats-url", url, "-source-org-id", "00D000000000ABC", "-file", file},
		env(nil), "")
	if code != 1 {
		t.Errorf("got exit %d, want 1", code)
	}
	if want := "read 3, published 2, duplicates 0, skipped 0, bad 1"; !strings.Contains(stdout, want) {
		t.Errorf("got stdout %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr, "line 2:") {
		t.Errorf("got stderr %q, want the bad line's number", stderr)
	}
	if n := streamMsgs(t, emb); n != 2 {
		t.Errorf("got %d messages, want 2", n)
	}

	// stdin, with the configuration from the environment; ORGSYNC_FILE is
	// not read (-file is a one-shot option).
	code, stdout, stderr = runCmd(t, []string{"publish"}, env(map[string]string{
		"ORGSYNC_NATS_URL": url, "ORGSYNC_SOURCE_ORG_ID": "00D000000000ABC", "ORGSYNC_FILE": "/does/not/exist",
	}), `{"Id":"`+acct(3)+`","Name":"Three"}`+"\n")
	if code != 0 {
		t.Errorf("got exit %d (%s), want 0", code, stderr)
	}
	if want := "published 1"; !strings.Contains(stdout, want) {
		t.Errorf("got stdout %q, want %q", stdout, want)
	}
}

// Ensure that poll -once backfills and exits, and that a second run
// publishes nothing new.
func TestPollOnce(t *testing.T) {
	emb, url := natsServer(t)
	org, err := fakeorg.New(fakeorg.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	for i := range 25 {
		if _, err := org.InsertAccount(fakeorg.Record{"Name": fmt.Sprintf("Acme %d", i)}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	// -rate-limit 0 means no cap, as for the worker.
	args := []string{"poll", "-nats-url", url, "-source-url", srv.URL, "-source-client-id", "demo",
		"-data-dir", dir, "-once", "-log-level", "error", "-rate-limit", "0"}
	getenv := env(map[string]string{"ORGSYNC_SOURCE_CLIENT_SECRET": "demo-secret"})
	code, stdout, stderr := runCmd(t, args, getenv, "")
	if code != 0 {
		t.Fatalf("got exit %d (%s), want 0", code, stderr)
	}
	if !strings.Contains(stdout, "published 25") {
		t.Errorf("got stdout %q, want published 25", stdout)
	}
	if strings.Contains(stderr, "demo-secret") {
		t.Error("stderr shows the client secret")
	}
	code, stdout, _ = runCmd(t, args, getenv, "")
	if code != 0 || !strings.Contains(stdout, "published 0") {
		t.Errorf("second run: got exit %d, %q; want 0 and published 0", code, stdout)
	}
	if n := streamMsgs(t, emb); n != 25 {
		t.Errorf("got %d messages, want 25", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "producer.db")); err != nil {
		t.Error(err)
	}
}

// One-shot commands report an unreachable NATS at once instead of waiting
// for it like the long-running ones.
func TestOneShotFailsFastWithoutNATS(t *testing.T) {
	noEnv := func(string) string { return "" }
	start := time.Now()
	code, _, stderr := runCmd(t, []string{"publish", "-nats-url", "nats://127.0.0.1:1", "-source-org-id", "00D000000000001"},
		noEnv, `{"Id":"001000000000001"}`+"\n")
	if code != 1 || !strings.Contains(stderr, "connect to NATS at nats://127.0.0.1:1: ") {
		t.Errorf("exit %d, stderr %q; want 1 and a connect error", code, stderr)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("took %v to give up", el)
	}
}

// A second poller on one -data-dir is told to give each its own.
func TestLockedCheckpointNamesDataDir(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "producer.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _, stderr := runCmd(t, []string{"poll", "-data-dir", dir, "-source-url", "http://127.0.0.1:1",
		"-source-access-token", "x", "-source-org-id", "00D000000000ABC"}, env(nil), "")
	want := "is locked by another process: is another producer poll running on -data-dir " + dir + "? Give each poller its own -data-dir\n"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// storedEvents returns the subject and dedup key of every message in
// ORGSYNC, in stream order.
func storedEvents(t *testing.T, emb *natsembed.Server) []string {
	t.Helper()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), queue.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Subject+" "+m.Header.Get(queue.HeaderMsgID))
	}
	return out
}

// `producer poll -changes all -once` publishes creates, then an update and
// a delete on their records' subjects, nothing for a quiet run, and with
// -skip-user nothing for the writes of that user.
func TestPollChangesAll(t *testing.T) {
	emb, url := natsServer(t)
	// The org's clock runs two minutes behind: its deletes lie in minutes
	// the Get Deleted resource already covers when the poller asks.
	org, err := fakeorg.New(fakeorg.Config{Seed: 1, Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	t.Cleanup(srv.Close)
	var ids []string
	for i := range 3 {
		id, err := org.InsertAccount(fakeorg.Record{"Name": fmt.Sprintf("Acme %d", i)}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	dir := t.TempDir()
	args := []string{"poll", "-changes", "all", "-nats-url", url, "-source-url", srv.URL, "-source-client-id", "demo",
		"-data-dir", dir, "-once", "-log-level", "error", "-rate-limit", "0"}
	getenv := env(map[string]string{"ORGSYNC_SOURCE_CLIENT_SECRET": "demo-secret"})
	poll := func(want string, extra ...string) {
		t.Helper()
		code, stdout, stderr := runCmd(t, append(args, extra...), getenv, "")
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("got exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
		}
	}
	poll("published 3,")

	a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{URL: srv.URL, ClientID: "demo", ClientSecret: "demo-secret"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(salesforce.Config{Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(t.Context(), "Account", ids[0], salesforce.Record{"Name": "Acme renamed"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), "Account", ids[1]); err != nil {
		t.Fatal(err)
	}
	poll("published 2,")
	poll("published 0,")
	// The API user's own write, with -skip-user naming it: skipped, like
	// the overlap's unchanged row; the overlap's delete is a duplicate
	// (a new process), which JetStream drops.
	if err := c.Update(t.Context(), "Account", ids[2], salesforce.Record{"Name": "from the other org"}); err != nil {
		t.Fatal(err)
	}
	poll("published 0, duplicates 1, skipped 2,", "-skip-user", org.UserID())

	got := storedEvents(t, emb)
	if len(got) != 5 {
		t.Fatalf("stream %q, want 3 creates, an update and a delete", got)
	}
	for i, want := range []string{
		queue.PartitionedSubject("updated", ids[0], queue.PartitionOf(ids[0], queue.DefaultPartitions)) + " ",
		queue.PartitionedSubject("deleted", ids[1], queue.PartitionOf(ids[1], queue.DefaultPartitions)) + " ",
	} {
		if m := got[3+i]; !strings.HasPrefix(m, want) || !strings.Contains(m, ":"+ids[i]+":") {
			t.Errorf("message %d: %q, want %q…", 3+i, m, want)
		}
	}
}
