package fakeorg_test

import (
	"net/http"
	"testing"

	"orgsync/salesforce/fakeorg"
)

// TestBlankID pins that an Id key holding "" or null is no Id on every
// write path: go-salesforce sends "Id":"" on every collections upsert of a
// struct with an Id field, and the recorded collections upsert
// (testdata/recorded/coll_upsert_by_id.json) sends "Id":null for records
// to create. A non-blank Id is refused on create as before.
func TestBlankID(t *testing.T) {
	for _, blank := range []any{"", nil} {
		name := "empty string"
		if blank == nil {
			name = "null"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, fakeorg.Config{})
			// create, single and collections
			f.create(map[string]any{"Name": "single", "Id": blank})
			var rs []saveResult
			f.do(http.MethodPost, B+"/composite/sobjects", collection(false, map[string]any{"Name": "coll", "Id": blank})).
				want(t, http.StatusOK).decode(t, &rs)
			if len(rs) != 1 || !rs[0].Success {
				t.Errorf("collections create: %+v", rs)
			}
			// single upsert: created, then updated
			path := B + "/sobjects/Account/Source_Id__c/BLANK-1"
			var sr saveResult
			f.do(http.MethodPatch, path, map[string]any{"Name": "up", "Id": blank}).want(t, http.StatusCreated).decode(t, &sr)
			if sr.Created == nil || !*sr.Created {
				t.Errorf("single upsert create: %+v", sr)
			}
			f.do(http.MethodPatch, path, map[string]any{"Name": "up 2", "Id": blank}).want(t, http.StatusOK).decode(t, &sr)
			if sr.Created == nil || *sr.Created {
				t.Errorf("single upsert update: %+v", sr)
			}
			// collections upsert: one new, one existing
			f.do(http.MethodPatch, B+"/composite/sobjects/Account/Source_Id__c", collection(false,
				map[string]any{"Name": "new", "Source_Id__c": "BLANK-2", "Id": blank},
				map[string]any{"Name": "old", "Source_Id__c": "BLANK-1", "Id": blank},
			)).want(t, http.StatusOK).decode(t, &rs)
			if len(rs) != 2 || !rs[0].Success || !*rs[0].Created || !rs[1].Success || *rs[1].Created || rs[1].ID != sr.ID {
				t.Errorf("collections upsert: %+v", rs)
			}
			// collections update: a blank Id is a missing Id
			f.do(http.MethodPatch, B+"/composite/sobjects", collection(false, map[string]any{"Name": "x", "Id": blank})).
				want(t, http.StatusOK).decode(t, &rs)
			if len(rs) != 1 || rs[0].code() != "MISSING_ARGUMENT" || rs[0].Errors[0].Message != "Id not specified in an update call" {
				t.Errorf("collections update: %+v", rs)
			}
			if got := len(f.org.Accounts()); got != 4 {
				t.Errorf("%d accounts, want 4", got)
			}
		})
	}
	f := newFixture(t, fakeorg.Config{})
	id := f.create(map[string]any{"Name": "A"})
	e := f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": "B", "Id": id}).wantError(t, http.StatusBadRequest, "INVALID_FIELD")
	if e.Message != "The Id field should not be specified in the sobject data." {
		t.Errorf("create with an Id: %q", e.Message)
	}
	var rs []saveResult
	f.do(http.MethodPatch, B+"/composite/sobjects/Account/Source_Id__c", collection(false,
		map[string]any{"Name": "B", "Source_Id__c": "NEW", "Id": id})).want(t, http.StatusOK).decode(t, &rs)
	if len(rs) != 1 || rs[0].code() != "INVALID_FIELD" || rs[0].Errors[0].Message != "cannot specify Id in an insert call" {
		t.Errorf("collections upsert creating with an Id: %+v", rs)
	}
}

// unchanged as a wanted value means "as before the update".
type unchanged struct{}

// TestBlankVersusAbsent pins how the fake treats a key that is present
// but blank against one that is absent, field by field.
func TestBlankVersusAbsent(t *testing.T) {
	type rec = map[string]any
	tests := []struct {
		name   string
		update rec    // PATCH body applied to a record holding base
		field  string // field to check afterwards
		want   any    // its stored value (nil: null), unless code is set
		code   string // the error the update gets instead
	}{
		{name: "text absent keeps", update: rec{"Description": "d"}, field: "Phone", want: unchanged{}},
		{name: "text null clears", update: rec{"Phone": nil}, field: "Phone", want: nil},
		{name: "text empty string clears", update: rec{"Phone": ""}, field: "Phone", want: nil},
		{name: "number null clears", update: rec{"NumberOfEmployees": nil}, field: "NumberOfEmployees", want: nil},
		// Unverified against Salesforce: an empty string is not a number.
		{name: "number empty string refused", update: rec{"NumberOfEmployees": ""}, code: "JSON_PARSER_ERROR"},
		{name: "currency empty string refused", update: rec{"AnnualRevenue": ""}, code: "JSON_PARSER_ERROR"},
		{name: "reference empty string clears", update: rec{"ParentId": ""}, field: "ParentId", want: nil},
		{name: "reference null clears", update: rec{"ParentId": nil}, field: "ParentId", want: nil},
		{name: "external id empty string clears", update: rec{"Source_Id__c": ""}, field: "Source_Id__c", want: nil},
		{name: "name null is missing", update: rec{"Name": nil}, code: "REQUIRED_FIELD_MISSING"},
		{name: "name empty string is missing", update: rec{"Name": ""}, code: "REQUIRED_FIELD_MISSING"},
		{name: "owner null is missing", update: rec{"OwnerId": nil}, code: "REQUIRED_FIELD_MISSING"},
		{name: "owner empty string is missing", update: rec{"OwnerId": ""}, code: "REQUIRED_FIELD_MISSING"},
		{name: "id empty string is no id", update: rec{"Id": "", "Description": "d"}, field: "Description", want: "d"},
		// Unverified against Salesforce: a null relationship is an absent one
		// (it keeps ParentId), as clients that map structs send it.
		{name: "parent relationship null keeps", update: rec{"Parent": nil, "Description": "d"}, field: "ParentId", want: unchanged{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fakeorg.Config{})
			parent := f.create(rec{"Name": "P"})
			id := f.create(rec{"Name": "A", "Phone": "555", "NumberOfEmployees": 5, "ParentId": parent, "Source_Id__c": "K"})
			before, _ := f.org.Account(id)
			res := f.do(http.MethodPatch, B+"/sobjects/Account/"+id, tt.update)
			if tt.code != "" {
				res.wantError(t, http.StatusBadRequest, tt.code)
				return
			}
			res.want(t, http.StatusNoContent)
			acc, _ := f.org.Account(id)
			want := tt.want
			if want == (unchanged{}) {
				want = before[tt.field]
			}
			if got := acc[tt.field]; got != want || got == nil && tt.want == (unchanged{}) {
				t.Errorf("%s = %#v, want %#v", tt.field, got, tt.want)
			}
		})
	}

	// A blank external ID value in a collections upsert is a missing one.
	f := newFixture(t, fakeorg.Config{})
	for _, v := range []any{"", nil} {
		var rs []saveResult
		f.do(http.MethodPatch, B+"/composite/sobjects/Account/Source_Id__c", collection(false, rec{"Name": "x", "Source_Id__c": v}, rec{"Name": "y"})).
			want(t, http.StatusOK).decode(t, &rs)
		for i, r := range rs {
			if r.code() != "MISSING_ARGUMENT" || r.Errors[0].Message != "Source_Id__c not specified" {
				t.Errorf("external id %#v, record %d: %+v", v, i, r)
			}
		}
	}
}
