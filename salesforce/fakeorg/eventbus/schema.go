package eventbus

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"orgsync/salesforce/fakeorg"
)

const (
	namespace   = "com.sforce.eventbus"
	addressName = namespace + ".Address"
)

// addressComponents are the fields of the compound Address record, in
// Salesforce's order, with the Account field suffix each maps to.
var addressComponents = []struct{ name, suffix, typ string }{
	{"Street", "Street", "string"},
	{"City", "City", "string"},
	{"State", "State", "string"},
	{"PostalCode", "PostalCode", "string"},
	{"Country", "Country", "string"},
	{"Latitude", "Latitude", "double"},
	{"Longitude", "Longitude", "double"},
	{"GeocodeAccuracy", "GeocodeAccuracy", "string"},
}

// changeTypes are the symbols of the ChangeType enum.
var changeTypes = []string{"CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE",
	"GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW", "SNAPSHOT"}

// entitySchema is one entity's change event schema.
type entitySchema struct {
	json   string
	id     string
	schema *avro.RecordSchema
	fields []fakeorg.ChangeField
	index  map[string]int // top-level field name → index (header = 0)
}

// buildSchema makes the AccountChangeEvent schema: the ChangeEventHeader
// record, then every field nullable, compound addresses as a nested record.
func buildSchema(fields []fakeorg.ChangeField) (*entitySchema, error) {
	strArr := map[string]any{"type": "array", "items": "string"}
	header := map[string]any{
		"type": "record", "name": "ChangeEventHeader", "namespace": namespace,
		"fields": []any{
			map[string]any{"name": "entityName", "type": "string"},
			map[string]any{"name": "recordIds", "type": strArr},
			map[string]any{"name": "changeType", "type": map[string]any{"type": "enum", "name": "ChangeType", "namespace": namespace, "symbols": changeTypes}},
			map[string]any{"name": "changeOrigin", "type": "string"},
			map[string]any{"name": "transactionKey", "type": "string"},
			map[string]any{"name": "sequenceNumber", "type": "int"},
			map[string]any{"name": "commitTimestamp", "type": "long"},
			map[string]any{"name": "commitNumber", "type": "long"},
			map[string]any{"name": "commitUser", "type": "string"},
			map[string]any{"name": "nulledFields", "type": strArr},
			map[string]any{"name": "diffFields", "type": strArr},
			map[string]any{"name": "changedFields", "type": strArr},
		},
	}
	out := []any{map[string]any{"name": "ChangeEventHeader", "type": header, "doc": "Data:ChangeEventHeader"}}
	addressDefined := false
	es := &entitySchema{fields: fields, index: map[string]int{"ChangeEventHeader": 0}}
	for i, f := range fields {
		var t any
		switch f.Type {
		case "string":
			t = "string"
		case "double":
			t = "double"
		case "int":
			t = "int"
		case "boolean":
			t = "boolean"
		case "datetime", "date":
			t = "long"
		case "address":
			if addressDefined {
				t = addressName
				break
			}
			addressDefined = true
			var comps []any
			for _, c := range addressComponents {
				comps = append(comps, map[string]any{"name": c.name, "type": []any{"null", c.typ}, "default": nil})
			}
			t = map[string]any{"type": "record", "name": "Address", "namespace": namespace, "fields": comps}
		default:
			return nil, fmt.Errorf("eventbus: field %s: type %q", f.Name, f.Type)
		}
		out = append(out, map[string]any{"name": f.Name, "type": []any{"null", t}, "default": nil})
		es.index[f.Name] = i + 1
	}
	rec := map[string]any{"type": "record", "name": "AccountChangeEvent", "namespace": namespace, "fields": out}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	s, err := avro.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("eventbus: schema: %w", err)
	}
	sum := sha256.Sum256(b)
	es.json = string(b)
	es.id = base64.RawURLEncoding.EncodeToString(sum[:16])
	es.schema = s.(*avro.RecordSchema)
	return es, nil
}

// header is what goes into a ChangeEventHeader.
type header struct {
	changeType     string
	recordIDs      []string
	origin         string
	txKey          string
	seq            int
	commit         time.Time
	commitNumber   int64
	user           string
	changed, nulls []string // field names (top-level or Parent.Child)
	diffs          []string
}

// encode builds the Avro payload of a change event. rec holds the values
// (nil for gap and delete events).
func (es *entitySchema) encode(h header, rec fakeorg.Record) ([]byte, error) {
	changed, err := es.bitmap(h.changed)
	if err != nil {
		return nil, err
	}
	nulled, err := es.bitmap(h.nulls)
	if err != nil {
		return nil, err
	}
	diffs, err := es.bitmap(h.diffs)
	if err != nil {
		return nil, err
	}
	ids := make([]any, len(h.recordIDs))
	for i, id := range h.recordIDs {
		ids[i] = id
	}
	m := map[string]any{
		"ChangeEventHeader": map[string]any{
			"entityName": "Account", "recordIds": ids, "changeType": h.changeType, "changeOrigin": h.origin,
			"transactionKey": h.txKey, "sequenceNumber": h.seq, "commitTimestamp": h.commit.UnixMilli(),
			"commitNumber": h.commitNumber, "commitUser": h.user,
			"nulledFields": nulled, "diffFields": diffs, "changedFields": changed,
		},
	}
	for _, f := range es.fields {
		m[f.Name] = es.value(f, rec)
	}
	return avro.Marshal(es.schema, m)
}

// value renders one field of rec for Avro: epoch milliseconds for dates and
// datetimes, a wrapped Address record for compound fields.
func (es *entitySchema) value(f fakeorg.ChangeField, rec fakeorg.Record) any {
	if rec == nil {
		return nil
	}
	if f.Type == "address" {
		prefix := strings.TrimSuffix(f.Name, "Address")
		addr := map[string]any{}
		set := false
		for _, c := range addressComponents {
			v := rec[prefix+c.suffix]
			addr[c.name] = v
			set = set || v != nil
		}
		if !set {
			return nil
		}
		return map[string]any{addressName: addr}
	}
	switch v := rec[f.Name].(type) {
	case nil:
		return nil
	case time.Time:
		return v.UnixMilli()
	case int:
		if f.Type == "int" {
			return int32(v)
		}
		return v
	default:
		return v
	}
}

// bitmap encodes field names as Salesforce does: "0xHEX" over the top-level
// fields, then one "P-0xHEX" per compound parent over its components.
func (es *entitySchema) bitmap(names []string) ([]any, error) {
	if len(names) == 0 {
		return []any{}, nil
	}
	top := make([]byte, (len(es.fields)+1+7)/8)
	nested := map[int][]byte{}
	var parents []int
	for _, n := range names {
		parent, child, isNested := strings.Cut(n, ".")
		i, ok := es.index[parent]
		if !ok {
			return nil, fmt.Errorf("eventbus: no field %q in the change event schema", n)
		}
		if !isNested {
			setBit(top, i)
			continue
		}
		ci := -1
		for j, c := range addressComponents {
			if c.name == child {
				ci = j
			}
		}
		if ci < 0 {
			return nil, fmt.Errorf("eventbus: no component %q", n)
		}
		if nested[i] == nil {
			nested[i] = make([]byte, 1)
			parents = append(parents, i)
		}
		setBit(nested[i], ci)
	}
	out := []any{"0x" + hexBE(top)}
	for _, p := range parents {
		out = append(out, fmt.Sprintf("%d-0x%s", p, hexBE(nested[p])))
	}
	return out, nil
}

// setBit sets bit i of a little-endian byte slice.
func setBit(b []byte, i int) { b[i/8] |= 1 << (i % 8) }

// hexBE renders a little-endian bit slice as upper-case big-endian hex
// without leading zero bytes.
func hexBE(b []byte) string {
	n := len(b)
	for n > 1 && b[n-1] == 0 {
		n--
	}
	var sb strings.Builder
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&sb, "%02X", b[i])
	}
	return sb.String()
}

// eventFieldNames maps the org's changed field names to change event names
// (BillingCity → BillingAddress.City) and drops fields events do not carry.
func (es *entitySchema) eventFieldNames(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		name := n
		for _, prefix := range []string{"Billing", "Shipping"} {
			for _, c := range addressComponents {
				if n == prefix+c.suffix {
					name = prefix + "Address." + c.name
				}
			}
		}
		parent, _, _ := strings.Cut(name, ".")
		if _, ok := es.index[parent]; !ok || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	return out
}
