package soql

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF      tokenKind = iota
	tokIdent              // keyword or name
	tokString             // 'quoted'
	tokNumber             // 12, -3.5
	tokDate               // 2026-01-02
	tokDateTime           // 2026-01-02T03:04:05Z
	tokPunct              // ( ) , .
	tokOp                 // = != <> < > <= >=
)

// token is one lexeme. text is the source text; for a string it is the text
// between the quotes with escapes intact.
type token struct {
	kind tokenKind
	text string
	pos  int // byte offset in the query
	str  string
	num  float64
	time time.Time
}

// display is the token as Salesforce quotes it in "unexpected token" messages.
func (t token) display() string {
	if t.kind == tokEOF {
		return "<EOF>"
	}
	if t.kind == tokString {
		return "'" + t.text + "'"
	}
	return t.text
}

// is reports whether t is the keyword kw (upper case), case-insensitively.
func (t token) is(kw string) bool {
	return t.kind == tokIdent && strings.EqualFold(t.text, kw)
}

// Layouts of SOQL date and dateTime literals. Parsing accepts fractional
// seconds after the seconds field even though the layout has none.
const (
	dateLayout     = "2006-01-02"
	dateTimeLayout = "2006-01-02T15:04:05Z07:00"
)

// lex splits src into tokens, ending with a tokEOF.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for {
		for i < len(src) && isSpace(src[i]) {
			i++
		}
		if i >= len(src) {
			toks = append(toks, token{kind: tokEOF, pos: i})
			return toks, nil
		}
		c := src[i]
		switch {
		case isLetter(c):
			j := i + 1
			for j < len(src) && (isLetter(src[j]) || isDigit(src[j]) || src[j] == '_') {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], pos: i})
			i = j
		case isDigit(c) || (c == '-' || c == '+') && i+1 < len(src) && isDigit(src[i+1]):
			t, err := lexNumberOrDate(src, i)
			if err != nil {
				return nil, err
			}
			i += len(t.text)
			if i < len(src) && (isLetter(src[i]) || isDigit(src[i]) || src[i] == '_') {
				j := i
				for j < len(src) && (isLetter(src[j]) || isDigit(src[j]) || src[j] == '_') {
					j++
				}
				return nil, errorAt(src, t.pos, CodeMalformedQuery, "unexpected token: '"+clip(src[t.pos:j])+"'")
			}
			toks = append(toks, t)
		case c == '\'':
			t, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = t.pos + len(t.text) + 2
		case c == '(' || c == ')' || c == ',' || c == '.':
			toks = append(toks, token{kind: tokPunct, text: src[i : i+1], pos: i})
			i++
		case c == '=':
			toks = append(toks, token{kind: tokOp, text: "=", pos: i})
			i++
		case c == '!':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{kind: tokOp, text: "!=", pos: i})
				i += 2
				continue
			}
			return nil, noViableAlternative(src, i)
		case c == '<' || c == '>':
			n := 1
			if i+1 < len(src) && (src[i+1] == '=' || c == '<' && src[i+1] == '>') {
				n = 2
			}
			toks = append(toks, token{kind: tokOp, text: src[i : i+n], pos: i})
			i += n
		default:
			return nil, noViableAlternative(src, i)
		}
	}
}

func noViableAlternative(src string, i int) *Error {
	r, _ := utf8.DecodeRuneInString(src[i:])
	ch := string(r)
	if r == utf8.RuneError {
		ch = strconv.QuoteToASCII(src[i : i+1])
		ch = ch[1 : len(ch)-1]
	}
	return errorAt(src, i, CodeMalformedQuery, "no viable alternative at character '"+ch+"'")
}

// lexNumberOrDate reads a signed decimal number, a date (YYYY-MM-DD) or a
// dateTime (YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)) starting at src[i].
func lexNumberOrDate(src string, i int) (token, error) {
	j := i
	if src[j] == '-' || src[j] == '+' {
		j++
	}
	digits := j
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	if j-digits == 4 && digits == i && j < len(src) && src[j] == '-' {
		return lexDate(src, i)
	}
	if j+1 < len(src) && src[j] == '.' && isDigit(src[j+1]) {
		j++
		for j < len(src) && isDigit(src[j]) {
			j++
		}
	}
	text := src[i:j]
	f, err := strconv.ParseFloat(text, 64)
	if err != nil { // out of range: the only way a digit string fails
		return token{}, errorAt(src, i, CodeMalformedQuery, "number out of range: "+clip(text))
	}
	return token{kind: tokNumber, text: text, pos: i, num: f}, nil
}

func lexDate(src string, i int) (token, error) {
	// Shape first, then let package time check the ranges.
	j := i
	digits := func(n int) bool {
		for k := 0; k < n; k++ {
			if j >= len(src) || !isDigit(src[j]) {
				return false
			}
			j++
		}
		return true
	}
	lit := func(c byte) bool {
		if j < len(src) && src[j] == c {
			j++
			return true
		}
		return false
	}
	bad := func(what string) (token, error) {
		end := j
		for end < len(src) && !isSpace(src[end]) && src[end] != ')' && src[end] != ',' {
			end++
		}
		return token{}, errorAt(src, i, CodeMalformedQuery, "Invalid "+what+": "+clip(src[i:end]))
	}
	if !(digits(4) && lit('-') && digits(2) && lit('-') && digits(2)) {
		return bad("date")
	}
	if j >= len(src) || src[j] != 'T' {
		text := src[i:j]
		t, err := time.Parse(dateLayout, text)
		if err != nil {
			return bad("date")
		}
		return token{kind: tokDate, text: text, pos: i, time: t}, nil
	}
	j++
	if !(digits(2) && lit(':') && digits(2) && lit(':') && digits(2)) {
		return bad("datetime")
	}
	if lit('.') && !digits(1) {
		return bad("datetime")
	}
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	if !lit('Z') {
		if !(lit('+') || lit('-')) || !(digits(2) && lit(':') && digits(2)) {
			return bad("datetime")
		}
	}
	text := src[i:j]
	t, err := time.Parse(dateTimeLayout, text)
	if err != nil {
		return bad("datetime")
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return bad("datetime")
	}
	return token{kind: tokDateTime, text: text, pos: i, time: t}, nil
}

// lexString reads a single-quoted literal starting at src[i] and decodes its
// escapes. \% and \_ decode to % and _; the raw text (token.text) keeps
// them so that LIKE can tell an escaped wildcard from a wildcard.
func lexString(src string, i int) (token, error) {
	var b strings.Builder
	j := i + 1
	for {
		if j >= len(src) {
			return token{}, errorAt(src, i, CodeMalformedQuery, "unterminated string literal: "+clip(src[i:]))
		}
		c := src[j]
		if c == '\'' {
			return token{kind: tokString, text: src[i+1 : j], pos: i, str: b.String()}, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			j++
			continue
		}
		if j+1 >= len(src) {
			return token{}, errorAt(src, i, CodeMalformedQuery, "unterminated string literal: "+clip(src[i:]))
		}
		d, ok := unescape(src[j+1])
		if !ok {
			_, n := utf8.DecodeRuneInString(src[j+1:])
			return token{}, errorAt(src, j, CodeMalformedQuery,
				"Invalid string literal '"+clip(src[i+1:j+1+n])+"'. Illegal character sequence '\\"+src[j+1:j+1+n]+"' in string literal.")
		}
		b.WriteByte(d)
		j += 2
	}
}

// unescape maps the character after a backslash to the byte it stands for.
// Salesforce accepts upper-case forms of the letter escapes too.
func unescape(c byte) (byte, bool) {
	switch c {
	case 'n', 'N':
		return '\n', true
	case 'r', 'R':
		return '\r', true
	case 't', 'T':
		return '\t', true
	case 'b', 'B':
		return '\b', true
	case 'f', 'F':
		return '\f', true
	case '\'', '"', '\\', '%', '_':
		return c, true
	}
	return 0, false
}

func isSpace(c byte) bool  { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// clip shortens hostile input before it is quoted in an error.
func clip(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
