package soql

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
)

type record map[string]any

func (r record) get(f string) any { return r[f] }

func TestMatch(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	other15 := "001R00000064wdt" // 18-char form ends in IAA
	tests := []struct {
		name  string
		where string
		rec   record
		want  bool
	}{
		// No WHERE.
		{"no condition", "", record{}, true},

		// Text: case-insensitive =, !=, ordering.
		{"= ignores case", "Name = 'acme'", record{"Name": "ACME"}, true},
		{"= differs", "Name = 'acme'", record{"Name": "Acme Ltd"}, false},
		{"= non-ASCII case", "Name = 'ÄRGER'", record{"Name": "ärger"}, true},
		{"= invalid UTF-8 bytes differ", "Name = 'a\xfe'", record{"Name": "a\xff"}, false},
		{"= invalid UTF-8 bytes match", "Name = 'a\xfe'", record{"Name": "a\xfe"}, true},
		{"!= same but for case", "Name != 'acme'", record{"Name": "Acme"}, false},
		{"!= differs", "Name != 'acme'", record{"Name": "Other"}, true},
		{"<> differs", "Name <> 'acme'", record{"Name": "Other"}, true},
		{"< ignores case", "Name < 'b'", record{"Name": "Apple"}, true},
		{"< upper-case literal", "Name < 'B'", record{"Name": "apple"}, true},
		{"> false", "Name > 'b'", record{"Name": "Apple"}, false},
		{"<= equal but for case", "Name <= 'APPLE'", record{"Name": "apple"}, true},
		{">= equal but for case", "Name >= 'APPLE'", record{"Name": "apple"}, true},
		{"empty string is a value", "Source_Id__c != null", record{"Source_Id__c": ""}, true},

		// Numbers, stored as int or float64.
		{"> int", "AnnualRevenue > 100", record{"AnnualRevenue": 150}, true},
		{"> float", "AnnualRevenue > 100", record{"AnnualRevenue": 99.5}, false},
		{"= int vs decimal literal", "AnnualRevenue = 100.0", record{"AnnualRevenue": 100}, true},
		{"<= negative", "AnnualRevenue <= -5", record{"AnnualRevenue": -5.0}, true},
		{">= int64", "NumberOfEmployees >= 10", record{"NumberOfEmployees": int64(10)}, true},
		{"< json.Number", "NumberOfEmployees < 10", record{"NumberOfEmployees": json.Number("9.5")}, true},
		{"!= number", "NumberOfEmployees != 3", record{"NumberOfEmployees": 4}, true},
		{"number field holding text", "NumberOfEmployees = 3", record{"NumberOfEmployees": "3"}, false},

		// LIKE.
		{"LIKE prefix", "Name LIKE 'ac%'", record{"Name": "Acme"}, true},
		{"LIKE suffix", "Name LIKE '%ME'", record{"Name": "acme"}, true},
		{"LIKE infix", "Name LIKE '%cm%'", record{"Name": "Acme"}, true},
		{"LIKE % matches nothing", "Name LIKE 'acme%'", record{"Name": "Acme"}, true},
		{"LIKE _ is one character", "Name LIKE 'a_me'", record{"Name": "Acme"}, true},
		{"LIKE _ needs a character", "Name LIKE 'acme_'", record{"Name": "Acme"}, false},
		{"LIKE _ is one rune", "Name LIKE '_x'", record{"Name": "éx"}, true},
		{"LIKE anchored", "Name LIKE 'cm'", record{"Name": "Acme"}, false},
		{"LIKE backtracks", "Name LIKE '%a%b'", record{"Name": "xaxab"}, true},
		{"LIKE backtracking fails", "Name LIKE '%a%b'", record{"Name": "xaxba"}, false},
		{"LIKE escaped %", `Name LIKE '100\%'`, record{"Name": "100%"}, true},
		{"LIKE escaped % is literal", `Name LIKE '100\%'`, record{"Name": "1000"}, false},
		{"LIKE escaped _", `Name LIKE 'a\_b'`, record{"Name": "a_b"}, true},
		{"LIKE escaped _ is literal", `Name LIKE 'a\_b'`, record{"Name": "axb"}, false},
		{"LIKE escaped backslash then wildcard", `Name LIKE 'a\\%'`, record{"Name": `a\bc`}, true},
		{"LIKE escaped quote", `Name LIKE 'O\'Brien%'`, record{"Name": "o'brien & co"}, true},
		{"LIKE only %", "Name LIKE '%'", record{"Name": ""}, true},
		{"LIKE null field", "Name LIKE '%'", record{}, false},
		{"LIKE null literal", "Name LIKE null", record{"Name": "x"}, false},

		// IN and NOT IN.
		{"IN ignores case", "Name IN ('x', 'ACME')", record{"Name": "acme"}, true},
		{"IN misses", "Name IN ('x', 'y')", record{"Name": "acme"}, false},
		{"IN null matches a null field", "Name IN (null, 'x')", record{}, true},
		{"IN without null misses a null field", "Name IN ('x')", record{}, false},
		{"NOT IN", "Name NOT IN ('x')", record{"Name": "acme"}, true},
		{"NOT IN ignores case", "Name NOT IN ('x', 'ACME')", record{"Name": "acme"}, false},
		{"NOT IN null field", "Name NOT IN ('x')", record{}, false},
		{"NOT IN with null, non-null field", "Name NOT IN (null, 'x')", record{"Name": "y"}, true},
		{"IN numbers", "AnnualRevenue IN (1, 2.5)", record{"AnnualRevenue": 2.5}, true},

		// Nulls.
		{"= null on null", "Source_Id__c = null", record{}, true},
		{"= null on value", "Source_Id__c = null", record{"Source_Id__c": "x"}, false},
		{"!= null on value", "Source_Id__c != null", record{"Source_Id__c": "x"}, true},
		{"!= null on null", "Source_Id__c != null", record{}, false},
		{"!= value on null", "Name != 'x'", record{}, true}, // SOQL's != keeps nulls
		{"< on null", "AnnualRevenue < 5", record{}, false},
		{">= on null", "AnnualRevenue >= 5", record{}, false},
		{"NOT of a comparison on null", "NOT AnnualRevenue < 5", record{}, true},
		{"< null", "AnnualRevenue < null", record{"AnnualRevenue": 1}, false},
		{"datetime = null", "CreatedDate = null", record{"CreatedDate": nil}, true},

		// Checkboxes read null as false.
		{"checkbox null = false", "IsDeleted = false", record{}, true},
		{"checkbox false = null", "IsDeleted = null", record{"IsDeleted": false}, true},
		{"checkbox true != null", "IsDeleted != null", record{"IsDeleted": true}, true},
		{"checkbox false != null", "IsDeleted != null", record{"IsDeleted": false}, false},
		{"checkbox true = true", "IsDeleted = true", record{"IsDeleted": true}, true},
		{"checkbox != true", "IsDeleted != true", record{"IsDeleted": false}, true},

		// Datetimes.
		{"datetime >", "CreatedDate > 2026-11-22T10:00:00Z", record{"CreatedDate": ts.Add(time.Millisecond)}, true},
		{"datetime > equal", "CreatedDate > 2026-11-22T10:00:00Z", record{"CreatedDate": ts}, false},
		{"datetime = with offset", "CreatedDate = 2026-11-22T11:00:00+01:00", record{"CreatedDate": ts}, true},
		{"datetime = negative offset", "CreatedDate = 2026-11-22T04:30:00-05:30", record{"CreatedDate": ts}, true},
		{"datetime stored in another zone", "CreatedDate = 2026-11-22T10:00:00Z",
			record{"CreatedDate": ts.In(time.FixedZone("EST", -5*3600))}, true},
		{"datetime milliseconds", "CreatedDate < 2026-11-22T10:00:00.123Z", record{"CreatedDate": ts.Add(122 * time.Millisecond)}, true},
		{"datetime milliseconds equal", "CreatedDate = 2026-11-22T10:00:00.123Z", record{"CreatedDate": ts.Add(123 * time.Millisecond)}, true},
		{"datetime stored as Salesforce text", "CreatedDate = 2026-11-22T10:00:00Z", record{"CreatedDate": "2026-11-22T10:00:00.000+0000"}, true},
		{"datetime stored as RFC 3339", "CreatedDate >= 2026-11-22T10:00:00Z", record{"CreatedDate": "2026-11-22T11:00:00+01:00"}, true},
		{"datetime stored as junk", "CreatedDate >= 2026-11-22T10:00:00Z", record{"CreatedDate": "soon"}, false},

		// Dates.
		{"date =", "LastActivityDate = 2026-01-02", record{"LastActivityDate": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}, true},
		{"date = ignores time of day", "LastActivityDate = 2026-01-02",
			record{"LastActivityDate": time.Date(2026, 1, 2, 23, 0, 0, 0, time.FixedZone("X", 3600))}, true},
		{"date stored as text", "LastActivityDate < 2026-01-03", record{"LastActivityDate": "2026-01-02"}, true},
		{"date >", "LastActivityDate > 2026-01-02", record{"LastActivityDate": "2026-01-02"}, false},

		// IDs: 15 and 18 characters compare by the 18-character form.
		{"ID 15-char literal, 18-char value", "Id = '" + testID15 + "'", record{"Id": testID18}, true},
		{"ID 18-char literal, 15-char value", "Id = '" + testID18 + "'", record{"Id": testID15}, true},
		{"ID lower-case suffix", "Id = '" + testID15 + "iau'", record{"Id": testID18}, true},
		{"ID 15-char is case-sensitive", "Id = '" + strings.ToLower(testID15) + "'", record{"Id": testID18}, false},
		{"ID other record", "Id = '" + other15 + "'", record{"Id": testID18}, false},
		{"ID !=", "Id != '" + other15 + "'", record{"Id": testID18}, true},
		{"ID >", "Id > '" + testID15 + "'", record{"Id": mustID(other15)}, true},
		{"ID > itself", "Id > '" + testID15 + "'", record{"Id": testID18}, false},
		{"ID IN", "ParentId IN ('" + other15 + "', '" + testID15 + "')", record{"ParentId": testID18}, true},
		{"ID NOT IN", "ParentId NOT IN ('" + testID15 + "')", record{"ParentId": testID18}, false},

		// Precedence and grouping.
		{"NOT binds tighter than AND (true)", "NOT Name = 'a' AND AnnualRevenue = 1", record{"Name": "b", "AnnualRevenue": 1}, true},
		{"NOT binds tighter than AND (false)", "NOT Name = 'a' AND AnnualRevenue = 1", record{"Name": "a", "AnnualRevenue": 2}, false},
		{"NOT over a group", "NOT (Name = 'a' AND AnnualRevenue = 1)", record{"Name": "a", "AnnualRevenue": 2}, true},
		{"AND chain", "Name = 'a' AND AnnualRevenue = 1 AND IsDeleted = false", record{"Name": "a", "AnnualRevenue": 1}, true},
		{"AND chain fails", "Name = 'a' AND AnnualRevenue = 1 AND IsDeleted = true", record{"Name": "a", "AnnualRevenue": 1}, false},
		{"OR chain", "Name = 'x' OR Name = 'y' OR Name = 'a'", record{"Name": "a"}, true},
		{"OR of AND", "(Name = 'x' AND AnnualRevenue = 1) OR AnnualRevenue = 2", record{"Name": "a", "AnnualRevenue": 2}, true},
		{"AND of OR", "Name = 'x' AND (AnnualRevenue = 1 OR AnnualRevenue = 2)", record{"Name": "a", "AnnualRevenue": 2}, false},
		{"NOT NOT", "NOT NOT Name = 'a'", record{"Name": "A"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "SELECT Id FROM Account"
			if tt.where != "" {
				src += " WHERE " + tt.where
			}
			q := mustResolve(t, src)
			if got := q.Match(tt.rec.get); got != tt.want {
				t.Errorf("%s on %v: got %v, want %v", tt.where, tt.rec, got, tt.want)
			}
		})
	}
}

func mustID(id string) string {
	n, err := salesforce.NormalizeID(id)
	if err != nil {
		panic(err)
	}
	return n
}

// TestMatchUnresolved checks that Match guesses kinds from literals when
// Resolve was not called.
func TestMatchUnresolved(t *testing.T) {
	tests := []struct {
		name  string
		where string
		rec   record
		want  bool
	}{
		{"text", "Name = 'ACME'", record{"Name": "acme"}, true},
		{"number", "N > 1", record{"N": 2}, true},
		{"bool", "B = true", record{"B": true}, true},
		{"datetime", "D = 2026-01-01T01:00:00+01:00", record{"D": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, true},
		{"date", "D = 2026-01-01", record{"D": "2026-01-01"}, true},
		{"type mismatch", "N = 'x'", record{"N": 2}, false},
		{"null", "N = null", record{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse("SELECT Id FROM A WHERE " + tt.where)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := q.Match(tt.rec.get); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMatchPollerQueries runs the producer's two query shapes over a small
// org.
func TestMatchPollerQueries(t *testing.T) {
	wm := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = salesforce.ID18("001R000000000" + string(rune('A'+i)) + "A")
	}
	recs := []record{
		{"Id": ids[0], "Name": "before", "CreatedDate": wm.Add(-time.Second)},
		{"Id": ids[1], "Name": "at, seen", "CreatedDate": wm, "Source_Id__c": "x"},
		{"Id": ids[2], "Name": "at, cursor", "CreatedDate": wm},
		{"Id": ids[3], "Name": "at, new", "CreatedDate": wm},
		{"Id": ids[4], "Name": "after", "CreatedDate": wm.Add(time.Millisecond), "Source_Id__c": "y"},
		{"Id": ids[5], "Name": "later", "CreatedDate": wm.Add(time.Hour)},
	}
	// Shuffle the store order so that ORDER BY has work to do.
	store := []record{recs[5], recs[3], recs[0], recs[4], recs[2], recs[1]}

	page := mustResolve(t, "SELECT Id, Name, CreatedDate FROM Account WHERE (CreatedDate > 2026-11-22T10:00:00Z) OR "+
		"(CreatedDate = 2026-11-22T10:00:00Z AND Id > '"+ids[2][:15]+"') ORDER BY CreatedDate, Id LIMIT 2000")
	var got []string
	var matched []record
	for _, r := range store {
		if page.Match(r.get) {
			matched = append(matched, r)
		}
	}
	sort.SliceStable(matched, func(i, j int) bool { return page.Compare(matched[i].get, matched[j].get) < 0 })
	for _, r := range matched {
		got = append(got, r["Name"].(string))
	}
	want := []string{"at, new", "after", "later"}
	if !slices.Equal(got, want) {
		t.Errorf("page: got %v, want %v", got, want)
	}

	count := mustResolve(t, "SELECT COUNT() FROM Account WHERE Source_Id__c != null")
	n := 0
	for _, r := range store {
		if count.Match(r.get) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("count: got %v, want %v", n, 2)
	}
}

func TestCompare(t *testing.T) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a15, b15 := "001R00000033I6A", "001R00000064wdt"
	tests := []struct {
		name    string
		orderBy string
		recs    []record // in the order the sort should produce
	}{
		{"text ignores case", "Name", []record{{"Name": "apple"}, {"Name": "Banana"}, {"Name": "cherry"}}},
		{"text DESC", "Name DESC", []record{{"Name": "cherry"}, {"Name": "Banana"}, {"Name": "apple"}}},
		{"nulls first ascending by default", "Name", []record{{}, {"Name": "a"}, {"Name": "b"}}},
		{"nulls last descending by default", "Name DESC", []record{{"Name": "b"}, {"Name": "a"}, {}}},
		{"NULLS LAST ascending", "Name NULLS LAST", []record{{"Name": "a"}, {"Name": "b"}, {}}},
		{"NULLS FIRST descending", "Name DESC NULLS FIRST", []record{{}, {"Name": "b"}, {"Name": "a"}}},
		{"numbers", "AnnualRevenue", []record{{"AnnualRevenue": -1.5}, {"AnnualRevenue": 2}, {"AnnualRevenue": 10.0}}},
		{"datetimes", "CreatedDate DESC", []record{
			{"CreatedDate": ts.Add(time.Hour)}, {"CreatedDate": ts.Add(time.Millisecond)}, {"CreatedDate": ts}}},
		{"dates", "LastActivityDate", []record{{"LastActivityDate": "2025-12-31"}, {"LastActivityDate": ts}}},
		{"checkbox, null as false", "IsDeleted", []record{{}, {"IsDeleted": true}}},
		{"IDs by 18-char bytes, either form", "Id", []record{{"Id": a15}, {"Id": mustID(b15)}}},
		{"wrong Go type sorts after the right one", "Name", []record{{"Name": "z"}, {"Name": 1}, {"Name": 2}}},
		{"invalid stored IDs by their own bytes", "Id", []record{{"Id": "001"}, {"Id": a15}, {"Id": "zzz"}}},
		{"invalid UTF-8 stays distinct", "Name", []record{{"Name": "a"}, {"Name": "\xfe"}, {"Name": "\xff"}}},
		{"multi-key with tie-break", "CreatedDate, Id", []record{
			{"CreatedDate": ts, "Id": mustID(a15)},
			{"CreatedDate": ts, "Id": b15},
			{"CreatedDate": ts.Add(time.Second), "Id": a15},
		}},
		{"multi-key mixed directions and nulls", "Name DESC, AnnualRevenue", []record{
			{"Name": "b", "AnnualRevenue": 1},
			{"Name": "a"},
			{"Name": "A", "AnnualRevenue": 1},
			{"Name": "a", "AnnualRevenue": 2},
			{"AnnualRevenue": 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustResolve(t, "SELECT Id FROM Account ORDER BY "+tt.orderBy)
			// Every pair must compare in the wanted order, both ways round.
			for i := range tt.recs {
				for j := range tt.recs {
					got := sign(q.Compare(tt.recs[i].get, tt.recs[j].get))
					want := sign(i - j)
					if got != want {
						t.Errorf("Compare(%v, %v): got %v, want %v", tt.recs[i], tt.recs[j], got, want)
					}
				}
			}
		})
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestCompareTies(t *testing.T) {
	q := mustResolve(t, "SELECT Id FROM Account ORDER BY Name, CreatedDate")
	a, b := record{"Name": "ACME"}, record{"Name": "acme"}
	if got := q.Compare(a.get, b.get); got != 0 {
		t.Errorf("got %v, want %v", got, 0)
	}
	none := mustResolve(t, "SELECT Id FROM Account")
	if got := none.Compare(a.get, record{"Name": "z"}.get); got != 0 {
		t.Errorf("no ORDER BY: got %v, want %v", got, 0)
	}
}

func TestCompareUnresolved(t *testing.T) {
	q, err := Parse("SELECT Id FROM A ORDER BY X")
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	tests := []struct {
		name string
		a, b any
		want int
	}{
		{"text", "a", "B", -1},
		{"numbers", 2, 1.5, 1},
		{"times", time.Unix(1, 0), time.Unix(2, 0), -1},
		{"bools", true, false, 1},
		{"mixed types stay consistent", "a", 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sign(q.Compare(record{"X": tt.a}.get, record{"X": tt.b}.get))
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if back := sign(q.Compare(record{"X": tt.b}.get, record{"X": tt.a}.get)); back != -got {
				t.Errorf("reversed: got %v, want %v", back, -got)
			}
		})
	}
}
