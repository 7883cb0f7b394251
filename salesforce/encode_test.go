package salesforce

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// A collection body decodes to what encoding/json would have written.
func TestAppendCollectionBody(t *testing.T) {
	recs := []Record{
		{"Name": "Acme \"quoted\" <b>&\n\t\u2028 é 日本", "Source_Id__c": "S1", "NumberOfEmployees": json.Number("12"),
			"AnnualRevenue": json.Number("-1.5e3"), "Active": true, "Fax": nil, "attributes": map[string]any{"type": "Ignored"},
			"Parent": map[string]any{"Source_Id__c": "P1"}, "Raw__c": json.RawMessage(`{"a":[1,2]}`), "Score__c": 3.25},
		{"Name": "Ctrl \x01\x1f bad \xff utf8"},
	}
	b, err := appendCollectionBody(nil, "Account", true, recs)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	want := map[string]any{"allOrNone": true, "records": []any{
		map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "Acme \"quoted\" <b>&\n\t\u2028 é 日本",
			"Source_Id__c": "S1", "NumberOfEmployees": 12.0, "AnnualRevenue": -1500.0, "Active": true, "Fax": nil,
			"Parent": map[string]any{"Source_Id__c": "P1"}, "Raw__c": map[string]any{"a": []any{1.0, 2.0}}, "Score__c": 3.25},
		map[string]any{"attributes": map[string]any{"type": "Account"}, "Name": "Ctrl \x01\x1f bad \ufffd utf8"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	for _, bad := range []any{json.Number("1x"), json.Number(""), json.RawMessage(`{`), make(chan int)} {
		if _, err := appendCollectionBody(nil, "Account", false, []Record{{"F": bad}}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// appendString writes what encoding/json reads back as the same string
// (invalid UTF-8 as U+FFFD, like encoding/json).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\r\t\x00\x1f", "é日本\u2028\u2029", "\xff\xfe", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q → %s: %v", s, b, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // invalid bytes become U+FFFD
		}
		if got != want {
			t.Fatalf("%q → %s → %q", s, b, got)
		}
	})
}

func FuzzValidNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "12", "1.5", "1e9", "-1.5E-3", "01", "1.", ".5", "+1", "1e", "", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A JSON number is valid JSON that starts with '-' or a digit and
		// has no surrounding space.
		want := json.Valid([]byte(s)) && strings.TrimSpace(s) == s && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9')
		if got := validNumber(s); got != want {
			t.Fatalf("validNumber(%q) = %v, encoding/json says %v", s, got, want)
		}
	})
}

// Records encoded first (AppendRecord, as RawRecords) make the same body as
// the records themselves.
func TestAppendRawCollectionBody(t *testing.T) {
	for _, recs := range [][]Record{
		{{}, {"Name": "A"}, {"attributes": map[string]any{"type": "X"}}, {"Parent": map[string]any{"Ext__c": "P"}}},
		{{"Name": "Only"}},
		{},
	} {
		want, err := appendCollectionBody(nil, "Account", false, recs)
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]RawRecord, len(recs))
		for i, rec := range recs {
			if raw[i], err = AppendRecord(nil, rec); err != nil {
				t.Fatal(err)
			}
		}
		if got := appendRawCollectionBody(nil, "Account", false, raw); string(got) != string(want) {
			t.Errorf("raw body %s\nwant     %s", got, want)
		}
	}
	if _, err := AppendRecord(nil, Record{"N": json.Number("1x")}); err == nil || !strings.Contains(err.Error(), "field N") {
		t.Errorf("bad number: %v", err)
	}
}
