package soql

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Salesforce errorCode values a query can fail with.
const (
	// CodeMalformedQuery is the code for a syntax error.
	CodeMalformedQuery = "MALFORMED_QUERY"
	// CodeInvalidField is the code for an unknown field, and also the one
	// Salesforce uses when a WHERE literal does not fit the field's type
	// ("value of filter criterion for field 'CreatedDate' must be of type
	// dateTime and should not be enclosed in quotes").
	CodeInvalidField = "INVALID_FIELD"
	// CodeInvalidQueryFilterOperator is the code for an operator or value the
	// field does not allow: LIKE on a non-text field, or an ID field compared
	// with a string that is not a record ID ("invalid ID field: abc").
	CodeInvalidQueryFilterOperator = "INVALID_QUERY_FILTER_OPERATOR"
	// CodeNumberOutsideValidRange is the code for an OFFSET above MaxOffset.
	CodeNumberOutsideValidRange = "NUMBER_OUTSIDE_VALID_RANGE"
)

// Error is a query that Salesforce would refuse. Code is the errorCode the
// fake org answers with; Message is Salesforce's message text.
type Error struct {
	Code    string
	Message string
	// Row and Column give the 1-based position of the offending token in
	// the query text, counted in lines and characters; both are 0 when the
	// error has no single position (as for most Resolve errors).
	Row, Column int
}

// Error returns the code and message.
func (e *Error) Error() string {
	return "soql: " + e.Code + ": " + e.Message
}

// Detail renders the error the way Salesforce's REST API words a
// MALFORMED_QUERY message: an excerpt of query with a caret under the
// offending token, "ERROR at Row:R:Column:C" and the message. Without a
// position it returns Message.
func (e *Error) Detail(query string) string {
	if e.Row <= 0 || e.Column <= 0 {
		return e.Message
	}
	lines := strings.Split(query, "\n")
	if e.Row > len(lines) {
		return e.Message
	}
	line := []rune(lines[e.Row-1])
	col := e.Column - 1
	if col > len(line) {
		col = len(line)
	}
	const window = 40
	start, end := max(col-window, 0), min(col+window, len(line))
	excerpt := string(line[start:end])
	return fmt.Sprintf("\n%s\n%s^\nERROR at Row:%d:Column:%d\n%s",
		excerpt, strings.Repeat(" ", col-start), e.Row, e.Column, e.Message)
}

// errorAt builds a positioned error for the token starting at byte offset
// pos of src.
func errorAt(src string, pos int, code, msg string) *Error {
	if pos > len(src) {
		pos = len(src)
	}
	before := src[:pos]
	row := 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return &Error{Code: code, Message: msg, Row: row, Column: 1 + utf8.RuneCountInString(before)}
}
