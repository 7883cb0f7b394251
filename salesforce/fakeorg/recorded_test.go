package fakeorg_test

// Helpers of the conformance tests that replay answers recorded from real
// orgs (testdata/recorded, sources in its README.md) against the fake.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// recording is one file of testdata/recorded: the request (where the
// source has it), the status, the headers that matter, the body.
type recording struct {
	Kind    string `json:"kind"`
	Request struct {
		Method string            `json:"method"`
		URL    string            `json:"url"`
		Query  map[string]string `json:"query"`
		Body   json.RawMessage   `json:"body"`
	} `json:"request"`
	Status        int               `json:"status"`
	Headers       map[string]string `json:"headers"`
	HeadersAbsent []string          `json:"headers_absent"`
	Body          json.RawMessage   `json:"body"`
	// raw is the whole file, for recordings with several answers
	// (created/updated, create/mixed, invalid_type_subresponse…).
	raw map[string]json.RawMessage
}

// loadRecording reads testdata/recorded/name.
func loadRecording(t testing.TB, name string) *recording {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recorded", name))
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	var rec recording
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("recording %s: %v", name, err)
	}
	if err := json.Unmarshal(b, &rec.raw); err != nil {
		t.Fatalf("recording %s: %v", name, err)
	}
	return &rec
}

// part decodes a named part of the recording (e.g. "created") into v.
func (r *recording) part(t testing.TB, name string, v any) {
	t.Helper()
	raw, ok := r.raw[name]
	if !ok {
		t.Fatalf("recording has no %q", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("recording part %s: %v", name, err)
	}
}

// requestBody returns the recorded request body: a JSON string holding
// the body text, or the body itself.
func (r *recording) requestBody(t testing.TB) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.Request.Body, &s); err == nil {
		return s
	}
	return string(r.Request.Body)
}

// deviations lists the places where the fake is allowed to differ from a
// recording, each with its reason. Paths look like body.records[].Name
// ([] stands for any array index).
type deviations struct {
	// extra keys the fake sends and the recording lacks.
	extra map[string]string
	// missing keys of the recording the fake does not send.
	missing map[string]string
	// anyType paths whose JSON type may differ (null versus a value).
	anyType map[string]string
	// skip paths not compared at all (org-specific content).
	skip map[string]string
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// compareShape reports every difference between the recorded value want
// and the fake's value got: JSON types, and the set of keys at every
// level. Values are not compared (org-specific); the tests compare codes
// and messages on their own. Arrays of equal length are compared element
// by element, otherwise every element of got against the first of want.
func compareShape(path string, want, got any, dev deviations) []string {
	if _, ok := dev.skip[path]; ok {
		return nil
	}
	wt, gt := jsonType(want), jsonType(got)
	if wt != gt {
		if _, ok := dev.anyType[path]; ok {
			return nil
		}
		return []string{fmt.Sprintf("%s: type %s in the recording, %s from the fake (%s)", path, wt, gt, clipJSON(got))}
	}
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for _, k := range sortedKeys(w) {
			p := path + "." + k
			gv, ok := g[k]
			if !ok {
				if _, allowed := dev.missing[p]; !allowed {
					diffs = append(diffs, p+": in the recording, missing from the fake")
				}
				continue
			}
			diffs = append(diffs, compareShape(p, w[k], gv, dev)...)
		}
		for _, k := range sortedKeys(g) {
			p := path + "." + k
			if _, ok := w[k]; ok {
				continue
			}
			if _, allowed := dev.extra[p]; !allowed {
				diffs = append(diffs, p+": sent by the fake, not in the recording")
			}
		}
	case []any:
		g := got.([]any)
		p := path + "[]"
		switch {
		case len(w) == len(g):
			for i := range w {
				diffs = append(diffs, compareShape(p, w[i], g[i], dev)...)
			}
		case len(w) > 0:
			for i := range g {
				diffs = append(diffs, compareShape(p, w[0], g[i], dev)...)
			}
		}
	}
	return diffs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func clipJSON(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// decodeAny decodes JSON into generic values.
func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// wantShape fails the test for every shape difference between the
// recorded body and the fake's.
func wantShape(t testing.TB, name string, recorded json.RawMessage, got []byte, dev deviations) {
	t.Helper()
	for _, d := range compareShape("body", decodeAny(t, recorded), decodeAny(t, got), dev) {
		t.Errorf("%s: %s", name, d)
	}
}

// wantHeaders checks the recorded status-independent headers: those the
// recording carries must be present (Sforce-Limit-Info and Location by
// form, the others exactly), those it lacks must be absent.
func wantHeaders(t testing.TB, name string, rec *recording, res *response) {
	t.Helper()
	forms := map[string]*regexp.Regexp{
		"Sforce-Limit-Info": regexp.MustCompile(`^api-usage=\d+/\d+$`),
		"Location":          regexp.MustCompile(`^/services/data/v\d+\.0/sobjects/[A-Za-z_]+/[A-Za-z0-9]{18}$`),
	}
	for k, v := range rec.Headers {
		got := res.header.Get(k)
		if re, ok := forms[k]; ok {
			if !re.MatchString(got) {
				t.Errorf("%s: header %s = %q, recorded %q", name, k, got, v)
			}
			continue
		}
		if got != v {
			t.Errorf("%s: header %s = %q, recorded %q", name, k, got, v)
		}
	}
	for _, k := range rec.HeadersAbsent {
		if got := res.header.Get(k); got != "" {
			t.Errorf("%s: header %s = %q, absent from the recording", name, k, got)
		}
	}
}

// restErrorsOf decodes a REST error array.
func restErrorsOf(t testing.TB, b []byte) []restError {
	t.Helper()
	var errs []restError
	if err := json.Unmarshal(b, &errs); err != nil {
		t.Fatalf("error array %s: %v", b, err)
	}
	return errs
}

// idPattern matches a Salesforce record ID (15 or 18 characters) in a
// message; messagePattern turns a recorded message into a pattern where
// every such ID may be any ID.
var idPattern = regexp.MustCompile(`\b[a-zA-Z0-9]{3}[a-zA-Z0-9]{12}(?:[A-Z0-5]{3})?\b`)

// messagePattern quotes msg and lets each record ID in it (after the given
// literal prefixes, e.g. "with id: ") match any ID of the same length.
func messagePattern(msg string, idAfter ...string) *regexp.Regexp {
	q := regexp.QuoteMeta(msg)
	for _, p := range idAfter {
		qp := regexp.QuoteMeta(p)
		i := strings.Index(q, qp)
		if i < 0 {
			continue
		}
		rest := q[i+len(qp):]
		loc := idPattern.FindStringIndex(rest)
		if loc == nil || loc[0] != 0 {
			continue
		}
		q = q[:i+len(qp)] + fmt.Sprintf(`[a-zA-Z0-9]{%d}`, loc[1]) + rest[loc[1]:]
	}
	return regexp.MustCompile("^" + q + "$")
}
