package event

import (
	"fmt"
	"strings"
	"time"
)

// DefaultFields is the -fields allow-list used when none is given: the
// standard Account fields that mean the same thing in any org.
var DefaultFields = []string{
	"Name", "Phone", "Fax", "Website", "Industry", "Type", "Description",
	"NumberOfEmployees", "AnnualRevenue", "AccountNumber",
	"BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry",
	"ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode", "ShippingCountry",
	"ParentId",
}

// Fields is an allow-list of field names to copy, matched without regard to
// case as Salesforce API names are.
type Fields struct {
	names []string          // as configured, in order
	index map[string]string // lower-case → configured name
}

// ParseFields parses a comma-separated -fields value. An empty value means
// DefaultFields. A field that is never copied (Id, OwnerId, audit fields…)
// or a malformed name is an error.
func ParseFields(list string) (Fields, error) {
	var names []string
	if strings.TrimSpace(list) == "" {
		names = DefaultFields
	} else {
		for _, n := range strings.Split(list, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	f := Fields{index: make(map[string]string, len(names))}
	for _, n := range names {
		if !ValidFieldName(n) {
			return Fields{}, fmt.Errorf("event: -fields: %q is not a field name", clip(n))
		}
		if neverCopied(n) {
			return Fields{}, fmt.Errorf("event: -fields: %s is never copied (ids, owner, record type and audit fields are org-specific)", n)
		}
		if _, dup := f.index[strings.ToLower(n)]; dup {
			continue
		}
		f.index[strings.ToLower(n)] = n
		f.names = append(f.names, n)
	}
	return f, nil
}

// Names returns the configured field names in order.
func (f Fields) Names() []string { return append([]string(nil), f.names...) }

// Has reports whether name is in the allow-list.
func (f Fields) Has(name string) bool {
	_, ok := f.index[strings.ToLower(name)]
	return ok
}

// NewAccountCreated builds the created event of a source record as the REST
// API returns it (Id, CreatedDate and any fields). Only allow-listed fields
// are copied; a missing field is left out, a null one is kept as null.
// sourceOrg and the record's Id may be 15 or 18 characters.
func NewAccountCreated(sourceOrg string, rec map[string]any, allow Fields) (Event, error) {
	id, _ := rec["Id"].(string)
	if id == "" {
		return Event{}, fmt.Errorf("%w: record has no Id", ErrMalformed)
	}
	e := Event{V: Version, Type: TypeAccountCreated, SourceOrg: sourceOrg, SourceID: id}
	if cd, ok := rec["CreatedDate"].(string); ok && cd != "" {
		t, err := ParseTime(cd)
		if err != nil {
			return Event{}, fmt.Errorf("%w: record %s: CreatedDate: %v", ErrMalformed, clip(id), err)
		}
		e.CreatedAt = t
	}
	for k, v := range rec {
		if !allow.Has(k) || neverCopied(k) {
			continue
		}
		if e.Fields == nil {
			e.Fields = make(map[string]any, len(allow.names))
		}
		e.Fields[k] = v
	}
	if err := e.normalize(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// NewAccountLink builds the follow-up event that sets a child's parent once
// the parent is in the target.
func NewAccountLink(sourceOrg, childID, parentID string) (Event, error) {
	e := Event{V: Version, Type: TypeAccountLink, SourceOrg: sourceOrg, SourceID: childID, ParentID: parentID}
	if err := e.normalize(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ParseTime parses a Salesforce dateTime as the REST API writes it
// ("2026-11-22T10:00:00.000+0000") or as RFC 3339.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised dateTime %q", clip(s))
}
