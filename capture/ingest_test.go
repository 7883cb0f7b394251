package capture_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"orgsync/capture"
	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

const testToken = "s3cret-ingest-token"

var testOrg = salesforce.ID18("00D000000000ABC")

func acct(i int) string { return salesforce.ID18(fmt.Sprintf("001000000%06d", i)) }

func recordsJSON(n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"attributes":{"type":"Account"},"Id":%q,"Name":"Acme %d","CreatedDate":"2026-03-01T10:00:00.000+0000","NumberOfEmployees":12,"OwnerId":"005000000000001"}`, acct(i), i)
	}
	b.WriteString("]")
	return b.String()
}

func newIngest(t *testing.T, p capture.Publisher) *capture.Ingest {
	t.Helper()
	h, err := capture.NewIngest(capture.IngestConfig{Queue: p, SourceOrg: testOrg, Token: testToken,
		SkipField: capture.DefaultSkipField})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func post(h http.Handler, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/accounts", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// Ensure that every bad request gets its status and publishes nothing.
func TestIngest_BadRequests(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	h := newIngest(t, e.q)
	bearer := "Bearer " + testToken
	tests := []struct {
		name       string
		method     string
		auth, body string
		wantStatus int
		wantErr    string // in the JSON error
	}{
		{name: "no token", auth: "", body: recordsJSON(1), wantStatus: 401},
		{name: "wrong token", auth: "Bearer nope", body: recordsJSON(1), wantStatus: 401},
		{name: "token as a prefix", auth: "Bearer " + testToken[:5], body: recordsJSON(1), wantStatus: 401},
		{name: "basic scheme", auth: "Basic " + testToken, body: recordsJSON(1), wantStatus: 401},
		{name: "GET", method: http.MethodGet, auth: bearer, wantStatus: 405},
		{name: "body over MaxBody", auth: bearer, body: `[{"Id":"` + strings.Repeat("x", capture.MaxBody) + `"}]`, wantStatus: 413},
		{name: "malformed JSON", auth: bearer, body: `[{"Id":`, wantStatus: 400, wantErr: "malformed JSON"},
		{name: "trailing data", auth: bearer, body: recordsJSON(1) + ` {}`, wantStatus: 400, wantErr: "malformed JSON"},
		{name: "empty body", auth: bearer, body: ``, wantStatus: 400},
		{name: "empty array", auth: bearer, body: `[]`, wantStatus: 400, wantErr: "no records"},
		{name: "a string", auth: bearer, body: `"x"`, wantStatus: 400, wantErr: "record 1"},
		{name: "missing Id in record 3", auth: bearer,
			body: `[{"Id":"` + acct(1) + `","Name":"a"},{"Id":"` + acct(2) + `","Name":"b"},{"Name":"c"}]`, wantStatus: 400, wantErr: "record 3: no Id"},
		{name: "bad Id checksum", auth: bearer, body: `[{"Id":"` + acct(1)[:15] + `XXX","Name":"a"}]`, wantStatus: 400, wantErr: "record 1: field Id"},
		{name: "contact Id", auth: bearer, body: `[{"Id":"003000000000001","Name":"a"}]`, wantStatus: 400, wantErr: "record 1: field Id"},
		{name: "numeric Id", auth: bearer, body: `[{"Id":12,"Name":"a"}]`, wantStatus: 400, wantErr: "record 1: field Id is a number"},
		{name: "record not an object", auth: bearer, body: `[{"Id":"` + acct(1) + `"},[1]]`, wantStatus: 400, wantErr: "record 2"},
		{name: "bad ParentId", auth: bearer, body: `[{"Id":"` + acct(1) + `","ParentId":"zzz"}]`, wantStatus: 400, wantErr: "record 1"},
		{name: "201 records", auth: bearer, body: recordsJSON(201), wantStatus: 400, wantErr: "at most 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/v1/accounts", strings.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", w.Code, w.Body.String(), tt.wantStatus)
			}
			var ans struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
				t.Fatalf("answer %q is not JSON: %v", w.Body.String(), err)
			}
			if !strings.Contains(ans.Error, tt.wantErr) {
				t.Errorf("got error %q, want it to contain %q", ans.Error, tt.wantErr)
			}
			if strings.Contains(w.Body.String(), testToken) {
				t.Error("the answer contains the ingest token")
			}
		})
	}
	if _, counts := e.stored(); len(counts) != 0 {
		t.Errorf("got %d events in the stream after bad requests, want 0", len(counts))
	}
}

// Ensure that a good request is answered 202 only with every record in the
// stream, once, with only the allow-listed fields; that a retry is absorbed
// by dedup; and that a single object is accepted.
func TestIngest_Accepted(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	h := newIngest(t, e.q)
	bearer := "Bearer " + testToken
	body := recordsJSON(200)
	w := post(h, bearer, body)
	if w.Code != http.StatusAccepted {
		t.Fatalf("got status %d (%s), want 202", w.Code, w.Body.String())
	}
	var ans struct{ Accepted, Duplicates, Skipped int }
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Accepted != 200 || ans.Duplicates != 0 {
		t.Errorf("got %+v, want 200 accepted, 0 duplicates", ans)
	}
	// The caller retries (a lost 202): dedup absorbs it.
	w = post(h, bearer, body)
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusAccepted || ans.Duplicates != 200 {
		t.Errorf("retry: got status %d %+v, want 202 with 200 duplicates", w.Code, ans)
	}
	// One object, with a 15-character Id; and a record orgsync wrote itself.
	w = post(h, bearer, `{"Id":"`+acct(500)[:15]+`","Name":"Solo","Phone":null}`)
	if w.Code != http.StatusAccepted {
		t.Fatalf("single object: got %d (%s), want 202", w.Code, w.Body.String())
	}
	w = post(h, bearer, `[{"Id":"`+acct(501)+`","Name":"Mine","Source_Id__c":"001000000000009"}]`)
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusAccepted || ans.Skipped != 1 || ans.Accepted != 0 {
		t.Errorf("skip field: got %d %+v, want 202 with 1 skipped", w.Code, ans)
	}
	var ids []string
	for i := range 200 {
		ids = append(ids, acct(i))
	}
	e.assertStored(append(ids, acct(500)))
	evs, _ := e.stored()
	ev := evs[acct(7)]
	if ev.SourceOrg != testOrg || ev.Fields["Name"] != "Acme 7" || ev.Fields["NumberOfEmployees"] != json.Number("12") {
		t.Errorf("got event %+v", ev)
	}
	if _, ok := ev.Fields["OwnerId"]; ok {
		t.Error("OwnerId was copied")
	}
	if v, ok := evs[acct(500)].Fields["Phone"]; !ok || v != nil {
		t.Errorf("a null field: got %v, %v; want kept as null", v, ok)
	}
}

// Ensure that the caller is told to retry (503) when JetStream cannot take
// the events.
func TestIngest_Unavailable(t *testing.T) {
	t.Run("stream deleted", func(t *testing.T) {
		e := newEnv(t, fakeorg.Config{})
		h := newIngest(t, e.q)
		if err := e.js.DeleteStream(t.Context(), queue.Stream); err != nil {
			t.Fatal(err)
		}
		w := post(h, "Bearer "+testToken, recordsJSON(3))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("got status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
	})
	t.Run("server down", func(t *testing.T) {
		e := newEnv(t, fakeorg.Config{})
		h := newIngest(t, e.q)
		e.emb.Shutdown()
		w := post(h, "Bearer "+testToken, recordsJSON(3))
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("got status %d, want 503", w.Code)
		}
	})
	t.Run("fails midway", func(t *testing.T) {
		rec := &recorder{failAt: 50, failErr: errors.New("nats: no responders available for request")}
		h := newIngest(t, rec)
		w := post(h, "Bearer "+testToken, recordsJSON(100))
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("got status %d, want 503", w.Code)
		}
	})
}

// FuzzIngest feeds the handler arbitrary bodies: it never panics, answers
// one of its documented statuses, and publishes nothing unless it answers
// 202 (and then every record it accepted).
func FuzzIngest(f *testing.F) {
	f.Add([]byte(recordsJSON(2)))
	f.Add([]byte(`{"Id":"` + acct(1)[:15] + `","Name":"x"}`))
	f.Add([]byte(`[{"Id":"` + acct(1) + `"},{"Name":"c"}]`))
	f.Add([]byte(`[{"Id":"` + acct(1) + `","ParentId":"` + acct(2) + `","AnnualRevenue":1e400}]`))
	f.Add([]byte(`[{"Id":"` + acct(1) + `","Source_Id__c":"x"}]`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`[{"Id":"` + acct(1) + `"}] x`))
	f.Add([]byte(`{"Id":null}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &recorder{}
		h := newIngest(t, rec)
		req := httptest.NewRequest(http.MethodPost, "/v1/accounts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusAccepted:
			var ans struct{ Accepted, Skipped int }
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
				t.Fatalf("202 answer %q: %v", w.Body.String(), err)
			}
			if ans.Accepted != rec.calls || ans.Accepted+ans.Skipped == 0 || ans.Accepted+ans.Skipped > capture.MaxRecords {
				t.Fatalf("202 %+v with %d publishes", ans, rec.calls)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if rec.calls != 0 {
				t.Fatalf("status %d after %d publishes, want none", w.Code, rec.calls)
			}
		default:
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body.String())
		}
	})
}
