package eventbus_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
	"orgsync/salesforce/pubsub"
)

type env struct {
	org  *fakeorg.Org
	bus  *eventbus.Server
	web  *httptest.Server
	rest *salesforce.Client
	ps   *pubsub.Client
}

func start(t *testing.T, cfg eventbus.Config) *env {
	t.Helper()
	org, err := fakeorg.New(fakeorg.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Org = org
	bus, err := eventbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(bus.AdminHandler(org))
	t.Cleanup(web.Close)
	cert, pemBytes, err := eventbus.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bus.Serve(ln, credentials.NewServerTLSFromCert(&cert)) }()
	t.Cleanup(bus.Stop)
	auth, err := salesforce.NewAuth(context.Background(), salesforce.AuthConfig{URL: web.URL,
		ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := salesforce.NewClient(salesforce.Config{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	ps, err := pubsub.Dial(pubsub.Config{Addr: ln.Addr().String(), Tokens: auth, TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return &env{org: org, bus: bus, web: web, rest: rest, ps: ps}
}

func (e *env) earliest(t *testing.T, n int) []*pubsub.Event {
	t.Helper()
	s, err := e.ps.Subscribe(t.Context(), eventbus.TopicAccount, pubsub.Earliest, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []*pubsub.Event
	for len(out) < n {
		b, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Events...)
	}
	return out
}

func (e *env) admin(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.web.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// Every API's writes become change events; a rolled-back allOrNone call
// leaves none.
func TestEventsFromEveryWritePath(t *testing.T) {
	e := start(t, eventbus.Config{})
	ctx := t.Context()
	one, err := e.rest.Create(ctx, "Account", salesforce.Record{"Name": "rest"})
	if err != nil {
		t.Fatal(err)
	}
	many, err := e.rest.CreateMany(ctx, "Account", []salesforce.Record{{"Name": "c1"}, {"Name": "c2"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	// allOrNone with one bad record: nothing committed, no event.
	if _, err := e.rest.CreateMany(ctx, "Account", []salesforce.Record{{"Name": "rolled back"}, {"Phone": "no name"}}, true); err != nil {
		t.Fatal(err)
	}
	if err := e.rest.Update(ctx, "Account", one.ID, salesforce.Record{"Phone": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.rest.Delete(ctx, "Account", many[0].ID); err != nil {
		t.Fatal(err)
	}
	evs := e.earliest(t, 5)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Header.ChangeType+" "+ev.Header.RecordIDs[0])
	}
	want := []string{"CREATE " + one.ID, "CREATE " + many[0].ID, "CREATE " + many[1].ID, "UPDATE " + one.ID, "DELETE " + many[0].ID}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	var st struct{ Events int }
	if _, body := e.admin(t, "GET", "/_fake/pubsub", ""); json.Unmarshal([]byte(body), &st) != nil || st.Events != 5 {
		t.Fatalf("admin state %s, want 5 events", body)
	}
}

func TestAdminGapOverflowAndRetention(t *testing.T) {
	e := start(t, eventbus.Config{})
	if code, body := e.admin(t, "PUT", "/_fake/pubsub", `{"suppress":true}`); code != 200 {
		t.Fatalf("suppress: %d %s", code, body)
	}
	id, err := e.org.InsertAccount(fakeorg.Record{"Name": "silent"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.admin(t, "POST", "/_fake/pubsub/gap", `{"change_type":"GAP_CREATE","record_ids":["`+id+`"]}`); code != 204 {
		t.Fatalf("gap: %d %s", code, body)
	}
	if code, body := e.admin(t, "POST", "/_fake/pubsub/overflow", `{}`); code != 204 {
		t.Fatalf("overflow: %d %s", code, body)
	}
	for _, bad := range []string{`{"change_type":"CREATE","record_ids":["x"]}`, `{"change_type":"GAP_UPDATE"}`, `{"nope":1}`} {
		if code, _ := e.admin(t, "POST", "/_fake/pubsub/gap", bad); code != 400 {
			t.Errorf("gap %s: %d, want 400", bad, code)
		}
	}
	evs := e.earliest(t, 2)
	if h := evs[0].Header; h.ChangeType != pubsub.ChangeGapCreate || !slices.Equal(h.RecordIDs, []string{id}) || evs[0].Fields["Name"] != nil {
		t.Errorf("gap event %+v %v", h, evs[0].Fields["Name"])
	}
	if h := evs[1].Header; h.ChangeType != pubsub.ChangeGapOverflow || len(h.RecordIDs) != 0 || h.EntityName != "Account" {
		t.Errorf("overflow event %+v", h)
	}
	// event_retention through /_fake/config, with the org's own settings.
	if code, body := e.admin(t, "PUT", "/_fake/config", `{"event_retention":"1ns","latency":"0s"}`); code != 200 {
		t.Fatalf("config: %d %s", code, body)
	}
	if got := e.bus.Settings().Retention; got != time.Nanosecond {
		t.Fatalf("retention %v", got)
	}
	if code, _ := e.admin(t, "PUT", "/_fake/config", `{"event_retention":"-1h"}`); code != 400 {
		t.Errorf("negative retention: %d, want 400", code)
	}
	if code, _ := e.admin(t, "PUT", "/_fake/pubsub", `{"keepalive":"soon"}`); code != 400 {
		t.Errorf("bad keepalive: %d, want 400", code)
	}
}

// A stream with nothing requested is closed after the idle time.
func TestIdleClose(t *testing.T) {
	e := start(t, eventbus.Config{IdleClose: 50 * time.Millisecond, Keepalive: time.Hour})
	for range 100 {
		if _, err := e.org.InsertAccount(fakeorg.Record{"Name": "x"}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	// The client requests 100 and releases none: once they are delivered
	// nothing is owed, and the server ends the stream.
	s, err := e.ps.Subscribe(t.Context(), eventbus.TopicAccount, pubsub.Earliest, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for {
		b, err := s.Recv()
		if err != nil {
			if n != 100 {
				t.Fatalf("closed after %d events, want 100: %v", n, err)
			}
			break
		}
		n += len(b.Events)
	}
}

func TestUnknownTopic(t *testing.T) {
	e := start(t, eventbus.Config{})
	s, err := e.ps.Subscribe(t.Context(), "/data/NoSuchChangeEvent", pubsub.Latest, nil)
	if err == nil {
		defer s.Close()
		_, err = s.Recv()
	}
	var pe *pubsub.Error
	if !errors.As(err, &pe) || pe.Code != codes.NotFound || pe.ErrorCode == "" {
		t.Fatalf("unknown topic: %v", err)
	}
}

// Bulk API 2.0 and Apex REST writes become change events too.
func TestEventsFromBulkAndApexREST(t *testing.T) {
	e := start(t, eventbus.Config{})
	ctx := t.Context()
	job, err := e.rest.CreateIngestJob(ctx, "Account", "insert", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rest.UploadJobData(ctx, job.ID, []byte("Name\nbulk-1\nbulk-2\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rest.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rest.WaitJob(ctx, job.ID, 10*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := e.rest.Call(ctx, http.MethodPost, "/services/apexrest/arrify/v1/accounts", []byte(`{"Name":"apex"}`), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusCreated {
		t.Fatalf("apex rest: %d %s", resp.Status, resp.Body)
	}
	evs := e.earliest(t, 3)
	var names []string
	for _, ev := range evs {
		if ev.Header.ChangeType != pubsub.ChangeCreate {
			t.Errorf("change type %s", ev.Header.ChangeType)
		}
		names = append(names, ev.Fields["Name"].(string))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"apex", "bulk-1", "bulk-2"}) {
		t.Fatalf("created %v", names)
	}
}
