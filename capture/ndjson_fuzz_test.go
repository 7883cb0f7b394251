package capture_test

import (
	"bytes"
	"errors"
	"testing"

	"orgsync/capture"
	"orgsync/event"
)

// FuzzPublishNDJSON feeds arbitrary input to PublishNDJSON: it never
// panics, everything it publishes is a valid event, its counts match the
// publishes, and every bad line is reported with a line number in range.
func FuzzPublishNDJSON(f *testing.F) {
	f.Add([]byte(`{"Id":"` + acct(1) + `","Name":"a"}` + "\n" + `{"Id":"` + acct(2)[:15] + `"}` + "\n"))
	f.Add([]byte("not json\n\n{\"Name\":\"no id\"}\r\n[1]\n"))
	f.Add([]byte(`{"Id":"` + acct(1) + `","ParentId":"bad"}`))
	f.Add([]byte(`{"Id":"` + acct(1) + `","Source_Id__c":"skip me"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		rec := &recorder{}
		st, err := capture.PublishNDJSON(t.Context(), bytes.NewReader(in), capture.NDJSONConfig{
			Queue: rec, SourceOrg: testOrg, SkipField: "Source_Id__c",
		})
		if rec.calls != st.Published+st.Duplicates {
			t.Fatalf("%d publishes, stats %+v", rec.calls, st)
		}
		for id, body := range rec.msgs {
			ev, derr := event.Decode(body)
			if derr != nil || ev.MsgID() != id {
				t.Fatalf("published %q under %q: %v", body, id, derr)
			}
		}
		lines := bytes.Count(in, []byte("\n")) + 1
		var bad *capture.BadLinesError
		switch {
		case err == nil:
			if st.Bad != 0 {
				t.Fatalf("%d bad lines but no error", st.Bad)
			}
		case errors.As(err, &bad):
			if len(bad.Lines) != st.Bad {
				t.Fatalf("%d bad lines reported, stats say %d", len(bad.Lines), st.Bad)
			}
			for _, l := range bad.Lines {
				if l.Line < 1 || l.Line > lines {
					t.Fatalf("bad line number %d of %d lines", l.Line, lines)
				}
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
