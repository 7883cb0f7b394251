package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// NewAccountChange builds an updated, deleted or undeleted event of the
// source record id: changedAt is the source's time of the change (kept to
// the millisecond), changeKey tells it from the record's other changes
// (see Event). fields are the values the event carries, in REST shape; only
// allow-listed ones are kept, a nil value blanks the field. A deleted event
// carries none.
func NewAccountChange(typ, sourceOrg, id string, changedAt time.Time, changeKey string, fields map[string]any, allow Fields) (Event, error) {
	switch typ {
	case TypeAccountUpdated, TypeAccountDeleted, TypeAccountUndeleted:
	default:
		return Event{}, fmt.Errorf("%w: %q is not a change of an existing record", ErrMalformed, clip(typ))
	}
	e := Event{V: Version, Type: typ, SourceOrg: sourceOrg, SourceID: id,
		ChangedAt: changedAt.UTC().Truncate(time.Millisecond), ChangeKey: changeKey}
	if typ != TypeAccountDeleted {
		for k, v := range fields {
			if !allow.Has(k) || neverCopied(k) {
				continue
			}
			if e.Fields == nil {
				e.Fields = make(map[string]any, len(fields))
			}
			e.Fields[k] = v
		}
	}
	if err := e.normalize(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ValuesHash is a short stable hash of copied values: the first 16 hex
// digits of the SHA-256 of their JSON (keys sorted, numbers as given). Two
// states of a record with the same copied values have the same hash.
func ValuesHash(fields map[string]any) (string, error) {
	if fields == nil {
		fields = map[string]any{}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("event: hash values: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// TimeKey is a change time as polling writes it in change keys and
// changed_at: RFC 3339 in UTC with milliseconds.
func TimeKey(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
