package soql

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"orgsync/salesforce"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT Id, Name, CreatedDate FROM Account WHERE (CreatedDate > 2026-11-22T10:00:00Z) OR " +
			"(CreatedDate = 2026-11-22T10:00:00Z AND Id > '001R00000033I6A') ORDER BY CreatedDate, Id LIMIT 2000",
		"SELECT COUNT() FROM Account WHERE Source_Id__c != null",
		"select id from account where name like 'a\\%b\\_c%' order by name desc nulls first limit 5 offset 10",
		"SELECT Id FROM A WHERE NOT (a = 1 OR b <> 2) AND c IN ('x', null, -3.5) AND d NOT IN (true, false)",
		"SELECT Id FROM A WHERE a >= 2026-01-02 AND b <= 2026-01-02T03:04:05.123+01:00 AND c < 2026-01-02T03:04:05-05:30",
		"SELECT Parent.Name, Count, Order FROM Order ORDER BY Parent.Name ASC NULLS LAST, Count DESC",
		`SELECT Id FROM A WHERE a = 'it\'s \\ \n\t\r\b\f\"'`,
		"SELECT Id FROM A WHERE a = 1 AND b = 2 OR c = 3",
		"SELECT Id FROMM Account",
		"SELECT Id FROM A WHERE a = 2024-31-01",
		"SELECT Id FROM A WHERE a = 'unterminated",
		"SELECT Id FROM A OFFSET 2001",
		"SELECT Id FROM A WHERE ((((a = 1))))",
		"SELECT Id FROM A WHERE a = 0000-01-01T00:00:00+01:00",
		"SELECT Id FROM A WHERE a = 9999-12-31T23:59:59-01:00",
		"SELECT Id FROM A LIMIT 9223372036854775807",
		"SELECT Id FROM A WHERE a = 'x\\é' OR b LIKE '_%\\_' OR c = 'ünï\x80'",
		"SELECT Id FROM A WHERE a = 1.5e3",
		"SELECT Id FROM A WHERE a IN (2026-01-02T03:04:05.123456789123Z)",
		"SELECT Id FROM A WHERE Id = '001R00000033I6A' AND IsDeleted = false AND x.y.z != null",
		"SELECT Id FROM A WHERE NOT NOT NOT a = 1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("got %T, want *Error", err)
			}
			if e.Code == "" || e.Message == "" {
				t.Fatalf("got code %q message %q, want both set", e.Code, e.Message)
			}
			_ = e.Detail(s)
			return
		}
		canon := q.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): got error %v, want none", canon, s, err)
		}
		if !reflect.DeepEqual(again, q) {
			t.Fatalf("re-parsing %q (from %q): got %#v, want %#v", canon, s, again, q)
		}
		if got := again.String(); got != canon {
			t.Fatalf("String of re-parsed query: got %q, want %q", got, canon)
		}

		// Resolve, Match and Compare must not panic either.
		err = q.Resolve(fuzzLookup)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code == "" {
				t.Fatalf("Resolve: got %v, want *Error with a code", err)
			}
			return
		}
		q.Match(fuzzRecord(0))
		q.Match(fuzzRecord(1))
		q.Compare(fuzzRecord(0), fuzzRecord(1))
		if _, err := Parse(q.String()); err != nil {
			t.Fatalf("re-parsing resolved %q: got error %v, want none", q.String(), err)
		}
	})
}

// fuzzLookup accepts every field, with a kind that depends on the name.
func fuzzLookup(name string) (string, FieldKind, bool) {
	return name, FieldKind(len(name) % 6), true
}

// fuzzRecord returns a record whose values depend on the field name: some
// of the right type for fuzzLookup's kind, some null, some of the wrong type.
func fuzzRecord(seed int) func(string) any {
	return func(f string) any {
		switch (len(f) + seed) % 8 {
		case 0:
			return nil
		case 1:
			return "001R00000033I6AIAU"
		case 2:
			return 42.5
		case 3:
			return true
		case 4:
			return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		case 5:
			return "2026-01-02"
		case 6:
			return 7
		}
		return "Acme"
	}
}

// FuzzInList holds Match's set lookup of IN lists on text and ID fields to
// the same IN list compared literal by literal (an OR of "=" terms), for
// any values, case variants, non-ASCII and invalid UTF-8 among them.
func FuzzInList(f *testing.F) {
	f.Add("Acme", "ACME", "other", "acme")
	f.Add("ärger", "ÄRGER", "x", "Ärger")
	f.Add("a\xfe", "a\xff", "", "a\xfe")
	f.Add(testID15, testID18, "001R00000064wdt", testID18)
	f.Add("ß", "SS", "ẞ", "ss")
	f.Fuzz(func(t *testing.T, a, b, c, v string) {
		lits := []string{a, b, c}
		for _, field := range []string{"Name", "Id", "Source_Id__c"} {
			var quoted, terms []string
			for _, l := range lits {
				quoted = append(quoted, salesforce.SOQLString(l))
				terms = append(terms, field+" = "+salesforce.SOQLString(l))
			}
			in, err := Parse("SELECT Id FROM Account WHERE " + field + " IN (" + strings.Join(quoted, ", ") + ")")
			if err != nil {
				t.Skip() // not every byte string is a literal
			}
			or, err := Parse("SELECT Id FROM Account WHERE " + strings.Join(terms, " OR "))
			if err != nil {
				t.Fatalf("the OR form does not parse when the IN form does: %v", err)
			}
			if in.Resolve(accountLookup) != nil || or.Resolve(accountLookup) != nil {
				t.Skip()
			}
			if len(in.inSets) != 1 {
				t.Fatalf("%s IN (…): %d IN sets, want 1", field, len(in.inSets))
			}
			for _, val := range []any{v, a, strings.ToUpper(a), strings.ToLower(b), nil, 3} {
				get := func(string) any { return val }
				if got, want := in.Match(get), or.Match(get); got != want {
					t.Errorf("%s IN %q with %#v: got %v, the literal-by-literal form says %v", field, lits, val, got, want)
				}
			}
		}
	})
}
