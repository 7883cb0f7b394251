package pubsub

import (
	"fmt"
	"time"

	"github.com/hamba/avro/v2"
)

// Change types of a change event header.
const (
	ChangeCreate      = "CREATE"
	ChangeUpdate      = "UPDATE"
	ChangeDelete      = "DELETE"
	ChangeUndelete    = "UNDELETE"
	ChangeGapCreate   = "GAP_CREATE"
	ChangeGapUpdate   = "GAP_UPDATE"
	ChangeGapDelete   = "GAP_DELETE"
	ChangeGapUndelete = "GAP_UNDELETE"
	ChangeGapOverflow = "GAP_OVERFLOW"
)

// HeaderField is the name of the header field of a change event schema.
const HeaderField = "ChangeEventHeader"

// Header is a change event's ChangeEventHeader, with the field bitmaps
// expanded to names.
type Header struct {
	EntityName      string
	RecordIDs       []string
	ChangeType      string
	ChangeOrigin    string
	TransactionKey  string
	SequenceNumber  int64
	CommitTimestamp time.Time // UTC, millisecond precision
	CommitNumber    int64
	CommitUser      string
	ChangedFields   []string
	NulledFields    []string
	DiffFields      []string
}

// IsGap reports whether the event is a gap event (GAP_CREATE … GAP_UNDELETE).
func (h Header) IsGap() bool {
	switch h.ChangeType {
	case ChangeGapCreate, ChangeGapUpdate, ChangeGapDelete, ChangeGapUndelete:
		return true
	}
	return false
}

// Event is one decoded change event.
type Event struct {
	ReplayID []byte // opaque, as received
	ID       string // the producer event's id
	SchemaID string
	Header   Header
	// Fields holds the body's top-level fields other than the header, as
	// Avro decodes them: nulls as nil, compound fields as map[string]any,
	// dates and datetimes as the epoch numbers Pub/Sub sends.
	Fields map[string]any
}

// decodeEvent decodes an Avro payload with rec.
func decodeEvent(rec *avro.RecordSchema, payload []byte) (Header, map[string]any, error) {
	var raw map[string]any
	if err := avro.Unmarshal(rec, payload, &raw); err != nil {
		return Header{}, nil, fmt.Errorf("pubsub: decode avro payload: %w", err)
	}
	fields := make(map[string]any, len(raw))
	var hdr Header
	found := false
	for _, f := range rec.Fields() {
		v := unwrapUnion(f.Type(), raw[f.Name()])
		if f.Name() == HeaderField {
			m, ok := v.(map[string]any)
			if !ok {
				return Header{}, nil, fmt.Errorf("pubsub: %s is %T, not a record", HeaderField, v)
			}
			h, err := decodeHeader(rec, m)
			if err != nil {
				return Header{}, nil, err
			}
			hdr, found = h, true
			continue
		}
		fields[f.Name()] = v
	}
	if !found {
		return Header{}, nil, fmt.Errorf("pubsub: schema %s has no %s", rec.FullName(), HeaderField)
	}
	return hdr, fields, nil
}

// unwrapUnion turns hamba's {"full.name": value} form of a union holding a
// record (or other named type) into the value itself.
func unwrapUnion(s avro.Schema, v any) any {
	if _, ok := s.(*avro.UnionSchema); !ok {
		return v
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	for _, u := range s.(*avro.UnionSchema).Types() {
		if r, ok := u.(*avro.RefSchema); ok {
			u = r.Schema()
		}
		if n, ok := u.(avro.NamedSchema); ok {
			if inner, ok := m[n.FullName()]; ok {
				return inner
			}
		}
	}
	return v
}

func decodeHeader(rec *avro.RecordSchema, m map[string]any) (Header, error) {
	var h Header
	var err error
	h.EntityName = asString(m["entityName"])
	h.ChangeType = asString(m["changeType"])
	h.ChangeOrigin = asString(m["changeOrigin"])
	h.TransactionKey = asString(m["transactionKey"])
	h.CommitUser = asString(m["commitUser"])
	h.SequenceNumber = asInt(m["sequenceNumber"])
	h.CommitNumber = asInt(m["commitNumber"])
	if ms := asInt(m["commitTimestamp"]); ms != 0 {
		h.CommitTimestamp = time.UnixMilli(ms).UTC()
	}
	h.RecordIDs = asStrings(m["recordIds"])
	if h.ChangeType == "" {
		return Header{}, fmt.Errorf("pubsub: change event header without changeType")
	}
	if h.ChangedFields, err = ExpandFields(rec, asStrings(m["changedFields"])); err != nil {
		return Header{}, fmt.Errorf("changedFields: %w", err)
	}
	if h.NulledFields, err = ExpandFields(rec, asStrings(m["nulledFields"])); err != nil {
		return Header{}, fmt.Errorf("nulledFields: %w", err)
	}
	if h.DiffFields, err = ExpandFields(rec, asStrings(m["diffFields"])); err != nil {
		return Header{}, fmt.Errorf("diffFields: %w", err)
	}
	return h, nil
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	}
	return 0
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
