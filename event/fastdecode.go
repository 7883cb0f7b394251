package event

import (
	"bytes"
	"encoding/json"

	"orgsync/internal/jsonscan"
)

// fastDecode decodes the common shape of an event body without reflection:
// one object with the keys v, type, source_org, source_id, created_at,
// changed_at, change_key, fields and parent_id at most once each, strings without escapes, and
// fields whose values are strings, numbers, true, false or null. It
// reports false for anything else, and Decode then uses encoding/json,
// whose result fastDecode's equals whenever it reports true (see
// FuzzFastDecode). With keepRaw, the fields of a created event are kept
// as RawFields instead (see DecodeRaw).
func fastDecode(body []byte, keepRaw bool) (Event, bool) {
	var e Event
	d := scanner{jsonscan.Scanner{B: body}}
	if !d.Consume('{') {
		return Event{}, false
	}
	var seen [9]bool
	first := true
	for {
		d.Space()
		if d.Consume('}') {
			break
		}
		if !first && !d.Consume(',') {
			return Event{}, false
		}
		first = false
		key, ok := d.Bytes()
		if !ok || !d.Consume(':') {
			return Event{}, false
		}
		var slot int
		switch string(key) {
		case "v":
			slot = 0
			n, ok := d.smallInt()
			if !ok {
				return Event{}, false
			}
			e.V = n
		case "type":
			slot = 1
			e.Type, ok = d.eventType()
		case "source_org":
			slot = 2
			e.SourceOrg, ok = d.Str()
		case "source_id":
			slot = 3
			e.SourceID, ok = d.Str()
		case "parent_id":
			slot = 4
			e.ParentID, ok = d.Str()
		case "created_at":
			slot = 5
			d.Space()
			start := d.I
			if _, ok = d.Bytes(); ok {
				ok = e.CreatedAt.UnmarshalJSON(d.B[start:d.I]) == nil
			}
		case "fields":
			slot = 6
			if keepRaw {
				e.Raw, ok = d.rawFields()
			} else {
				e.Fields, ok = d.fields()
			}
		case "changed_at":
			slot = 7
			d.Space()
			start := d.I
			if _, ok = d.Bytes(); ok {
				ok = e.ChangedAt.UnmarshalJSON(d.B[start:d.I]) == nil
			}
		case "change_key":
			slot = 8
			e.ChangeKey, ok = d.Str()
		default:
			return Event{}, false
		}
		if !ok || seen[slot] {
			return Event{}, false
		}
		seen[slot] = true
	}
	d.Space()
	if d.I != len(d.B) {
		return Event{}, false
	}
	if e.Raw != nil && e.Type != TypeAccountCreated {
		// Only created events keep their fields raw.
		m, ok := decodeObject(e.Raw.obj)
		if !ok {
			return Event{}, false
		}
		e.Fields, e.Raw = m, nil
	}
	return e, true
}

type scanner struct{ jsonscan.Scanner }

// eventType reads the type, without a copy when it is a known one.
func (d *scanner) eventType() (string, bool) {
	b, ok := d.Bytes()
	if !ok {
		return "", false
	}
	switch string(b) {
	case TypeAccountCreated:
		return TypeAccountCreated, true
	case TypeAccountUpdated:
		return TypeAccountUpdated, true
	case TypeAccountDeleted:
		return TypeAccountDeleted, true
	case TypeAccountUndeleted:
		return TypeAccountUndeleted, true
	case TypeAccountLink:
		return TypeAccountLink, true
	}
	return string(b), true
}

// smallInt reads a non-negative integer of at most 9 digits without a
// leading zero (other than "0" itself).
func (d *scanner) smallInt() (int, bool) {
	d.Space()
	start, n := d.I, 0
	for d.I < len(d.B) && d.B[d.I] >= '0' && d.B[d.I] <= '9' && d.I-start < 9 {
		n = n*10 + int(d.B[d.I]-'0')
		d.I++
	}
	digits := d.I - start
	if digits == 0 || digits > 1 && d.B[start] == '0' || d.I < len(d.B) && (d.B[d.I] >= '0' && d.B[d.I] <= '9' || d.B[d.I] == '.' || d.B[d.I] == 'e' || d.B[d.I] == 'E') {
		return 0, false
	}
	return n, true
}

// fields reads the fields object: flat values only.
func (d *scanner) fields() (map[string]any, bool) {
	if !d.Consume('{') {
		return nil, false
	}
	m := make(map[string]any, 8)
	first := true
	for {
		d.Space()
		if d.Consume('}') {
			return m, true
		}
		if !first && !d.Consume(',') {
			return nil, false
		}
		first = false
		key, ok := d.Str()
		if !ok || !d.Consume(':') {
			return nil, false
		}
		d.Space()
		if d.I >= len(d.B) {
			return nil, false
		}
		switch c := d.B[d.I]; {
		case c == '"':
			s, ok := d.Str()
			if !ok {
				return nil, false
			}
			m[key] = s
		case c == 't' && bytes.HasPrefix(d.B[d.I:], []byte("true")):
			d.I += 4
			m[key] = true
		case c == 'f' && bytes.HasPrefix(d.B[d.I:], []byte("false")):
			d.I += 5
			m[key] = false
		case c == 'n' && bytes.HasPrefix(d.B[d.I:], []byte("null")):
			d.I += 4
			m[key] = nil
		case c == '-' || c >= '0' && c <= '9':
			start := d.I
			for d.I < len(d.B) && bytes.IndexByte([]byte("0123456789+-.eE"), d.B[d.I]) >= 0 {
				d.I++
			}
			num := string(d.B[start:d.I])
			if !json.Valid([]byte(num)) {
				return nil, false
			}
			m[key] = json.Number(num)
		default:
			return nil, false
		}
	}
}
