package fakeorg_test

import (
	"net/http"
	"strings"
	"testing"

	"orgsync/salesforce/fakeorg"
)

const apexPath = "/services/apexrest/arrify/v1/accounts"

func TestApexREST(t *testing.T) {
	f := newFixture(t, fakeorg.Config{RejectName: "^Blocked"})
	res := f.do(http.MethodPost, apexPath, `{"Name":"Acme"}`).want(t, http.StatusCreated)
	var ok struct {
		Success      bool    `json:"success"`
		AccountID    string  `json:"accountId"`
		AccountName  string  `json:"accountName"`
		Message      string  `json:"message"`
		ErrorDetails *string `json:"errorDetails"`
	}
	res.decode(t, &ok)
	if !ok.Success || ok.AccountName != "Acme" || ok.Message != "Account created successfully" || ok.ErrorDetails != nil || len(ok.AccountID) != 18 {
		t.Errorf("success answer: %s", res.body)
	}
	if !strings.Contains(string(res.body), `"errorDetails":null`) {
		t.Errorf("null fields are not serialized: %s", res.body)
	}
	if !strings.HasPrefix(res.header.Get("Sforce-Limit-Info"), "api-usage=") {
		t.Errorf("no Sforce-Limit-Info")
	}
	if rec, found := f.org.Account(ok.AccountID); !found || rec["Name"] != "Acme" {
		t.Errorf("record: %v", rec)
	}

	tests := []struct {
		name, body string
		status     int
		message    string // exact, or prefix when it ends in "…"
		details    bool
	}{
		{"empty body", ``, 400, "Request body is empty", false},
		{"blank body", "  \n", 400, "Request body is empty", false},
		{"no name", `{"Phone":"1"}`, 400, "Account Name is required", false},
		{"lower-case key", `{"name":"x"}`, 400, "Account Name is required", false},
		{"null name", `{"Name":null}`, 400, "Account Name is required", false},
		{"blank name", `{"Name":"  "}`, 400, "Account Name is required", false},
		{"invalid json", `{"Name":`, 500, "Unexpected error: …", true},
		{"garbage", `hello`, 500, "Unexpected error: Unexpected character ('h' (code 104))…", true},
		{"array", `[1]`, 500, "Unexpected error: Invalid conversion from runtime type List<ANY> to Map<String,ANY>", true},
		{"number name", `{"Name":42}`, 500, "Unexpected error: Invalid conversion from runtime type Integer to String", true},
		{"too long", `{"Name":"` + strings.Repeat("x", 256) + `"}`, 500, "Database error: Account Name: data value too large: …", true},
		{"validation rule", `{"Name":"Blocked Inc"}`, 500, "Database error: …", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(http.MethodPost, apexPath, tt.body).want(t, tt.status)
			var raw map[string]any
			res.decode(t, &raw)
			for _, k := range []string{"success", "accountId", "accountName", "message", "errorDetails"} {
				if _, present := raw[k]; !present {
					t.Errorf("key %s missing: %s", k, res.body)
				}
			}
			if raw["success"] != false || raw["accountId"] != nil {
				t.Errorf("answer: %s", res.body)
			}
			msg, _ := raw["message"].(string)
			if p, isPrefix := strings.CutSuffix(tt.message, "…"); isPrefix && !strings.HasPrefix(msg, p) || !isPrefix && msg != tt.message {
				t.Errorf("message: got %q, want %q", msg, tt.message)
			}
			if d, _ := raw["errorDetails"].(string); tt.details != (d != "") || tt.details && !strings.HasPrefix(d, "Class.ArrifyAccountsApi.createAccount: line ") {
				t.Errorf("errorDetails: %v", raw["errorDetails"])
			}
		})
	}
	if n := len(f.org.Accounts()); n != 1 {
		t.Errorf("accounts: got %d, want 1", n)
	}

	// Lock failures are DML errors too.
	if err := f.org.Configure(fakeorg.ConfigPatch{LockRate: ptr(1.0)}); err != nil {
		t.Fatal(err)
	}
	var lock map[string]any
	f.do(http.MethodPost, apexPath, `{"Name":"Locked"}`).want(t, http.StatusInternalServerError).decode(t, &lock)
	if !strings.HasPrefix(lock["message"].(string), "Database error: unable to obtain exclusive access") {
		t.Errorf("lock: %v", lock)
	}

	f.do(http.MethodGet, apexPath, nil).wantError(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	f.do(http.MethodPost, "/services/apexrest/other", `{}`).wantError(t, http.StatusNotFound, "NOT_FOUND")
	if got := f.org.Stats().ByRoute["POST /apexrest/arrify/v1/accounts"]; got != 14 {
		t.Errorf("apexrest calls: got %d, want 14", got)
	}
}
