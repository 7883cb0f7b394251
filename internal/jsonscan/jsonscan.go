// Package jsonscan is the byte scanner behind orgsync's fast JSON decoders
// (events, collections answers): it reads the simple shapes those hot paths
// expect and reports false for anything else, so the caller can fall back to
// encoding/json. It never decodes escapes.
package jsonscan

import (
	"bytes"
	"unicode/utf8"
)

// Scanner reads B from position I.
type Scanner struct {
	B []byte
	I int
}

// Space skips JSON white space.
func (d *Scanner) Space() {
	for d.I < len(d.B) {
		switch d.B[d.I] {
		case ' ', '\t', '\n', '\r':
			d.I++
		default:
			return
		}
	}
}

// Consume skips white space and then c, reporting whether c was there.
func (d *Scanner) Consume(c byte) bool {
	d.Space()
	if d.I < len(d.B) && d.B[d.I] == c {
		d.I++
		return true
	}
	return false
}

// Literal skips white space and then s, reporting whether s was there.
func (d *Scanner) Literal(s string) bool {
	d.Space()
	if bytes.HasPrefix(d.B[d.I:], []byte(s)) {
		d.I += len(s)
		return true
	}
	return false
}

// Str reads a string without escapes or control characters, in valid UTF-8.
func (d *Scanner) Str() (string, bool) {
	s, ok := d.Bytes()
	if !ok {
		return "", false
	}
	return string(s), true
}

// Bytes is Str without the copy: the string's contents in B, for keys and
// values compared rather than kept.
func (d *Scanner) Bytes() ([]byte, bool) {
	if !d.Consume('"') {
		return nil, false
	}
	start := d.I
	end := bytes.IndexByte(d.B[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := d.B[start : start+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	d.I = start + end + 1
	return s, true
}

// Bool reads true or false.
func (d *Scanner) Bool() (value, ok bool) {
	switch {
	case d.Literal("true"):
		return true, true
	case d.Literal("false"):
		return false, true
	}
	return false, false
}

// Done skips trailing white space and reports whether nothing else follows.
func (d *Scanner) Done() bool {
	d.Space()
	return d.I == len(d.B)
}
