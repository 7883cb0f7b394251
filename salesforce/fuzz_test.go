package salesforce_test

import (
	"encoding/json"
	"strings"
	"testing"

	"orgsync/salesforce"
)

func FuzzParseLimitInfo(f *testing.F) {
	for _, s := range []string{
		"api-usage=25/5000",
		"api-usage=18/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
		"api-usage=1/750, api-bursts=1/750",
		"api-usage=/", "api-usage=-1/-1", "=;=,", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, ok := salesforce.ParseLimitInfo(s)
		if !ok {
			if u != (salesforce.APIUsage{}) {
				t.Fatalf("not ok but %+v", u)
			}
			return
		}
		if u.Used < 0 || u.Max <= 0 {
			t.Fatalf("ParseLimitInfo(%q) = %+v", s, u)
		}
		if r := u.Ratio(); r < 0 {
			t.Fatalf("Ratio %v", r)
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	for _, s := range []string{
		`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`,
		`[{"statusCode":"DUPLICATE_VALUE","message":"duplicate value found: Source_Id__c duplicates value on record with id: 001","fields":["Source_Id__c"]}]`,
		`[{"message":"Foreign key external ID: SRC-1 not found for field Source_Id__c in entity Account","errorCode":"INVALID_FIELD"}]`,
		`{"error":"invalid_grant","error_description":"authentication failure"}`,
		`["/services/data/v61.0/sobjects/Account/1","/services/data/v61.0/sobjects/Account/2"]`,
		`<html>down</html>`, `[`, `{`, `[null]`, `[1,2]`, `[{"fields":null}]`, "",
	} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := salesforce.ParseAPIError(status, body)
		if e == nil || e.StatusCode != status {
			t.Fatalf("ParseAPIError(%d, %q) = %+v", status, body, e)
		}
		if !strings.HasPrefix(e.Error(), "salesforce: ") {
			t.Fatalf("Error() = %q", e.Error())
		}
		if len(e.Errors) > 0 && e.Code != e.Errors[0].Code {
			t.Fatalf("Code %q is not the first item's %q", e.Code, e.Errors[0].Code)
		}
		if len(e.Raw) > 520 {
			t.Fatalf("Raw not clipped: %d bytes", len(e.Raw))
		}
		c := salesforce.Classify(e)
		if c < salesforce.Transient || c > salesforce.Permanent {
			t.Fatalf("Classify = %v", c)
		}
		_, _, _ = salesforce.MissingParent(e)
	})
}

func FuzzSaveResults(f *testing.F) {
	for _, s := range []string{
		`[{"id":"001FAKE000000002AAA","success":true,"errors":[]},{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [Name]","fields":["Name"]}]}]`,
		`[{"id":"001","success":true,"errors":[],"created":true}]`,
		`[{"id":null,"success":false,"errors":[{"errorCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access"}]}]`,
		`[{"errors":null}]`, `[{}]`, `[]`, `null`, `[{"errors":[null]}]`,
	} {
		f.Add([]byte(s), "Source_Id__c")
	}
	f.Fuzz(func(t *testing.T, body []byte, extField string) {
		var results []salesforce.SaveResult
		if err := json.Unmarshal(body, &results); err != nil {
			return
		}
		for _, r := range results {
			e := r.Err()
			if r.Success && len(r.Errors) == 0 && e != nil {
				t.Fatalf("success with error %v", e)
			}
			if e == nil {
				continue
			}
			_ = e.Error()
			c := e.Class(extField)
			if c < salesforce.Transient || c > salesforce.Permanent {
				t.Fatalf("Class = %v", c)
			}
			_, _, _ = salesforce.MissingParent(e)
		}
	})
}
