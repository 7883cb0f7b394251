package reconcile

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"orgsync/event"
	"orgsync/salesforce"
)

// FieldKind says how a field's values are compared.
type FieldKind int

// Field kinds.
const (
	KindText     FieldKind = iota // exact text; blank and null are equal
	KindPicklist                  // text compared without regard to case
	KindNumber                    // numeric value: 1.50 equals 1.5
	KindBool                      // null equals false
	KindID                        // a record ID: 15 and 18 characters compare equal
	KindDateTime                  // an instant, whatever the offset or precision
)

// Field is one compared field: its API name and how it compares.
type Field struct {
	Name string
	Kind FieldKind
}

// KindOf maps a describe field type to its FieldKind.
func KindOf(describeType string) FieldKind {
	switch strings.ToLower(describeType) {
	case "picklist", "multipicklist", "combobox":
		return KindPicklist
	case "double", "currency", "percent", "int", "long":
		return KindNumber
	case "boolean":
		return KindBool
	case "reference", "id":
		return KindID
	case "datetime", "date":
		return KindDateTime
	}
	return KindText
}

// ResolveFields returns the fields of the allow-list that both orgs have,
// with the target's spelling and type, and the names it leaves out because
// one org lacks them (the poller does not copy a field the source lacks; a
// field the target lacks cannot be written).
func ResolveFields(allow event.Fields, source, target *salesforce.Describe) (fields []Field, skipped []string) {
	for _, n := range allow.Names() {
		_, inSource := source.Field(n)
		tf, inTarget := target.Field(n)
		if !inSource || !inTarget {
			skipped = append(skipped, n)
			continue
		}
		fields = append(fields, Field{Name: tf.Name, Kind: KindOf(tf.Type)})
	}
	return fields, skipped
}

// Compare returns the fields whose values differ once normalised as
// Salesforce compares them, with both values as given; nil when all agree.
// Field names are looked up in source and target without regard to case.
func Compare(fields []Field, source, target map[string]any) map[string]Values {
	var out map[string]Values
	for _, f := range fields {
		s, t := lookup(source, f.Name), lookup(target, f.Name)
		if Equal(f.Kind, s, t) {
			continue
		}
		if out == nil {
			out = map[string]Values{}
		}
		out[f.Name] = Values{Source: s, Target: t}
	}
	return out
}

func lookup(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Equal reports whether two values of a field of kind k are the same value
// as Salesforce sees it.
func Equal(k FieldKind, a, b any) bool {
	na, nb := normalize(k, a), normalize(k, b)
	return na == nb
}

// normalize returns a comparable form of v: nil for null or blank.
func normalize(k FieldKind, v any) any {
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		v = nil
	}
	switch k {
	case KindBool:
		switch x := v.(type) {
		case nil:
			return false
		case bool:
			return x
		case string:
			return strings.EqualFold(x, "true")
		}
	case KindNumber:
		if v == nil {
			return nil
		}
		if r, ok := number(v); ok {
			return r.RatString()
		}
	case KindPicklist:
		if s, ok := v.(string); ok {
			return strings.ToLower(s)
		}
	case KindID:
		if s, ok := v.(string); ok {
			if id, err := salesforce.NormalizeID(s); err == nil {
				return id
			}
			return s
		}
	case KindDateTime:
		if s, ok := v.(string); ok {
			if t, err := event.ParseTime(s); err == nil {
				return t.UnixNano()
			}
			return s
		}
	}
	if v == nil {
		return nil
	}
	switch x := v.(type) {
	case string, bool:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}

// number parses a JSON number, a float or a numeric string exactly.
func number(v any) (*big.Rat, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	case float64:
		r := new(big.Rat).SetFloat64(x) // nil for NaN and infinities
		return r, r != nil
	case int:
		return new(big.Rat).SetInt64(int64(x)), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}
