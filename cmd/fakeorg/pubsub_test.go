package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"regexp"
	"testing"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/pubsub"
)

var pubsubListening = regexp.MustCompile(`^fakeorg pubsub listening on (127\.0\.0\.1:\d+)\n$`)

func TestRun_ServesPubSub(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-pubsub-addr", "127.0.0.1:0", "-event-retention", "1h"},
			func(string) string { return "" }, pw, &stderr)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	l1, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read stdout: %v (stderr %s)", err, stderr.String())
	}
	l2, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read stdout: %v (stderr %s)", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, br) }()
	pm, hm := pubsubListening.FindStringSubmatch(l1), listening.FindStringSubmatch(l2)
	if pm == nil || hm == nil {
		t.Fatalf("stdout %q %q", l1, l2)
	}
	auth, err := salesforce.NewAuth(ctx, salesforce.AuthConfig{URL: hm[1], ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pubsub.Dial(pubsub.Config{Addr: pm[1], Tokens: auth, TLS: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ti, err := c.Topic(ctx, "/data/AccountChangeEvent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Schema(ctx, ti.GetSchemaId()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestRun_PubSubFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0", "-pubsub-addr", "127.0.0.1:0", "-event-retention", "0s"},
		{"-addr", "127.0.0.1:0", "-pubsub-addr", "127.0.0.1:0", "-pubsub-tls-cert", "x.pem"},
	} {
		var stderr syncBuffer
		if code := run(t.Context(), args, func(string) string { return "" }, io.Discard, &stderr); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}
