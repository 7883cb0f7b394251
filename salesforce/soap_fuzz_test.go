package salesforce

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// renderUndeleteResponse writes results as an undelete answer envelope.
func renderUndeleteResponse(results []SaveResult) []byte {
	var b bytes.Buffer
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + soapEnvNS + `" xmlns="` + soapPartnerNS + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><undeleteResponse>`)
	text := func(name, s string) {
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(&b, []byte(s))
		b.WriteString("</" + name + ">")
	}
	for _, r := range results {
		b.WriteString("<result>")
		for _, e := range r.Errors {
			b.WriteString("<errors>")
			for _, f := range e.Fields {
				text("fields", f)
			}
			text("message", e.Message)
			text("statusCode", e.Code)
			b.WriteString("</errors>")
		}
		text("id", r.ID)
		text("success", strconv.FormatBool(r.Success))
		b.WriteString("</result>")
	}
	b.WriteString(`</undeleteResponse></soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}

// FuzzParseSOAP: any body either decodes or is an error, never a panic; an
// undelete answer that decodes renders back to the same results; a fault
// body always gives an *APIError with a message.
func FuzzParseSOAP(f *testing.F) {
	// The recorded undelete answer (enterprise WSDL; the partner one differs only in its namespace).
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:enterprise.soap.sforce.com">
  <soapenv:Header><LimitInfoHeader><limitInfo><current>3917</current><limit>15000</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>
  <soapenv:Body><undeleteResponse>
      <result><errors><message>Entity type is not undeletable</message><statusCode>CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY</statusCode></errors><id>01I28000001HT0sEAG</id><success>false</success></result>
      <result><id>001000000000001AAA</id><success>true</success></result>
  </undeleteResponse></soapenv:Body></soapenv:Envelope>`))
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session</faultstring><detail><sf:UnexpectedErrorFault><sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode><sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session</sf:exceptionMessage></sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`))
	f.Add([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><undeleteResponse><result><id xsi:nil="true"/><success>maybe</success></result></undeleteResponse></soapenv:Body></soapenv:Envelope>`))
	f.Add([]byte(`<Envelope><Body/></Envelope>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		fault := ParseSOAPFault(500, body)
		if fault == nil || fault.StatusCode != 500 || fault.Message == "" && fault.Raw == "" && len(bytes.TrimSpace(body)) > 0 {
			t.Fatalf("ParseSOAPFault(%q) = %+v", body, fault)
		}
		env, err := parseSOAPEnvelope(body)
		if err != nil {
			return
		}
		if env.Body.Fault != nil && !ParseSOAPFault(500, body).Fault {
			t.Fatalf("a fault body %q parsed as no fault", body)
		}
		if env.Body.Undelete == nil {
			return
		}
		results := env.Body.Undelete.results()
		for _, r := range results {
			for _, e := range r.Errors {
				if e.Fields == nil {
					t.Fatalf("nil fields in %+v", r)
				}
			}
		}
		again, err := parseSOAPEnvelope(renderUndeleteResponse(results))
		if err != nil || again.Body.Undelete == nil {
			t.Fatalf("re-rendered %+v: %v", results, err)
		}
		got := again.Body.Undelete.results()
		// Text is trimmed on the first read only for id and statusCode; XML
		// normalises \r to \n and drops characters it cannot carry.
		if len(got) != len(results) {
			t.Fatalf("re-read %d results, want %d", len(got), len(results))
		}
		for i := range got {
			if got[i].Success != results[i].Success || got[i].ID != results[i].ID || len(got[i].Errors) != len(results[i].Errors) {
				t.Fatalf("result %d: re-read %+v, want %+v", i, got[i], results[i])
			}
			for j := range got[i].Errors {
				if got[i].Errors[j].Code != results[i].Errors[j].Code || len(got[i].Errors[j].Fields) != len(results[i].Errors[j].Fields) {
					t.Fatalf("result %d error %d: re-read %+v, want %+v", i, j, got[i].Errors[j], results[i].Errors[j])
				}
			}
		}
	})
}

func TestParseSOAPEnvelope_Recorded(t *testing.T) {
	// The recorded answer of undelete() for two IDs (Salesforce StackExchange
	// question 138077, enterprise WSDL): failed results keep their id, in
	// its 18-character form.
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:enterprise.soap.sforce.com">
  <soapenv:Header>
    <LimitInfoHeader>
      <limitInfo>
        <current>3917</current>
        <limit>15000</limit>
        <type>API REQUESTS</type>
      </limitInfo>
    </LimitInfoHeader>
  </soapenv:Header>
  <soapenv:Body>
    <undeleteResponse>
      <result>
        <errors>
          <message>Entity type is not undeletable</message>
          <statusCode>CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY</statusCode>
        </errors>
        <id>01I28000001HT0sEAG</id>
        <success>false</success>
      </result>
      <result>
        <errors>
          <message>Entity type is not undeletable</message>
          <statusCode>CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY</statusCode>
        </errors>
        <id>01I28000001aDreEAE</id>
        <success>false</success>
      </result>
    </undeleteResponse>
  </soapenv:Body>
</soapenv:Envelope>`)
	env, err := parseSOAPEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []SaveResult{
		{ID: "01I28000001HT0sEAG", Errors: []RecordError{{Code: "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", Message: "Entity type is not undeletable", Fields: []string{}}}},
		{ID: "01I28000001aDreEAE", Errors: []RecordError{{Code: "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", Message: "Entity type is not undeletable", Fields: []string{}}}},
	}
	if got := env.Body.Undelete.results(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	c := &Client{}
	c.trackSOAPUsage(env)
	if u, ok := c.Usage(); !ok || u.Used != 3917 || u.Max != 15000 {
		t.Errorf("usage %+v %v, want 3917/15000", u, ok)
	}
	if _, err := parseSOAPEnvelope([]byte(strings.Replace(string(body), "http://schemas.xmlsoap.org/soap/envelope/", "urn:other", 1))); err == nil {
		t.Errorf("an envelope in another namespace parsed")
	}
}

// FuzzCallOptionsClient: the client option is one trimmed value of v.
func FuzzCallOptionsClient(f *testing.F) {
	for _, s := range []string{"client=orgsync", "client=a; defaultNamespace=b", "defaultNamespace=b,client=c", "=,;", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c := CallOptionsClient(v)
		if strings.ContainsAny(c, ",;") || c != strings.TrimSpace(c) {
			t.Fatalf("client %q from %q", c, v)
		}
		if c != "" && !strings.Contains(v, c) {
			t.Fatalf("client %q not in %q", c, v)
		}
	})
}
