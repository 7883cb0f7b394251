package capture_test

import (
	"errors"
	"strings"
	"testing"

	"orgsync/capture"
	"orgsync/salesforce/fakeorg"
)

// Ensure that PublishNDJSON publishes every good line, counts what it did,
// and names each bad line by its number.
func TestPublishNDJSON(t *testing.T) {
	e := newEnv(t, fakeorg.Config{})
	lines := []string{
		`{"attributes":{"type":"Account"},"Id":"` + acct(1) + `","Name":"One","CreatedDate":"2026-03-01T10:00:00.000+0000"}`, // 1
		`{"Id":"` + acct(2) + `","Name":`, // 2 malformed
		`{"Name":"no id"}`,                // 3
		``,                                // 4 blank
		`{"Id":"` + acct(3)[:15] + `","Name":"Three"}`, // 5
		`[1]`, // 6 not an object
		`{"Id":"` + acct(4) + `","Source_Id__c":"001000000000001"}`, // 7 orgsync's own write
		`{"Id":"` + acct(5) + `","Name":"Five"}` + "\r",             // 8 CRLF
		`{"Id":"` + strings.Repeat("9", capture.MaxLine) + `"}`,     // 9 too long
		`{"Id":"` + acct(6) + `","Name":"Six"}`,                     // 10, no final newline
	}
	st, err := capture.PublishNDJSON(t.Context(), strings.NewReader(strings.Join(lines, "\n")), capture.NDJSONConfig{
		Queue: e.q, SourceOrg: testOrg, SkipField: capture.DefaultSkipField, Batch: 2})
	var bad *capture.BadLinesError
	if !errors.As(err, &bad) {
		t.Fatalf("got error %v, want a *BadLinesError", err)
	}
	var gotLines []int
	for _, l := range bad.Lines {
		gotLines = append(gotLines, l.Line)
	}
	if want := []int{2, 3, 6, 9}; !equalInts(gotLines, want) {
		t.Errorf("bad lines: got %v, want %v (%v)", gotLines, want, err)
	}
	want := capture.Stats{Read: 9, Published: 4, Skipped: 1, Bad: 4}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	e.assertStored([]string{acct(1), acct(3), acct(5), acct(6)})

	// Again: every event is a duplicate, and the same lines are bad.
	st, err = capture.PublishNDJSON(t.Context(), strings.NewReader(strings.Join(lines, "\n")+"\n"), capture.NDJSONConfig{
		Queue: e.q, SourceOrg: testOrg, SkipField: capture.DefaultSkipField})
	if !errors.As(err, &bad) || st.Duplicates != 4 || st.Published != 0 {
		t.Errorf("second run: got %+v, %v; want 4 duplicates and bad lines", st, err)
	}
}

func TestPublishNDJSON_Unavailable(t *testing.T) {
	rec := &recorder{failAt: 3, failErr: errors.New("nats: timeout")}
	var b strings.Builder
	for i := range 10 {
		b.WriteString(`{"Id":"` + acct(i) + `"}` + "\n")
	}
	_, err := capture.PublishNDJSON(t.Context(), strings.NewReader(b.String()), capture.NDJSONConfig{Queue: rec, SourceOrg: testOrg})
	if !errors.Is(err, capture.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
