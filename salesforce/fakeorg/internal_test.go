package fakeorg

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
)

func TestEncodeBase62(t *testing.T) {
	tests := []struct {
		n     uint64
		width int
		want  string
	}{
		{0, 3, "000"},
		{1, 3, "001"},
		{61, 3, "00z"},
		{62, 3, "010"},
		{62*62*62 - 1, 3, "zzz"},
	}
	for _, tt := range tests {
		if got := encodeBase62(tt.n, tt.width); got != tt.want {
			t.Errorf("encodeBase62(%d, %d): got %q, want %q", tt.n, tt.width, got, tt.want)
		}
	}
}

func TestIDMinter(t *testing.T) {
	m := newIDMinter(salesforce.ID18("00D000000000xYz"))
	first, second := m.next(salesforce.PrefixAccount), m.next(salesforce.PrefixAccount)
	if first != salesforce.ID18("001xYz000000001") || second != salesforce.ID18("001xYz000000002") {
		t.Errorf("got %s, %s", first, second)
	}
	if u := m.next(salesforce.PrefixUser); u != salesforce.ID18("005xYz000000001") {
		t.Errorf("user id: got %s", u)
	}
	for _, id := range []string{first, second, randomOrgID()} {
		if _, err := salesforce.NormalizeID(id); err != nil || len(id) != 18 {
			t.Errorf("%s: %v", id, err)
		}
	}
}

func TestReleaseLabel(t *testing.T) {
	tests := map[int]string{20: "Winter '11", 59: "Winter '24", 60: "Spring '24", 61: "Summer '24", 62: "Winter '25", 63: "Spring '25", 64: "Summer '25", 66: "Spring '26"}
	for v, want := range tests {
		if got := releaseLabel(v); got != want {
			t.Errorf("releaseLabel(%d): got %q, want %q", v, got, want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in    string
		want  string
		major int
		ok    bool
	}{
		{"v63.0", "63.0", 63, true},
		{"v20.0", "20.0", 20, true},
		{"v19.0", "", 0, false},
		{"v63.1", "", 0, false},
		{"v063.0", "", 0, false},
		{"63.0", "", 0, false},
		{"latest", "", 0, false},
	}
	for _, tt := range tests {
		got, major, ok := parseVersion(tt.in)
		if got != tt.want || major != tt.major || ok != tt.ok {
			t.Errorf("parseVersion(%q): got %q %d %v, want %q %d %v", tt.in, got, major, ok, tt.want, tt.major, tt.ok)
		}
	}
}

func TestSplitPath(t *testing.T) {
	got, ok := splitPath("v63.0/sobjects/Account/Source_Id__c/a%2Fb%20c/")
	if !ok || len(got) != 5 || got[4] != "a/b c" {
		t.Errorf("got %q, %v", got, ok)
	}
	if _, ok := splitPath("v63.0/%zz"); ok {
		t.Errorf("bad escape accepted")
	}
}

func TestParseExp(t *testing.T) {
	tests := []struct {
		raw  string
		want int64
		ok   bool
	}{
		{`1767225600`, 1767225600, true},
		{`"1767225600"`, 1767225600, true},
		{`1767225600.5`, 1767225600, true},
		{`"soon"`, 0, false},
		{`null`, 0, false},
		{``, 0, false},
		{`-5`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseExp(json.RawMessage(tt.raw))
		if ok != tt.ok || ok && got.Unix() != tt.want {
			t.Errorf("parseExp(%s): got %v %v, want %d %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRollback(t *testing.T) {
	o, err := New(Config{Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := o.InsertAccount(Record{"Name": "keep", "Source_Id__c": "K"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	tx := &txn{}
	in, _ := o.parseRecord(map[string]any{"Name": "new", "Source_Id__c": "N"})
	merged, verr := o.prepare(in, nil, "", writeOpts{})
	if verr != nil {
		t.Fatal(verr)
	}
	o.commitCreate(merged, time.Time{}, tx)
	upd, _ := o.parseRecord(map[string]any{"Source_Id__c": "K2"})
	if err := o.updateLocked(keep, upd, writeOpts{}, tx); err != nil {
		t.Fatal(err)
	}
	if err := o.softDelete(o.accounts[keep], tx, false); err != nil {
		t.Fatal(err)
	}
	tx.rollback()
	o.mu.Unlock()
	if got := o.Accounts(); len(got) != 1 || got[0]["Source_Id__c"] != "K" || got[0]["IsDeleted"] != false {
		t.Errorf("after rollback: %v", got)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if ids := o.lookupExternal("k"); len(ids) != 1 || ids[0] != keep {
		t.Errorf("index: K → %v", ids)
	}
	for _, k := range []string{"n", "k2"} {
		if ids := o.lookupExternal(k); len(ids) != 0 {
			t.Errorf("index: %s → %v", k, ids)
		}
	}
	if len(o.order) != 1 {
		t.Errorf("order: %v", o.order)
	}
}

func TestReplicationIDLimit(t *testing.T) {
	defer func(n int) { replicationIDLimit = n }(replicationIDLimit)
	replicationIDLimit = 1
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	o, err := New(Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		id, err := o.InsertAccount(Record{"Name": name}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	tok := o.IssueAccessToken()
	get := func(kind string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/services/data/v63.0/sobjects/Account/"+kind+
			"/?start=2026-01-01T11%3A00%3A00Z&end=2026-01-01T13%3A00%3A00Z", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	const exceeded = `[{"message":"More than 1 ids were found. Choose start and end dates that are closer together.","errorCode":"EXCEEDED_ID_LIMIT"}]`
	if code, body := get("updated"); code != http.StatusBadRequest || body != exceeded {
		t.Errorf("updated: %d %s", code, body)
	}
	o.mu.Lock()
	for _, id := range ids[:2] {
		_ = o.softDelete(o.accounts[id], nil, false)
	}
	o.mu.Unlock()
	if code, body := get("updated"); code != http.StatusOK || !strings.Contains(body, ids[2]) {
		t.Errorf("updated with one live record: %d %s", code, body)
	}
	if code, body := get("deleted"); code != http.StatusBadRequest || body != exceeded {
		t.Errorf("deleted: %d %s", code, body)
	}
}
