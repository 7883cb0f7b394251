package soql

import (
	"strings"

	"orgsync/salesforce"
)

// FieldKind is the type of a field, as far as querying cares.
type FieldKind int

// Field kinds. A lookup that answers a kind outside these is treated as
// KindString.
const (
	KindString   FieldKind = iota // text, picklist, email, URL…: case-insensitive
	KindID                        // record ID or lookup: 15/18-character forms compare equal
	KindNumber                    // double, currency, percent, int
	KindBool                      // checkbox; null reads as false
	KindDateTime                  // instant; literal 2026-01-02T03:04:05Z
	KindDate                      // calendar day; literal 2026-01-02
)

// String returns the kind's name as Salesforce's error messages spell it.
func (k FieldKind) String() string {
	switch k {
	case KindID:
		return "id"
	case KindNumber:
		return "double"
	case KindBool:
		return "boolean"
	case KindDateTime:
		return "dateTime"
	case KindDate:
		return "date"
	}
	return "string"
}

// Resolve checks every field the query names (SELECT, WHERE, ORDER BY, in
// that order) with lookup, which answers case-insensitively with the
// canonical name and kind, and rewrites the names to canonical. It also
// checks each WHERE literal against its field's kind and rewrites ID
// literals to their 18-character form. On error q is left unchanged.
//
// The object name is the caller's to check; set q.Object to its canonical
// spelling first, since the unknown-field message quotes it.
//
// Errors are *Error:
//   - INVALID_FIELD for an unknown field ("No such column 'Foo' on entity
//     'Account'. …") or relationship, and for a literal of the wrong type
//     ("value of filter criterion for field 'CreatedDate' must be of type
//     dateTime and should not be enclosed in quotes"), which is the code
//     Salesforce answers with for that;
//   - INVALID_QUERY_FILTER_OPERATOR for an ID field compared with something
//     that is not a record ID ("invalid ID field: abc"), and for an operator
//     the field's kind does not allow (LIKE on a non-text field, < on a
//     checkbox);
//   - MALFORMED_QUERY for a field selected twice under different spellings.
func (q *Query) Resolve(lookup func(name string) (canonical string, kind FieldKind, ok bool)) error {
	r := resolver{q: q, lookup: lookup, kinds: map[string]FieldKind{}}
	fields := make([]string, len(q.Fields))
	seen := map[string]bool{}
	for i, f := range q.Fields {
		c, _, err := r.field(f)
		if err != nil {
			return err
		}
		if seen[c] {
			return &Error{Code: CodeMalformedQuery, Message: "duplicate field selected: " + c}
		}
		seen[c] = true
		fields[i] = c
	}
	var where Expr
	if q.Where != nil {
		var err error
		if where, err = r.expr(q.Where); err != nil {
			return err
		}
	}
	var order []OrderItem
	for _, o := range q.OrderBy {
		c, _, err := r.field(o.Field)
		if err != nil {
			return err
		}
		o.Field = c
		order = append(order, o)
	}
	if !q.Count {
		q.Fields = fields
	}
	q.Where = where
	q.OrderBy = order
	q.kinds = r.kinds
	q.inSets = nil
	q.indexInLists(q.Where)
	return nil
}

// indexInLists builds q.inSets for the IN lists of e.
func (q *Query) indexInLists(e Expr) {
	switch e := e.(type) {
	case *AndExpr:
		for _, t := range e.Terms {
			q.indexInLists(t)
		}
	case *OrExpr:
		for _, t := range e.Terms {
			q.indexInLists(t)
		}
	case *NotExpr:
		q.indexInLists(e.X)
	case *InExpr:
		k, known := q.kinds[e.Field]
		if e.Not || !known || (k != KindString && k != KindID) {
			return
		}
		set := make(map[string]struct{}, len(e.Values))
		for _, v := range e.Values {
			if v.Kind != ValueString {
				return
			}
			set[inKey(k, v.Str)] = struct{}{}
		}
		if q.inSets == nil {
			q.inSets = map[*InExpr]map[string]struct{}{}
		}
		q.inSets[e] = set
	}
}

type resolver struct {
	q      *Query
	lookup func(string) (string, FieldKind, bool)
	kinds  map[string]FieldKind
}

func (r *resolver) field(name string) (string, FieldKind, error) {
	c, k, ok := r.lookup(name)
	if !ok {
		if rel, _, dotted := strings.Cut(name, "."); dotted {
			return "", 0, &Error{Code: CodeInvalidField, Message: "Didn't understand relationship '" + rel +
				"' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' " +
				"after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."}
		}
		return "", 0, &Error{Code: CodeInvalidField, Message: "No such column '" + name + "' on entity '" + r.q.Object +
			"'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. " +
			"Please reference your WSDL or the describe call for the appropriate names."}
	}
	if k < KindString || k > KindDate {
		k = KindString
	}
	r.kinds[c] = k
	return c, k, nil
}

// expr returns a resolved copy of e; the original is not modified.
func (r *resolver) expr(e Expr) (Expr, error) {
	switch e := e.(type) {
	case *AndExpr:
		terms, err := r.terms(e.Terms)
		if err != nil {
			return nil, err
		}
		return &AndExpr{Terms: terms}, nil
	case *OrExpr:
		terms, err := r.terms(e.Terms)
		if err != nil {
			return nil, err
		}
		return &OrExpr{Terms: terms}, nil
	case *NotExpr:
		x, err := r.expr(e.X)
		if err != nil {
			return nil, err
		}
		return &NotExpr{X: x}, nil
	case *CompareExpr:
		c, k, err := r.field(e.Field)
		if err != nil {
			return nil, err
		}
		v, err := checkValue(e.Field, k, e.Op, e.Value)
		if err != nil {
			return nil, err
		}
		return &CompareExpr{Field: c, Op: e.Op, Value: v}, nil
	case *InExpr:
		c, k, err := r.field(e.Field)
		if err != nil {
			return nil, err
		}
		vs := make([]Value, len(e.Values))
		for i, v := range e.Values {
			if vs[i], err = checkValue(e.Field, k, OpEq, v); err != nil {
				return nil, err
			}
		}
		return &InExpr{Field: c, Not: e.Not, Values: vs}, nil
	}
	return e, nil
}

func (r *resolver) terms(ts []Expr) ([]Expr, error) {
	out := make([]Expr, len(ts))
	for i, t := range ts {
		var err error
		if out[i], err = r.expr(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkValue checks a literal compared with field (named as the query wrote
// it) of kind k by op, and returns it normalised.
func checkValue(field string, k FieldKind, op Op, v Value) (Value, error) {
	badOp := func() (Value, error) {
		return Value{}, &Error{Code: CodeInvalidQueryFilterOperator, Message: "invalid operator on " + k.String() + " field"}
	}
	if op == OpLike && k != KindString {
		return badOp()
	}
	if k == KindBool && op != OpEq && op != OpNe {
		return badOp()
	}
	if v.Kind == ValueNull {
		return v, nil
	}
	want := literalKind(k)
	if v.Kind != want {
		quotes := "should not be enclosed in quotes"
		if want == ValueString {
			quotes = "should be enclosed in quotes"
		}
		return Value{}, &Error{Code: CodeInvalidField, Message: "value of filter criterion for field '" + field +
			"' must be of type " + k.String() + " and " + quotes}
	}
	if k == KindID {
		id, err := salesforce.NormalizeID(v.Str)
		if err != nil {
			return Value{}, &Error{Code: CodeInvalidQueryFilterOperator, Message: "invalid ID field: " + clip(v.Str)}
		}
		v = Value{Kind: ValueString, Str: id, raw: id}
	}
	return v, nil
}

// literalKind is the kind of literal a field of kind k compares with.
func literalKind(k FieldKind) ValueKind {
	switch k {
	case KindNumber:
		return ValueNumber
	case KindBool:
		return ValueBool
	case KindDateTime:
		return ValueDateTime
	case KindDate:
		return ValueDate
	}
	return ValueString
}
