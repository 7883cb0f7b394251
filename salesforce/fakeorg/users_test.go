package fakeorg_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

// Every write moves SystemModstamp and sets LastModifiedById to the user
// making it: the integration user for API calls (create, update, delete,
// undelete), the given user for UpdateAccountAs.
func TestWritesStampSystemModstampAndLastModifiedBy(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	person := salesforce.ID18("005000000000777")
	id, err := f.org.InsertAccount(fakeorg.Record{"Name": "stamped"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, user string) {
		t.Helper()
		q := url.Values{"q": {"SELECT Id, SystemModstamp, LastModifiedById FROM Account WHERE Id = '" + id + "'"}}
		r := f.do(http.MethodGet, B+"/queryAll?"+q.Encode(), nil)
		var page struct {
			Records []map[string]any `json:"records"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK || len(page.Records) != 1 {
			t.Fatalf("%s: queryAll: %d %s", step, r.status, r.body)
		}
		rec := page.Records[0]
		if want := f.clock.Now().Format("2006-01-02T15:04:05.000+0000"); rec["SystemModstamp"] != want {
			t.Errorf("%s: SystemModstamp %v, want %v", step, rec["SystemModstamp"], want)
		}
		if got := rec["LastModifiedById"]; got != user {
			t.Errorf("%s: LastModifiedById %v, want %s", step, got, user)
		}
	}
	check("insert", f.org.UserID())

	f.clock.Advance(time.Second)
	if err := f.org.UpdateAccountAs(person, id, fakeorg.Record{"Phone": "555-0100"}); err != nil {
		t.Fatal(err)
	}
	check("update as a person", person)

	f.clock.Advance(time.Second)
	if r := f.do(http.MethodPatch, B+"/sobjects/Account/"+id, map[string]any{"Phone": "555-0101"}); r.status != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	check("REST update", f.org.UserID())

	f.clock.Advance(time.Second)
	if err := f.org.UpdateAccountAs(person, id, fakeorg.Record{"Phone": "555-0102"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if r := f.do(http.MethodDelete, B+"/sobjects/Account/"+id, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	check("delete", f.org.UserID())

	if err := f.org.UpdateAccountAs(person, id, fakeorg.Record{"Phone": "1"}); !isCode(err, "ENTITY_IS_DELETED") {
		t.Errorf("update of a deleted account: %v, want ENTITY_IS_DELETED", err)
	}
	f.clock.Advance(time.Second)
	if res := f.org.Undelete([]string{id}, ""); !res[0].Success {
		t.Fatalf("undelete: %+v", res)
	}
	check("undelete", f.org.UserID())

	if err := f.org.UpdateAccountAs("001000000000001", id, fakeorg.Record{"Phone": "2"}); !isCode(err, "MALFORMED_ID") {
		t.Errorf("a user ID that is not a User's: %v, want MALFORMED_ID", err)
	}
}

func isCode(err error, code string) bool {
	var e *fakeorg.Error
	return errors.As(err, &e) && e.Code == code
}
