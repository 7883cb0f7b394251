package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"orgsync/internal/jsonscan"
)

// RawFields is the fields object of a created event kept as it came in the
// message, for writers that copy it into a request body instead of building
// a map: DecodeRaw keeps it for the usual shape (flat values, every key a
// valid field name once, at most one ParentId key in any letter case), and
// Event.DecodeFields turns it into the map Decode would have built.
type RawFields struct {
	obj []byte // the whole object, braces included
	// head and tail are the object's members before and after the ParentId
	// member (any letter case), without the braces, white space at their
	// ends or the commas around the cut; without a ParentId member, head
	// holds them all.
	head, tail []byte
	// parent is fields.ParentId (that exact key), normalised; "" when the
	// key is missing, null or "".
	parent string
}

// AppendMembers appends the fields as the members of a JSON object (no
// braces), every field but those named ParentId in any letter case, as the
// message carried them: `"Name":"Acme","Phone":null`. It appends nothing
// when no field is left.
func (r *RawFields) AppendMembers(b []byte) []byte {
	b = append(b, r.head...)
	if len(r.head) > 0 && len(r.tail) > 0 {
		b = append(b, ',')
	}
	return append(b, r.tail...)
}

// Len is the length of what AppendMembers appends.
func (r *RawFields) Len() int {
	n := len(r.head) + len(r.tail)
	if len(r.head) > 0 && len(r.tail) > 0 {
		n++
	}
	return n
}

// Has reports whether a field may be named key: false means no member of
// the object has that exact key (true may also mean the key's text is in a
// value).
func (r *RawFields) Has(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(r.obj); {
		j := bytes.Index(r.obj[i:], []byte(key))
		if j < 0 {
			return false
		}
		i += j
		if i > 0 && r.obj[i-1] == '"' && i+len(key) < len(r.obj) && r.obj[i+len(key)] == '"' {
			return true
		}
		i++
	}
	return false
}

// DecodeRaw is Decode, except that a created event's fields of the usual
// shape are kept as raw JSON in Raw and Fields is left nil: the worker's
// hot path copies them into the request body as they are. Call
// DecodeFields before reading Fields. It accepts and refuses exactly what
// Decode does, with the same errors (see FuzzDecodeRaw).
func DecodeRaw(body []byte) (Event, error) {
	if len(body) > maxBody {
		return Decode(body)
	}
	e, ok := fastDecode(body, true)
	if !ok {
		return Decode(body)
	}
	if err := e.normalize(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// DecodeFields sets Fields from Raw, as Decode would have set them, and
// clears Raw. It does nothing when Raw is nil.
func (e *Event) DecodeFields() {
	if e.Raw == nil {
		return
	}
	m, ok := decodeObject(e.Raw.obj)
	if !ok {
		// DecodeRaw checked the object: this cannot happen.
		panic(fmt.Sprintf("event: raw fields of %s do not decode", e.SourceID))
	}
	if p, ok := m["ParentId"]; ok && p != nil {
		if e.Raw.parent == "" {
			delete(m, "ParentId") // "" on a created event: no parent
		} else {
			m["ParentId"] = e.Raw.parent
		}
	}
	e.Fields, e.Raw = m, nil
}

// decodeObject decodes a fields object as Decode does: the fast path, or
// encoding/json with json.Number.
func decodeObject(obj []byte) (map[string]any, bool) {
	d := scanner{jsonscan.Scanner{B: obj}}
	if m, ok := d.fields(); ok && d.Done() {
		return m, true
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// maxRawFields bounds the members DecodeRaw keeps raw (duplicate keys are
// looked for pairwise); a larger object is decoded into a map.
const maxRawFields = 100

// rawFields reads the fields object without decoding its values: flat
// values only (strings, numbers, true, false, null), keys that are valid
// field names and never-copied names nowhere, no key twice, at most one
// key ParentId in any letter case, and ParentId itself a string without
// escapes or null.
func (d *scanner) rawFields() (*RawFields, bool) {
	d.Space()
	objStart := d.I
	if !d.Consume('{') {
		return nil, false
	}
	r := &RawFields{}
	var keys [maxRawFields][2]int // start and end of each key (without quotes)
	n := 0
	first, last := -1, -1 // start of the first member, end of the last
	cut := -1             // index of the ParentId member
	var beforeCut, afterCut int
	for {
		d.Space()
		if d.Consume('}') {
			break
		}
		if n > 0 && !d.Consume(',') {
			return nil, false
		}
		if n == maxRawFields {
			return nil, false
		}
		d.Space()
		start := d.I
		if n == cut+1 && cut >= 0 {
			afterCut = start
		}
		ks, ke, ok := d.plainString()
		if !ok || !d.Consume(':') {
			return nil, false
		}
		key := d.B[ks:ke]
		if !validName(key) || neverCopiedBytes(key) {
			return nil, false
		}
		for _, k := range keys[:n] {
			if bytes.Equal(d.B[k[0]:k[1]], key) {
				return nil, false
			}
		}
		keys[n] = [2]int{ks, ke}
		isParent := len(key) == 8 && bytes.EqualFold(key, []byte("ParentId"))
		if isParent {
			if cut >= 0 {
				return nil, false
			}
			cut, beforeCut = n, last
		}
		d.Space()
		if isParent && string(key) == "ParentId" {
			switch {
			case d.Literal("null"):
			default:
				p, ok := d.Str()
				if !ok {
					return nil, false
				}
				r.parent = p
			}
		} else if !d.flatValue() {
			return nil, false
		}
		if first < 0 {
			first = start
		}
		last = d.I
		n++
	}
	r.obj = d.B[objStart:d.I]
	switch {
	case n == 0:
	case cut < 0:
		r.head = d.B[first:last]
	default:
		if cut > 0 {
			r.head = d.B[first:beforeCut]
		}
		if cut < n-1 {
			r.tail = d.B[afterCut:last]
		}
	}
	return r, true
}

// plainString reads a string without escapes or control characters (a
// field name) and returns where its contents start and end.
func (d *scanner) plainString() (start, end int, ok bool) {
	if !d.Consume('"') {
		return 0, 0, false
	}
	start = d.I
	for i := start; i < len(d.B); i++ {
		switch c := d.B[i]; {
		case c == '"':
			d.I = i + 1
			return start, i, true
		case c < 0x20 || c == '\\':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// flatValue skips a string (escapes allowed, but no \u escape of a UTF-16
// surrogate, which encoding/json would turn into U+FFFD), a number, true,
// false or null.
func (d *scanner) flatValue() bool {
	if d.I >= len(d.B) {
		return false
	}
	switch c := d.B[d.I]; {
	case c == '"':
		return d.escapedString()
	case c == 't':
		return d.Literal("true")
	case c == 'f':
		return d.Literal("false")
	case c == 'n':
		return d.Literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return false
}

// escapedString skips a JSON string in valid UTF-8 whose escapes decode
// to what they say.
func (d *scanner) escapedString() bool {
	i := d.I + 1
	ascii := true
	for i < len(d.B) {
		c := d.B[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(d.B[d.I+1:i]) {
				return false
			}
			d.I = i + 1
			return true
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
			i++
		case c == '\\':
			if i+1 >= len(d.B) {
				return false
			}
			switch d.B[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d.B) {
					return false
				}
				var r rune
				for _, h := range d.B[i+2 : i+6] {
					switch {
					case h >= '0' && h <= '9':
						r = r<<4 | rune(h-'0')
					case h >= 'a' && h <= 'f':
						r = r<<4 | rune(h-'a'+10)
					case h >= 'A' && h <= 'F':
						r = r<<4 | rune(h-'A'+10)
					default:
						return false
					}
				}
				if r >= 0xd800 && r <= 0xdfff {
					return false
				}
				i += 6
			default:
				return false
			}
		default:
			i++
		}
	}
	return false
}

// number skips a JSON number.
func (d *scanner) number() bool {
	b, i := d.B, d.I
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	d.I = i
	return true
}

// validName is ValidFieldName for the bytes of a key.
func validName(s []byte) bool {
	if len(s) == 0 || len(s) > 80 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}
