package event_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"orgsync/event"
)

func TestNewAccountChange(t *testing.T) {
	allow, err := event.ParseFields("Name,Phone,ParentId")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 4, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	tests := []struct {
		name    string
		typ     string
		fields  map[string]any
		want    map[string]any
		wantErr bool
	}{
		{name: "update keeps allowed fields, nulls and normalises ParentId", typ: event.TypeAccountUpdated,
			fields: map[string]any{"Name": "Acme", "Phone": nil, "Website": "x", "ParentId": paren15},
			want:   map[string]any{"Name": "Acme", "Phone": nil, "ParentId": paren18}},
		{name: "update blanking ParentId", typ: event.TypeAccountUpdated,
			fields: map[string]any{"ParentId": ""}, want: map[string]any{"ParentId": nil}},
		{name: "undelete with fields", typ: event.TypeAccountUndeleted,
			fields: map[string]any{"Name": "Back"}, want: map[string]any{"Name": "Back"}},
		{name: "delete carries none", typ: event.TypeAccountDeleted,
			fields: map[string]any{"Name": "ignored"}, want: nil},
		{name: "created is not a change", typ: event.TypeAccountCreated, wantErr: true},
		{name: "bad ParentId", typ: event.TypeAccountUpdated, fields: map[string]any{"ParentId": "nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := event.NewAccountChange(tt.typ, org15, acct15, at, "k:1", tt.fields, allow)
			if tt.wantErr {
				if !errors.Is(err, event.ErrMalformed) {
					t.Fatalf("got %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.SourceID != acct18 || e.SourceOrg != org18 || e.ChangeKey != "k:1" ||
				!e.ChangedAt.Equal(at.Truncate(time.Millisecond)) || e.ChangedAt.Location() != time.UTC {
				t.Errorf("got %+v", e)
			}
			gb, _ := json.Marshal(e.Fields)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("fields %s, want %s", gb, wb)
			}
			// What is built decodes to the same event.
			body, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			d, err := event.Decode(body)
			if err != nil || d.MsgID() != e.MsgID() || !d.ChangedAt.Equal(e.ChangedAt) {
				t.Errorf("round trip: %+v, %v", d, err)
			}
		})
	}
}

func TestValuesHash(t *testing.T) {
	a, err := event.ValuesHash(map[string]any{"Name": "Acme", "Phone": nil, "NumberOfEmployees": json.Number("10")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := event.ValuesHash(map[string]any{"NumberOfEmployees": json.Number("10"), "Phone": nil, "Name": "Acme"})
	c, _ := event.ValuesHash(map[string]any{"Name": "Acme", "NumberOfEmployees": json.Number("10")})
	d, _ := event.ValuesHash(map[string]any{"Name": "Acme", "Phone": "", "NumberOfEmployees": json.Number("10")})
	if a != b {
		t.Errorf("key order changed the hash: %s vs %s", a, b)
	}
	if a == c || a == d || c == d {
		t.Errorf("a null, an absent and an empty value must hash apart: %s %s %s", a, c, d)
	}
	if len(a) != 16 {
		t.Errorf("hash %q: want 16 hex digits", a)
	}
	if empty, _ := event.ValuesHash(nil); empty == "" {
		t.Error("nil values: empty hash")
	}
}

func TestTimeKey(t *testing.T) {
	at := time.Date(2026, 5, 4, 12, 0, 0, 5e6, time.FixedZone("x", 7200))
	if got := event.TimeKey(at); got != "2026-05-04T10:00:00.005Z" {
		t.Errorf("got %s", got)
	}
}
