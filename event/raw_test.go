package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	rawOrg   = "00D000000000001EAA"
	rawAcct  = "001000000000001AAA"
	rawPar15 = "001000000000002"
	rawPar18 = "001000000000002AAA"
)

// rawCreated is a created event body with the given fields object.
func rawCreated(fields string) string {
	return `{"v":1,"type":"account.created","source_org":"` + rawOrg + `","source_id":"` + rawAcct +
		`","created_at":"2026-11-22T10:00:00Z","fields":` + fields + `}`
}

var rawSeeds = []string{
	rawCreated(`{"Name":"Acme","ParentId":"` + rawPar15 + `","NumberOfEmployees":12,"AnnualRevenue":-1.5e3,"Active":true,"Fax":null}`),
	rawCreated(`{"ParentId":"` + rawPar18 + `","Name":"Acme"}`),
	rawCreated(`{"Name":"Acme","ParentId":null}`),
	rawCreated(`{"Name":"Acme","ParentId":""}`),
	rawCreated(`{"parentid":"anything","Name":"Acme"}`),
	rawCreated(`{"Name":"Acme","PARENTID":12,"Phone":"1"}`),
	rawCreated(`{"ParentId":"` + rawPar15 + `","parentId":"` + rawPar15 + `"}`),
	rawCreated(`{"ParentId":"` + rawPar15 + `"}`),
	rawCreated(`{"ParentId":"bad"}`),
	rawCreated(`{"ParentId":1}`),
	rawCreated(`{}`),
	rawCreated(` { "Name" : "A" , "ParentId" : null , "Phone" : "2" } `),
	rawCreated(`{"Name":"line\nbreak \"quoted\" \u00e9 \/ é日本"}`),
	rawCreated(`{"Name":"lone \ud800 surrogate"}`),
	rawCreated(`{"Name":"Acme","Name":"Twice"}`),
	rawCreated(`{"N\u0061me":"escaped key"}`),
	rawCreated(`{"Id":"001000000000009"}`),
	rawCreated(`{"Bad Name":"x"}`),
	rawCreated(`{"Nested":{"a":1}}`),
	rawCreated(`{"List":[1]}`),
	rawCreated(`{"N":01}`),
	rawCreated(`{"N":1.}`),
	rawCreated(`{"N":-0.5E+10}`),
	rawCreated("{\"Name\":\"\xff\"}"),
	rawCreated(`null`),
	`{"v":1,"type":"account.updated","source_org":"` + rawOrg + `","source_id":"` + rawAcct +
		`","changed_at":"2026-11-22T10:05:00.123Z","change_key":"tx:1","fields":{"Phone":null,"ParentId":""}}`,
	`{"v":1,"type":"account.updated","source_org":"` + rawOrg + `","source_id":"` + rawAcct +
		`","changed_at":"2026-11-22T10:05:00.123Z","change_key":"tx:1","fields":{"Name":"esc\n"}}`,
	`{"fields":{"Name":"A"},"v":1,"type":"account.created","source_org":"` + rawOrg + `","source_id":"` + rawAcct + `"}`,
	`{"v":2,"type":"account.created","source_org":"` + rawOrg + `","source_id":"` + rawAcct + `","fields":{"Name":"A"}}`,
	`{"v":1,"type":"account.link","source_org":"` + rawOrg + `","source_id":"` + rawAcct + `","parent_id":"` + rawPar15 + `"}`,
}

// DecodeRaw accepts and refuses what Decode does, with the same errors;
// DecodeFields then gives Decode's event; the raw members are the decoded
// fields but ParentId (any letter case), and the parent is Decode's.
func FuzzDecodeRaw(f *testing.F) {
	for _, s := range rawSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := Decode(body)
		got, gerr := DecodeRaw(body)
		// With several bad field names, which one Decode reports follows
		// the map's order, at random.
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() && !(fieldError(werr) && fieldError(gerr)) {
			t.Fatalf("%q: Decode error %v, DecodeRaw error %v", body, werr, gerr)
		}
		if werr != nil {
			return
		}
		if got.ParentSourceID() != want.ParentSourceID() {
			t.Fatalf("%q: parent %q, want %q", body, got.ParentSourceID(), want.ParentSourceID())
		}
		if r := got.Raw; r != nil {
			if got.Type != TypeAccountCreated || got.Fields != nil {
				t.Fatalf("%q: raw fields on a %s event, or with a map", body, got.Type)
			}
			members := r.AppendMembers(nil)
			if len(members) != r.Len() {
				t.Fatalf("%q: Len %d, members %q", body, r.Len(), members)
			}
			dec := json.NewDecoder(bytes.NewReader(append(append([]byte("{"), members...), '}')))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("%q: members %q do not decode: %v", body, members, err)
			}
			wantM := map[string]any{}
			for k, v := range want.Fields {
				if !strings.EqualFold(k, "ParentId") {
					wantM[k] = v
				}
			}
			if !reflect.DeepEqual(m, wantM) {
				t.Fatalf("%q: members %v, want %v", body, m, wantM)
			}
			for k := range want.Fields {
				if !r.Has(k) {
					t.Fatalf("%q: Has(%q) false", body, k)
				}
			}
		}
		got.DecodeFields()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nraw  %#v\nwant %#v", body, got, want)
		}
	})
}

// fieldError reports an error about a field's name.
func fieldError(err error) bool {
	return errors.Is(err, ErrMalformed) && (strings.Contains(err.Error(), ": field name ") || strings.Contains(err.Error(), " is never copied"))
}

// The usual created bodies keep their fields raw, ParentId cut out in any
// position; the unusual ones are decoded into a map.
func TestDecodeRawKeepsUsualBodies(t *testing.T) {
	tests := []struct {
		body    string
		members string // "" with raw: no members left
		raw     bool
		parent  string
	}{
		{rawSeeds[0], `"Name":"Acme","NumberOfEmployees":12,"AnnualRevenue":-1.5e3,"Active":true,"Fax":null`, true, rawPar18},
		{rawSeeds[1], `"Name":"Acme"`, true, rawPar18},
		{rawSeeds[2], `"Name":"Acme"`, true, ""},
		{rawSeeds[4], `"Name":"Acme"`, true, ""},
		{rawSeeds[5], `"Name":"Acme","Phone":"1"`, true, ""},
		{rawSeeds[7], ``, true, rawPar18},
		{rawSeeds[10], ``, true, ""},
		{rawSeeds[11], `"Name" : "A","Phone" : "2"`, true, ""},
		{rawSeeds[12], `"Name":"line\nbreak \"quoted\" \u00e9 \/ é日本"`, true, ""},
		{rawSeeds[6], "", false, rawPar18},         // two ParentId keys
		{rawSeeds[13], "", false, ""},              // a lone surrogate
		{rawSeeds[14], "", false, ""},              // a key twice
		{rawSeeds[15], "", false, ""},              // an escaped key
		{rawSeeds[18], "", false, ""},              // a nested value
		{rawSeeds[len(rawSeeds)-5], "", false, ""}, // an update
	}
	for _, tt := range tests {
		e, err := DecodeRaw([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.body, err)
			continue
		}
		if (e.Raw != nil) != tt.raw {
			t.Errorf("%s: raw %v, want %v", tt.body, e.Raw != nil, tt.raw)
			continue
		}
		if e.ParentSourceID() != tt.parent {
			t.Errorf("%s: parent %q, want %q", tt.body, e.ParentSourceID(), tt.parent)
		}
		if tt.raw {
			if got := string(e.Raw.AppendMembers(nil)); got != tt.members {
				t.Errorf("%s: members %s, want %s", tt.body, got, tt.members)
			}
		} else if e.Fields == nil {
			t.Errorf("%s: neither raw nor a map", tt.body)
		}
	}
}

// Has finds keys, may report a key's text in a value, never misses a key.
func TestRawFieldsHas(t *testing.T) {
	e, err := DecodeRaw([]byte(rawCreated(`{"Name":"Source_Id__c","Phone":"1"}`)))
	if err != nil || e.Raw == nil {
		t.Fatalf("%v, raw %v", err, e.Raw != nil)
	}
	for key, want := range map[string]bool{"Name": true, "Phone": true, "Source_Id__c": true, "Fax": false, "Nam": false, "": false, `"`: false} {
		if got := e.Raw.Has(key); got != want {
			t.Errorf("Has(%q) = %v, want %v", key, got, want)
		}
	}
}

// Encode writes a raw event's fields.
func TestEncodeRaw(t *testing.T) {
	e, err := DecodeRaw([]byte(rawSeeds[0]))
	if err != nil || e.Raw == nil {
		t.Fatalf("%v, raw %v", err, e.Raw != nil)
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Decode([]byte(rawSeeds[0]))
	got, err := Decode(b)
	if err != nil || !reflect.DeepEqual(got, want) || e.Raw == nil {
		t.Errorf("Encode of a raw event: %s decodes to %+v, %v; want %+v", b, got, err, want)
	}
}

func BenchmarkDecodeRaw(b *testing.B) {
	body := []byte(fastSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRaw(body); err != nil {
			b.Fatal(err)
		}
	}
}
