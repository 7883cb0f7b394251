package pubsub

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// ExpandFields turns the bitmap-encoded changedFields, nulledFields or
// diffFields of a change event header into field names, in schema order.
//
// An entry "0xHEX" is a big-endian bitmap over the top-level fields of rec:
// bit i set (bit 0 the least significant) names field i. An entry
// "P-0xHEX" is a bitmap over the fields of the compound field at top-level
// index P (a record, possibly inside a union with null) and names
// "Parent.Child", e.g. BillingAddress.City. Hex digits are read in either
// case. A bit past the last field, a bad index or a malformed entry is an
// error: a field list that cannot be read is never guessed.
func ExpandFields(rec *avro.RecordSchema, entries []string) ([]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	fields := rec.Fields()
	var out []string
	for _, e := range entries {
		parent, hex, nested := strings.Cut(e, "-")
		if !nested {
			hex, parent = e, ""
		}
		bits, err := parseHexBitmap(hex)
		if err != nil {
			return nil, fmt.Errorf("pubsub: field bitmap %q: %w", e, err)
		}
		if !nested {
			if bits.BitLen() > len(fields) {
				return nil, fmt.Errorf("pubsub: field bitmap %q: bit %d set but the schema has %d fields", e, bits.BitLen()-1, len(fields))
			}
			for i := range fields {
				if bits.Bit(i) == 1 {
					out = append(out, fields[i].Name())
				}
			}
			continue
		}
		p, err := strconv.Atoi(parent)
		if err != nil || p < 0 || p >= len(fields) || parent != strconv.Itoa(p) {
			return nil, fmt.Errorf("pubsub: field bitmap %q: parent index %q is not a field of %d", e, parent, len(fields))
		}
		sub := recordOf(fields[p].Type())
		if sub == nil {
			return nil, fmt.Errorf("pubsub: field bitmap %q: field %s is not a compound field", e, fields[p].Name())
		}
		subFields := sub.Fields()
		if bits.BitLen() > len(subFields) {
			return nil, fmt.Errorf("pubsub: field bitmap %q: bit %d set but %s has %d fields", e, bits.BitLen()-1, fields[p].Name(), len(subFields))
		}
		for i := range subFields {
			if bits.Bit(i) == 1 {
				out = append(out, fields[p].Name()+"."+subFields[i].Name())
			}
		}
	}
	return out, nil
}

// parseHexBitmap reads "0x" followed by at least one hex digit.
func parseHexBitmap(s string) (*big.Int, error) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, fmt.Errorf("not a 0x bitmap")
	}
	for _, c := range s[2:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return nil, fmt.Errorf("bad hex digit %q", c)
		}
	}
	n, ok := new(big.Int).SetString(s[2:], 16)
	if !ok {
		return nil, fmt.Errorf("bad hex")
	}
	return n, nil
}

// recordOf returns s as a record schema, unwrapping a union that holds one
// record (["null", record] and Salesforce's ["string", record] variants).
func recordOf(s avro.Schema) *avro.RecordSchema {
	switch t := s.(type) {
	case *avro.RecordSchema:
		return t
	case *avro.RefSchema:
		return recordOf(t.Schema())
	case *avro.UnionSchema:
		var rec *avro.RecordSchema
		for _, u := range t.Types() {
			if r := recordOf(u); r != nil {
				if rec != nil {
					return nil
				}
				rec = r
			}
		}
		return rec
	}
	return nil
}
