package store_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"orgsync/store"
)

// exportFixture stores a few mappings, out of order, and returns them in
// source-ID order.
func exportFixture(t *testing.T, s *store.Store) []store.Mapping {
	t.Helper()
	cet := time.FixedZone("CET", 3600)
	ms := []store.Mapping{
		{SourceID: srcID(3), TargetID: dstID(3), WrittenAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)},
		{SourceID: srcID(1), TargetID: dstID(1), WrittenAt: time.Date(2026, 11, 22, 11, 30, 0, 123456789, cet)},
		{SourceID: srcID(2), TargetID: dstID(2), WrittenAt: time.Date(2026, 11, 23, 0, 0, 0, 1000, time.UTC)},
	}
	mustPut(t, s, ms...)
	return []store.Mapping{ms[1], ms[2], ms[0]}
}

// Ensure that a CSV export parses back to the stored mappings.
func TestStore_Export_CSV(t *testing.T) {
	s := mustOpen(t)
	want := exportFixture(t, s)
	var buf bytes.Buffer
	if err := s.Export(&buf, store.FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v", err)
	}
	if len(rows) != len(want)+1 {
		t.Fatalf("got %d rows, want %d", len(rows), len(want)+1)
	}
	if got := strings.Join(rows[0], ","); got != "source_id,target_id,written_at" {
		t.Errorf("header: got %q, want %q", got, "source_id,target_id,written_at")
	}
	for i, row := range rows[1:] {
		if !strings.HasSuffix(row[2], "Z") {
			t.Errorf("row %d: written_at %q is not UTC", i+1, row[2])
		}
		at, err := time.Parse(time.RFC3339Nano, row[2])
		if err != nil {
			t.Errorf("row %d: %v", i+1, err)
		}
		got := store.Mapping{SourceID: row[0], TargetID: row[1], WrittenAt: at}
		if !equalMapping(got, want[i]) {
			t.Errorf("row %d: got %v, want %v", i+1, got, want[i])
		}
	}
}

// Ensure that a JSON export parses back to the stored mappings.
func TestStore_Export_JSON(t *testing.T) {
	s := mustOpen(t)
	want := exportFixture(t, s)
	var buf bytes.Buffer
	if err := s.Export(&buf, store.FormatJSON); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"written_at":"2026-11-22T10:30:00.123456789Z"`) {
		t.Errorf("written_at not in UTC RFC 3339 with nanoseconds:\n%s", buf.String())
	}
	var got []store.Mapping
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("parse JSON: %v\n%s", err, buf.String())
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mappings, want %d", len(got), len(want))
	}
	for i := range want {
		if !equalMapping(got[i], want[i]) {
			t.Errorf("mapping %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// Ensure that an empty map exports as a header only or an empty array.
func TestStore_Export_Empty(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{format: store.FormatCSV, want: "source_id,target_id,written_at\n"},
		{format: store.FormatJSON, want: "[]\n"},
	}
	s := mustOpen(t)
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Export(&buf, tt.format); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Ensure that an unknown format fails before anything is written and names
// the accepted formats.
func TestStore_Export_UnknownFormat(t *testing.T) {
	s := mustOpen(t)
	exportFixture(t, s)
	for _, format := range []string{"", "xml", "ndjson", "CSV "} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			err := s.Export(&buf, format)
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			for _, name := range []string{"csv", "json"} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %q", err, name)
				}
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q, want nothing", buf.String())
			}
		})
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

// Ensure that a failing writer fails the export.
func TestStore_Export_WriteError(t *testing.T) {
	s := mustOpen(t)
	var ms []store.Mapping
	for i := range 2000 {
		ms = append(ms, store.Mapping{SourceID: srcID(i), TargetID: dstID(i)})
	}
	mustPut(t, s, ms...)
	for _, format := range []string{store.FormatCSV, store.FormatJSON} {
		t.Run(format, func(t *testing.T) {
			if err := s.Export(&failWriter{n: 10000}, format); !errors.Is(err, errWrite) {
				t.Errorf("got %v, want errWrite", err)
			}
		})
	}
}
