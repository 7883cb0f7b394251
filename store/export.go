package store

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Export formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// Export writes every mapping to w in source-ID order, in one read
// transaction (see ForEach), in format FormatCSV or FormatJSON; any other
// format is an error that names the accepted ones, and nothing is written.
//
// CSV has the header source_id,target_id,written_at, then one line per
// mapping. JSON is one array of objects with the same keys, one object a
// line. Both write written_at as RFC 3339 with nanoseconds in UTC. The output
// is streamed, not built in memory; on error, w holds a partial export.
func (s *Store) Export(w io.Writer, format string) error {
	var err error
	switch format {
	case FormatCSV:
		err = s.exportCSV(w)
	case FormatJSON:
		err = s.exportJSON(w)
	default:
		return fmt.Errorf("store: unknown export format %q, want %q or %q", format, FormatCSV, FormatJSON)
	}
	if err != nil {
		return fmt.Errorf("store: export %s as %s: %w", s.path, format, err)
	}
	return nil
}

func (s *Store) exportCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"source_id", "target_id", "written_at"}); err != nil {
		return err
	}
	record := make([]string, 3)
	err := s.ForEach(func(m Mapping) error {
		record[0], record[1], record[2] = m.SourceID, m.TargetID, m.WrittenAt.UTC().Format(time.RFC3339Nano)
		return cw.Write(record)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func (s *Store) exportJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString("["); err != nil {
		return err
	}
	sep := "\n"
	err := s.ForEach(func(m Mapping) error {
		m.WrittenAt = m.WrittenAt.UTC()
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := bw.WriteString(sep); err != nil {
			return err
		}
		sep = ",\n"
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	end := "\n]\n"
	if sep == "\n" { // no mapping
		end = "]\n"
	}
	if _, err := bw.WriteString(end); err != nil {
		return err
	}
	return bw.Flush()
}
