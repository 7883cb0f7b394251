package fakeorg_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

const soapPath = "/services/Soap/u/61.0"

// undeleteEnvelope is a partner-WSDL undelete() request, as the SOAP
// clients and the salesforce package send it.
func undeleteEnvelope(session, client string, ids ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>`)
	_ = xml.EscapeText(&b, []byte(session))
	b.WriteString(`</urn:sessionId></urn:SessionHeader>`)
	if client != "" {
		b.WriteString(`<urn:CallOptions><urn:client>` + client + `</urn:client></urn:CallOptions>`)
	}
	b.WriteString(`</soapenv:Header><soapenv:Body><urn:undelete>`)
	for _, id := range ids {
		b.WriteString(`<urn:ids>` + id + `</urn:ids>`)
	}
	b.WriteString(`</urn:undelete></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

func (f *fixture) soap(path, body string) *response {
	f.t.Helper()
	return f.doWith(http.MethodPost, path, body, map[string]string{"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "undelete"})
}

// xmlElement is one element of a parsed answer: its path of local names
// and its text.
type xmlElement struct {
	path, space, text string
}

// xmlElements lists the elements of body in document order.
func xmlElements(t *testing.T, body []byte) []xmlElement {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	var stack []string
	var out []xmlElement
	var open []int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("answer is not XML: %v\n%s", err, body)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el.Name.Local)
			out = append(out, xmlElement{path: strings.Join(stack, "/"), space: el.Name.Space})
			open = append(open, len(out)-1)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				out[open[len(open)-1]].text += string(el)
			}
		}
	}
	return out
}

func paths(els []xmlElement) []string {
	out := make([]string, len(els))
	for i, e := range els {
		out[i] = e.path
	}
	return out
}

func textOf(els []xmlElement, path string) []string {
	var out []string
	for _, e := range els {
		if e.path == path {
			out = append(out, strings.TrimSpace(e.text))
		}
	}
	return out
}

func readRecordedXML(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecordedSOAPUndelete: the fake's undelete() answer has the recorded
// structure (LimitInfoHeader, then one result per ID whose failed entries
// list errors, the 18-character id and success, in that order), content
// type and usage accounting.
func TestRecordedSOAPUndelete(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	a, b := f.create(map[string]any{"Name": "A"}), f.create(map[string]any{"Name": "B"})
	// Both live: neither is in the recycle bin, so both fail, as both
	// recorded IDs do. The second is given in its 15-character form, as
	// the recording's request gives both.
	res := f.soap(soapPath, undeleteEnvelope(f.token, "", a, b[:15])).want(t, http.StatusOK)
	if got := res.header.Get("Content-Type"); got != "text/xml;charset=UTF-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := res.header.Get("Sforce-Limit-Info"); got != "" {
		t.Errorf("Sforce-Limit-Info %q: SOAP answers carry the usage in the envelope", got)
	}
	got, want := xmlElements(t, res.body), xmlElements(t, readRecordedXML(t, "soap_undelete.xml"))
	if !slices.Equal(paths(got), paths(want)) {
		t.Fatalf("elements\n%q\nrecorded\n%q", paths(got), paths(want))
	}
	if got[0].space != "http://schemas.xmlsoap.org/soap/envelope/" || got[len(got)-1].space != "urn:partner.soap.sforce.com" {
		t.Errorf("namespaces %q, %q", got[0].space, got[len(got)-1].space)
	}
	if ids := textOf(got, "Envelope/Body/undeleteResponse/result/id"); !slices.Equal(ids, []string{a, b}) {
		t.Errorf("ids %q, want %q", ids, []string{a, b})
	}
	for _, p := range []string{"Envelope/Body/undeleteResponse/result/success", "Envelope/Header/LimitInfoHeader/limitInfo/type"} {
		if g, w := textOf(got, p), textOf(want, p); !slices.Equal(g, w) {
			t.Errorf("%s: %q, recorded %q", p, g, w)
		}
	}
	if codes := textOf(got, "Envelope/Body/undeleteResponse/result/errors/statusCode"); !slices.Equal(codes, []string{"UNDELETE_FAILED", "UNDELETE_FAILED"}) {
		t.Errorf("codes %q", codes)
	}
	st := f.org.Stats()
	if current := textOf(got, "Envelope/Header/LimitInfoHeader/limitInfo/current"); !slices.Equal(current, []string{fmt.Sprint(st.APIUsage)}) ||
		textOf(got, "Envelope/Header/LimitInfoHeader/limitInfo/limit")[0] != fmt.Sprint(st.DailyAPILimit) {
		t.Errorf("limit info %q, usage %d/%d", current, st.APIUsage, st.DailyAPILimit)
	}
	if st.ByRoute["POST /Soap/u/undelete"] != 1 {
		t.Errorf("by route %v", st.ByRoute)
	}
}

// TestRecordedSOAPInvalidSession: a session the org does not know is the
// recorded fault, HTTP 500, not counted.
func TestRecordedSOAPInvalidSession(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	res := f.soap(soapPath, undeleteEnvelope("00Dxx0000000001!bogus", "", "001000000000001AAA")).want(t, http.StatusInternalServerError)
	got, want := xmlElements(t, res.body), xmlElements(t, readRecordedXML(t, "soap_invalid_session.xml"))
	if !slices.Equal(paths(got), paths(want)) {
		t.Fatalf("elements\n%q\nrecorded\n%q", paths(got), paths(want))
	}
	for _, p := range []string{"Envelope/Body/Fault/faultcode", "Envelope/Body/Fault/detail/UnexpectedErrorFault/exceptionCode"} {
		if g, w := textOf(got, p), textOf(want, p); !slices.Equal(g, w) {
			t.Errorf("%s: %q, recorded %q", p, g, w)
		}
	}
	// The message is the recorded one but for the session's hash.
	hash := func(s string) string {
		const marker = "missing session hash: "
		i := strings.Index(s, marker)
		j := strings.Index(s, "=\n")
		if i < 0 || j < i {
			return s
		}
		return s[:i+len(marker)] + "HASH" + s[j+1:]
	}
	for _, p := range []string{"Envelope/Body/Fault/faultstring", "Envelope/Body/Fault/detail/UnexpectedErrorFault/exceptionMessage"} {
		if g, w := hash(textOf(got, p)[0]), hash(textOf(want, p)[0]); g != w {
			t.Errorf("%s: %q, recorded %q", p, g, w)
		}
	}
	if strings.Contains(string(res.body), "bogus") {
		t.Errorf("the session id is echoed: %s", res.body)
	}
	if got := res.header.Get("Content-Type"); got != "text/xml;charset=UTF-8" {
		t.Errorf("Content-Type %q", got)
	}
	if st := f.org.Stats(); st.APICalls != 0 || st.APIUsage != 0 {
		t.Errorf("a refused session was counted: %+v", st)
	}
}

// TestSOAPUndelete: undelete() restores accounts from the recycle bin with
// their ids (UNDELETE changes whose changeOrigin names the SOAP API and the
// CallOptions client); the other IDs fail alone.
func TestSOAPUndelete(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	log := watchChanges(f.org)
	gone := f.create(map[string]any{"Name": "gone", "Source_Id__c": "G"})
	taken := f.create(map[string]any{"Name": "taken", "Source_Id__c": "T"})
	live := f.create(map[string]any{"Name": "live"})
	f.do(http.MethodDelete, B+"/composite/sobjects?ids="+gone+","+taken, nil).want(t, http.StatusOK)
	f.create(map[string]any{"Name": "new T", "Source_Id__c": "t"})
	n := log.len()
	unknown := salesforce.ID18("001000000000zzz")
	res := f.soap(soapPath, undeleteEnvelope(f.token, "orgsync", gone, live, unknown, "bad", taken)).want(t, http.StatusOK)
	els := xmlElements(t, res.body)
	if got, want := textOf(els, "Envelope/Body/undeleteResponse/result/success"), []string{"true", "false", "false", "false", "false"}; !slices.Equal(got, want) {
		t.Fatalf("success %q, want %q\n%s", got, want, res.body)
	}
	if got, want := textOf(els, "Envelope/Body/undeleteResponse/result/errors/statusCode"),
		[]string{"UNDELETE_FAILED", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID", "DUPLICATE_VALUE"}; !slices.Equal(got, want) {
		t.Errorf("codes %q, want %q", got, want)
	}
	if got, want := textOf(els, "Envelope/Body/undeleteResponse/result/errors/message"),
		[]string{"Entity is not in the recycle bin", "invalid cross reference id", "malformed id bad",
			"duplicate value found: Source_Id__c duplicates value on record with id: "}; len(got) != 4 || !slices.Equal(got[:3], want[:3]) || !strings.HasPrefix(got[3], want[3]) {
		t.Errorf("messages %q, want %q", got, want)
	}
	if got, want := textOf(els, "Envelope/Body/undeleteResponse/result/id"), []string{gone, live, unknown, "", taken}; !slices.Equal(got, want) {
		t.Errorf("ids %q, want %q", got, want)
	}
	if !strings.Contains(string(res.body), `<id xsi:nil="true"/>`) {
		t.Errorf("a malformed id is not a nil id: %s", res.body)
	}
	if _, ok := f.org.Account(gone); !ok {
		t.Errorf("%s is not live again", gone)
	}
	ch := log.since(n)
	if len(ch) != 1 || ch[0].Type != fakeorg.ChangeUndelete || ch[0].RecordID != gone || ch[0].Origin != "com/salesforce/api/soap/61.0;client=orgsync" {
		t.Errorf("changes %+v, want one UNDELETE of %s from soap/61.0;client=orgsync", ch, gone)
	}
	// No ids: an empty answer, still one call.
	res = f.soap(soapPath, undeleteEnvelope(f.token, "")).want(t, http.StatusOK)
	if got := textOf(xmlElements(t, res.body), "Envelope/Body/undeleteResponse/result/id"); len(got) != 0 {
		t.Errorf("results for no ids: %q", got)
	}
	if got := f.org.Stats().ByRoute["POST /Soap/u/undelete"]; got != 2 {
		t.Errorf("calls %d, want 2", got)
	}
}

// TestSOAPFaults: every refusal is a SOAP fault: the code (sf:CODE, or
// soapenv:Client for a request the SOAP layer cannot read) and the status.
func TestSOAPFaults(t *testing.T) {
	many := make([]string, 201)
	for i := range many {
		many[i] = "001000000000001AAA"
	}
	for _, tt := range []struct {
		name      string
		cfg       fakeorg.Config
		method    string
		path      string
		body      func(token string) string
		status    int
		faultcode string
		counted   bool
	}{
		{"GET", fakeorg.Config{}, http.MethodGet, soapPath, nil, http.StatusMethodNotAllowed, "soapenv:Client", false},
		{"not XML", fakeorg.Config{}, http.MethodPost, soapPath, func(string) string { return `{"ids":[]}` }, 500, "soapenv:Client", false},
		{"another operation", fakeorg.Config{}, http.MethodPost, soapPath, func(tok string) string {
			return strings.ReplaceAll(undeleteEnvelope(tok, "", "001000000000001AAA"), "urn:undelete>", "urn:emptyRecycleBin>")
		}, 500, "soapenv:Client", false},
		{"unsupported version", fakeorg.Config{}, http.MethodPost, "/services/Soap/u/99.0", func(tok string) string { return undeleteEnvelope(tok, "") }, 500, "sf:UNSUPPORTED_API_VERSION", false},
		{"enterprise WSDL path", fakeorg.Config{}, http.MethodPost, "/services/Soap/c/61.0", func(tok string) string { return undeleteEnvelope(tok, "") }, http.StatusNotFound, "soapenv:Client", false},
		{"more than 200 ids", fakeorg.Config{}, http.MethodPost, soapPath, func(tok string) string { return undeleteEnvelope(tok, "", many...) }, 500, "sf:EXCEEDED_ID_LIMIT", true},
		{"outage", fakeorg.Config{FailRate: 1}, http.MethodPost, soapPath, func(tok string) string { return undeleteEnvelope(tok, "") }, http.StatusServiceUnavailable, "sf:SERVER_UNAVAILABLE", true},
		{"daily limit", fakeorg.Config{DailyAPILimit: 1}, http.MethodPost, soapPath, func(tok string) string { return undeleteEnvelope(tok, "") }, 500, "sf:REQUEST_LIMIT_EXCEEDED", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			if tt.cfg.DailyAPILimit == 1 {
				f.do(http.MethodGet, B+"/sobjects", nil).want(t, http.StatusOK)
			}
			before := f.org.Stats().ByRoute["POST /Soap/u/undelete"]
			var body string
			if tt.body != nil {
				body = tt.body(f.token)
			}
			res := f.doWith(tt.method, tt.path, body, map[string]string{"Content-Type": "text/xml; charset=UTF-8"})
			res.want(t, tt.status)
			els := xmlElements(t, res.body)
			if got := textOf(els, "Envelope/Body/Fault/faultcode"); len(got) != 1 || got[0] != tt.faultcode {
				t.Errorf("faultcode %q, want %q\n%s", got, tt.faultcode, res.body)
			}
			if got := f.org.Stats().ByRoute["POST /Soap/u/undelete"] - before; got != map[bool]int{true: 1}[tt.counted] {
				t.Errorf("counted %d", got)
			}
		})
	}
}

// TestSOAPLatency: the fake's latency holds SOAP calls as it holds REST
// ones: with an hour of it, the call cannot answer within its deadline.
func TestSOAPLatency(t *testing.T) {
	f := newFixture(t, fakeorg.Config{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+soapPath, strings.NewReader(undeleteEnvelope(f.token, "")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("answered %d despite an hour of latency", res.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
}

// TestRecycleBin: a deleted account leaves query and enters queryAll with
// IsDeleted true, is answered ENTITY_IS_DELETED by updates and deletes,
// and comes back with undelete(); the engine's look-ups by external ID and
// by Id work in both.
func TestRecycleBin(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	a := f.create(map[string]any{"Name": "A", "Source_Id__c": "ka"})
	b := f.create(map[string]any{"Name": "B", "Source_Id__c": "kb"})
	var rs []saveResult
	f.do(http.MethodDelete, B+"/composite/sobjects?ids="+a+"&allOrNone=false", nil).want(t, http.StatusOK).decode(t, &rs)
	if len(rs) != 1 || !rs[0].Success || rs[0].ID != a {
		t.Fatalf("delete %+v", rs)
	}
	type page struct {
		TotalSize int
		Records   []map[string]any
	}
	run := func(resource, soql string) page {
		var p page
		f.do(http.MethodGet, B+"/"+resource+"?q="+strings.ReplaceAll(soql, " ", "+"), nil).want(t, http.StatusOK).decode(t, &p)
		return p
	}
	for _, soql := range []string{
		"SELECT Id, Source_Id__c, IsDeleted FROM Account WHERE Source_Id__c IN ('ka','kb')",
		"SELECT Id, Source_Id__c, IsDeleted FROM Account WHERE Id IN ('" + a + "','" + b[:15] + "')",
	} {
		q, all := run("query", soql), run("queryAll", soql)
		if q.TotalSize != 1 || q.Records[0]["Id"] != b || q.Records[0]["IsDeleted"] != false {
			t.Errorf("query %s: %+v", soql, q)
		}
		if all.TotalSize != 2 || all.Records[0]["Id"] != a || all.Records[0]["IsDeleted"] != true || all.Records[0]["Source_Id__c"] != "ka" || all.Records[1]["IsDeleted"] != false {
			t.Errorf("queryAll %s: %+v", soql, all)
		}
	}
	f.do(http.MethodPatch, B+"/composite/sobjects", collection(false, map[string]any{"Id": a, "Phone": "1"})).want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "ENTITY_IS_DELETED" || rs[0].Errors[0].Message != "entity is deleted" || rs[0].ID != a {
		t.Errorf("update of a deleted record: %+v", rs)
	}
	f.do(http.MethodDelete, B+"/composite/sobjects?ids="+a, nil).want(t, http.StatusOK).decode(t, &rs)
	if rs[0].code() != "ENTITY_IS_DELETED" || rs[0].Errors[0].Message != "entity is deleted" {
		t.Errorf("delete of a deleted record: %+v", rs)
	}
	f.soap(soapPath, undeleteEnvelope(f.token, "", a)).want(t, http.StatusOK)
	if q := run("query", "SELECT Id FROM Account WHERE Source_Id__c = 'ka'"); q.TotalSize != 1 || q.Records[0]["Id"] != a {
		t.Errorf("after undelete: %+v", q)
	}
}

// FuzzSOAPBody: whatever the body, the SOAP endpoint answers a SOAP
// envelope with a status it documents, and never panics.
func FuzzSOAPBody(f *testing.F) {
	fix := newFixture(f, fakeorg.Config{})
	gone := fix.create(map[string]any{"Name": "gone"})
	fix.do(http.MethodDelete, B+"/sobjects/Account/"+gone, nil).want(f, http.StatusNoContent)
	f.Add(undeleteEnvelope(fix.token, "orgsync", gone, "bad", "001000000000001AAA"))
	f.Add(undeleteEnvelope("nope", ""))
	f.Add(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>`)
	f.Add(`<!DOCTYPE x [<!ENTITY a "aaaaaaaa">]><x>&a;&a;</x>`)
	f.Add(`<a><b></a>`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, body string) {
		fix.t = t
		body = strings.ReplaceAll(body, "TOKEN", fix.token)
		res := fix.soap(soapPath, body)
		switch res.status {
		case http.StatusOK, http.StatusInternalServerError:
		default:
			t.Fatalf("status %d for %q", res.status, body)
		}
		els := xmlElements(t, res.body)
		if len(els) < 2 || els[0].path != "Envelope" || els[0].space != "http://schemas.xmlsoap.org/soap/envelope/" {
			t.Fatalf("answer %s", res.body)
		}
		if res.status != http.StatusOK && len(textOf(els, "Envelope/Body/Fault/faultcode")) != 1 {
			t.Fatalf("a %d without a fault: %s", res.status, res.body)
		}
	})
}
