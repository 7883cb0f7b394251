package salesforce

import (
	"bytes"
	"encoding/csv"
	"slices"
	"testing"
)

// FuzzParseQueryCSV: any body either parses into rows as wide as the
// header, which encode back to the same rows, or is an error; it never
// panics.
func FuzzParseQueryCSV(f *testing.F) {
	f.Add([]byte("Id,Name\n001000000000001AAA,Acme\n"))
	f.Add([]byte("\"Id\",\"Name\"\n\"001\",\"a, \"\"b\"\"\nc\"\n"))
	f.Add([]byte("Id\n"))
	f.Add([]byte(""))
	f.Add([]byte("a,b\n1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		header, rows, err := parseQueryCSV(data)
		if err != nil {
			return
		}
		for _, r := range rows {
			if len(r) != len(header) {
				t.Fatalf("row %q is not as wide as header %q", r, header)
			}
		}
		if len(header) == 0 || len(header) == 1 && slices.ContainsFunc(append(rows, header), func(r []string) bool { return r[0] == "" }) {
			return // encoding/csv writes a lone empty field as a blank line, which readers skip
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(header)
		_ = w.WriteAll(rows)
		if len(bytes.TrimSpace(buf.Bytes())) == 0 {
			return // a blank header and no rows read back as an empty body
		}
		h2, r2, err := parseQueryCSV(buf.Bytes())
		if err != nil || len(h2) != len(header) || len(r2) != len(rows) {
			t.Fatalf("re-encoded: %v, %d columns, %d rows; want %d and %d", err, len(h2), len(r2), len(header), len(rows))
		}
	})
}
