package event

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// slowDecode is Decode's encoding/json path without the validation.
func slowDecode(body []byte) (Event, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var e Event
	if err := dec.Decode(&e); err != nil || dec.More() {
		return Event{}, false
	}
	return e, true
}

var fastSeeds = []string{
	`{"v":1,"type":"account.created","source_org":"00D000000BENCH1","source_id":"001000000000001","created_at":"2026-12-01T15:00:00.123456Z","fields":{"Name":"Acme","NumberOfEmployees":12,"AnnualRevenue":-1.5e3,"Active":true,"Old":false,"Fax":null}}`,
	`{"v":1,"type":"account.link","source_org":"00D000000BENCH1","source_id":"001000000000001","parent_id":"001000000000002"}`,
	` { "v" : 1 , "fields" : { } } `,
	`{"v":1,"fields":{"Name":"é日本"}}`,
	`{"v":1,"fields":{"Name":"quote \" inside"}}`,
	`{"V":1}`, `{"v":01}`, `{"v":1.0}`, `{"v":1,"v":2}`, `{"v":1}x`, `{"v":1} {"v":2}`, `{"fields":{"a":{"b":1}}}`,
	`{"fields":{"a":[1]}}`, `{"fields":null}`, `{"created_at":"not a time"}`, `{"fields":{"n":01}}`, `{"fields":{"n":-}}`,
	`{"type":null}`, `{"unknown":1}`, `{}`, `{"v":1,}`, `{"fields":{"a":1,}}`, "{\"fields\":{\"a\":\"\xff\"}}",
}

// Whenever fastDecode takes a body, its event is encoding/json's.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := fastDecode(body, false)
		if !ok {
			return
		}
		slow, sok := slowDecode(body)
		if !sok {
			t.Fatalf("fastDecode took %q, encoding/json refuses it", body)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", body, fast, slow)
		}
	})
}

// The usual bodies take the fast path.
func TestFastDecodeTakesUsualBodies(t *testing.T) {
	for _, s := range fastSeeds[:4] {
		if _, ok := fastDecode([]byte(s), false); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
	ev := fastSeeds[0]
	e, err := Decode([]byte(ev))
	if err != nil || e.Fields["NumberOfEmployees"] != json.Number("12") || e.Fields["Fax"] != nil || len(e.SourceID) != 18 {
		t.Errorf("Decode: %+v, %v", e, err)
	}
}

func BenchmarkDecode(b *testing.B) {
	body := []byte(fastSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
