package salesforce

import (
	"bytes"
	"unicode/utf8"
)

// fastSaveResults decodes the usual answer of a collections call without
// reflection: an array of objects with the keys id (a string or null),
// success and created (booleans) and errors (an empty array), each at most
// once, strings without escapes. It reports false for anything else (a
// failed record's errors among them), and the caller then uses
// encoding/json, whose result fastSaveResults' equals whenever it reports
// true (see FuzzFastSaveResults).
func fastSaveResults(b []byte) ([]SaveResult, bool) {
	d := resultScanner{b: b}
	if !d.consume('[') {
		return nil, false
	}
	out := make([]SaveResult, 0, 200)
	if d.consume(']') {
		return d.end(out)
	}
	for {
		r, ok := d.result()
		if !ok {
			return nil, false
		}
		out = append(out, r)
		if d.consume(']') {
			return d.end(out)
		}
		if !d.consume(',') {
			return nil, false
		}
	}
}

type resultScanner struct {
	b []byte
	i int
}

func (d *resultScanner) end(out []SaveResult) ([]SaveResult, bool) {
	d.space()
	return out, d.i == len(d.b)
}

func (d *resultScanner) space() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\t' || d.b[d.i] == '\n' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *resultScanner) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *resultScanner) literal(s string) bool {
	d.space()
	if bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		d.i += len(s)
		return true
	}
	return false
}

func (d *resultScanner) str() (string, bool) {
	if !d.consume('"') {
		return "", false
	}
	start := d.i
	end := bytes.IndexByte(d.b[start:], '"')
	if end < 0 {
		return "", false
	}
	s := d.b[start : start+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(s) {
		return "", false
	}
	d.i = start + end + 1
	return string(s), true
}

func (d *resultScanner) boolean() (bool, bool) {
	switch {
	case d.literal("true"):
		return true, true
	case d.literal("false"):
		return false, true
	}
	return false, false
}

func (d *resultScanner) result() (SaveResult, bool) {
	var r SaveResult
	if !d.consume('{') {
		return r, false
	}
	var seen [4]bool
	first := true
	for {
		if d.consume('}') {
			return r, true
		}
		if !first && !d.consume(',') {
			return r, false
		}
		first = false
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return r, false
		}
		var slot int
		switch key {
		case "id":
			slot = 0
			if !d.literal("null") {
				r.ID, ok = d.str()
			}
		case "success":
			slot = 1
			r.Success, ok = d.boolean()
		case "created":
			slot = 2
			r.Created, ok = d.boolean()
		case "errors":
			slot = 3
			ok = d.consume('[') && d.consume(']')
			r.Errors = []RecordError{}
		default:
			return r, false
		}
		// The literal after a value must end there (no "truex").
		if !ok || seen[slot] || d.i < len(d.b) && isLetter(d.b[d.i]) {
			return r, false
		}
		seen[slot] = true
	}
}

func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
