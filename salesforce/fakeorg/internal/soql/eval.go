package soql

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"orgsync/salesforce"
)

// Match reports whether a record satisfies the WHERE condition; it is true
// when there is none. get returns a field's value by canonical name: string,
// float64, int (or another integer or float type), bool, time.Time or nil.
// A DateTime or Date field may also hold its string form
// (2026-01-02T03:04:05.000+0000, RFC 3339, 2026-01-02).
//
// Semantics follow Salesforce: text compares case-insensitively (=, !=, <,
// LIKE, IN); an ID field compares its 18-character form with the literal's;
// a checkbox reads null as false; otherwise a null field satisfies only
// "= null" (and "!= null" a non-null one): every other comparison with a
// null field is false, and so is NOT IN. A value of the wrong Go type for
// its field compares false.
//
// Call Resolve first: without it Match guesses each field's kind from the
// literal it is compared with and cannot know which fields are IDs or
// checkboxes.
func (q *Query) Match(get func(field string) any) bool {
	if q.Where == nil {
		return true
	}
	return q.match(q.Where, get)
}

func (q *Query) match(e Expr, get func(string) any) bool {
	switch e := e.(type) {
	case *AndExpr:
		for _, t := range e.Terms {
			if !q.match(t, get) {
				return false
			}
		}
		return true
	case *OrExpr:
		for _, t := range e.Terms {
			if q.match(t, get) {
				return true
			}
		}
		return false
	case *NotExpr:
		return !q.match(e.X, get)
	case *CompareExpr:
		return matchOne(q.kindFor(e.Field, e.Value), get(e.Field), e.Op, e.Value)
	case *InExpr:
		v := get(e.Field)
		if set, ok := q.inSets[e]; ok {
			// A text or ID field and text literals: "v = lit" holds for
			// a string v whose key is a literal's, and for nothing else.
			s, isStr := v.(string)
			if !isStr {
				return false
			}
			_, hit := set[inKey(q.kinds[e.Field], s)]
			return hit
		}
		if e.Not && v == nil && q.kindFor(e.Field, Value{}) != KindBool {
			return false // NOT IN excludes null rows, unlike !=
		}
		for _, lit := range e.Values {
			k := q.kindFor(e.Field, lit)
			if e.Not && !matchOne(k, v, OpNe, lit) {
				return false
			}
			if !e.Not && matchOne(k, v, OpEq, lit) {
				return true
			}
		}
		return e.Not
	}
	return false
}

// kindFor is field's resolved kind or, for an unresolved query, the kind
// that fits lit.
func (q *Query) kindFor(field string, lit Value) FieldKind {
	if k, ok := q.kinds[field]; ok {
		return k
	}
	switch lit.Kind {
	case ValueNumber:
		return KindNumber
	case ValueBool:
		return KindBool
	case ValueDateTime:
		return KindDateTime
	case ValueDate:
		return KindDate
	}
	return KindString
}

// matchOne evaluates "v op lit" for a field of kind k.
func matchOne(k FieldKind, v any, op Op, lit Value) bool {
	if k == KindBool {
		if v == nil {
			v = false
		}
		if lit.Kind == ValueNull {
			lit = Value{Kind: ValueBool}
		}
	}
	if lit.Kind == ValueNull {
		switch op {
		case OpEq:
			return v == nil
		case OpNe:
			return v != nil
		}
		return false
	}
	if v == nil {
		// Unlike SQL, SOQL's != keeps rows whose field is null
		// (NOT IN does not).
		return op == OpNe
	}
	if op == OpLike {
		s, ok := v.(string)
		return ok && lit.Kind == ValueString && like(compileLike(lit), s)
	}
	c, ok := compareLiteral(k, v, lit)
	if !ok {
		return false
	}
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	}
	return false
}

// compareLiteral compares a non-null field value with a non-null literal;
// ok is false when they cannot be compared.
func compareLiteral(k FieldKind, v any, lit Value) (int, bool) {
	switch k {
	case KindString:
		s, ok := v.(string)
		if !ok || lit.Kind != ValueString {
			return 0, false
		}
		return compareFold(s, lit.Str), true
	case KindID:
		s, ok := v.(string)
		if !ok || lit.Kind != ValueString {
			return 0, false
		}
		return strings.Compare(id18(s), id18(lit.Str)), true
	case KindNumber:
		f, ok := asFloat(v)
		if !ok || lit.Kind != ValueNumber {
			return 0, false
		}
		return compareFloat(f, lit.Num), true
	case KindBool:
		b, ok := v.(bool)
		if !ok || lit.Kind != ValueBool {
			return 0, false
		}
		return compareBool(b, lit.Bool), true
	case KindDateTime:
		t, ok := asDateTime(v)
		if !ok || lit.Kind != ValueDateTime {
			return 0, false
		}
		return t.Compare(lit.Time), true
	case KindDate:
		d, ok := asDate(v)
		if !ok || lit.Kind != ValueDate {
			return 0, false
		}
		e, _ := asDate(lit.Time)
		return compareInt(d, e), true
	}
	return 0, false
}

// Compare orders two records by the query's ORDER BY keys: negative when a
// sorts before b, positive when after, zero when the keys tie (Salesforce
// gives no order to ties, so a stable sort keeps the caller's order). Nulls
// sort first in ascending keys and last in descending ones unless NULLS
// FIRST or LAST says otherwise; text orders case-insensitively and IDs by
// the bytes of their 18-character form.
func (q *Query) Compare(a, b func(field string) any) int {
	for _, o := range q.OrderBy {
		va, vb := a(o.Field), b(o.Field)
		k, known := q.kinds[o.Field]
		if known && k == KindBool {
			if va == nil {
				va = false
			}
			if vb == nil {
				vb = false
			}
		}
		switch {
		case va == nil && vb == nil:
			continue
		case va == nil:
			if o.NullsLast {
				return 1
			}
			return -1
		case vb == nil:
			if o.NullsLast {
				return -1
			}
			return 1
		}
		var c int
		if known {
			c = compareValues(k, va, vb)
		} else if ka, kb := guessKind(va), guessKind(vb); ka != kb {
			c = compareInt(int(ka), int(kb)) // consistent, if arbitrary
		} else {
			c = compareValues(ka, va, vb)
		}
		if o.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// guessKind is the kind of an unresolved field, from a Go value.
func guessKind(v any) FieldKind {
	switch v.(type) {
	case bool:
		return KindBool
	case time.Time:
		return KindDateTime
	case string:
		return KindString
	}
	if _, ok := asFloat(v); ok {
		return KindNumber
	}
	return KindString
}

// compareValues compares two non-null field values of kind k. Values of the
// wrong Go type sort after the right ones, among themselves by their
// printed form, so that sorting stays consistent.
func compareValues(k FieldKind, a, b any) int {
	ka, oka := sortKey(k, a)
	kb, okb := sortKey(k, b)
	switch {
	case oka && okb:
		switch k {
		case KindString:
			return compareFold(ka.(string), kb.(string))
		case KindID:
			return strings.Compare(ka.(string), kb.(string))
		case KindNumber:
			return compareFloat(ka.(float64), kb.(float64))
		case KindBool:
			return compareBool(ka.(bool), kb.(bool))
		case KindDateTime:
			return ka.(time.Time).Compare(kb.(time.Time))
		case KindDate:
			return compareInt(ka.(int), kb.(int))
		}
		return 0
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(fmt.Sprintf("%T:%v", a, a), fmt.Sprintf("%T:%v", b, b))
}

// sortKey converts a field value of kind k to the form compareValues
// compares.
func sortKey(k FieldKind, v any) (any, bool) {
	switch k {
	case KindString:
		s, ok := v.(string)
		return s, ok
	case KindID:
		s, ok := v.(string)
		return id18(s), ok
	case KindNumber:
		return asFloat(v)
	case KindBool:
		b, ok := v.(bool)
		return b, ok
	case KindDateTime:
		return asDateTime(v)
	case KindDate:
		return asDate(v)
	}
	return nil, false
}

// id18 is the 18-character form of a record ID, or s itself when s is not
// a valid ID.
func id18(s string) string {
	if n, err := salesforce.NormalizeID(s); err == nil {
		return n
	}
	return s
}

func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// sfDateTimeLayout is how Salesforce writes a dateTime in JSON:
// 2026-01-02T03:04:05.000+0000.
const sfDateTimeLayout = "2006-01-02T15:04:05.000-0700"

// asDateTime reads a DateTime field's value: a time.Time, or a string in
// Salesforce's layout or RFC 3339.
func asDateTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		for _, layout := range []string{sfDateTimeLayout, time.RFC3339Nano} {
			if p, err := time.Parse(layout, t); err == nil {
				return p, true
			}
		}
	}
	return time.Time{}, false
}

// asDate returns a Date field's value as yyyymmdd. A time.Time counts by its
// own calendar day, whatever its location.
func asDate(v any) (int, bool) {
	var t time.Time
	switch d := v.(type) {
	case time.Time:
		t = d
	case string:
		p, err := time.Parse(dateLayout, d)
		if err != nil {
			return 0, false
		}
		t = p
	default:
		return 0, false
	}
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d, true
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// foldRune reads the rune at the start of s, lower-cased. A byte that is
// not valid UTF-8 reads as a value past unicode.MaxRune, so that distinct
// invalid bytes stay distinct.
func foldRune(s string) (rune, int) {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 {
		return unicode.MaxRune + 1 + rune(s[0]), 1
	}
	return unicode.ToLower(r), n
}

// inKey is the key of a text (k KindString) or ID (KindID) value under
// which equal values meet: compareFold(a, b) == 0 exactly when the folded
// rune sequences of a and b are the same, and IDs compare by their
// 18-character form.
func inKey(k FieldKind, s string) string {
	if k == KindID {
		return id18(s)
	}
	b := make([]byte, 0, 4*len(s))
	for s != "" {
		r, n := foldRune(s)
		b = binary.BigEndian.AppendUint32(b, uint32(r))
		s = s[n:]
	}
	return string(b)
}

// compareFold compares a and b rune by rune, ignoring case.
func compareFold(a, b string) int {
	for a != "" && b != "" {
		ra, na := foldRune(a)
		rb, nb := foldRune(b)
		if ra != rb {
			return compareInt(int(ra), int(rb))
		}
		a, b = a[na:], b[nb:]
	}
	return compareInt(len(a), len(b))
}

// likeElem is one element of a LIKE pattern: a rune, or a wildcard.
type likeElem struct {
	r    rune
	kind byte // 0 rune, '_' any one rune, '%' any run of runes
}

// compileLike turns a LIKE literal into pattern elements, lower-cased. In
// the source text \% and \_ are the characters, % and _ wildcards.
func compileLike(lit Value) []likeElem {
	src, escaped := lit.raw, true
	if src == "" {
		src, escaped = lit.Str, false
	}
	var p []likeElem
	for src != "" {
		c := src[0]
		switch {
		case escaped && c == '\\' && len(src) > 1:
			d, _ := unescape(src[1])
			p = append(p, likeElem{r: unicode.ToLower(rune(d))})
			src = src[2:]
			continue
		case c == '%':
			if len(p) == 0 || p[len(p)-1].kind != '%' {
				p = append(p, likeElem{kind: '%'})
			}
		case c == '_':
			p = append(p, likeElem{kind: '_'})
		default:
			r, n := foldRune(src)
			p = append(p, likeElem{r: r})
			src = src[n:]
			continue
		}
		src = src[1:]
	}
	return p
}

// like reports whether s matches pattern p, ignoring case. It backtracks
// to the last % only, which keeps it O(len(p)·len(s)).
func like(p []likeElem, s string) bool {
	var rs []rune
	for s != "" {
		r, n := foldRune(s)
		rs = append(rs, r)
		s = s[n:]
	}
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(rs) {
		switch {
		case pi < len(p) && p[pi].kind == '%':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi].kind == '_' || p[pi].kind == 0 && p[pi].r == rs[si]):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].kind == '%' {
		pi++
	}
	return pi == len(p)
}
