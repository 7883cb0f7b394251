// Package soql parses and evaluates the subset of SOQL that the fake org
// answers:
//
//	SELECT field[, field…] | COUNT() FROM Object [WHERE cond]
//	    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST][, …]] [LIMIT n] [OFFSET n]
//
// A condition is a comparison (= != <> < > <= >= LIKE), IN (…) or NOT IN (…),
// combined with NOT, AND, OR and parentheses. As in Salesforce, AND and OR
// cannot be mixed at one level without parentheses.
//
// Parse checks syntax only. Resolve then checks every field name against the
// object's fields, rewrites names to their canonical spelling and checks each
// WHERE literal against its field's kind. Match and Compare evaluate a
// resolved query against records with Salesforce's semantics:
// case-insensitive text, 15/18-character IDs compared in 18-character form,
// nulls first in ascending order.
//
// Failures are *Error values carrying the errorCode Salesforce answers with.
//
// A Query is not safe for concurrent Resolve; once resolved, Match, Compare
// and String only read it and may run concurrently.
package soql

import (
	"strconv"
	"strings"
	"time"
)

// MaxOffset is the largest OFFSET Salesforce accepts.
const MaxOffset = 2000

// maxDepth bounds the nesting of NOT and parentheses. Salesforce has no
// documented limit; this one keeps hostile input from recursing without end.
const maxDepth = 100

// Query is a parsed SOQL query.
type Query struct {
	Fields  []string // canonical names after Resolve, in SELECT order; empty when Count
	Count   bool     // SELECT COUNT()
	Object  string
	Where   Expr // nil when absent
	OrderBy []OrderItem
	Limit   int // -1 when absent
	Offset  int // 0 when absent

	// kinds maps canonical field names to their kinds; set by Resolve.
	kinds map[string]FieldKind
	// inSets holds, for each IN list of text or ID literals on a text or
	// ID field, the keys of its literals (see inKey); set by Resolve, so
	// that Match looks a value up instead of comparing it with every
	// literal.
	inSets map[*InExpr]map[string]struct{}
}

// OrderItem is one ORDER BY key. NullsLast is always explicit: Parse sets it
// to the Salesforce default (false for ASC, true for DESC) when the query
// does not say NULLS FIRST or NULLS LAST.
type OrderItem struct {
	Field     string
	Desc      bool
	NullsLast bool
}

// Expr is a WHERE condition: *AndExpr, *OrExpr, *NotExpr, *CompareExpr or
// *InExpr.
type Expr interface {
	exprNode()
}

// AndExpr is true when every term is.
type AndExpr struct{ Terms []Expr }

// OrExpr is true when any term is.
type OrExpr struct{ Terms []Expr }

// NotExpr negates X.
type NotExpr struct{ X Expr }

// CompareExpr compares a field with a literal.
type CompareExpr struct {
	Field string
	Op    Op
	Value Value
}

// InExpr is Field IN (Values…), or NOT IN when Not is set.
type InExpr struct {
	Field  string
	Not    bool
	Values []Value
}

func (*AndExpr) exprNode()     {}
func (*OrExpr) exprNode()      {}
func (*NotExpr) exprNode()     {}
func (*CompareExpr) exprNode() {}
func (*InExpr) exprNode()      {}

// Op is a comparison operator.
type Op int

// Comparison operators. <> parses as OpNe.
const (
	OpEq Op = iota + 1
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpLike
)

// String returns the operator as SOQL writes it.
func (o Op) String() string {
	switch o {
	case OpEq:
		return "="
	case OpNe:
		return "!="
	case OpLt:
		return "<"
	case OpLe:
		return "<="
	case OpGt:
		return ">"
	case OpGe:
		return ">="
	case OpLike:
		return "LIKE"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// ValueKind is the type of a literal.
type ValueKind int

// Literal types.
const (
	ValueNull ValueKind = iota
	ValueString
	ValueNumber
	ValueBool
	ValueDateTime
	ValueDate
)

// Value is a literal in a WHERE condition.
type Value struct {
	Kind ValueKind
	Str  string    // ValueString: the decoded text (\% and \_ decode to % and _)
	Num  float64   // ValueNumber
	Bool bool      // ValueBool
	Time time.Time // ValueDateTime (UTC) and ValueDate (midnight UTC)

	// raw is a string literal's source text between the quotes, escapes
	// intact; LIKE needs it to tell \% from %. Empty for values built by
	// hand, which then have no escaped wildcards.
	raw string
}

// StringValue returns a string literal with text s. In a LIKE pattern, any
// % and _ in s are wildcards.
func StringValue(s string) Value { return Value{Kind: ValueString, Str: s} }

// String returns the literal as SOQL writes it.
func (v Value) String() string {
	switch v.Kind {
	case ValueString:
		if v.raw != "" || v.Str == "" {
			return "'" + v.raw + "'"
		}
		return "'" + escape(v.Str) + "'"
	case ValueNumber:
		return strconv.FormatFloat(v.Num, 'f', -1, 64)
	case ValueBool:
		return strconv.FormatBool(v.Bool)
	case ValueDateTime:
		return v.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
	case ValueDate:
		return v.Time.Format(dateLayout)
	}
	return "null"
}

// escape writes s as the inside of a SOQL string literal. It leaves % and _
// alone, so they stay wildcards in a LIKE pattern.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// String returns q in canonical SOQL: keywords upper case, single spaces,
// defaults left out, parentheses only where nesting needs them. Parsing the
// result gives a query equal to q.
func (q *Query) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if q.Count {
		b.WriteString("COUNT()")
	} else {
		b.WriteString(strings.Join(q.Fields, ", "))
	}
	b.WriteString(" FROM ")
	b.WriteString(q.Object)
	if q.Where != nil {
		b.WriteString(" WHERE ")
		writeExpr(&b, q.Where)
	}
	for i, o := range q.OrderBy {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(o.Field)
		if o.Desc {
			b.WriteString(" DESC")
		}
		if o.NullsLast != o.Desc {
			if o.NullsLast {
				b.WriteString(" NULLS LAST")
			} else {
				b.WriteString(" NULLS FIRST")
			}
		}
	}
	if q.Limit >= 0 {
		b.WriteString(" LIMIT ")
		b.WriteString(strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		b.WriteString(" OFFSET ")
		b.WriteString(strconv.Itoa(q.Offset))
	}
	return b.String()
}

func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case *AndExpr:
		writeTerms(b, e.Terms, " AND ")
	case *OrExpr:
		writeTerms(b, e.Terms, " OR ")
	case *NotExpr:
		b.WriteString("NOT ")
		writeOperand(b, e.X)
	case *CompareExpr:
		b.WriteString(e.Field)
		b.WriteByte(' ')
		b.WriteString(e.Op.String())
		b.WriteByte(' ')
		b.WriteString(e.Value.String())
	case *InExpr:
		b.WriteString(e.Field)
		if e.Not {
			b.WriteString(" NOT IN (")
		} else {
			b.WriteString(" IN (")
		}
		for i, v := range e.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.String())
		}
		b.WriteByte(')')
	}
}

func writeTerms(b *strings.Builder, terms []Expr, sep string) {
	for i, t := range terms {
		if i > 0 {
			b.WriteString(sep)
		}
		writeOperand(b, t)
	}
}

// writeOperand writes an operand of AND, OR or NOT, in parentheses when it
// is itself an AND or OR.
func writeOperand(b *strings.Builder, e Expr) {
	switch e.(type) {
	case *AndExpr, *OrExpr:
		b.WriteByte('(')
		writeExpr(b, e)
		b.WriteByte(')')
	default:
		writeExpr(b, e)
	}
}
