package salesforce

import (
	"orgsync/internal/jsonscan"
)

// fastSaveResults decodes the usual answer of a collections call without
// reflection: an array of objects with the keys id (a string or null),
// success and created (booleans) and errors (an empty array), each at most
// once, strings without escapes. It reports false for anything else (a
// failed record's errors among them), and the caller then uses
// encoding/json, whose result fastSaveResults' equals whenever it reports
// true (see FuzzFastSaveResults).
func fastSaveResults(b []byte) ([]SaveResult, bool) {
	d := resultScanner{jsonscan.Scanner{B: b}}
	if !d.Consume('[') {
		return nil, false
	}
	out := make([]SaveResult, 0, 200)
	if d.Consume(']') {
		return d.end(out)
	}
	for {
		r, ok := d.result()
		if !ok {
			return nil, false
		}
		out = append(out, r)
		if d.Consume(']') {
			return d.end(out)
		}
		if !d.Consume(',') {
			return nil, false
		}
	}
}

type resultScanner struct{ jsonscan.Scanner }

func (d *resultScanner) end(out []SaveResult) ([]SaveResult, bool) {
	d.Space()
	return out, d.I == len(d.B)
}

func (d *resultScanner) result() (SaveResult, bool) {
	var r SaveResult
	if !d.Consume('{') {
		return r, false
	}
	var seen [4]bool
	first := true
	for {
		if d.Consume('}') {
			return r, true
		}
		if !first && !d.Consume(',') {
			return r, false
		}
		first = false
		key, ok := d.Bytes()
		if !ok || !d.Consume(':') {
			return r, false
		}
		var slot int
		switch string(key) {
		case "id":
			slot = 0
			if !d.Literal("null") {
				r.ID, ok = d.Str()
			}
		case "success":
			slot = 1
			r.Success, ok = d.Bool()
		case "created":
			slot = 2
			r.Created, ok = d.Bool()
		case "errors":
			slot = 3
			ok = d.Consume('[') && d.Consume(']')
			r.Errors = []RecordError{}
		default:
			return r, false
		}
		// The literal after a value must end there (no "truex").
		if !ok || seen[slot] || d.I < len(d.B) && isLetter(d.B[d.I]) {
			return r, false
		}
		seen[slot] = true
	}
}

func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
