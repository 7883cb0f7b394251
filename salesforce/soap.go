package salesforce

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The SOAP API (partner WSDL) is used for the one call the REST API lacks:
// undelete(). Requests go to /services/Soap/u/<APIVersion> with the OAuth
// access token as the SessionHeader's sessionId; the answers are XML.
//
// Unlike REST answers, SOAP answers carry no Sforce-Limit-Info header: the
// API usage comes in the envelope's LimitInfoHeader (type "API REQUESTS"),
// which the client reads into Usage. Every SOAP call counts one API request
// like a REST call.

const (
	soapEnvNS      = "http://schemas.xmlsoap.org/soap/envelope/"
	soapPartnerNS  = "urn:partner.soap.sforce.com"
	contentTypeXML = "text/xml; charset=UTF-8"
	// soapUndeleteRoute is the CallInfo route of undelete(), also the fake
	// org's stats key.
	soapUndeleteRoute = "POST /Soap/u/undelete"
	// limitTypeAPIRequests is the LimitInfoHeader type of the daily API usage.
	limitTypeAPIRequests = "API REQUESTS"
)

// Undelete restores up to MaxCollection records from the recycle bin with
// the SOAP API's undelete() (the REST API has none) and returns one result
// per ID, in order, with the record's ID. The record keeps its ID, and what
// its delete cascaded to comes back with it. A record that is not in the
// recycle bin (never deleted, or purged) fails with UNDELETE_FAILED (see
// IsNotInRecycleBin); a record whose unique external ID a live record now
// holds fails with DUPLICATE_VALUE. A failure of the call as a whole is an
// *APIError with Fault set (e.g. INVALID_SESSION_ID, after which the token
// is renewed and the call repeated once, as after a REST 401).
// IDs that are empty or hold other characters than letters and digits, or
// more than MaxCollection of them, are refused with ErrInvalidRequest or
// ErrTooManyRecords before anything is sent; none is a no-op.
func (c *Client) Undelete(ctx context.Context, ids []string) ([]SaveResult, error) {
	if len(ids) > MaxCollection {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyRecords, len(ids))
	}
	if err := checkIDList(ids); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []SaveResult{}, nil
	}
	var body bytes.Buffer
	body.WriteString(`<urn:undelete>`)
	for _, id := range ids {
		body.WriteString(`<urn:ids>`)
		_ = xml.EscapeText(&body, []byte(id))
		body.WriteString(`</urn:ids>`)
	}
	body.WriteString(`</urn:undelete>`)
	env, err := c.soapCall(ctx, soapUndeleteRoute, body.Bytes())
	if err != nil {
		return nil, err
	}
	if env.Body.Undelete == nil {
		return nil, fmt.Errorf("salesforce: %s: the answer has no undeleteResponse", soapUndeleteRoute)
	}
	results := env.Body.Undelete.results()
	if len(results) != len(ids) {
		return nil, fmt.Errorf("salesforce: %s: %d results for %d records", soapUndeleteRoute, len(results), len(ids))
	}
	c.redactResults(results)
	return results, nil
}

// soapCall posts one SOAP request whose Body content is op, with the
// session header (the access token) and the call options. Like send, it
// drops the token and tries once more after an INVALID_SESSION_ID fault
// (or a 401). A fault or another non-2xx answer is an *APIError.
func (c *Client) soapCall(ctx context.Context, route string, op []byte) (*soapEnvelope, error) {
	path := "/services/Soap/u/" + c.version
	for attempt := 1; ; attempt++ {
		tok, err := c.auth.Token(ctx)
		if err != nil {
			return nil, err
		}
		cl := call{method: http.MethodPost, path: path, route: route, body: c.soapRequest(tok.AccessToken, op),
			ctype: contentTypeXML, accept: "text/xml", soap: true}
		resp, apiErr, err := c.once(ctx, tok, cl)
		if err != nil {
			return nil, err
		}
		if apiErr != nil && (resp.Status == http.StatusUnauthorized || apiErr.Code == CodeInvalidSessionID) {
			c.auth.Invalidate(tok)
			if attempt == 1 && c.auth.Flow() != FlowStatic {
				c.log.Info("salesforce session rejected; retrying with a new token",
					"route", route, "code", apiErr.Code, "flow", c.auth.Flow())
				continue
			}
			c.log.Warn("salesforce session rejected; not retrying", "route", route, "attempt", attempt,
				"code", apiErr.Code, "message", apiErr.Message, "flow", c.auth.Flow())
		}
		if apiErr != nil {
			return nil, apiErr
		}
		env, err := parseSOAPEnvelope(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("salesforce: %s: decoding the %d response: %w", route, resp.Status, err)
		}
		if env.Body.Fault != nil { // a fault answered 200: not seen from Salesforce, but not a success either
			e := env.Body.Fault.apiError(resp.Status)
			e.Method, e.Route = cl.method, route
			return nil, c.redactAPIError(e)
		}
		c.trackSOAPUsage(env)
		return env, nil
	}
}

// soapRequest renders the request envelope. The session ID is escaped, and
// the body is never logged.
func (c *Client) soapRequest(sessionID string, op []byte) []byte {
	var b bytes.Buffer
	b.Grow(512 + len(op))
	b.WriteString(xml.Header)
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + soapEnvNS + `" xmlns:urn="` + soapPartnerNS + `">`)
	b.WriteString(`<soapenv:Header><urn:SessionHeader><urn:sessionId>`)
	_ = xml.EscapeText(&b, []byte(sessionID))
	b.WriteString(`</urn:sessionId></urn:SessionHeader>`)
	if client := CallOptionsClient(c.callOptions); client != "" {
		// SOAP's CallOptions header is what Sforce-Call-Options is to REST.
		b.WriteString(`<urn:CallOptions><urn:client>`)
		_ = xml.EscapeText(&b, []byte(client))
		b.WriteString(`</urn:client></urn:CallOptions>`)
	}
	b.WriteString(`</soapenv:Header><soapenv:Body>`)
	b.Write(op)
	b.WriteString(`</soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}

// CallOptionsClient returns the client option of a Sforce-Call-Options
// value ("client=orgsync"), "" when it has none.
func CallOptionsClient(v string) string {
	for _, opt := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
		k, val, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if ok && strings.TrimSpace(k) == "client" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// trackSOAPUsage records the API usage of a LimitInfoHeader.
func (c *Client) trackSOAPUsage(env *soapEnvelope) {
	for _, li := range env.Header.LimitInfo {
		if strings.TrimSpace(li.Type) != limitTypeAPIRequests || li.Limit <= 0 || li.Current < 0 {
			continue
		}
		c.mu.Lock()
		c.usage, c.haveUsage = APIUsage{Used: li.Current, Max: li.Limit, At: time.Now()}, true
		c.mu.Unlock()
		return
	}
}

// soapEnvelope is the part of a SOAP answer the client reads. Elements are
// matched by local name, whatever their namespace prefix.
type soapEnvelope struct {
	XMLName xml.Name `xml:"Envelope"`
	Header  struct {
		LimitInfo []soapLimitInfo `xml:"LimitInfoHeader>limitInfo"`
	} `xml:"Header"`
	Body struct {
		Fault    *soapFault        `xml:"Fault"`
		Undelete *soapSaveResponse `xml:"undeleteResponse"`
	} `xml:"Body"`
}

type soapLimitInfo struct {
	Current int    `xml:"current"`
	Limit   int    `xml:"limit"`
	Type    string `xml:"type"`
}

// soapSaveResponse is an undeleteResponse (the same shape as a
// deleteResponse or saveResponse): one result per record.
type soapSaveResponse struct {
	Results []soapResult `xml:"result"`
}

type soapResult struct {
	Errors  []soapError `xml:"errors"`
	ID      string      `xml:"id"` // xsi:nil="true" reads as ""
	Success bool        `xml:"success"`
}

type soapError struct {
	Fields     []string `xml:"fields"`
	Message    string   `xml:"message"`
	StatusCode string   `xml:"statusCode"`
}

func (r *soapSaveResponse) results() []SaveResult {
	out := make([]SaveResult, len(r.Results))
	for i, res := range r.Results {
		out[i] = SaveResult{ID: strings.TrimSpace(res.ID), Success: res.Success, Errors: make([]RecordError, len(res.Errors))}
		for j, e := range res.Errors {
			fields := e.Fields
			if fields == nil {
				fields = []string{}
			}
			out[i].Errors[j] = RecordError{Code: strings.TrimSpace(e.StatusCode), Message: e.Message, Fields: fields}
		}
	}
	return out
}

// soapFault is a SOAP 1.1 fault with Salesforce's ApiFault detail:
// <faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: …</faultstring>
// <detail><sf:UnexpectedErrorFault><sf:exceptionCode>…</sf:exceptionCode><sf:exceptionMessage>…</sf:exceptionMessage></…></detail>
type soapFault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
	Detail struct {
		Faults []struct {
			ExceptionCode    string `xml:"exceptionCode"`
			ExceptionMessage string `xml:"exceptionMessage"`
		} `xml:",any"`
	} `xml:"detail"`
}

// apiError turns the fault into an *APIError: Code is the exception code
// (from the detail, else the faultcode's sf: name), Message the exception
// message (else the faultstring). A fault of the SOAP layer itself
// (soapenv:Client, soapenv:Server) has no code.
func (f *soapFault) apiError(status int) *APIError {
	e := &APIError{StatusCode: status, Fault: true}
	code, msg := "", strings.TrimSpace(f.String)
	for _, d := range f.Detail.Faults {
		if c := strings.TrimSpace(d.ExceptionCode); c != "" {
			code = c
			if m := strings.TrimSpace(d.ExceptionMessage); m != "" {
				msg = m
			}
			break
		}
	}
	if code == "" {
		prefix, local, ok := strings.Cut(strings.TrimSpace(f.Code), ":")
		if ok && prefix == "sf" {
			code = local
			msg = strings.TrimPrefix(msg, local+": ")
		}
	}
	if msg == "" {
		msg = "SOAP fault " + clipText(strings.TrimSpace(f.Code), 100)
	}
	e.setItems([]ErrorItem{{Code: code, Message: clipText(msg, 1000)}})
	return e
}

// parseSOAPEnvelope decodes a SOAP answer. It fails on anything that is not
// a well-formed SOAP envelope.
func parseSOAPEnvelope(body []byte) (*soapEnvelope, error) {
	var env soapEnvelope
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return nil, err
	}
	if env.XMLName.Space != soapEnvNS {
		return nil, fmt.Errorf("not a SOAP 1.1 envelope (namespace %q)", clipText(env.XMLName.Space, 100))
	}
	return &env, nil
}

// ParseSOAPFault decodes the body of a non-2xx SOAP answer. Like
// ParseAPIError it never fails: a body that is not a SOAP fault (an HTML
// page, JSON from a proxy, nothing) gives what ParseAPIError makes of it.
// Method and Route are left empty.
func ParseSOAPFault(status int, body []byte) *APIError {
	if env, err := parseSOAPEnvelope(body); err == nil && env.Body.Fault != nil {
		return env.Body.Fault.apiError(status)
	}
	return ParseAPIError(status, body)
}
