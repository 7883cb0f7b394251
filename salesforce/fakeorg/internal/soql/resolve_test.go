package soql

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// accountFields is a small Account schema for tests.
var accountFields = map[string]FieldKind{
	"Id":                KindID,
	"Name":              KindString,
	"ParentId":          KindID,
	"Parent.Name":       KindString,
	"CreatedDate":       KindDateTime,
	"SystemModstamp":    KindDateTime,
	"Source_Id__c":      KindString,
	"AnnualRevenue":     KindNumber,
	"NumberOfEmployees": KindNumber,
	"IsDeleted":         KindBool,
	"LastActivityDate":  KindDate,
}

func accountLookup(name string) (string, FieldKind, bool) {
	for canonical, kind := range accountFields {
		if strings.EqualFold(canonical, name) {
			return canonical, kind, true
		}
	}
	return "", 0, false
}

// mustResolve parses and resolves q against the Account schema.
func mustResolve(t testing.TB, q string) *Query {
	t.Helper()
	query, err := Parse(q)
	if err != nil {
		t.Fatalf("Parse(%q): got error %v, want none", q, err)
	}
	if err := query.Resolve(accountLookup); err != nil {
		t.Fatalf("Resolve(%q): got error %v, want none", q, err)
	}
	return query
}

const (
	testID15 = "001R00000033I6A"
	testID18 = "001R00000033I6AIAU"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // String() after Resolve
	}{
		{"canonical names everywhere",
			"SELECT id, NAME, source_id__c FROM Account WHERE createddate > 2026-01-01T00:00:00Z ORDER BY createddate, ID",
			"SELECT Id, Name, Source_Id__c FROM Account WHERE CreatedDate > 2026-01-01T00:00:00Z ORDER BY CreatedDate, Id"},
		{"15-character ID literal becomes 18", "SELECT Id FROM Account WHERE id = '" + testID15 + "'",
			"SELECT Id FROM Account WHERE Id = '" + testID18 + "'"},
		{"18-character ID literal gets an upper-case suffix", "SELECT Id FROM Account WHERE Id = '" + testID15 + "iau'",
			"SELECT Id FROM Account WHERE Id = '" + testID18 + "'"},
		{"ID list", "SELECT Id FROM Account WHERE ParentId NOT IN ('" + testID15 + "', null)",
			"SELECT Id FROM Account WHERE ParentId NOT IN ('" + testID18 + "', null)"},
		{"null fits every kind",
			"SELECT Id FROM Account WHERE Name = null AND AnnualRevenue != null AND IsDeleted = null AND CreatedDate = null AND LastActivityDate != null AND Id != null",
			"SELECT Id FROM Account WHERE Name = null AND AnnualRevenue != null AND IsDeleted = null AND CreatedDate = null AND LastActivityDate != null AND Id != null"},
		{"every kind with its literal",
			"SELECT Id FROM Account WHERE Name LIKE 'a%' AND AnnualRevenue >= 1.5 AND IsDeleted = false AND LastActivityDate < 2026-01-02 AND SystemModstamp <= 2026-01-02T00:00:00Z",
			"SELECT Id FROM Account WHERE Name LIKE 'a%' AND AnnualRevenue >= 1.5 AND IsDeleted = false AND LastActivityDate < 2026-01-02 AND SystemModstamp <= 2026-01-02T00:00:00Z"},
		{"relationship path the lookup knows", "SELECT Parent.name FROM Account", "SELECT Parent.Name FROM Account"},
		{"count", "SELECT COUNT() FROM Account WHERE source_id__c != null", "SELECT COUNT() FROM Account WHERE Source_Id__c != null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustResolve(t, tt.in)
			if got := q.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// Resolving again changes nothing.
			before := q.String()
			if err := q.Resolve(accountLookup); err != nil {
				t.Fatalf("second Resolve: got error %v, want none", err)
			}
			if got := q.String(); got != before {
				t.Errorf("second Resolve: got %q, want %q", got, before)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		code    string
		message string
	}{
		{"unknown selected field", "SELECT Id, Foo FROM Account", CodeInvalidField,
			"No such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
		{"custom field without __c", "SELECT Source_Id FROM Account", CodeInvalidField, "No such column 'Source_Id' on entity 'Account'."},
		{"unknown WHERE field", "SELECT Id FROM Account WHERE Bar = 'x'", CodeInvalidField, "No such column 'Bar'"},
		{"unknown IN field", "SELECT Id FROM Account WHERE Bar IN ('x')", CodeInvalidField, "No such column 'Bar'"},
		{"unknown ORDER BY field", "SELECT Id FROM Account ORDER BY Baz", CodeInvalidField, "No such column 'Baz'"},
		{"unknown relationship", "SELECT Owner.Name FROM Account", CodeInvalidField,
			"Didn't understand relationship 'Owner' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name."},
		{"SELECT checked before WHERE", "SELECT Foo FROM Account WHERE Bar = 1", CodeInvalidField, "'Foo'"},
		{"quoted datetime", "SELECT Id FROM Account WHERE CreatedDate = 'text'", CodeInvalidField,
			"value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"},
		{"date for a datetime", "SELECT Id FROM Account WHERE CreatedDate > 2026-01-01", CodeInvalidField,
			"must be of type dateTime and should not be enclosed in quotes"},
		{"datetime for a date", "SELECT Id FROM Account WHERE LastActivityDate > 2026-01-01T00:00:00Z", CodeInvalidField,
			"value of filter criterion for field 'LastActivityDate' must be of type date and should not be enclosed in quotes"},
		{"quoted number", "SELECT Id FROM Account WHERE AnnualRevenue > '5'", CodeInvalidField,
			"value of filter criterion for field 'AnnualRevenue' must be of type double and should not be enclosed in quotes"},
		{"quoted boolean", "SELECT Id FROM Account WHERE IsDeleted = 'true'", CodeInvalidField,
			"must be of type boolean and should not be enclosed in quotes"},
		{"unquoted text", "SELECT Id FROM Account WHERE Name = 5", CodeInvalidField,
			"value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes"},
		{"unquoted ID", "SELECT Id FROM Account WHERE Id = 5", CodeInvalidField, "must be of type id and should be enclosed in quotes"},
		{"mismatch inside IN", "SELECT Id FROM Account WHERE CreatedDate IN (2026-01-01T00:00:00Z, 'x')", CodeInvalidField, "must be of type dateTime"},
		{"field named as written", "SELECT Id FROM Account WHERE createddate = 'x'", CodeInvalidField, "field 'createddate'"},
		{"not an ID", "SELECT Id FROM Account WHERE Id = 'Acme'", CodeInvalidQueryFilterOperator, "invalid ID field: Acme"},
		{"ID with a bad checksum", "SELECT Id FROM Account WHERE Id = '" + testID15 + "AAA'", CodeInvalidQueryFilterOperator, "invalid ID field: " + testID15 + "AAA"},
		{"not an ID in a list", "SELECT Id FROM Account WHERE ParentId IN ('" + testID15 + "', 'x')", CodeInvalidQueryFilterOperator, "invalid ID field: x"},
		{"LIKE on an ID", "SELECT Id FROM Account WHERE Id LIKE '001%'", CodeInvalidQueryFilterOperator, "invalid operator on id field"},
		{"LIKE on a number", "SELECT Id FROM Account WHERE AnnualRevenue LIKE '1%'", CodeInvalidQueryFilterOperator, "invalid operator on double field"},
		{"ordering a checkbox", "SELECT Id FROM Account WHERE IsDeleted > false", CodeInvalidQueryFilterOperator, "invalid operator on boolean field"},
		{"same field twice", "SELECT Name, Parent.Name, NAME FROM Account", CodeMalformedQuery, "duplicate field selected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.in)
			if err != nil {
				var e *Error
				if errors.As(err, &e) && e.Code == tt.code && strings.Contains(e.Message, tt.message) {
					return // caught already by Parse, which is fine
				}
				t.Fatalf("Parse: got error %v, want none", err)
			}
			before := *q
			err = q.Resolve(accountLookup)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Code != tt.code {
				t.Errorf("got code %v, want %v (%s)", e.Code, tt.code, e.Message)
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Errorf("got message %q, want it to contain %q", e.Message, tt.message)
			}
			if !reflect.DeepEqual(*q, before) {
				t.Errorf("got query changed to %s, want it unchanged %s", q, &before)
			}
		})
	}
}

func TestResolveDuplicateAfterCanonicalisation(t *testing.T) {
	// A lookup that maps an alias to the same field, which Parse cannot see.
	lookup := func(name string) (string, FieldKind, bool) {
		switch strings.ToLower(name) {
		case "name", "accountname":
			return "Name", KindString, true
		}
		return "", 0, false
	}
	q, err := Parse("SELECT Name, AccountName FROM Account")
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	err = q.Resolve(lookup)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeMalformedQuery {
		t.Fatalf("got %v, want %s", err, CodeMalformedQuery)
	}
}

func TestResolveUnknownKindIsString(t *testing.T) {
	q, err := Parse("SELECT Id FROM A WHERE x = 'ABC'")
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if err := q.Resolve(func(string) (string, FieldKind, bool) { return "X", FieldKind(99), true }); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if got := q.Match(func(string) any { return "abc" }); !got {
		t.Errorf("got %v, want true", got)
	}
}
