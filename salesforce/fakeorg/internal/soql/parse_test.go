package soql

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dt(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func str(raw, decoded string) Value { return Value{Kind: ValueString, Str: decoded, raw: raw} }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Query
	}{
		{
			name: "fields only",
			in:   "SELECT Id, Name FROM Account",
			want: &Query{Fields: []string{"Id", "Name"}, Object: "Account", Limit: -1},
		},
		{
			name: "keywords in any case",
			in:   "select id from account where name = 'x' order by name desc nulls first limit 5 offset 10",
			want: &Query{
				Fields: []string{"id"}, Object: "account",
				Where:   &CompareExpr{Field: "name", Op: OpEq, Value: str("x", "x")},
				OrderBy: []OrderItem{{Field: "name", Desc: true, NullsLast: false}},
				Limit:   5, Offset: 10,
			},
		},
		{
			name: "count",
			in:   "SELECT COUNT() FROM Account WHERE Source_Id__c != null",
			want: &Query{
				Count: true, Object: "Account", Limit: -1,
				Where: &CompareExpr{Field: "Source_Id__c", Op: OpNe, Value: Value{Kind: ValueNull}},
			},
		},
		{
			name: "count with spaces and LIMIT",
			in:   "SELECT count ( ) FROM Account LIMIT 1",
			want: &Query{Count: true, Object: "Account", Limit: 1},
		},
		{
			name: "poller page query",
			in: "SELECT Id, Name, CreatedDate FROM Account WHERE (CreatedDate > 2026-11-22T10:00:00Z) OR " +
				"(CreatedDate = 2026-11-22T10:00:00Z AND Id > '001R00000033I6A') ORDER BY CreatedDate, Id LIMIT 2000",
			want: &Query{
				Fields: []string{"Id", "Name", "CreatedDate"}, Object: "Account",
				Where: &OrExpr{Terms: []Expr{
					&CompareExpr{Field: "CreatedDate", Op: OpGt, Value: Value{Kind: ValueDateTime, Time: dt("2026-11-22T10:00:00Z")}},
					&AndExpr{Terms: []Expr{
						&CompareExpr{Field: "CreatedDate", Op: OpEq, Value: Value{Kind: ValueDateTime, Time: dt("2026-11-22T10:00:00Z")}},
						&CompareExpr{Field: "Id", Op: OpGt, Value: str("001R00000033I6A", "001R00000033I6A")},
					}},
				}},
				OrderBy: []OrderItem{{Field: "CreatedDate"}, {Field: "Id"}},
				Limit:   2000,
			},
		},
		{
			name: "every comparison operator",
			in:   "SELECT Id FROM A WHERE a = 1 AND b != 2 AND c <> 3 AND d < 4 AND e <= 5 AND f > 6 AND g >= 7 AND h LIKE 'x%'",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Where: &AndExpr{Terms: []Expr{
				&CompareExpr{Field: "a", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 1}},
				&CompareExpr{Field: "b", Op: OpNe, Value: Value{Kind: ValueNumber, Num: 2}},
				&CompareExpr{Field: "c", Op: OpNe, Value: Value{Kind: ValueNumber, Num: 3}},
				&CompareExpr{Field: "d", Op: OpLt, Value: Value{Kind: ValueNumber, Num: 4}},
				&CompareExpr{Field: "e", Op: OpLe, Value: Value{Kind: ValueNumber, Num: 5}},
				&CompareExpr{Field: "f", Op: OpGt, Value: Value{Kind: ValueNumber, Num: 6}},
				&CompareExpr{Field: "g", Op: OpGe, Value: Value{Kind: ValueNumber, Num: 7}},
				&CompareExpr{Field: "h", Op: OpLike, Value: str("x%", "x%")},
			}}},
		},
		{
			name: "IN and NOT IN",
			in:   "SELECT Id FROM A WHERE a IN ('x', null, 3) OR b NOT IN (true)",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Where: &OrExpr{Terms: []Expr{
				&InExpr{Field: "a", Values: []Value{str("x", "x"), {Kind: ValueNull}, {Kind: ValueNumber, Num: 3}}},
				&InExpr{Field: "b", Not: true, Values: []Value{{Kind: ValueBool, Bool: true}}},
			}}},
		},
		{
			name: "NOT binds tighter than AND",
			in:   "SELECT Id FROM A WHERE NOT a = 1 AND b = 2",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Where: &AndExpr{Terms: []Expr{
				&NotExpr{X: &CompareExpr{Field: "a", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 1}}},
				&CompareExpr{Field: "b", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 2}},
			}}},
		},
		{
			name: "NOT over parentheses",
			in:   "SELECT Id FROM A WHERE NOT (a = 1 OR b = 2)",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Where: &NotExpr{X: &OrExpr{Terms: []Expr{
				&CompareExpr{Field: "a", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 1}},
				&CompareExpr{Field: "b", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 2}},
			}}}},
		},
		{
			name: "literals",
			in: `SELECT Id FROM A WHERE a IN ('it\'s \\ \n\t\"\%\_', -12, +3.25, -0.5, false, NULL, ` +
				`2026-01-02, 2026-01-02T03:04:05.123Z, 2026-01-02T03:04:05+01:00, 2026-01-02T03:04:05-05:30)`,
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Where: &InExpr{Field: "a", Values: []Value{
				str(`it\'s \\ \n\t\"\%\_`, "it's \\ \n\t\"%_"),
				{Kind: ValueNumber, Num: -12},
				{Kind: ValueNumber, Num: 3.25},
				{Kind: ValueNumber, Num: -0.5},
				{Kind: ValueBool},
				{Kind: ValueNull},
				{Kind: ValueDate, Time: dt("2026-01-02T00:00:00Z")},
				{Kind: ValueDateTime, Time: dt("2026-01-02T03:04:05.123Z")},
				{Kind: ValueDateTime, Time: dt("2026-01-02T02:04:05Z")},
				{Kind: ValueDateTime, Time: dt("2026-01-02T08:34:05Z")},
			}}},
		},
		{
			name: "relationship path and custom field",
			in:   "SELECT Parent.Name, My_Field__c FROM Account ORDER BY Parent.Name ASC NULLS LAST",
			want: &Query{
				Fields: []string{"Parent.Name", "My_Field__c"}, Object: "Account", Limit: -1,
				OrderBy: []OrderItem{{Field: "Parent.Name", NullsLast: true}},
			},
		},
		{
			name: "DESC defaults to NULLS LAST",
			in:   "SELECT Id FROM A ORDER BY a DESC, b ASC, c DESC NULLS FIRST, d NULLS LAST",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, OrderBy: []OrderItem{
				{Field: "a", Desc: true, NullsLast: true},
				{Field: "b"},
				{Field: "c", Desc: true},
				{Field: "d", NullsLast: true},
			}},
		},
		{
			name: "non-reserved keywords as names",
			in:   "SELECT Count, Order, Offset FROM Order ORDER BY Offset OFFSET 3",
			want: &Query{
				Fields: []string{"Count", "Order", "Offset"}, Object: "Order", Limit: -1,
				OrderBy: []OrderItem{{Field: "Offset"}}, Offset: 3,
			},
		},
		{
			name: "whitespace and newlines",
			in:   "\n SELECT\tId\r\nFROM  Account\nWHERE(Name='a')LIMIT 0 ",
			want: &Query{Fields: []string{"Id"}, Object: "Account", Limit: 0,
				Where: &CompareExpr{Field: "Name", Op: OpEq, Value: str("a", "a")}},
		},
		{
			name: "OFFSET at the maximum",
			in:   "SELECT Id FROM A OFFSET 2000",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Offset: 2000},
		},
		{
			name: "nested groups",
			in:   "SELECT Id FROM A WHERE (a = 1 AND (b = 2 OR c = 3)) OR d = 4",
			want: &Query{Fields: []string{"Id"}, Object: "A", Limit: -1, Where: &OrExpr{Terms: []Expr{
				&AndExpr{Terms: []Expr{
					&CompareExpr{Field: "a", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 1}},
					&OrExpr{Terms: []Expr{
						&CompareExpr{Field: "b", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 2}},
						&CompareExpr{Field: "c", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 3}},
					}},
				}},
				&CompareExpr{Field: "d", Op: OpEq, Value: Value{Kind: ValueNumber, Num: 4}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %s\n%#v, want %s\n%#v", got, got, tt.want, tt.want)
			}
			again, err := Parse(got.String())
			if err != nil {
				t.Fatalf("re-parsing %q: got error %v, want none", got.String(), err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("re-parsed %q: got %#v, want %#v", got.String(), again, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		code    string
		message string // wanted substring of Message
		row     int
		column  int
	}{
		{"empty", "", CodeMalformedQuery, "unexpected token: '<EOF>'", 1, 1},
		{"misspelt FROM", "SELECT Id FROMM Account", CodeMalformedQuery, "unexpected token: 'FROMM'", 1, 11},
		{"no fields", "SELECT FROM Account", CodeMalformedQuery, "unexpected token: 'FROM'", 1, 8},
		{"no object", "SELECT Id FROM", CodeMalformedQuery, "unexpected token: '<EOF>'", 1, 15},
		{"trailing comma", "SELECT Id, FROM Account", CodeMalformedQuery, "unexpected token: 'FROM'", 1, 12},
		{"AND then OR", "SELECT Id FROM A WHERE a = 1 AND b = 2 OR c = 3", CodeMalformedQuery, "unexpected token: 'OR'", 1, 40},
		{"OR then AND", "SELECT Id FROM A WHERE a = 1 OR b = 2 AND c = 3", CodeMalformedQuery, "unexpected token: 'AND'", 1, 39},
		{"mix inside parentheses", "SELECT Id FROM A WHERE (a = 1 OR b = 2 AND c = 3)", CodeMalformedQuery, "unexpected token: 'AND'", 1, 40},
		{"mix after NOT", "SELECT Id FROM A WHERE NOT a = 1 AND b = 2 OR c = 3", CodeMalformedQuery, "unexpected token: 'OR'", 1, 44},
		{"NOT LIKE is not SOQL", "SELECT Id FROM A WHERE a NOT LIKE 'x'", CodeMalformedQuery, "unexpected token: 'LIKE'", 1, 30},
		{"unclosed parenthesis", "SELECT Id FROM A WHERE (a = 1", CodeMalformedQuery, "unexpected token: '<EOF>'", 1, 30},
		{"empty IN list", "SELECT Id FROM A WHERE a IN ()", CodeMalformedQuery, "unexpected token: ')'", 1, 30},
		{"IN without parentheses", "SELECT Id FROM A WHERE a IN 'x'", CodeMalformedQuery, "unexpected token: ''x''", 1, 29},
		{"field on the right", "SELECT Id FROM A WHERE a = b", CodeMalformedQuery, "unexpected token: 'b'", 1, 28},
		{"double quotes", `SELECT Id FROM A WHERE a = "x"`, CodeMalformedQuery, "no viable alternative at character '\"'", 1, 28},
		{"unterminated string", "SELECT Id FROM A WHERE a = 'x", CodeMalformedQuery, "unterminated string literal", 1, 28},
		{"bad escape", `SELECT Id FROM A WHERE a = 'x\q'`, CodeMalformedQuery, `Illegal character sequence '\q' in string literal`, 1, 30},
		{"invalid date", "SELECT Id FROM A WHERE a = 2024-31-01", CodeMalformedQuery, "Invalid date: 2024-31-01", 1, 28},
		{"invalid datetime", "SELECT Id FROM A WHERE a = 2024-01-15T25:00:00Z", CodeMalformedQuery, "Invalid datetime: 2024-01-15T25:00:00Z", 1, 28},
		{"datetime without zone", "SELECT Id FROM A WHERE a > 2024-01-15T10:00:00", CodeMalformedQuery, "Invalid datetime", 1, 28},
		{"datetime with +hhmm", "SELECT Id FROM A WHERE a > 2024-01-15T10:00:00+0100", CodeMalformedQuery, "Invalid datetime", 1, 28},
		{"short date", "SELECT Id FROM A WHERE a > 2024-1-5", CodeMalformedQuery, "Invalid date", 1, 28},
		{"exponent", "SELECT Id FROM A WHERE a > 1e5", CodeMalformedQuery, "unexpected token: '1e5'", 1, 28},
		{"negative LIMIT", "SELECT Id FROM A LIMIT -1", CodeMalformedQuery, "unexpected token: '-1'", 1, 24},
		{"decimal LIMIT", "SELECT Id FROM A LIMIT 1.5", CodeMalformedQuery, "unexpected token: '1.5'", 1, 24},
		{"huge LIMIT", "SELECT Id FROM A LIMIT 99999999999999999999", CodeMalformedQuery, "number out of range", 1, 24},
		{"OFFSET before LIMIT", "SELECT Id FROM A OFFSET 1 LIMIT 1", CodeMalformedQuery, "unexpected token: 'LIMIT'", 1, 27},
		{"OFFSET too large", "SELECT Id FROM A OFFSET 2001", CodeNumberOutsideValidRange, "Maximum SOQL offset allowed is 2000", 1, 25},
		{"duplicate field", "SELECT Id, Name, name FROM A", CodeMalformedQuery, "duplicate field selected: name", 1, 18},
		{"COUNT with fields", "SELECT COUNT(), Id FROM A", CodeMalformedQuery, "unexpected token: ','", 1, 15},
		{"COUNT of a field", "SELECT COUNT(Id) FROM A", CodeMalformedQuery, "unexpected token: 'Id'", 1, 14},
		{"reserved word as field", "SELECT Id FROM A WHERE Last = 'x'", CodeMalformedQuery, "unexpected token: 'Last'", 1, 24},
		{"reserved word as object", "SELECT Id FROM Group", CodeMalformedQuery, "unexpected token: 'Group'", 1, 16},
		{"ORDER without BY", "SELECT Id FROM A ORDER Name", CodeMalformedQuery, "unexpected token: 'Name'", 1, 24},
		{"NULLS without FIRST or LAST", "SELECT Id FROM A ORDER BY Name NULLS", CodeMalformedQuery, "unexpected token: '<EOF>'", 1, 37},
		{"bang alone", "SELECT Id FROM A WHERE a ! 1", CodeMalformedQuery, "no viable alternative at character '!'", 1, 26},
		{"date literal (relative) unsupported", "SELECT Id FROM A WHERE CreatedDate = TODAY", CodeMalformedQuery, "unexpected token: 'TODAY'", 1, 38},
		{"trailing garbage", "SELECT Id FROM A LIMIT 1 x", CodeMalformedQuery, "unexpected token: 'x'", 1, 26},
		{"second row", "SELECT Id\nFROM A\nWHERE a = = 1", CodeMalformedQuery, "unexpected token: '='", 3, 11},
		{"too deep", "SELECT Id FROM A WHERE " + strings.Repeat("(", maxDepth+1) + "a = 1" + strings.Repeat(")", maxDepth+1),
			CodeMalformedQuery, "nested too deeply", 1, 24 + maxDepth},
		{"non-ASCII in name", "SELECT Naïve FROM A", CodeMalformedQuery, "no viable alternative at character 'ï'", 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("got %s, want error %s", q, tt.code)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T, want *Error", err)
			}
			if e.Code != tt.code {
				t.Errorf("got code %v, want %v (%s)", e.Code, tt.code, e.Message)
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Errorf("got message %q, want it to contain %q", e.Message, tt.message)
			}
			if e.Row != tt.row || e.Column != tt.column {
				t.Errorf("got position %d:%d, want %d:%d", e.Row, e.Column, tt.row, tt.column)
			}
		})
	}
}

func TestQueryString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"canonical keywords", "select id , name from Account where name like 'A%' order by name asc nulls first limit 10 offset 0",
			"SELECT id, name FROM Account WHERE name LIKE 'A%' ORDER BY name LIMIT 10"},
		{"<> prints as !=", "SELECT Id FROM A WHERE a <> 'x'", "SELECT Id FROM A WHERE a != 'x'"},
		{"redundant parentheses dropped", "SELECT Id FROM A WHERE ((a = 1)) AND (b = 2)", "SELECT Id FROM A WHERE a = 1 AND b = 2"},
		{"needed parentheses kept", "SELECT Id FROM A WHERE (a = 1 OR b = 2) AND NOT (c = 3 AND d = 4)",
			"SELECT Id FROM A WHERE (a = 1 OR b = 2) AND NOT (c = 3 AND d = 4)"},
		{"nested AND kept as a group", "SELECT Id FROM A WHERE (a = 1 AND b = 2) AND c = 3",
			"SELECT Id FROM A WHERE (a = 1 AND b = 2) AND c = 3"},
		{"datetimes in UTC", "SELECT Id FROM A WHERE a > 2026-01-02T03:04:05.120+01:00",
			"SELECT Id FROM A WHERE a > 2026-01-02T02:04:05.12Z"},
		{"numbers", "SELECT Id FROM A WHERE a IN (+1, 1.50, -0.25, 007)", "SELECT Id FROM A WHERE a IN (1, 1.5, -0.25, 7)"},
		{"escapes kept", `SELECT Id FROM A WHERE a LIKE '50\%\_%'`, `SELECT Id FROM A WHERE a LIKE '50\%\_%'`},
		{"order defaults", "SELECT Id FROM A ORDER BY a DESC NULLS LAST, b NULLS LAST, c DESC NULLS FIRST",
			"SELECT Id FROM A ORDER BY a DESC, b NULLS LAST, c DESC NULLS FIRST"},
		{"count", "select count() from A", "SELECT COUNT() FROM A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := q.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValueStringEscapes(t *testing.T) {
	v := StringValue("it's a\\b\n\t\r\b\f")
	want := `'it\'s a\\b\n\t\r\b\f'`
	if got := v.String(); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	q, err := Parse("SELECT Id FROM A WHERE a = " + v.String())
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if got := q.Where.(*CompareExpr).Value.Str; got != v.Str {
		t.Errorf("got %q, want %q", got, v.Str)
	}
}

func TestErrorDetail(t *testing.T) {
	q := "SELECT Id FROMM Account"
	_, err := Parse(q)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	want := "\nSELECT Id FROMM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FROMM'"
	if got := e.Detail(q); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := e.Error(), "soql: MALFORMED_QUERY: unexpected token: 'FROMM'"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	plain := &Error{Code: CodeInvalidField, Message: "m"}
	if got := plain.Detail(q); got != "m" {
		t.Errorf("got %q, want %q", got, "m")
	}
}
