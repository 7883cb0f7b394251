package event

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// fastDecode decodes the common shape of an event body without reflection:
// one object with the keys v, type, source_org, source_id, created_at,
// fields and parent_id at most once each, strings without escapes, and
// fields whose values are strings, numbers, true, false or null. It
// reports false for anything else, and Decode then uses encoding/json,
// whose result fastDecode's equals whenever it reports true (see
// FuzzFastDecode).
func fastDecode(body []byte) (Event, bool) {
	var e Event
	d := scanner{b: body}
	if !d.consume('{') {
		return Event{}, false
	}
	var seen [7]bool
	first := true
	for {
		d.space()
		if d.consume('}') {
			break
		}
		if !first && !d.consume(',') {
			return Event{}, false
		}
		first = false
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return Event{}, false
		}
		var slot int
		switch key {
		case "v":
			slot = 0
			n, ok := d.smallInt()
			if !ok {
				return Event{}, false
			}
			e.V = n
		case "type":
			slot = 1
			e.Type, ok = d.str()
		case "source_org":
			slot = 2
			e.SourceOrg, ok = d.str()
		case "source_id":
			slot = 3
			e.SourceID, ok = d.str()
		case "parent_id":
			slot = 4
			e.ParentID, ok = d.str()
		case "created_at":
			slot = 5
			d.space()
			start := d.i
			if _, ok = d.str(); ok {
				ok = e.CreatedAt.UnmarshalJSON(d.b[start:d.i]) == nil
			}
		case "fields":
			slot = 6
			e.Fields, ok = d.fields()
		default:
			return Event{}, false
		}
		if !ok || seen[slot] {
			return Event{}, false
		}
		seen[slot] = true
	}
	d.space()
	if d.i != len(d.b) {
		return Event{}, false
	}
	return e, true
}

type scanner struct {
	b []byte
	i int
}

func (d *scanner) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *scanner) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid UTF-8.
func (d *scanner) str() (string, bool) {
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

// smallInt reads a non-negative integer of at most 9 digits without a
// leading zero (other than "0" itself).
func (d *scanner) smallInt() (int, bool) {
	d.space()
	start, n := d.i, 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' && d.i-start < 9 {
		n = n*10 + int(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 1 && d.b[start] == '0' || d.i < len(d.b) && (d.b[d.i] >= '0' && d.b[d.i] <= '9' || d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return 0, false
	}
	return n, true
}

// fields reads the fields object: flat values only.
func (d *scanner) fields() (map[string]any, bool) {
	if !d.consume('{') {
		return nil, false
	}
	m := make(map[string]any, 8)
	first := true
	for {
		d.space()
		if d.consume('}') {
			return m, true
		}
		if !first && !d.consume(',') {
			return nil, false
		}
		first = false
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return nil, false
		}
		d.space()
		if d.i >= len(d.b) {
			return nil, false
		}
		switch c := d.b[d.i]; {
		case c == '"':
			s, ok := d.str()
			if !ok {
				return nil, false
			}
			m[key] = s
		case c == 't' && bytes.HasPrefix(d.b[d.i:], []byte("true")):
			d.i += 4
			m[key] = true
		case c == 'f' && bytes.HasPrefix(d.b[d.i:], []byte("false")):
			d.i += 5
			m[key] = false
		case c == 'n' && bytes.HasPrefix(d.b[d.i:], []byte("null")):
			d.i += 4
			m[key] = nil
		case c == '-' || c >= '0' && c <= '9':
			start := d.i
			for d.i < len(d.b) && bytes.IndexByte([]byte("0123456789+-.eE"), d.b[d.i]) >= 0 {
				d.i++
			}
			num := string(d.b[start:d.i])
			if !json.Valid([]byte(num)) {
				return nil, false
			}
			m[key] = json.Number(num)
		default:
			return nil, false
		}
	}
}
