package soql_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"orgsync/salesforce/fakeorg/internal/soql"
)

func Example() {
	fields := map[string]soql.FieldKind{"Id": soql.KindID, "Name": soql.KindString, "CreatedDate": soql.KindDateTime}
	lookup := func(name string) (string, soql.FieldKind, bool) {
		for canonical, kind := range fields {
			if strings.EqualFold(canonical, name) {
				return canonical, kind, true
			}
		}
		return "", 0, false
	}
	records := []map[string]any{
		{"Id": "001R00000064wdtIAA", "Name": "Globex", "CreatedDate": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"Id": "001R00000033I6AIAU", "Name": "Acme", "CreatedDate": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"Id": "001R00000033I6BIAU", "Name": "Initech", "CreatedDate": time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
	}

	q, err := soql.Parse("select name from account where createddate >= 2026-01-01T00:00:00Z order by createddate, id limit 10")
	if err != nil {
		fmt.Println(err)
		return
	}
	q.Object = "Account" // the caller checks and canonicalises the object
	if err := q.Resolve(lookup); err != nil {
		fmt.Println(err)
		return
	}
	var rows []map[string]any
	for _, r := range records {
		if q.Match(func(f string) any { return r[f] }) {
			rows = append(rows, r)
		}
	}
	slices.SortStableFunc(rows, func(a, b map[string]any) int {
		return q.Compare(func(f string) any { return a[f] }, func(f string) any { return b[f] })
	})
	fmt.Println(q)
	for _, r := range rows {
		fmt.Println(r["Name"])
	}

	_, err = soql.Parse("SELECT Id FROM Account WHERE Name = 'a' AND Id != null OR Name = 'b'")
	var e *soql.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Message)
	}
	// Output:
	// SELECT Name FROM Account WHERE CreatedDate >= 2026-01-01T00:00:00Z ORDER BY CreatedDate, Id LIMIT 10
	// Acme
	// Globex
	// MALFORMED_QUERY unexpected token: 'OR'
}
