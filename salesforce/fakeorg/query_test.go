package fakeorg_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce/fakeorg"
)

type queryPage struct {
	TotalSize      int              `json:"totalSize"`
	Done           bool             `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

func (f *fixture) query(t *testing.T, path string) queryPage {
	t.Helper()
	var p queryPage
	f.do(http.MethodGet, path, nil).want(t, http.StatusOK).decode(t, &p)
	return p
}

var locatorURL = regexp.MustCompile(`^/services/data/v(\d+\.0)/query/(01g[0-9A-Za-z]{15})-(\d+)$`)

func TestQuery_Paging(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	const n = 4500
	for i := range n {
		if _, err := f.org.InsertAccount(fakeorg.Record{"Name": fmt.Sprintf("Acct %04d", i)}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	path := "/services/data/v58.0/query?q=" + url.QueryEscape("SELECT Id, Name FROM Account ORDER BY Name")
	var sizes []int
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		p := f.query(t, path)
		if p.TotalSize != n {
			t.Errorf("totalSize: got %d, want %d", p.TotalSize, n)
		}
		sizes = append(sizes, len(p.Records))
		for _, r := range p.Records {
			id := r["Id"].(string)
			if len(id) != 18 || seen[id] || len(r) != 3 {
				t.Fatalf("record %v (seen %v)", r, seen[id])
			}
			seen[id] = true
		}
		if p.Done {
			if p.NextRecordsURL != "" {
				t.Errorf("last page has nextRecordsUrl %q", p.NextRecordsURL)
			}
			break
		}
		m := locatorURL.FindStringSubmatch(p.NextRecordsURL)
		if m == nil || m[1] != "58.0" {
			t.Fatalf("nextRecordsUrl %q does not echo v58.0 or is malformed", p.NextRecordsURL)
		}
		path = p.NextRecordsURL
	}
	if fmt.Sprint(sizes) != "[2000 2000 500]" {
		t.Errorf("page sizes: got %v, want [2000 2000 500]", sizes)
	}
	var first queryPage
	f.doWith(http.MethodGet, B+"/query?q=SELECT+Id+FROM+Account", nil, map[string]string{
		"Authorization": "Bearer " + f.token, "Sforce-Query-Options": "batchSize=300",
	}).want(t, http.StatusOK).decode(t, &first)
	if len(first.Records) != 300 || !strings.HasSuffix(first.NextRecordsURL, "-300") {
		t.Errorf("batchSize=300: %d records, next %q", len(first.Records), first.NextRecordsURL)
	}
	if next := f.query(t, first.NextRecordsURL); len(next.Records) != 300 {
		t.Errorf("batchSize kept by the cursor: got %d", len(next.Records))
	}
	if got := f.org.Stats().ByRoute["GET /query/{locator}"]; got != 3 {
		t.Errorf("locator calls: got %d, want 3", got)
	}
	f.do(http.MethodGet, B+"/query/01gBOGUS-2000", nil).wantError(t, http.StatusBadRequest, "INVALID_QUERY_LOCATOR")
}

func TestQuery_SmallPagesAndIDs(t *testing.T) {
	f := newFixture(t, fakeorg.Config{PageSize: 5})
	var ids []string
	for i := range 12 {
		ids = append(ids, f.create(map[string]any{"Name": fmt.Sprint("N", i)}))
	}
	// 15- and 18-character ids in WHERE; three pages of 5, 5, 2 with the go-salesforce spelling.
	q := fmt.Sprintf("SELECT Id FROM Account WHERE Id IN ('%s', '%s') OR Name != null", ids[0][:15], ids[1])
	path := B + "/query/?q=" + url.QueryEscape(q)
	var got []string
	for path != "" {
		p := f.query(t, path)
		for _, r := range p.Records {
			got = append(got, r["Id"].(string))
		}
		path = p.NextRecordsURL
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("ids: got %v, want %v", got, ids)
	}
	p := f.query(t, B+"/query?q="+url.PathEscape(fmt.Sprintf("SELECT Id, Name FROM Account WHERE Id = '%s'", ids[3][:15])))
	if p.TotalSize != 1 || p.Records[0]["Id"] != ids[3] || p.Records[0]["Name"] != "N3" {
		t.Errorf("by 15-char id: %+v", p)
	}
	attrs := p.Records[0]["attributes"].(map[string]any)
	if attrs["type"] != "Account" || attrs["url"] != B+"/sobjects/Account/"+ids[3] {
		t.Errorf("attributes: %v", attrs)
	}
}

func TestQuery_Forms(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	f.create(map[string]any{"Name": "Acme Corp", "Industry": "Energy"})
	f.create(map[string]any{"Name": "Globex", "Industry": "Media"})
	for _, path := range []string{
		B + "/query?q=SELECT+Id,Name+FROM+Account",
		B + "/query?q=SELECT%20Id,%20Name%20FROM%20Account",
		B + "/query/?q=SELECT+Id%2CName+FROM+Account",
	} {
		p := f.query(t, path)
		if p.TotalSize != 2 || !p.Done || len(p.Records) != 2 {
			t.Errorf("%s: %+v", path, p)
		}
	}
	var raw map[string]any
	f.do(http.MethodGet, B+"/query?q="+url.QueryEscape("SELECT COUNT() FROM Account WHERE Industry = 'energy'"), nil).want(t, http.StatusOK).decode(t, &raw)
	if raw["totalSize"] != 1.0 || raw["done"] != true || len(raw["records"].([]any)) != 0 {
		t.Errorf("COUNT(): %v", raw)
	}
	p := f.query(t, B+"/query?q="+url.QueryEscape("SELECT Name FROM Account WHERE Name LIKE 'acme%'"))
	if p.TotalSize != 1 || p.Records[0]["Name"] != "Acme Corp" {
		t.Errorf("LIKE: %+v", p)
	}
	empty := f.query(t, B+"/query?q="+url.QueryEscape("SELECT Id FROM Account WHERE Name = 'none'"))
	if empty.TotalSize != 0 || !empty.Done || empty.Records == nil {
		t.Errorf("empty: %+v", empty)
	}
	tests := []struct {
		name, q, code, msg string
	}{
		{"malformed", "SELEC Id FROM Account", "MALFORMED_QUERY", ""},
		{"unknown field", "SELECT Nope FROM Account", "INVALID_FIELD", ""},
		{"unknown object", "SELECT Id FROM Widget", "INVALID_TYPE",
			"\nSELECT Id FROM Widget\n               ^\nERROR at Row:1:Column:16\nsObject type 'Widget' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."},
		{"empty", "", "MALFORMED_QUERY", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := f.do(http.MethodGet, B+"/query?q="+url.QueryEscape(tt.q), nil).wantError(t, http.StatusBadRequest, tt.code)
			if tt.msg != "" && e.Message != tt.msg {
				t.Errorf("message: got %q, want %q", e.Message, tt.msg)
			}
		})
	}
}

func TestQuery_OrderAndWatermark(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	start := f.clock.Now()
	var ids []string
	for i := range 6 {
		if i%2 == 0 {
			f.clock.Advance(time.Second) // pairs share a SystemModstamp
		}
		ids = append(ids, f.create(map[string]any{"Name": fmt.Sprint("R", 5-i)}))
	}
	q := "SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp >= " + start.Add(time.Second).Format(time.RFC3339) + " ORDER BY SystemModstamp, Id"
	p := f.query(t, B+"/query?q="+url.QueryEscape(q))
	if p.TotalSize != 6 {
		t.Fatalf("totalSize: %d", p.TotalSize)
	}
	for i, r := range p.Records {
		if r["Id"] != ids[i] {
			t.Errorf("row %d: got %v, want %s", i, r["Id"], ids[i])
		}
		if ts := r["SystemModstamp"].(string); !strings.HasSuffix(ts, ".000+0000") {
			t.Errorf("datetime format: %q", ts)
		}
	}
	q = "SELECT Id FROM Account WHERE SystemModstamp > " + start.Add(2*time.Second).Format(time.RFC3339) + " ORDER BY Name DESC LIMIT 1"
	p = f.query(t, B+"/query?q="+url.QueryEscape(q))
	if p.TotalSize != 1 || p.Records[0]["Id"] != ids[4] {
		t.Errorf("filter+order+limit: %+v", p)
	}
}

func TestQueryAll_Deleted(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	a := f.create(map[string]any{"Name": "A"})
	f.create(map[string]any{"Name": "B"})
	f.do(http.MethodDelete, B+"/sobjects/Account/"+a, nil).want(t, http.StatusNoContent)
	if p := f.query(t, B+"/query?q=SELECT+Id+FROM+Account"); p.TotalSize != 1 {
		t.Errorf("query sees deleted rows: %+v", p)
	}
	p := f.query(t, B+"/queryAll?q=SELECT+Id,IsDeleted+FROM+Account+WHERE+IsDeleted+=+true")
	if p.TotalSize != 1 || p.Records[0]["Id"] != a || p.Records[0]["IsDeleted"] != true {
		t.Errorf("queryAll: %+v", p)
	}
	if p := f.query(t, B+"/queryAll/?q=SELECT+Id+FROM+Account"); p.TotalSize != 2 {
		t.Errorf("queryAll/: %+v", p)
	}
}
