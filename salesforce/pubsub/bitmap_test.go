package pubsub

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// testSchema: header, F1..F30 strings, BillingAddress (a [null, record]
// union) at index 31, F32, ShippingAddress (the same record by name) at 33.
func testSchema(t testing.TB) *avro.RecordSchema {
	t.Helper()
	fields := []string{`{"name":"ChangeEventHeader","type":{"type":"record","name":"H","fields":[]}}`}
	for i := 1; i <= 30; i++ {
		fields = append(fields, fmt.Sprintf(`{"name":"F%d","type":["null","string"],"default":null}`, i))
	}
	fields = append(fields,
		`{"name":"BillingAddress","type":["null",{"type":"record","name":"Address","namespace":"com.sforce.eventbus","fields":[`+
			`{"name":"Street","type":["null","string"]},{"name":"City","type":["null","string"]},{"name":"State","type":["null","string"]},`+
			`{"name":"PostalCode","type":["null","string"]},{"name":"Country","type":["null","string"]},{"name":"Latitude","type":["null","double"]},`+
			`{"name":"Longitude","type":["null","double"]},{"name":"GeocodeAccuracy","type":["null","string"]},{"name":"X9","type":["null","string"]}]}],"default":null}`,
		`{"name":"F32","type":["null","string"],"default":null}`,
		`{"name":"ShippingAddress","type":["null","com.sforce.eventbus.Address"],"default":null}`)
	s, err := avro.Parse(`{"type":"record","name":"AccountChangeEvent","namespace":"com.sforce.eventbus","fields":[` + strings.Join(fields, ",") + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*avro.RecordSchema)
}

func TestExpandFields(t *testing.T) {
	rec := testSchema(t)
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"none", nil, nil, false},
		{"one field", []string{"0x2"}, []string{"F1"}, false},
		{"lower-case hex", []string{"0xa"}, []string{"F1", "F3"}, false},
		// Salesforce's documented example shape: 0x650004E0 = bits 5,6,7,10,24,26,29,30.
		{"doc example top level", []string{"0x650004E0"}, []string{"F5", "F6", "F7", "F10", "F24", "F26", "F29", "F30"}, false},
		{"compound child", []string{"0x0", "31-0x02"}, []string{"BillingAddress.City"}, false},
		{"compound by name reference", []string{"33-0x03"}, []string{"ShippingAddress.Street", "ShippingAddress.City"}, false},
		{"ninth component (two bytes)", []string{"31-0x0100"}, []string{"BillingAddress.X9"}, false},
		{"mixed", []string{"0x100000002", "31-0x06"}, []string{"F1", "F32", "BillingAddress.City", "BillingAddress.State"}, false},
		{"bit past the fields", []string{"0x1000000000"}, nil, true},
		{"nested bit past the record", []string{"31-0x200"}, nil, true},
		{"parent not compound", []string{"5-0x1"}, nil, true},
		{"parent out of range", []string{"99-0x1"}, nil, true},
		{"parent not a number", []string{"x-0x1"}, nil, true},
		{"parent with sign", []string{"+31-0x1"}, nil, true},
		{"not hex", []string{"0xZZ"}, nil, true},
		{"plain name", []string{"Name"}, nil, true},
		{"empty hex", []string{"0x"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExpandFields(rec, tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzExpandFields(f *testing.F) {
	rec := testSchema(f)
	for _, s := range []string{"0x650004E0", "31-0x02", "0x", "33-0x1ff", "-0x1", "0x0000000000000000000001", "1-", "31-0X0A"} {
		f.Add(s, "0x1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := ExpandFields(rec, []string{a, b})
		if err != nil {
			return
		}
		for _, name := range got {
			parent, child, nested := strings.Cut(name, ".")
			fld := -1
			for i, x := range rec.Fields() {
				if x.Name() == parent {
					fld = i
				}
			}
			if fld < 1 && !(fld == 0 && !nested) {
				t.Fatalf("%q, %q: name %q is not a field", a, b, name)
			}
			if nested {
				sub := recordOf(rec.Fields()[fld].Type())
				if sub == nil || !slices.ContainsFunc(sub.Fields(), func(x *avro.Field) bool { return x.Name() == child }) {
					t.Fatalf("%q, %q: %q is not a component", a, b, name)
				}
			}
		}
	})
}
