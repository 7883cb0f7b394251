package capture

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"orgsync/event"
	"orgsync/salesforce/pubsub"
)

const (
	testOrg = "00D000000000001EAA"
	recA    = "001000000000001AAA"
	recB    = "001000000000002AAA"
)

// testCDC is a CDC set up as init would for an org whose Account has the
// usual field types, copying Name, Phone, Industry, NumberOfEmployees and
// the Billing address components.
func testCDC(t *testing.T) *CDC {
	t.Helper()
	f, err := event.ParseFields("Name,Phone,Industry,NumberOfEmployees,BillingStreet,BillingCity,BillingPostalCode")
	if err != nil {
		t.Fatal(err)
	}
	return &CDC{cfg: CDCConfig{Fields: f}, sourceOrg: testOrg, types: map[string]string{
		"name": "string", "phone": "phone", "industry": "picklist", "numberofemployees": "int",
		"billingaddress": "address", "shippingaddress": "address", "website": "url", "lastmodifieddate": "datetime",
	}}
}

// Events built from UPDATE, DELETE and UNDELETE change events.
func TestChangeEvents(t *testing.T) {
	commit := time.Date(2026, 5, 4, 10, 0, 0, 123e6, time.UTC)
	hdr := func(typ string, ids ...string) pubsub.Header {
		return pubsub.Header{EntityName: "Account", ChangeType: typ, RecordIDs: ids, TransactionKey: "0001abc",
			SequenceNumber: 3, CommitTimestamp: commit}
	}
	addr := func(city any) map[string]any {
		return map[string]any{"Street": nil, "City": city, "State": nil, "PostalCode": nil, "Country": nil,
			"Latitude": nil, "Longitude": nil, "GeocodeAccuracy": nil}
	}
	tests := []struct {
		name    string
		header  pubsub.Header
		fields  map[string]any
		want    []string // "<type> <id> <fields JSON>"
		skipped int
		wantErr bool
	}{
		{
			name: "update: changed and nulled fields that are copied, address components by name",
			header: func() pubsub.Header {
				h := hdr(pubsub.ChangeUpdate, recA)
				h.ChangedFields = []string{"Name", "LastModifiedDate", "BillingAddress.City", "Website", "NumberOfEmployees"}
				h.NulledFields = []string{"Phone"}
				return h
			}(),
			fields: map[string]any{"Name": "Acme Ltd", "LastModifiedDate": int64(1777888000123), "BillingAddress": addr("Lyon"),
				"Website": "https://acme.example", "NumberOfEmployees": int32(12), "Phone": nil, "Industry": nil},
			want: []string{`account.updated ` + recA + ` {"BillingCity":"Lyon","Name":"Acme Ltd","NumberOfEmployees":12,"Phone":null}`},
		},
		{
			name: "update of the whole compound address",
			header: func() pubsub.Header {
				h := hdr(pubsub.ChangeUpdate, recA)
				h.ChangedFields = []string{"BillingAddress"}
				return h
			}(),
			fields: map[string]any{"BillingAddress": addr("Nice")},
			want:   []string{`account.updated ` + recA + ` {"BillingCity":"Nice","BillingPostalCode":null,"BillingStreet":null}`},
		},
		{
			name: "update touching only fields outside -fields: nothing",
			header: func() pubsub.Header {
				h := hdr(pubsub.ChangeUpdate, recA, recB)
				h.ChangedFields = []string{"Website", "LastModifiedDate", "ShippingAddress.City"}
				return h
			}(),
			fields:  map[string]any{"Website": "x", "LastModifiedDate": int64(1), "ShippingAddress": addr("Oslo")},
			skipped: 2,
		},
		{
			name: "merged update of two records: one event each, one key",
			header: func() pubsub.Header {
				h := hdr(pubsub.ChangeUpdate, recA, recB)
				h.ChangedFields = []string{"Industry"}
				return h
			}(),
			fields: map[string]any{"Industry": "Energy"},
			want: []string{`account.updated ` + recA + ` {"Industry":"Energy"}`,
				`account.updated ` + recB + ` {"Industry":"Energy"}`},
		},
		{
			name:   "delete carries no fields",
			header: hdr(pubsub.ChangeDelete, recA),
			want:   []string{`account.deleted ` + recA + ` null`},
		},
		{
			name:   "undelete carries the record's copied fields",
			header: hdr(pubsub.ChangeUndelete, recA),
			fields: map[string]any{"Name": "Back", "Phone": nil, "Website": "x", "BillingAddress": addr("Metz")},
			want: []string{`account.undeleted ` + recA +
				` {"BillingCity":"Metz","BillingPostalCode":null,"BillingStreet":null,"Name":"Back","Phone":null}`},
		},
		{
			name: "no transaction key",
			header: func() pubsub.Header {
				h := hdr(pubsub.ChangeDelete, recA)
				h.TransactionKey = ""
				return h
			}(),
			wantErr: true,
		},
		{
			name:    "a record ID that is not an Account's",
			header:  hdr(pubsub.ChangeDelete, "003000000000001AAA"),
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCDC(t)
			outs, skipped, err := c.changeEvents(&pubsub.Event{ReplayID: []byte{1}, Header: tt.header, Fields: tt.fields})
			if tt.wantErr {
				if !errors.Is(err, errBadChange) {
					t.Fatalf("got %v, want errBadChange", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if skipped != tt.skipped {
				t.Errorf("skipped %d, want %d", skipped, tt.skipped)
			}
			var got []string
			for _, o := range outs {
				fields, _ := json.Marshal(o.o.ev.Fields)
				got = append(got, o.o.ev.Type+" "+o.o.ev.SourceID+" "+string(fields))
				if o.o.ev.ChangeKey != "0001abc:3" || !o.o.ev.ChangedAt.Equal(commit) {
					t.Errorf("key %q at %v, want 0001abc:3 at the commit time", o.o.ev.ChangeKey, o.o.ev.ChangedAt)
				}
				if d, err := event.Decode(o.o.body); err != nil || d.MsgID() != o.o.ev.MsgID() {
					t.Errorf("body %s: %v", o.o.body, err)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Whatever field names and values a change event holds, building its
// events never panics, and an update carries only copied fields.
func FuzzChangeEvents(f *testing.F) {
	f.Add("UPDATE", "Name,BillingAddress.City", "Phone", "Acme", "")
	f.Add("UNDELETE", "", "", "x", "BillingAddress")
	f.Add("UPDATE", "BillingAddress,.,Name.", "ShippingAddress.", "", "Name")
	f.Fuzz(func(t *testing.T, typ, changed, nulled, name, addrField string) {
		c := testCDC(t)
		h := pubsub.Header{ChangeType: typ, RecordIDs: []string{recA}, TransactionKey: "k", SequenceNumber: 1,
			CommitTimestamp: time.Unix(1, 0), ChangedFields: strings.Split(changed, ","), NulledFields: strings.Split(nulled, ",")}
		fields := map[string]any{"Name": name}
		if addrField != "" {
			fields[addrField] = map[string]any{"City": name}
		}
		outs, _, err := c.changeEvents(&pubsub.Event{Header: h, Fields: fields})
		if err != nil {
			return
		}
		for _, o := range outs {
			for k := range o.o.ev.Fields {
				if !c.cfg.Fields.Has(k) {
					t.Fatalf("field %q is not copied", k)
				}
			}
			if _, err := event.Decode(o.o.body); err != nil {
				t.Fatalf("body %s: %v", o.o.body, err)
			}
		}
	})
}
