package salesforce

import (
	"encoding/json"
	"reflect"
	"testing"
)

var resultSeeds = []string{
	`[{"id":"001000000000001AAA","success":true,"errors":[],"created":true},{"id":"001000000000002AAA","success":true,"errors":[],"created":false}]`,
	` [ { "id" : null , "success" : false , "created" : false } ] `,
	`[]`, `[{}]`,
	`[{"id":"x","success":false,"errors":[{"statusCode":"DUPLICATE_VALUE","message":"m","fields":[]}]}]`,
	`[{"id":"a\"b"}]`, `[{"success":truex}]`, `[{"success":true,"success":false}]`, `[{"Id":"x"}]`, `[{"id":1}]`,
	`[{"id":"x"},]`, `[{"id":"x"}] x`, `[{"errors":null}]`, "[{\"id\":\"\xff\"}]", `[{"id":"x"}`, `{"id":"x"}`,
}

// Whenever fastSaveResults takes an answer, its results are encoding/json's.
func FuzzFastSaveResults(f *testing.F) {
	for _, s := range resultSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastSaveResults(b)
		if !ok {
			return
		}
		var slow []SaveResult
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fastSaveResults took %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", b, fast, slow)
		}
	})
}

func TestFastSaveResultsTakesUsualAnswers(t *testing.T) {
	for _, s := range resultSeeds[:4] {
		if _, ok := fastSaveResults([]byte(s)); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
	if _, ok := fastSaveResults([]byte(resultSeeds[4])); ok {
		t.Errorf("fast path took a failed record's errors")
	}
}
