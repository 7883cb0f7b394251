package salesforce_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// seedAccounts creates accounts named by their external IDs and returns
// their IDs in order.
func seedAccounts(t *testing.T, org *fakeorg.Org, keys ...string) []string {
	t.Helper()
	ids := make([]string, len(keys))
	for i, k := range keys {
		id, err := org.InsertAccount(fakeorg.Record{"Name": "Acct " + k, "Source_Id__c": k, "Phone": "555-0100"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// codes returns each result's first error code ("" for a success).
func codes(rs []salesforce.SaveResult) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		if e := r.Err(); e != nil {
			out[i] = e.Code
		}
	}
	return out
}

func TestUpdateMany(t *testing.T) {
	tests := []struct {
		name      string
		records   func(ids []string) []salesforce.Record
		allOrNone bool
		want      []string // error codes per record, "" for success
		phone     []any    // Phone of each seeded account afterwards
	}{
		{
			name: "all succeed, a null blanks a field",
			records: func(ids []string) []salesforce.Record {
				return []salesforce.Record{{"Id": ids[0], "Phone": "1"}, {"Id": ids[1], "Phone": nil}}
			},
			want: []string{"", ""}, phone: []any{"1", nil, "555-0100"},
		},
		{
			name: "partial failure stands alone",
			records: func(ids []string) []salesforce.Record {
				return []salesforce.Record{{"Id": ids[0], "Phone": "1"}, {"Id": ids[1], "Name": ""}}
			},
			want: []string{"", "REQUIRED_FIELD_MISSING"}, phone: []any{"1", "555-0100", "555-0100"},
		},
		{
			name: "allOrNone rolls back",
			records: func(ids []string) []salesforce.Record {
				return []salesforce.Record{{"Id": ids[0], "Phone": "1"}, {"Id": ids[1], "Name": ""}}
			},
			allOrNone: true,
			want:      []string{"ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING"}, phone: []any{"555-0100", "555-0100", "555-0100"},
		},
		{
			name: "a deleted record is ENTITY_IS_DELETED",
			records: func(ids []string) []salesforce.Record {
				return []salesforce.Record{{"Id": ids[2], "Phone": "1"}, {"id": ids[0], "Phone": "2"}}
			},
			want: []string{"ENTITY_IS_DELETED", ""}, phone: []any{"2", "555-0100", "555-0100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org, ts := startFakeOrg(t, fakeorg.Config{})
			c := fakeClient(t, ts.URL, nil)
			ids := seedAccounts(t, org, "u1", "u2", "u3")
			if rs, err := c.DeleteMany(t.Context(), ids[2:], false); err != nil || !rs[0].Success {
				t.Fatalf("DeleteMany: %v %+v", err, rs)
			}
			rs, err := c.UpdateMany(t.Context(), "Account", tt.records(ids), tt.allOrNone)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(rs); !slices.Equal(got, tt.want) {
				t.Errorf("codes %q, want %q", got, tt.want)
			}
			for i, r := range rs {
				if r.Err() == nil && !salesforce.ValidID(r.ID) {
					t.Errorf("result %d: id %q", i, r.ID)
				}
				if e := r.Err(); e != nil {
					if got, want := salesforce.IsEntityDeleted(e), e.Code == "ENTITY_IS_DELETED"; got != want {
						t.Errorf("IsEntityDeleted(%v) = %v", e, got)
					}
					if got := e.Class(""); got != salesforce.Permanent && e.Code != "ALL_OR_NONE_OPERATION_ROLLED_BACK" {
						t.Errorf("class of %v: %v, want permanent", e, got)
					}
				}
			}
			for i, id := range ids {
				rows := queryAll(t, c, "SELECT Phone FROM Account WHERE Id = '"+id+"'")
				if len(rows) != 1 || rows[0]["Phone"] != tt.phone[i] {
					t.Errorf("account %d: %v, want Phone %v", i, rows, tt.phone[i])
				}
			}
		})
	}
}

func TestUpdateMany_Refused(t *testing.T) {
	_, ts := startFakeOrg(t, fakeorg.Config{})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	many := make([]salesforce.Record, salesforce.MaxCollection+1)
	for i := range many {
		many[i] = salesforce.Record{"Id": "001000000000001AAA"}
	}
	for _, tt := range []struct {
		name    string
		sobject string
		records []salesforce.Record
		want    error
	}{
		{"no Id", "Account", []salesforce.Record{{"Name": "x"}}, salesforce.ErrInvalidRequest},
		{"blank Id", "Account", []salesforce.Record{{"Id": " ", "Name": "x"}}, salesforce.ErrInvalidRequest},
		{"bad sobject", "Acc/ount", []salesforce.Record{{"Id": "001000000000001AAA"}}, salesforce.ErrInvalidRequest},
		{"too many", "Account", many, salesforce.ErrTooManyRecords},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.UpdateMany(t.Context(), tt.sobject, tt.records, false)
			if !errors.Is(err, tt.want) || salesforce.Classify(err) != salesforce.Permanent {
				t.Errorf("got %v, want %v (permanent)", err, tt.want)
			}
		})
	}
	if rs, err := c.UpdateMany(t.Context(), "Account", nil, false); err != nil || len(rs) != 0 {
		t.Errorf("no records: %v %v", rs, err)
	}
	if got := obs.routes(); len(got) != 0 {
		t.Errorf("calls sent: %v", got)
	}
}

func TestDeleteMany(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	ids := seedAccounts(t, org, "d1", "d2", "d3", "d4")
	ctx := t.Context()

	tests := []struct {
		name      string
		ids       []string
		allOrNone bool
		want      []string
		wantIDs   []string // the result ids
	}{
		{"delete two, one by its 15-character id", []string{ids[0], ids[1][:15]}, false, []string{"", ""}, []string{ids[0], ids[1]}},
		{"already deleted", []string{ids[0], ids[2]}, false, []string{"ENTITY_IS_DELETED", ""}, []string{ids[0], ids[2]}},
		{"malformed id fails alone, without an id", []string{"001bad", ids[3]}, true, []string{"MALFORMED_ID", "ALL_OR_NONE_OPERATION_ROLLED_BACK"}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := c.DeleteMany(ctx, tt.ids, tt.allOrNone)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(rs); !slices.Equal(got, tt.want) {
				t.Errorf("codes %q, want %q", got, tt.want)
			}
			for i, r := range rs {
				if r.ID != tt.wantIDs[i] {
					t.Errorf("result %d id %q, want %q", i, r.ID, tt.wantIDs[i])
				}
				if got, want := salesforce.IsEntityDeleted(r.Err()), tt.want[i] == "ENTITY_IS_DELETED"; got != want {
					t.Errorf("result %d: IsEntityDeleted %v, want %v", i, got, want)
				}
			}
		})
	}
	// ids[3] survived the rolled-back call; the others are in the recycle bin.
	live := query(t, c, "SELECT Id FROM Account")
	if len(live) != 1 || live[0]["Id"] != ids[3] {
		t.Errorf("live accounts %v, want only %s", live, ids[3])
	}
	for _, tt := range []struct {
		name string
		ids  []string
		want error
	}{
		{"empty id", []string{ids[3], ""}, salesforce.ErrInvalidRequest},
		{"a comma would split the list", []string{ids[3] + "," + ids[2]}, salesforce.ErrInvalidRequest},
		{"too many", make([]string, salesforce.MaxCollection+1), salesforce.ErrTooManyRecords},
	} {
		if _, err := c.DeleteMany(ctx, tt.ids, false); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := org.Stats().ByRoute["DELETE /composite/sobjects"]; got != 3 {
		t.Errorf("DELETE /composite/sobjects calls: %d, want 3", got)
	}
	for _, r := range obs.routes() {
		if !strings.HasPrefix(r, "DELETE /composite/sobjects ") && !strings.HasPrefix(r, "GET /query ") {
			t.Errorf("unexpected call %s", r)
		}
	}
}

func query(t *testing.T, c *salesforce.Client, soql string) []salesforce.Record {
	t.Helper()
	var out []salesforce.Record
	for r, err := range c.Query(t.Context(), soql) {
		if err != nil {
			t.Fatalf("Query %q: %v", soql, err)
		}
		out = append(out, r)
	}
	return out
}

func queryAll(t *testing.T, c *salesforce.Client, soql string) []salesforce.Record {
	t.Helper()
	var out []salesforce.Record
	for r, err := range c.QueryAll(t.Context(), soql) {
		if err != nil {
			t.Fatalf("QueryAll %q: %v", soql, err)
		}
		out = append(out, r)
	}
	return out
}

// The engine's look-ups: by external ID and by Id, through query (live rows
// only) and queryAll (deleted rows too, IsDeleted true), across pages.
func TestQueryAll_DeletedRows(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{PageSize: 50})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	ids := seedAccounts(t, org, keys...)
	var deleted []string
	for i := 0; i < len(ids); i += 4 {
		deleted = append(deleted, ids[i])
	}
	if _, err := c.DeleteMany(t.Context(), deleted, true); err != nil {
		t.Fatal(err)
	}
	isDeleted := map[string]bool{}
	for _, id := range deleted {
		isDeleted[id] = true
	}

	quoted := func(vs []string) string { return "('" + strings.Join(vs, "','") + "')" }
	byExt := "SELECT Id, Source_Id__c, IsDeleted FROM Account WHERE Source_Id__c IN " + quoted(keys)
	byID := "SELECT Id, Name, Phone, Source_Id__c FROM Account WHERE Id IN " + quoted(ids)
	for _, tt := range []struct {
		name string
		all  bool
		soql string
		want int
	}{
		{"query by external id", false, byExt, 150},
		{"queryAll by external id", true, byExt, 200},
		{"query by id", false, byID, 150},
		{"queryAll by id", true, byID, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			run := query
			if tt.all {
				run = queryAll
			}
			rows := run(t, c, tt.soql)
			if len(rows) != tt.want {
				t.Fatalf("%d rows, want %d", len(rows), tt.want)
			}
			for _, r := range rows {
				id, _ := r["Id"].(string)
				if !tt.all && isDeleted[id] {
					t.Errorf("query returned deleted row %v", r)
				}
				if v, ok := r["IsDeleted"]; ok && v != isDeleted[id] {
					t.Errorf("row %v: IsDeleted %v, want %v", r, v, isDeleted[id])
				}
			}
		})
	}
	routes := strings.Join(obs.routes(), "\n")
	for _, want := range []string{"GET /queryAll 200", "GET /query 200", "GET /query/{locator} 200"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes %s: no %q", routes, want)
		}
	}
}

func TestUndelete(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{})
	obs := &observer{}
	c := fakeClient(t, ts.URL, obs)
	var changes []fakeorg.Change
	org.OnChange(func(ch fakeorg.Change) { changes = append(changes, ch) })
	ids := seedAccounts(t, org, "x1", "x2", "x3", "x4")
	ctx := t.Context()
	if _, err := c.DeleteMany(ctx, ids[:3], false); err != nil {
		t.Fatal(err)
	}
	// A live account takes over x3's external ID, so x3 cannot come back.
	if _, err := c.UpsertMany(ctx, "Account", "Source_Id__c", []salesforce.Record{{"Name": "new x3", "Source_Id__c": "x3"}}, false); err != nil {
		t.Fatal(err)
	}
	before := org.Stats()
	changes = nil
	unknown := salesforce.ID18("001000000000zzz")
	rs, err := c.Undelete(ctx, []string{ids[0], ids[1][:15], ids[3], unknown, ids[2]})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "", "UNDELETE_FAILED", "INVALID_CROSS_REFERENCE_KEY", "DUPLICATE_VALUE"}
	if got := codes(rs); !slices.Equal(got, want) {
		t.Fatalf("codes %q, want %q", got, want)
	}
	for i, wantID := range []string{ids[0], ids[1], ids[3], unknown, ids[2]} {
		if rs[i].ID != wantID {
			t.Errorf("result %d: id %q, want %q (SOAP results keep the id)", i, rs[i].ID, wantID)
		}
	}
	if e := rs[2].Err(); !salesforce.IsNotInRecycleBin(e) || e.Message != "Entity is not in the recycle bin" || e.Class("") != salesforce.Permanent {
		t.Errorf("not in the recycle bin: %+v", e)
	}
	if salesforce.IsNotInRecycleBin(rs[0].Err()) || salesforce.IsEntityDeleted(rs[0].Err()) {
		t.Errorf("a success is neither deleted nor missing")
	}
	after := org.Stats()
	if after.ByRoute["POST /Soap/u/undelete"]-before.ByRoute["POST /Soap/u/undelete"] != 1 || after.APIUsage-before.APIUsage != 1 {
		t.Errorf("one call counted: by route %v, usage %d → %d", after.ByRoute, before.APIUsage, after.APIUsage)
	}
	u, ok := c.Usage()
	if !ok || u.Used != after.APIUsage || u.Max != after.DailyAPILimit {
		t.Errorf("Usage from the LimitInfoHeader: %+v %v, want %d/%d", u, ok, after.APIUsage, after.DailyAPILimit)
	}
	if got := obs.routes(); got[len(got)-1] != "POST /Soap/u/undelete 200" {
		t.Errorf("last route %v", got)
	}
	// Back with the same id, the same fields, and queryable again.
	rows := query(t, c, "SELECT Id, Name, Phone, IsDeleted FROM Account WHERE Source_Id__c IN ('x1','x2')")
	if len(rows) != 2 || rows[0]["Id"] != ids[0] || rows[1]["Id"] != ids[1] || rows[0]["Phone"] != "555-0100" || rows[0]["IsDeleted"] != false {
		t.Errorf("undeleted rows %v", rows)
	}
	if len(changes) != 2 || changes[0].Type != fakeorg.ChangeUndelete || changes[0].Origin != "com/salesforce/api/soap/"+c.APIVersion()+";client=orgsync" {
		t.Errorf("changes %+v, want two UNDELETE from the soap api with client=orgsync", changes)
	}

	for _, tt := range []struct {
		name string
		ids  []string
		want error
	}{
		{"empty id", []string{""}, salesforce.ErrInvalidRequest},
		{"markup", []string{"<x/>"}, salesforce.ErrInvalidRequest},
		{"too many", make([]string, salesforce.MaxCollection+1), salesforce.ErrTooManyRecords},
	} {
		if _, err := c.Undelete(ctx, tt.ids); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if rs, err := c.Undelete(ctx, nil); err != nil || len(rs) != 0 {
		t.Errorf("no ids: %v %v", rs, err)
	}
}

// An expired session answers a SOAP fault INVALID_SESSION_ID (HTTP 500):
// the client renews the token and repeats the call once, as after a REST
// 401; a static token cannot be renewed.
func TestUndelete_ExpiredSession(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	org, ts := startFakeOrg(t, fakeorg.Config{Now: clock.Now, TokenTTL: time.Hour})
	ids := seedAccounts(t, org, "s1", "s2")

	t.Run("renewed once", func(t *testing.T) {
		obs := &observer{}
		c := fakeClient(t, ts.URL, obs)
		if _, err := c.DeleteMany(t.Context(), ids[:1], false); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Hour)
		rs, err := c.Undelete(t.Context(), ids[:1])
		if err != nil || !rs[0].Success {
			t.Fatalf("Undelete: %v %+v", err, rs)
		}
		want := []string{"DELETE /composite/sobjects 200", "POST /Soap/u/undelete 500", "POST /Soap/u/undelete 200"}
		if got := obs.routes(); !slices.Equal(got, want) {
			t.Errorf("calls %q, want %q", got, want)
		}
	})
	t.Run("static token", func(t *testing.T) {
		tok := org.IssueAccessToken()
		a, err := salesforce.NewAuth(t.Context(), salesforce.AuthConfig{AccessToken: tok, InstanceURL: ts.URL})
		if err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		c, err := salesforce.NewClient(salesforce.Config{Auth: a, Logger: logs.logger()})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Hour)
		_, err = c.Undelete(t.Context(), ids[1:])
		var apiErr *salesforce.APIError
		if !errors.As(err, &apiErr) || !apiErr.Fault || apiErr.Code != salesforce.CodeInvalidSessionID || apiErr.StatusCode != 500 {
			t.Fatalf("got %v, want a SOAP fault INVALID_SESSION_ID", err)
		}
		if salesforce.Classify(err) != salesforce.AuthFailure {
			t.Errorf("class %v, want auth", salesforce.Classify(err))
		}
		if strings.Contains(err.Error(), tok) || strings.Contains(logs.String(), tok) {
			t.Errorf("the session id leaked: %v\n%s", err, logs.String())
		}
	})
}

func TestUndelete_CallFailures(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       fakeorg.Config
		wantCode  string
		wantClass salesforce.Class
	}{
		{"server unavailable", fakeorg.Config{FailRate: 1}, "SERVER_UNAVAILABLE", salesforce.Transient},
		{"daily limit used up", fakeorg.Config{DailyAPILimit: 1}, "REQUEST_LIMIT_EXCEEDED", salesforce.Budget},
	} {
		t.Run(tt.name, func(t *testing.T) {
			org, ts := startFakeOrg(t, tt.cfg)
			ids := seedAccounts(t, org, "f1")
			if tt.cfg.DailyAPILimit == 1 {
				// Use up the one call.
				if _, err := fakeClient(t, ts.URL, nil).Limits(t.Context()); err != nil {
					t.Fatal(err)
				}
				if _, err := fakeClient(t, ts.URL, nil).Count(t.Context(), "SELECT COUNT() FROM Account"); err != nil {
					t.Fatal(err)
				}
			}
			_, err := fakeClient(t, ts.URL, nil).Undelete(t.Context(), ids)
			var apiErr *salesforce.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode || !apiErr.Fault {
				t.Fatalf("got %v, want fault %s", err, tt.wantCode)
			}
			if got := salesforce.Classify(err); got != tt.wantClass {
				t.Errorf("class %v, want %v", got, tt.wantClass)
			}
		})
	}
}

// Recorded SOAP faults parse to their exception code and message.
func TestParseSOAPFault(t *testing.T) {
	for _, tt := range []struct {
		name, body      string
		status          int
		wantCode, wantM string
		wantClass       salesforce.Class
	}{
		{
			// A real org's answer to a logged-out session (enterprise WSDL), quoted in a public test script.
			name:   "recorded INVALID_SESSION_ID",
			status: 500,
			body: `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.enterprise.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session. Session not found, missing session hash: yNHBjIbNE79KEGtRRO+Qa/QH3oWryUWoKU2afYoBC0A=
This error usually occurs after a session expires or a user logs out. </faultstring><detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault"><sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode><sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session. Session not found, missing session hash: yNHBjIbNE79KEGtRRO+Qa/QH3oWryUWoKU2afYoBC0A=
This error usually occurs after a session expires or a user logs out. </sf:exceptionMessage></sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			wantCode: "INVALID_SESSION_ID", wantM: "Invalid Session ID found in SessionHeader: Illegal Session. Session not found",
			wantClass: salesforce.AuthFailure,
		},
		{
			name:     "fault without detail",
			status:   500,
			body:     `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:UNKNOWN_EXCEPTION</faultcode><faultstring>UNKNOWN_EXCEPTION: An unexpected error occurred.</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			wantCode: "UNKNOWN_EXCEPTION", wantM: "An unexpected error occurred.", wantClass: salesforce.Transient,
		},
		{
			name:     "a permanent fault is not transient for its 500",
			status:   500,
			body:     `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_ID_FIELD</faultcode><faultstring>INVALID_ID_FIELD: invalid record id</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			wantCode: "INVALID_ID_FIELD", wantM: "invalid record id", wantClass: salesforce.Permanent,
		},
		{
			name:     "SOAP layer fault has no code",
			status:   500,
			body:     `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>boom</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			wantCode: "", wantM: "boom", wantClass: salesforce.Transient,
		},
		{
			name:     "an HTML maintenance page",
			status:   503,
			body:     `<html><body>Down for maintenance</body></html>`,
			wantCode: "", wantM: "unexpected HTML response", wantClass: salesforce.Transient,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := salesforce.ParseSOAPFault(tt.status, []byte(tt.body))
			if e.Code != tt.wantCode || !strings.HasPrefix(e.Message, tt.wantM) || e.StatusCode != tt.status {
				t.Errorf("got %d %q %q, want %q %q…", e.StatusCode, e.Code, e.Message, tt.wantCode, tt.wantM)
			}
			if got := salesforce.Classify(e); got != tt.wantClass {
				t.Errorf("class %v, want %v", got, tt.wantClass)
			}
		})
	}
}

// A third-party proxy answering the SOAP call with a 502 page is transient
// and names the route.
func TestUndelete_BadGateway(t *testing.T) {
	o := newTestOrg(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/Soap/u/"+salesforce.DefaultAPIVersion || r.Header.Get("Content-Type") != "text/xml; charset=UTF-8" {
			t.Errorf("request %s %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	})
	_, err := o.client(t, nil).Undelete(t.Context(), []string{"001000000000001AAA"})
	if salesforce.Classify(err) != salesforce.Transient || !strings.Contains(fmt.Sprint(err), "POST /Soap/u/undelete: 502") {
		t.Errorf("got %v (%v), want a transient 502", err, salesforce.Classify(err))
	}
}

// A SOAP fault is classified by its exception code: the SOAP API answers
// every fault with HTTP 500.
func TestClassify_SOAPFaults(t *testing.T) {
	for _, tt := range []struct {
		status  int
		code    string
		message string
		want    salesforce.Class
	}{
		{500, "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session", salesforce.AuthFailure},
		{500, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", salesforce.Budget},
		{500, "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded.", salesforce.Transient},
		{500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.", salesforce.Transient},
		{503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later.", salesforce.Transient},
		{500, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", salesforce.Transient},
		{500, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL", salesforce.Configuration},
		{500, "INVALID_ID_FIELD", "invalid record id", salesforce.Permanent},
		{500, "EXCEEDED_ID_LIMIT", "Exceeded max size limit of 200 with ids", salesforce.Permanent},
		{500, "", "soapenv:Server fault", salesforce.Transient},
	} {
		t.Run(tt.code, func(t *testing.T) {
			e := &salesforce.APIError{StatusCode: tt.status, Code: tt.code, Message: tt.message, Fault: true}
			if tt.code != "" {
				e.Errors = []salesforce.ErrorItem{{Code: tt.code, Message: tt.message}}
			}
			if got := salesforce.Classify(fmt.Errorf("undelete: %w", e)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, code := range []string{"UNDELETE_FAILED", "ENTITY_IS_DELETED"} {
		if got := salesforce.ClassifyRecord(&salesforce.RecordError{Code: code}, ""); got != salesforce.Permanent {
			t.Errorf("record %s: %v, want permanent", code, got)
		}
	}
}

// SOQLList quotes any external ID so that IN finds exactly its record, in
// query and queryAll.
func TestSOQLList(t *testing.T) {
	org, ts := startFakeOrg(t, fakeorg.Config{})
	c := fakeClient(t, ts.URL, nil)
	keys := []string{`it's`, `back\slash`, `"quoted"`, "new\nline\ttab", `100%_off`, `a,b`, `ünï`}
	ids := seedAccounts(t, org, append(keys, "100xoff", "other")...)
	if got := salesforce.SOQLString("it's \\ %"); got != `'it\'s \\ %'` {
		t.Errorf("SOQLString: %s", got)
	}
	for _, tt := range []struct {
		name string
		all  bool
	}{{"query", false}, {"queryAll", true}} {
		t.Run(tt.name, func(t *testing.T) {
			soql := "SELECT Id, Source_Id__c FROM Account WHERE Source_Id__c IN " + salesforce.SOQLList(keys) + " ORDER BY Id"
			rows := query(t, c, soql)
			if tt.all {
				rows = queryAll(t, c, soql)
			}
			if len(rows) != len(keys) {
				t.Fatalf("%d rows for %d keys: %v", len(rows), len(keys), rows)
			}
			for i, r := range rows {
				if r["Id"] != ids[i] || r["Source_Id__c"] != keys[i] {
					t.Errorf("row %d: %v, want %s %q", i, r, ids[i], keys[i])
				}
			}
		})
	}
}

// Every new call renews an expired session once and repeats itself, and
// reports an outage as transient.
func TestWrites_SessionAndOutage(t *testing.T) {
	calls := []struct {
		name  string
		route string
		run   func(c *salesforce.Client, t *testing.T, id string) error
	}{
		{"UpdateMany", "PATCH /composite/sobjects", func(c *salesforce.Client, t *testing.T, id string) error {
			_, err := c.UpdateMany(t.Context(), "Account", []salesforce.Record{{"Id": id, "Phone": "1"}}, false)
			return err
		}},
		{"DeleteMany", "DELETE /composite/sobjects", func(c *salesforce.Client, t *testing.T, id string) error {
			_, err := c.DeleteMany(t.Context(), []string{id}, false)
			return err
		}},
		{"QueryAll", "GET /queryAll", func(c *salesforce.Client, t *testing.T, id string) error {
			for _, err := range c.QueryAll(t.Context(), "SELECT Id FROM Account WHERE Id = "+salesforce.SOQLString(id)) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"Undelete", "POST /Soap/u/undelete", func(c *salesforce.Client, t *testing.T, id string) error {
			_, err := c.Undelete(t.Context(), []string{id})
			return err
		}},
	}
	for _, call := range calls {
		t.Run(call.name+"/expired session", func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
			org, ts := startFakeOrg(t, fakeorg.Config{Now: clock.Now, TokenTTL: time.Hour})
			id := seedAccounts(t, org, "e1")[0]
			obs := &observer{}
			c := fakeClient(t, ts.URL, obs)
			if _, err := c.Limits(t.Context()); err != nil { // fetch the first token
				t.Fatal(err)
			}
			clock.Advance(2 * time.Hour)
			if err := call.run(c, t, id); err != nil {
				t.Fatalf("after renewing the token: %v", err)
			}
			got := obs.routes()[1:]
			refused := call.route + " 401"
			if call.route == "POST /Soap/u/undelete" {
				refused = call.route + " 500" // a SOAP fault
			}
			if want := []string{refused, call.route + " 200"}; !slices.Equal(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		})
		t.Run(call.name+"/outage", func(t *testing.T) {
			org, ts := startFakeOrg(t, fakeorg.Config{})
			id := seedAccounts(t, org, "o1")[0]
			rate := 1.0
			if err := org.Configure(fakeorg.ConfigPatch{FailRate: &rate}); err != nil {
				t.Fatal(err)
			}
			err := call.run(fakeClient(t, ts.URL, nil), t, id)
			var apiErr *salesforce.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || apiErr.Code != "SERVER_UNAVAILABLE" ||
				salesforce.Classify(err) != salesforce.Transient {
				t.Errorf("got %v, want a transient 503 SERVER_UNAVAILABLE", err)
			}
			if st := org.Stats(); st.ByRoute[call.route] != 1 || st.Records["Account"] != 1 {
				t.Errorf("stats %+v: want one call and nothing changed", st)
			}
		})
	}
}
