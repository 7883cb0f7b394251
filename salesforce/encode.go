package salesforce

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The request bodies of collections and composite calls are written here
// without intermediate maps and without reflection: records go straight
// from their Record (or, already encoded, their RawRecord) to the body,
// "attributes" first. Field order within a
// record is the map's (JSON objects are unordered). Values of other types
// than string, bool, nil, json.Number, json.RawMessage and map[string]any
// go through encoding/json.

// RawRecord is one record of a collections upsert already encoded: the
// members of its JSON object without the braces and without "attributes"
// (`"Name":"Acme","Ext__c":"001…"`), possibly none. The client copies it
// into the request body as it is and does not parse it again: it must be
// valid JSON members (AppendRecord writes them from a Record), or the org
// refuses the whole call.
type RawRecord []byte

// AppendRecord appends rec's fields as the members of a JSON object, as a
// RawRecord holds them, and exactly as a collections call would write rec.
// A value it cannot write is an error wrapping ErrInvalidRequest.
func AppendRecord(b []byte, rec Record) ([]byte, error) {
	b, field, err := appendMembers(b, rec)
	if err != nil {
		return nil, fmt.Errorf("%w: field %s: %v", ErrInvalidRequest, clipText(field, 100), err)
	}
	return b, nil
}

// AppendString appends s as a JSON string: what encoding/json reads back as
// s (invalid UTF-8 as U+FFFD, as encoding/json writes it).
func AppendString(b []byte, s string) []byte { return appendString(b, s) }

// appendCollectionBody appends {"allOrNone":…,"records":[…]} with each
// record typed as sobject.
func appendCollectionBody(b []byte, sobject string, allOrNone bool, records []Record) ([]byte, error) {
	return appendCollection(b, sobject, allOrNone, len(records), func(b []byte, i int) ([]byte, error) {
		b, field, err := appendMembers(b, records[i])
		if err != nil {
			return nil, fmt.Errorf("%w: record %d field %s: %v", ErrInvalidRequest, i, clipText(field, 100), err)
		}
		return b, nil
	})
}

// appendRawCollectionBody is appendCollectionBody for encoded records.
func appendRawCollectionBody(b []byte, sobject string, allOrNone bool, records []RawRecord) []byte {
	b, _ = appendCollection(b, sobject, allOrNone, len(records), func(b []byte, i int) ([]byte, error) {
		return append(b, records[i]...), nil
	})
	return b
}

// appendCollection appends {"allOrNone":…,"records":[…]} with n records,
// each typed as sobject, whose members members appends.
func appendCollection(b []byte, sobject string, allOrNone bool, n int, members func(b []byte, i int) ([]byte, error)) ([]byte, error) {
	b = append(b, `{"allOrNone":`...)
	b = strconv.AppendBool(b, allOrNone)
	b = append(b, `,"records":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"attributes":{"type":`...)
		b = appendString(b, sobject)
		b = append(b, "},"...)
		mark := len(b)
		var err error
		if b, err = members(b, i); err != nil {
			return nil, err
		}
		if len(b) == mark {
			b = b[:mark-1] // no members: no comma after the attributes
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendMembers appends rec's fields but "attributes" as object members;
// field is the one whose value failed.
func appendMembers(b []byte, rec Record) (_ []byte, field string, err error) {
	first := true
	for k, v := range rec {
		if k == "attributes" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, v); err != nil {
			return nil, k, err
		}
	}
	return b, "", nil
}

// appendValue appends one field value.
func appendValue(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, t), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case json.Number:
		if !validNumber(string(t)) {
			return nil, fmt.Errorf("invalid number %q", clipText(string(t), 40))
		}
		return append(b, t...), nil
	case json.RawMessage:
		if !json.Valid(t) {
			return nil, fmt.Errorf("invalid JSON value")
		}
		return append(b, t...), nil
	case map[string]any: // a relationship, e.g. {"Ext__c": "value"}
		b = append(b, '{')
		first := true
		for k, x := range t {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, x); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// validNumber reports a JSON number (what json.Number must hold).
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; U+2028 and U+2029 are escaped like it too.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
