package replicate

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"orgsync/event"
	"orgsync/salesforce"
)

// rawBodyExts are the external ID fields the fuzz test writes with: the
// usual one, and names that collide with copied fields or the parent
// reference.
var rawBodyExts = []string{"Source_Id__c", "Name", "Parent", "ParentId", "Phone"}

// members decodes a record's members as the org would (numbers kept
// exact) and lists its keys, duplicates included.
func members(t *testing.T, b []byte) (map[string]any, []string) {
	t.Helper()
	obj := append(append([]byte("{"), b...), '}')
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("members %q do not decode: %v", b, err)
	}
	dec = json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return m, keys
}

// The record the hot path writes from raw fields (event.DecodeRaw,
// appendRecord) means exactly what the map path writes (event.Decode,
// record, salesforce.AppendRecord): the same keys once each, the same
// values, numbers to the digit, nulls as nulls; only the key order may
// differ.
func FuzzRawRecord(f *testing.F) {
	for _, fields := range []string{
		`{"Name":"Acme","ParentId":"001000000000002","NumberOfEmployees":12,"AnnualRevenue":-1.5e3,"Active":true,"Fax":null}`,
		`{"Name":"Acme","ParentId":null,"Phone":"1"}`,
		`{"parentid":"x","PARENTID":1,"Name":"A"}`,
		`{"Source_Id__c":"own","Name":"A"}`,
		`{"Parent":"field","ParentId":"001000000000002"}`,
		`{"Name":"line\nbreak \"q\" \u00e9 \/ é日本 \u2028"}`,
		`{"N":123456789012345678901234567890.000000000000000000001,"M":1E400}`,
		`{}`,
		` { "Name" : "A" , "ParentId" : "001000000000002AAA" } `,
	} {
		for ext := range rawBodyExts {
			f.Add([]byte(fields), uint8(ext), true)
			f.Add([]byte(fields), uint8(ext), false)
		}
	}
	f.Fuzz(func(t *testing.T, fields []byte, extIndex uint8, withParent bool) {
		body := []byte(`{"v":1,"type":"account.created","source_org":"00D000000000001EAA","source_id":"001000000000001AAA","fields":` +
			string(fields) + `}`)
		want, err := event.Decode(body)
		if err != nil {
			return
		}
		got, err := event.DecodeRaw(body)
		if err != nil {
			t.Fatalf("DecodeRaw refuses what Decode takes: %v", err)
		}
		ext := rawBodyExts[int(extIndex)%len(rawBodyExts)]
		w := &Worker{cfg: Config{ExternalIDField: ext}}
		mapBody, err := salesforce.AppendRecord(nil, w.record(want, withParent))
		if err != nil {
			t.Fatalf("map path: %v", err)
		}
		rawBody, err := w.appendRecord(nil, got, withParent)
		if err != nil {
			t.Fatalf("raw path: %v", err)
		}
		wm, wkeys := members(t, mapBody)
		gm, gkeys := members(t, rawBody)
		if !reflect.DeepEqual(gm, wm) || len(gkeys) != len(wkeys) {
			t.Fatalf("fields %s, ext %s, parent %v:\nraw path %s\nmap path %s", fields, ext, withParent, rawBody, mapBody)
		}
	})
}

// The usual event takes the raw path, and its record is the fields as
// they came, the external ID and the parent reference after them.
func TestRawRecordHotPath(t *testing.T) {
	body := []byte(`{"v":1,"type":"account.created","source_org":"00D000000000001EAA","source_id":"001000000000001AAA",` +
		`"fields":{"Name":"Acme","ParentId":"001000000000002","AnnualRevenue":1.50}}`)
	ev, err := event.DecodeRaw(body)
	if err != nil || ev.Raw == nil {
		t.Fatalf("DecodeRaw: %v, raw %v", err, ev.Raw != nil)
	}
	w := &Worker{cfg: Config{ExternalIDField: "Source_Id__c"}}
	for _, tt := range []struct {
		withParent bool
		want       string
	}{
		{true, `"Name":"Acme","AnnualRevenue":1.50,"Source_Id__c":"001000000000001AAA","Parent":{"Source_Id__c":"001000000000002AAA"}`},
		{false, `"Name":"Acme","AnnualRevenue":1.50,"Source_Id__c":"001000000000001AAA"`},
	} {
		got, err := w.appendRecord(nil, ev, tt.withParent)
		if err != nil || string(got) != tt.want {
			t.Errorf("withParent %v: got %s, %v\nwant %s", tt.withParent, got, err, tt.want)
		}
	}
	recs, sameCall, err := w.rawRecords([]*group{
		{sourceID: ev.SourceID, ev: ev, op: opCreate},
		{sourceID: "001000000000002AAA", op: opLink, ev: event.Event{Type: event.TypeAccountLink, SourceID: "001000000000002AAA", ParentID: "001000000000003AAA"}},
	})
	if err != nil || len(recs) != 2 || !sameCall[0] || sameCall[1] {
		t.Fatalf("rawRecords: %q %v %v", recs, sameCall, err)
	}
	if want := `"Name":"Acme","AnnualRevenue":1.50,"Source_Id__c":"001000000000001AAA"`; string(recs[0]) != want {
		t.Errorf("child with its parent in the call: %s, want %s", recs[0], want)
	}
	if want := `"Source_Id__c":"001000000000002AAA","Parent":{"Source_Id__c":"001000000000003AAA"}`; string(recs[1]) != want {
		t.Errorf("link: %s, want %s", recs[1], want)
	}
}
