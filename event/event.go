// Package event defines the messages orgsync carries on JetStream: the
// account change events a producer publishes (created, updated, deleted,
// undeleted) and the account-link follow-up a worker publishes when a child
// record reached the target before its parent.
//
// All are JSON objects with a version and a type:
//
//	{"v":1,"type":"account.created","source_org":"00D…","source_id":"001…",
//	 "created_at":"2026-11-22T10:00:00Z","fields":{"Name":"Acme","ParentId":"001…"}}
//	{"v":1,"type":"account.updated","source_org":"00D…","source_id":"001…",
//	 "changed_at":"2026-11-22T10:05:00.123Z","change_key":"<transactionKey>:<sequenceNumber>",
//	 "fields":{"Phone":null,"Name":"Acme Ltd"}}
//	{"v":1,"type":"account.deleted","source_org":"00D…","source_id":"001…",
//	 "changed_at":"…","change_key":"…"}
//	{"v":1,"type":"account.link","source_org":"00D…","source_id":"001…","parent_id":"001…"}
//
// An updated event's fields hold whole values in REST shape; a null value
// blanks the field in the target. An undeleted event may carry the record's
// copied fields as they are after the undelete.
//
// IDs in events are always 18-character IDs; Decode normalises 15-character
// input and rejects anything that is not a record ID.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"orgsync/salesforce"
)

// Version is the event format version this package writes and reads.
const Version = 1

// Event types.
const (
	TypeAccountCreated   = "account.created"
	TypeAccountUpdated   = "account.updated"
	TypeAccountDeleted   = "account.deleted"
	TypeAccountUndeleted = "account.undeleted"
	TypeAccountLink      = "account.link"
)

// Changes: the subject token of each event type
// (orgsync.account.<change>.<source_id>).
const (
	ChangeCreated   = "created"
	ChangeUpdated   = "updated"
	ChangeDeleted   = "deleted"
	ChangeUndeleted = "undeleted"
	ChangeLink      = "link"
)

// ChangeOf returns the change token of an event type ("updated" for
// "account.updated"), or "" for an unknown type.
func ChangeOf(typ string) string {
	switch typ {
	case TypeAccountCreated:
		return ChangeCreated
	case TypeAccountUpdated:
		return ChangeUpdated
	case TypeAccountDeleted:
		return ChangeDeleted
	case TypeAccountUndeleted:
		return ChangeUndeleted
	case TypeAccountLink:
		return ChangeLink
	}
	return ""
}

// TypeOf is the inverse of ChangeOf: the event type of a change token, or "".
func TypeOf(change string) string {
	switch change {
	case ChangeCreated, ChangeUpdated, ChangeDeleted, ChangeUndeleted, ChangeLink:
		return "account." + change
	}
	return ""
}

// ErrMalformed is wrapped by every Decode error: the body is not an event
// this version of orgsync can process. Workers dead-letter such messages as
// MALFORMED_EVENT.
var ErrMalformed = errors.New("event: malformed event")

// Event is one account event. Fields holds the copied fields of a created,
// updated or undeleted event (values as JSON decodes them, numbers as
// json.Number so they round-trip exactly; nil blanks the field); ParentID is
// set on account.link events only.
//
// ChangedAt is the source's time of the change (created events: CreatedAt),
// which orders a record's changes and lets a replayed change be checked
// against the source; ChangeKey tells two changes of one record apart in the
// dedup key: "<transactionKey>:<sequenceNumber>" from Change Data Capture,
// "<SystemModstamp>:<hash of the copied values>" from polling.
type Event struct {
	V         int            `json:"v"`
	Type      string         `json:"type"`
	SourceOrg string         `json:"source_org"`
	SourceID  string         `json:"source_id"`
	CreatedAt time.Time      `json:"created_at,omitzero"`
	ChangedAt time.Time      `json:"changed_at,omitzero"`
	ChangeKey string         `json:"change_key,omitempty"`
	Fields    map[string]any `json:"fields,omitempty"`
	ParentID  string         `json:"parent_id,omitempty"`
	// Raw, set by DecodeRaw instead of Fields, holds a created event's
	// fields as the message carried them (see DecodeFields).
	Raw *RawFields `json:"-"`
}

// Change is the event's change token ("created", "updated", …, "link").
func (e Event) Change() string { return ChangeOf(e.Type) }

// Ordered reports whether the event is one of a record's lifecycle changes
// beyond its creation (updated, deleted, undeleted).
func (e Event) Ordered() bool {
	switch e.Type {
	case TypeAccountUpdated, TypeAccountDeleted, TypeAccountUndeleted:
		return true
	}
	return false
}

// MsgID is the JetStream deduplication key (Nats-Msg-Id) of the event:
// "<source_org>:<source_id>:created" for a created event,
// "<source_org>:<source_id>:link:<parent_id>" for a link event and
// "<source_org>:<source_id>:<change>:<change_key>" for the other changes.
func (e Event) MsgID() string {
	switch e.Type {
	case TypeAccountLink:
		return e.SourceOrg + ":" + e.SourceID + ":link:" + e.ParentID
	case TypeAccountCreated:
		return e.SourceOrg + ":" + e.SourceID + ":created"
	}
	return e.SourceOrg + ":" + e.SourceID + ":" + e.Change() + ":" + e.ChangeKey
}

// When is the time of the change the event carries: ChangedAt, or
// CreatedAt for a created event without one.
func (e Event) When() time.Time {
	if e.ChangedAt.IsZero() {
		return e.CreatedAt
	}
	return e.ChangedAt
}

// ParentSourceID returns the source ID of the record's parent account, if
// the event carries one (fields.ParentId of a created event, parent_id of a
// link event), already normalised by Decode or New.
func (e Event) ParentSourceID() string {
	if e.Type == TypeAccountLink {
		return e.ParentID
	}
	if e.Raw != nil {
		return e.Raw.parent
	}
	if p, ok := e.Fields["ParentId"].(string); ok {
		return p
	}
	return ""
}

// Encode returns the JSON body of the event.
func (e Event) Encode() ([]byte, error) {
	e.DecodeFields()
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event: encode %s: %w", e.SourceID, err)
	}
	return b, nil
}

// maxBody bounds what Decode accepts; an Account with every field filled is
// far smaller.
const maxBody = 1 << 20

// Decode parses and validates an event body. Every error wraps ErrMalformed
// and says what is wrong; Decode never panics on any input.
func Decode(body []byte) (Event, error) {
	if len(body) > maxBody {
		return Event{}, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrMalformed, len(body), maxBody)
	}
	if e, ok := fastDecode(body, false); ok {
		if err := e.normalize(); err != nil {
			return Event{}, err
		}
		return e, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var e Event
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	if err := e.normalize(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func (e *Event) normalize() error {
	if e.V != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrMalformed, e.V, Version)
	}
	if e.SourceID == "" {
		return fmt.Errorf("%w: no source_id", ErrMalformed)
	}
	var err error
	if e.SourceID, err = salesforce.NormalizeIDWithPrefix(e.SourceID, salesforce.PrefixAccount); err != nil {
		return fmt.Errorf("%w: source_id: %v", ErrMalformed, err)
	}
	if e.SourceOrg, err = salesforce.NormalizeIDWithPrefix(e.SourceOrg, salesforce.PrefixOrganization); err != nil {
		return fmt.Errorf("%w: source_org: %v", ErrMalformed, err)
	}
	switch e.Type {
	case TypeAccountCreated, TypeAccountUpdated, TypeAccountUndeleted:
		if e.Type != TypeAccountCreated {
			if err := e.checkChange(); err != nil {
				return err
			}
		}
		if e.ParentID != "" {
			return fmt.Errorf("%w: parent_id on an %s event", ErrMalformed, e.Type)
		}
		if e.Raw != nil {
			// fastDecode checked the names and that ParentId is a string or null.
			if e.Raw.parent != "" {
				if e.Raw.parent, err = salesforce.NormalizeIDWithPrefix(e.Raw.parent, salesforce.PrefixAccount); err != nil {
					return fmt.Errorf("%w: fields.ParentId: %v", ErrMalformed, err)
				}
			}
		}
		if p, ok := e.Fields["ParentId"]; ok && p != nil {
			s, ok := p.(string)
			if !ok {
				return fmt.Errorf("%w: fields.ParentId is not a string", ErrMalformed)
			}
			if s == "" {
				if e.Type == TypeAccountCreated {
					delete(e.Fields, "ParentId")
				} else {
					e.Fields["ParentId"] = nil // blanked
				}
			} else if e.Fields["ParentId"], err = salesforce.NormalizeIDWithPrefix(s, salesforce.PrefixAccount); err != nil {
				return fmt.Errorf("%w: fields.ParentId: %v", ErrMalformed, err)
			}
		}
		for k := range e.Fields {
			if k == "" || !ValidFieldName(k) {
				return fmt.Errorf("%w: field name %q", ErrMalformed, clip(k))
			}
			if neverCopied(k) {
				return fmt.Errorf("%w: field %s is never copied", ErrMalformed, k)
			}
		}
	case TypeAccountDeleted:
		if err := e.checkChange(); err != nil {
			return err
		}
		if len(e.Fields) != 0 || e.ParentID != "" {
			return fmt.Errorf("%w: fields or parent_id on an %s event", ErrMalformed, e.Type)
		}
	case TypeAccountLink:
		if e.ParentID, err = salesforce.NormalizeIDWithPrefix(e.ParentID, salesforce.PrefixAccount); err != nil {
			return fmt.Errorf("%w: parent_id: %v", ErrMalformed, err)
		}
		if len(e.Fields) != 0 {
			return fmt.Errorf("%w: fields on an %s event", ErrMalformed, e.Type)
		}
	default:
		return fmt.Errorf("%w: type %q", ErrMalformed, clip(e.Type))
	}
	return nil
}

// maxChangeKey bounds ChangeKey: a Nats-Msg-Id stays short.
const maxChangeKey = 200

// checkChange checks what an updated, deleted or undeleted event must carry:
// the change's time and a key that tells it from the record's other changes.
func (e *Event) checkChange() error {
	if e.ChangedAt.IsZero() {
		return fmt.Errorf("%w: no changed_at on an %s event", ErrMalformed, e.Type)
	}
	if e.ChangeKey == "" {
		return fmt.Errorf("%w: no change_key on an %s event", ErrMalformed, e.Type)
	}
	if len(e.ChangeKey) > maxChangeKey {
		return fmt.Errorf("%w: change_key longer than %d bytes", ErrMalformed, maxChangeKey)
	}
	for i := 0; i < len(e.ChangeKey); i++ {
		if c := e.ChangeKey[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: change_key holds a space or control character", ErrMalformed)
		}
	}
	return nil
}

// ValidFieldName reports whether s is a Salesforce API field name: a
// letter, then letters, digits and underscores, at most 80 characters.
func ValidFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return len(s) <= 80
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// neverCopied reports whether a field must never be copied to the target:
// the record ID, ownership and record type (org-specific) and the audit and
// system fields Salesforce maintains itself.
func neverCopied(field string) bool {
	return len(field) <= maxNeverCopied && neverCopiedBytes([]byte(field))
}

// maxNeverCopied is the longest name neverCopied knows.
const maxNeverCopied = len("lastreferenceddate")

// neverCopiedBytes is neverCopied for the bytes of a key.
func neverCopiedBytes(s []byte) bool {
	if len(s) > maxNeverCopied {
		return false
	}
	var buf [maxNeverCopied]byte
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "id", "ownerid", "recordtypeid", "createddate", "createdbyid", "lastmodifieddate",
		"lastmodifiedbyid", "systemmodstamp", "isdeleted", "masterrecordid", "lastactivitydate",
		"lastvieweddate", "lastreferenceddate", "attributes", "photourl", "jigsaw", "jigsawcompanyid":
		return true
	}
	return false
}
