package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"orgsync/event"
	"orgsync/salesforce"
)

// MaxLine is the longest NDJSON line PublishNDJSON reads; a longer one is a
// bad line.
const MaxLine = 1 << 20

// NDJSONConfig configures PublishNDJSON.
type NDJSONConfig struct {
	Queue     Publisher    // required
	SourceOrg string       // the source org's ID (-source-org-id, required)
	Fields    event.Fields // the zero value means event.DefaultFields
	// SkipField: records that carry this field with a value are not
	// published (orgsync's own writes). Empty: none is skipped.
	SkipField string
	// Batch is how many records are published together (default 200).
	Batch      int
	Publishers int // default 32
	Metrics    *Metrics
	Logger     *slog.Logger // nil discards
}

// LineError is a line PublishNDJSON could not turn into an event.
type LineError struct {
	Line int // from 1
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// BadLinesError is returned by PublishNDJSON after it published every good
// line, when some lines were bad.
type BadLinesError struct {
	Lines []*LineError
}

func (e *BadLinesError) Error() string {
	const show = 5
	var b strings.Builder
	fmt.Fprintf(&b, "capture: %d bad line(s)", len(e.Lines))
	for i, l := range e.Lines {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Lines)-show)
			break
		}
		b.WriteString("; ")
		b.WriteString(l.Error())
	}
	return b.String()
}

// PublishNDJSON publishes one Account record per line of r (JSON objects as
// the REST API returns them; blank lines are ignored). A bad line is
// recorded and skipped; every good line is published. It returns the counts
// and, when lines were bad, a *BadLinesError naming each by its number. A
// publish JetStream does not acknowledge stops the run with an error
// wrapping ErrUnavailable; running it again is harmless (dedup keys).
func PublishNDJSON(ctx context.Context, r io.Reader, cfg NDJSONConfig) (Stats, error) {
	var st Stats
	if cfg.Queue == nil {
		return st, errors.New("capture: NDJSONConfig.Queue is required")
	}
	org, err := salesforce.NormalizeIDWithPrefix(cfg.SourceOrg, salesforce.PrefixOrganization)
	if err != nil {
		return st, fmt.Errorf("capture: source org id: %w", err)
	}
	if len(cfg.Fields.Names()) == 0 {
		if cfg.Fields, err = event.ParseFields(""); err != nil {
			return st, err
		}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = MaxRecords
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		bad   []*LineError
		batch []outgoing
	)
	flush := func() error {
		ps, err := publishAll(ctx, cfg.Queue, batch, cfg.Publishers)
		batch = batch[:0]
		st.Published += ps.Published
		st.Duplicates += ps.Duplicates
		cfg.Metrics.stats(PathPublish, ps)
		if err != nil {
			cfg.Metrics.publishError(PathPublish)
		}
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, rerr := readLine(br, MaxLine)
		if rerr != nil && rerr != io.EOF {
			return st, fmt.Errorf("capture: read line %d: %w", n, rerr)
		}
		if rerr == io.EOF && len(line) == 0 && !tooLong {
			break
		}
		switch {
		case tooLong:
			st.Read++
			bad = append(bad, &LineError{Line: n, Err: fmt.Errorf("longer than %d bytes", MaxLine)})
		case len(strings.TrimSpace(string(line))) == 0:
		default:
			st.Read++
			rec, err := decodeRecord(line)
			var o outgoing
			var skip bool
			if err == nil {
				o, skip, err = prepare(org, rec, cfg.Fields, cfg.SkipField)
			}
			switch {
			case err != nil:
				bad = append(bad, &LineError{Line: n, Err: err})
			case skip:
				st.Skipped++
			default:
				batch = append(batch, o)
			}
		}
		if len(batch) >= cfg.Batch {
			if err := flush(); err != nil {
				st.Bad = len(bad)
				return st, err
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := flush(); err != nil {
		st.Bad = len(bad)
		return st, err
	}
	st.Bad = len(bad)
	cfg.Metrics.stats(PathPublish, Stats{Skipped: st.Skipped})
	for range bad {
		cfg.Metrics.reject(PathPublish, "bad_line")
	}
	log.Info("NDJSON published", "read", st.Read, "published", st.Published, "duplicates", st.Duplicates,
		"skipped", st.Skipped, "bad", st.Bad)
	if len(bad) > 0 {
		return st, &BadLinesError{Lines: bad}
	}
	return st, nil
}

// readLine reads one line without its end of line. A line longer than max
// is consumed and reported with tooLong (and no data).
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > max+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if tooLong {
			return nil, true, err
		}
		line = []byte(strings.TrimRight(string(line), "\r\n"))
		return line, false, err
	}
}
