package fakeorg

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The SOAP API (partner WSDL, /services/Soap/u/NN.N) serves one call:
// undelete(), which the REST API lacks. Its answers follow the ones
// recorded from real orgs: an undeleteResponse whose results list errors,
// id and success in that order (the failed ones keep their id), a
// LimitInfoHeader with the daily API usage instead of the Sforce-Limit-Info
// HTTP header, and faults answered with HTTP 500.

const (
	soapEnvNS     = "http://schemas.xmlsoap.org/soap/envelope/"
	soapPartnerNS = "urn:partner.soap.sforce.com"
	soapFaultNS   = "urn:fault.partner.soap.sforce.com"
	// contentTypeXML is the Content-Type of SOAP answers.
	contentTypeXML = "text/xml;charset=UTF-8"
	// soapUndeleteRoute is the stats key of undelete().
	soapUndeleteRoute = "POST /Soap/u/undelete"
)

// soapRequest is the part of a request envelope the fake reads.
type soapRequest struct {
	XMLName xml.Name `xml:"Envelope"`
	Header  struct {
		SessionID string `xml:"SessionHeader>sessionId"`
		Client    string `xml:"CallOptions>client"`
	} `xml:"Header"`
	Body struct {
		Ops []soapOp `xml:",any"`
	} `xml:"Body"`
}

// soapOp is the operation element of the Body: <undelete><ids>…</ids></undelete>.
type soapOp struct {
	XMLName xml.Name
	IDs     []string `xml:"ids"`
}

// soapFault is a fault answer; Code is the exception code ("" for a fault
// of the SOAP layer, faultcode soapenv:Client).
type soapFault struct {
	status  int
	code    string
	message string
}

// serveSOAP answers POST /services/Soap/u/{version}. It authenticates by
// the SessionHeader's sessionId (an access token), counts the call like a
// REST call under soapUndeleteRoute (latency, injected outages and the
// daily limit apply, answered as faults) and runs undelete().
func (o *Org) serveSOAP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/services/Soap/u/")
	version, _, vok := parseVersion("v" + strings.TrimSuffix(rest, "/"))
	switch {
	case !ok:
		writeSOAPFault(w, soapFault{http.StatusNotFound, "", "No service available for " + r.URL.Path})
		return
	case r.Method != http.MethodPost:
		writeSOAPFault(w, soapFault{http.StatusMethodNotAllowed, "", "HTTP Method '" + r.Method + "' not allowed. Use POST"})
		return
	}
	if err := limitBody(w, r); err != nil {
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "", err.Message})
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "", "Unable to read the request body"})
		return
	}
	var req soapRequest
	if err := xml.Unmarshal(raw, &req); err != nil || req.XMLName.Space != soapEnvNS || len(req.Body.Ops) != 1 {
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "", "Unable to parse the request: want one operation in a SOAP 1.1 envelope"})
		return
	}
	if !o.validToken(strings.TrimSpace(req.Header.SessionID)) {
		// Not counted, like a REST 401 (recorded answers carry no usage).
		sum := sha256.Sum256([]byte(req.Header.SessionID))
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "INVALID_SESSION_ID",
			"Invalid Session ID found in SessionHeader: Illegal Session. Session not found, missing session hash: " +
				base64.StdEncoding.EncodeToString(sum[:]) + "\nThis error usually occurs after a session expires or a user logs out. "})
		return
	}
	if !vok {
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL"})
		return
	}
	op := req.Body.Ops[0]
	if op.XMLName.Local != "undelete" || op.XMLName.Space != soapPartnerNS {
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "",
			"No operation available for request {" + op.XMLName.Space + "}" + op.XMLName.Local})
		return
	}
	used, limit, within := o.count(soapUndeleteRoute, false)
	if status, e, goOn := o.admit(r, within); !goOn {
		if e != nil {
			if status == http.StatusForbidden {
				status = http.StatusInternalServerError // every fault is a 500 in SOAP
			}
			writeSOAPFault(w, soapFault{status, e.Code, e.Message})
		}
		return
	}
	if len(op.IDs) > maxUndelete {
		writeSOAPFault(w, soapFault{http.StatusInternalServerError, "EXCEEDED_ID_LIMIT",
			"Exceeded max size limit of " + strconv.Itoa(maxUndelete) + " with ids"})
		return
	}
	ids := make([]string, len(op.IDs))
	for i, id := range op.IDs {
		ids[i] = strings.TrimSpace(id)
	}
	h := http.Header{}
	if c := strings.TrimSpace(req.Header.Client); c != "" {
		h.Set("Sforce-Call-Options", "client="+c)
	}
	results := o.Undelete(ids, changeOrigin(apiSOAP, version, h))
	o.recordDelay(r, len(results))
	writeSOAP(w, used, limit, undeleteResponseXML(results))
}

// undeleteResponseXML renders <undeleteResponse><result>…</result>…</undeleteResponse>.
func undeleteResponseXML(results []UndeleteResult) []byte {
	var b bytes.Buffer
	b.WriteString("<undeleteResponse>")
	for _, res := range results {
		b.WriteString("<result>")
		for _, e := range res.Errors {
			b.WriteString("<errors>")
			for _, f := range e.Fields {
				writeElem(&b, "fields", f)
			}
			writeElem(&b, "message", e.Message)
			writeElem(&b, "statusCode", e.StatusCode)
			b.WriteString("</errors>")
		}
		if res.ID == "" {
			b.WriteString(`<id xsi:nil="true"/>`)
		} else {
			writeElem(&b, "id", res.ID)
		}
		writeElem(&b, "success", strconv.FormatBool(res.Success))
		b.WriteString("</result>")
	}
	b.WriteString("</undeleteResponse>")
	return b.Bytes()
}

func writeElem(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

// writeSOAP writes a 200 answer envelope with the LimitInfoHeader.
func writeSOAP(w http.ResponseWriter, used, limit int, body []byte) {
	var b bytes.Buffer
	b.WriteString(xml.Header[:len(xml.Header)-1])
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + soapEnvNS + `" xmlns="` + soapPartnerNS +
		`" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Header><LimitInfoHeader><limitInfo>`)
	fmt.Fprintf(&b, "<current>%d</current><limit>%d</limit><type>API REQUESTS</type>", used, limit)
	b.WriteString(`</limitInfo></LimitInfoHeader></soapenv:Header><soapenv:Body>`)
	b.Write(body)
	b.WriteString(`</soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", contentTypeXML)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// writeSOAPFault writes a fault as Salesforce does: faultcode sf:CODE,
// faultstring "CODE: message" and an UnexpectedErrorFault detail; a fault
// without a code is soapenv:Client with the message alone.
func writeSOAPFault(w http.ResponseWriter, f soapFault) {
	var b bytes.Buffer
	b.WriteString(xml.Header[:len(xml.Header)-1])
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + soapEnvNS + `" xmlns:sf="` + soapFaultNS +
		`" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>`)
	if f.code == "" {
		writeElem(&b, "faultcode", "soapenv:Client")
		writeElem(&b, "faultstring", f.message)
	} else {
		writeElem(&b, "faultcode", "sf:"+f.code)
		writeElem(&b, "faultstring", f.code+": "+f.message)
		b.WriteString(`<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">`)
		writeElem(&b, "sf:exceptionCode", f.code)
		writeElem(&b, "sf:exceptionMessage", f.message)
		b.WriteString(`</sf:UnexpectedErrorFault></detail>`)
	}
	b.WriteString(`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", contentTypeXML)
	w.WriteHeader(f.status)
	_, _ = w.Write(b.Bytes())
}
