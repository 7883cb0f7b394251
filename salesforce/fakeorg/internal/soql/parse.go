package soql

import (
	"strconv"
	"strings"
)

// isReserved reports whether s is a SOQL reserved word, which cannot name
// a field or an object. COUNT, ORDER, BY, OFFSET, TRUE and FALSE are
// keywords only where the grammar expects them (Order is an object, for one).
func isReserved(s string) bool {
	switch strings.ToUpper(s) {
	case "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING",
		"IN", "INCLUDES", "LAST", "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR",
		"SELECT", "WHERE", "WITH":
		return true
	}
	return false
}

// Parse parses a SOQL query. It checks syntax only; call Resolve to check
// field names and literal types. Errors are *Error, with code
// MALFORMED_QUERY, or NUMBER_OUTSIDE_VALID_RANGE for an OFFSET above
// MaxOffset.
func Parse(q string) (*Query, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{src: q, toks: toks}
	query, err := p.query()
	if err != nil {
		return nil, err
	}
	return query, nil
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// accept consumes the next token if it is the keyword kw.
func (p *parser) accept(kw string) bool {
	if p.peek().is(kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) acceptPunct(s string) bool {
	if t := p.peek(); t.kind == tokPunct && t.text == s {
		p.i++
		return true
	}
	return false
}

func (p *parser) unexpected(t token) *Error {
	return errorAt(p.src, t.pos, CodeMalformedQuery, "unexpected token: '"+clip(t.display())+"'")
}

func (p *parser) expect(kw string) error {
	if !p.accept(kw) {
		return p.unexpected(p.peek())
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if !p.acceptPunct(s) {
		return p.unexpected(p.peek())
	}
	return nil
}

func (p *parser) query() (*Query, error) {
	q := &Query{Limit: -1}
	if err := p.expect("SELECT"); err != nil {
		return nil, err
	}
	if p.peek().is("COUNT") && p.toks[p.i+1].kind == tokPunct && p.toks[p.i+1].text == "(" {
		p.i += 2
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		q.Count = true
	} else {
		seen := map[string]bool{}
		for {
			t := p.peek()
			f, err := p.field()
			if err != nil {
				return nil, err
			}
			key := strings.ToLower(f)
			if seen[key] {
				return nil, errorAt(p.src, t.pos, CodeMalformedQuery, "duplicate field selected: "+f)
			}
			seen[key] = true
			q.Fields = append(q.Fields, f)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if err := p.expect("FROM"); err != nil {
		return nil, err
	}
	obj := p.next()
	if obj.kind != tokIdent || isReserved(obj.text) {
		return nil, p.unexpected(obj)
	}
	q.Object = obj.text
	if p.accept("WHERE") {
		e, err := p.condition(0)
		if err != nil {
			return nil, err
		}
		q.Where = e
	}
	if p.peek().is("ORDER") {
		p.i++
		if err := p.expect("BY"); err != nil {
			return nil, err
		}
		for {
			item, err := p.orderItem()
			if err != nil {
				return nil, err
			}
			q.OrderBy = append(q.OrderBy, item)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if p.accept("LIMIT") {
		n, err := p.count()
		if err != nil {
			return nil, err
		}
		q.Limit = n
	}
	if p.peek().is("OFFSET") {
		p.i++
		t := p.peek()
		n, err := p.count()
		if err != nil {
			return nil, err
		}
		if n > MaxOffset {
			return nil, errorAt(p.src, t.pos, CodeNumberOutsideValidRange,
				"Maximum SOQL offset allowed is "+strconv.Itoa(MaxOffset))
		}
		q.Offset = n
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.unexpected(t)
	}
	return q, nil
}

// field reads a field name or a dotted relationship path.
func (p *parser) field() (string, error) {
	t := p.next()
	if t.kind != tokIdent || isReserved(t.text) {
		return "", p.unexpected(t)
	}
	name := t.text
	for p.acceptPunct(".") {
		t = p.next()
		if t.kind != tokIdent || isReserved(t.text) {
			return "", p.unexpected(t)
		}
		name += "." + t.text
	}
	return name, nil
}

// count reads the non-negative integer after LIMIT or OFFSET.
func (p *parser) count() (int, error) {
	t := p.next()
	if t.kind != tokNumber || t.text[0] == '-' || t.text[0] == '+' || strings.Contains(t.text, ".") {
		return 0, p.unexpected(t)
	}
	n, err := strconv.Atoi(t.text)
	if err != nil {
		return 0, errorAt(p.src, t.pos, CodeMalformedQuery, "number out of range: "+clip(t.text))
	}
	return n, nil
}

func (p *parser) orderItem() (OrderItem, error) {
	f, err := p.field()
	if err != nil {
		return OrderItem{}, err
	}
	item := OrderItem{Field: f}
	if p.accept("DESC") {
		item.Desc = true
	} else {
		p.accept("ASC")
	}
	item.NullsLast = item.Desc
	if p.accept("NULLS") {
		switch {
		case p.accept("FIRST"):
			item.NullsLast = false
		case p.accept("LAST"):
			item.NullsLast = true
		default:
			return OrderItem{}, p.unexpected(p.peek())
		}
	}
	return item, nil
}

// condition reads terms joined by AND, or by OR; Salesforce rejects a mix
// of the two at one level, so the first connective fixes which.
func (p *parser) condition(depth int) (Expr, error) {
	first, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	var conn, other string
	switch {
	case p.peek().is("AND"):
		conn, other = "AND", "OR"
	case p.peek().is("OR"):
		conn, other = "OR", "AND"
	default:
		return first, nil
	}
	terms := []Expr{first}
	for p.accept(conn) {
		t, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
	}
	if t := p.peek(); t.is(other) {
		return nil, p.unexpected(t)
	}
	if conn == "AND" {
		return &AndExpr{Terms: terms}, nil
	}
	return &OrExpr{Terms: terms}, nil
}

// unary reads NOT x, a parenthesised condition, or a simple condition.
func (p *parser) unary(depth int) (Expr, error) {
	if depth >= maxDepth {
		return nil, errorAt(p.src, p.peek().pos, CodeMalformedQuery, "conditions are nested too deeply")
	}
	if p.accept("NOT") {
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &NotExpr{X: x}, nil
	}
	if p.acceptPunct("(") {
		e, err := p.condition(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return e, nil
	}
	return p.simple()
}

// simple reads field op value, field [NOT] IN (values).
func (p *parser) simple() (Expr, error) {
	f, err := p.field()
	if err != nil {
		return nil, err
	}
	t := p.next()
	switch {
	case t.kind == tokOp:
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return &CompareExpr{Field: f, Op: opOf(t.text), Value: v}, nil
	case t.is("LIKE"):
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return &CompareExpr{Field: f, Op: OpLike, Value: v}, nil
	case t.is("IN"):
		vs, err := p.list()
		if err != nil {
			return nil, err
		}
		return &InExpr{Field: f, Values: vs}, nil
	case t.is("NOT"):
		if err := p.expect("IN"); err != nil {
			return nil, err
		}
		vs, err := p.list()
		if err != nil {
			return nil, err
		}
		return &InExpr{Field: f, Not: true, Values: vs}, nil
	}
	return nil, p.unexpected(t)
}

func opOf(s string) Op {
	switch s {
	case "=":
		return OpEq
	case "!=", "<>":
		return OpNe
	case "<":
		return OpLt
	case "<=":
		return OpLe
	case ">":
		return OpGt
	}
	return OpGe
}

func (p *parser) list() ([]Value, error) {
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var vs []Value
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		if !p.acceptPunct(",") {
			break
		}
	}
	if err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	return vs, nil
}

func (p *parser) value() (Value, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return Value{Kind: ValueString, Str: t.str, raw: t.text}, nil
	case tokNumber:
		return Value{Kind: ValueNumber, Num: t.num}, nil
	case tokDate:
		return Value{Kind: ValueDate, Time: t.time}, nil
	case tokDateTime:
		return Value{Kind: ValueDateTime, Time: t.time}, nil
	case tokIdent:
		switch {
		case t.is("NULL"):
			return Value{Kind: ValueNull}, nil
		case t.is("TRUE"):
			return Value{Kind: ValueBool, Bool: true}, nil
		case t.is("FALSE"):
			return Value{Kind: ValueBool}, nil
		}
	}
	return Value{}, p.unexpected(t)
}
