// Command gosalesforce drives cmd/fakeorg with an unmodified
// github.com/k-capehart/go-salesforce/v3, the way a new user would, and
// checks every answer.
//
//	go run . http://127.0.0.1:PORT        (or FAKEORG_URL=... go run .)
//
// Each step prints PASS or FAIL; the exit code is 1 if any step failed.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	salesforce "github.com/k-capehart/go-salesforce/v3"
)

// Account is the record shape used for DML and queries; go-salesforce maps
// it with the "salesforce" struct tag.
type Account struct {
	Id           string `salesforce:"Id,omitempty"`
	Name         string `salesforce:"Name,omitempty"`
	Description  string `salesforce:"Description,omitempty"`
	Source_Id__c string `salesforce:"Source_Id__c,omitempty"`
}

// PlainAccount is the struct a new user writes without omitempty:
// go-salesforce then sends "Id":"" for a record that has no ID yet, on every
// collections upsert (Salesforce treats a blank Id as none).
type PlainAccount struct {
	Id           string `salesforce:"Id"`
	Name         string `salesforce:"Name"`
	Source_Id__c string `salesforce:"Source_Id__c"`
}

const extField = "Source_Id__c"

var (
	base     string
	failures int
	results  [][2]string
)

func step(name string, fn func() (string, error)) {
	detail, err := func() (d string, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return fn()
	}()
	if err != nil {
		failures++
		results = append(results, [2]string{name, "FAIL"})
		fmt.Printf("FAIL  %s: %v\n", name, err)
		return
	}
	results = append(results, [2]string{name, "PASS"})
	if detail != "" {
		fmt.Printf("PASS  %s  (%s)\n", name, detail)
	} else {
		fmt.Printf("PASS  %s\n", name)
	}
}

func skip(name, why string) {
	results = append(results, [2]string{name, "SKIP"})
	fmt.Printf("SKIP  %s: %s\n", name, why)
}

func check(cond bool, format string, args ...any) error {
	if !cond {
		return fmt.Errorf("assertion failed: "+format, args...)
	}
	return nil
}

func isAccountID(id string) bool { return len(id) == 18 && strings.HasPrefix(id, "001") }

// admin calls the fake's loopback tooling API (not Salesforce).
func admin(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s -> %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func routeCount(route string) int {
	var st struct {
		ByRoute map[string]int `json:"by_route"`
	}
	if err := admin("GET", "/_fake/stats", nil, &st); err != nil {
		return -1
	}
	return st.ByRoute[route]
}

func clientVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/k-capehart/go-salesforce/v3" {
				return d.Version
			}
		}
	}
	return "(unknown)"
}

// getJSON issues a raw REST GET through the client's DoRequest (uri is
// relative to /services/data/vNN.N) and decodes the JSON answer.
func getJSON(sf *salesforce.Salesforce, uri string, out any) error {
	res, err := sf.DoRequest(http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s -> %d %s", uri, res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("GET %s: Content-Type %q", uri, ct)
	}
	return json.Unmarshal(b, out)
}

func main() {
	if len(os.Args) > 1 {
		base = os.Args[1]
	} else {
		base = os.Getenv("FAKEORG_URL")
	}
	base = strings.TrimRight(base, "/")
	if base == "" {
		fmt.Fprintln(os.Stderr, "usage: go run . BASE_URL   (or set FAKEORG_URL)")
		os.Exit(2)
	}
	tag := fmt.Sprintf("go%s%d", time.Now().Format("150405"), rand.IntN(10000))
	fmt.Printf("go-salesforce %s against %s, tag %s\n", clientVersion(), base, tag)

	var sf *salesforce.Salesforce
	step("Init: client credentials", func() (string, error) {
		var err error
		sf, err = salesforce.Init(salesforce.Creds{Domain: base, ConsumerKey: "demo", ConsumerSecret: "demo-secret"})
		if err != nil {
			return "", err
		}
		if err := check(sf.GetAuthFlow() == salesforce.AuthFlowClientCredentials, "auth flow %v", sf.GetAuthFlow()); err != nil {
			return "", err
		}
		if err := check(sf.GetAccessToken() != "", "access token set"); err != nil {
			return "", err
		}
		return fmt.Sprintf("instance %s, API %s", sf.GetInstanceUrl(), sf.GetAPIVersion()), check(strings.TrimRight(sf.GetInstanceUrl(), "/") == base, "instance url %q", sf.GetInstanceUrl())
	})
	if sf == nil {
		fmt.Println("FAIL  cannot continue without a session")
		os.Exit(1)
	}

	// go-salesforce v3 only takes the username-password flow when
	// Creds.SecurityToken is non-empty (it sends Password+SecurityToken);
	// without one Init silently falls back to client credentials. The fake
	// has no security token, so this flow is not exercised (client quirk).
	skip("Init: username-password", "go-salesforce requires Creds.SecurityToken; the fake has none")

	step("Init: access token (validates with GET /limits)", func() (string, error) {
		sf3, err := salesforce.Init(salesforce.Creds{Domain: base, AccessToken: sf.GetAccessToken()},
			salesforce.WithValidateAuthentication(true))
		if err != nil {
			return "", err
		}
		return "", check(sf3.GetAuthFlow() == salesforce.AuthFlowAccessToken, "auth flow %v", sf3.GetAuthFlow())
	})

	var oneID string
	step("InsertOne", func() (string, error) {
		r, err := sf.InsertOne("Account", Account{Name: tag + " one"})
		if err != nil {
			return "", err
		}
		oneID = r.Id
		return r.Id, check(r.Success && isAccountID(r.Id), "result %+v", r)
	})

	step("InsertOne: validation error surfaces (no Name)", func() (string, error) {
		_, err := sf.InsertOne("Account", Account{Description: "no name"})
		if err == nil {
			return "", errors.New("insert without Name succeeded")
		}
		return err.Error(), check(strings.Contains(err.Error(), "REQUIRED_FIELD_MISSING"), "error %v", err)
	})

	var manyIDs []string
	step("InsertCollection", func() (string, error) {
		rs, err := sf.InsertCollection("Account", []Account{{Name: tag + " many-a"}, {Name: tag + " many-b"}}, 200)
		if err != nil {
			return "", err
		}
		if err := check(!rs.HasSalesforceErrors && len(rs.Results) == 2, "results %+v", rs); err != nil {
			return "", err
		}
		for _, r := range rs.Results {
			if err := check(r.Success && isAccountID(r.Id), "result %+v", r); err != nil {
				return "", err
			}
			manyIDs = append(manyIDs, r.Id)
		}
		return "", nil
	})

	step("UpdateOne", func() (string, error) {
		if err := sf.UpdateOne("Account", Account{Id: oneID, Name: tag + " one-upd", Description: "updated"}); err != nil {
			return "", err
		}
		var got []Account
		if err := sf.Query("SELECT Id, Name, Description FROM Account WHERE Id = '"+oneID+"'", &got); err != nil {
			return "", err
		}
		return "", check(len(got) == 1 && got[0].Name == tag+" one-upd" && got[0].Description == "updated", "after update %+v", got)
	})

	step("UpdateCollection", func() (string, error) {
		rs, err := sf.UpdateCollection("Account", []Account{{Id: manyIDs[0], Name: tag + " many-upd-0"}, {Id: manyIDs[1], Name: tag + " many-upd-1"}}, 200)
		if err != nil {
			return "", err
		}
		return "", check(!rs.HasSalesforceErrors && len(rs.Results) == 2, "results %+v", rs)
	})

	var upID string
	step("UpsertOne by "+extField+": insert then update", func() (string, error) {
		key := tag + "-u1"
		r1, err := sf.UpsertOne("Account", extField, Account{Name: tag + " up-one", Source_Id__c: key})
		if err != nil {
			return "", fmt.Errorf("first upsert: %w", err)
		}
		if err := check(r1.Success && isAccountID(r1.Id), "first result %+v", r1); err != nil {
			return "", err
		}
		r2, err := sf.UpsertOne("Account", extField, Account{Name: tag + " up-one-2", Source_Id__c: key})
		if err != nil {
			return "", fmt.Errorf("second upsert: %w", err)
		}
		if err := check(r2.Success && r2.Id == r1.Id, "second result %+v (first id %s)", r2, r1.Id); err != nil {
			return "", err
		}
		upID = r1.Id
		var got []Account
		if err := sf.Query("SELECT Id, Name, Source_Id__c FROM Account WHERE Source_Id__c = '"+key+"'", &got); err != nil {
			return "", err
		}
		return "", check(len(got) == 1 && got[0].Id == r1.Id && got[0].Name == tag+" up-one-2", "after upsert %+v", got)
	})

	step("UpsertCollection by "+extField, func() (string, error) {
		rs, err := sf.UpsertCollection("Account", extField, []Account{
			{Name: tag + " up-many-new", Source_Id__c: tag + "-u2"},
			{Name: tag + " up-one-3", Source_Id__c: tag + "-u1"},
		}, 200)
		if err != nil {
			return "", err
		}
		if err := check(!rs.HasSalesforceErrors && len(rs.Results) == 2, "results %+v", rs); err != nil {
			return "", err
		}
		return "", check(rs.Results[1].Id == upID && isAccountID(rs.Results[0].Id), "ids %+v", rs.Results)
	})

	step("UpsertCollection of a struct without omitempty (sends \"Id\":\"\")", func() (string, error) {
		newKey := tag + "-u3"
		rs, err := sf.UpsertCollection("Account", extField, []PlainAccount{
			// Names that the later Name LIKE 'tag%' queries do not count.
			{Name: "plain " + tag, Source_Id__c: newKey},
			{Name: tag + " up-one-3", Source_Id__c: tag + "-u1"},
		}, 200)
		if err != nil {
			return "", err
		}
		if err := check(!rs.HasSalesforceErrors && len(rs.Results) == 2, "results %+v", rs); err != nil {
			return "", err
		}
		if err := check(isAccountID(rs.Results[0].Id) && rs.Results[1].Id == upID, "ids %+v", rs.Results); err != nil {
			return "", err
		}
		var got []Account
		if err := sf.Query("SELECT Id, Name FROM Account WHERE Source_Id__c = '"+newKey+"'", &got); err != nil {
			return "", err
		}
		return "", check(len(got) == 1 && got[0].Id == rs.Results[0].Id && got[0].Name == "plain "+tag, "created record %+v", got)
	})

	step("DeleteOne", func() (string, error) {
		if err := sf.DeleteOne("Account", Account{Id: oneID}); err != nil {
			return "", err
		}
		var got []Account
		if err := sf.Query("SELECT Id FROM Account WHERE Id = '"+oneID+"'", &got); err != nil {
			return "", err
		}
		return "", check(len(got) == 0, "deleted record still queryable: %+v", got)
	})

	step("DeleteCollection", func() (string, error) {
		rs, err := sf.DeleteCollection("Account", []Account{{Id: manyIDs[0]}, {Id: manyIDs[1]}}, 200)
		if err != nil {
			return "", err
		}
		return "", check(!rs.HasSalesforceErrors && len(rs.Results) == 2, "results %+v", rs)
	})

	step("Query into []Account (WHERE/ORDER BY)", func() (string, error) {
		var got []Account
		if err := sf.Query("SELECT Id, Name, Source_Id__c FROM Account WHERE Name LIKE '"+tag+"%' ORDER BY Name", &got); err != nil {
			return "", err
		}
		return "", check(len(got) == 2 && got[0].Name == tag+" up-many-new" && got[1].Source_Id__c == tag+"-u1", "records %+v", got)
	})

	step("COUNT() via DoRequest GET /query/?q= (Query exposes no totalSize)", func() (string, error) {
		var page struct {
			TotalSize int   `json:"totalSize"`
			Done      bool  `json:"done"`
			Records   []any `json:"records"`
		}
		q := url.QueryEscape("SELECT COUNT() FROM Account WHERE Name LIKE '" + tag + "%'")
		if err := getJSON(sf, "/query/?q="+q, &page); err != nil {
			return "", err
		}
		return "", check(page.TotalSize == 2 && page.Done && len(page.Records) == 0, "page %+v", page)
	})

	step("Query paging: page_size 3, 10 rows", func() (string, error) {
		var cfg struct {
			PageSize int `json:"page_size"`
		}
		if err := admin("GET", "/_fake/config", nil, &cfg); err != nil {
			return "", err
		}
		recs := make([]Account, 10)
		for i := range recs {
			recs[i].Name = fmt.Sprintf("%s page-%02d", tag, i)
		}
		if rs, err := sf.InsertCollection("Account", recs, 200); err != nil || rs.HasSalesforceErrors {
			return "", fmt.Errorf("insert: %v %+v", err, rs)
		}
		if err := admin("PUT", "/_fake/config", map[string]int{"page_size": 3}, nil); err != nil {
			return "", err
		}
		defer admin("PUT", "/_fake/config", map[string]int{"page_size": cfg.PageSize}, nil)
		before := routeCount("GET /query/{locator}")
		var got []Account
		if err := sf.Query("SELECT Id, Name FROM Account WHERE Name LIKE '"+tag+" page-%' ORDER BY Name", &got); err != nil {
			return "", err
		}
		more := routeCount("GET /query/{locator}") - before
		if err := check(len(got) == 10 && got[9].Name == tag+" page-09", "records %d %+v", len(got), got); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d locator calls, restored page_size %d", more, cfg.PageSize), check(more == 3, "locator calls %d, want 3", more)
	})

	step("Query paging: 2,050 rows at default page size (InsertCollection batches of 200)", func() (string, error) {
		recs := make([]Account, 2050)
		for i := range recs {
			recs[i].Name = fmt.Sprintf("%s bulk-%04d", tag, i)
		}
		rs, err := sf.InsertCollection("Account", recs, 200)
		if err != nil || rs.HasSalesforceErrors || len(rs.Results) != 2050 {
			return "", fmt.Errorf("insert: %v (errors %v, %d results)", err, rs.HasSalesforceErrors, len(rs.Results))
		}
		var got []Account
		if err := sf.Query("SELECT Id, Name FROM Account WHERE Name LIKE '"+tag+" bulk-%'", &got); err != nil {
			return "", err
		}
		seen := map[string]bool{}
		for _, a := range got {
			seen[a.Id] = true
		}
		return "", check(len(got) == 2050 && len(seen) == 2050, "got %d records, %d distinct", len(got), len(seen))
	})

	step("gzip both ways (WithCompressionHeaders): InsertOne + Query", func() (string, error) {
		sfz, err := salesforce.Init(salesforce.Creds{Domain: base, ConsumerKey: "demo", ConsumerSecret: "demo-secret"},
			salesforce.WithCompressionHeaders(true))
		if err != nil {
			return "", err
		}
		r, err := sfz.InsertOne("Account", Account{Name: tag + " gz"})
		if err != nil {
			return "", err
		}
		var got []Account
		if err := sfz.Query("SELECT Id, Name FROM Account WHERE Id = '"+r.Id+"'", &got); err != nil {
			return "", err
		}
		return "", check(len(got) == 1 && got[0].Name == tag+" gz", "records %+v", got)
	})

	step("limits via DoRequest GET /limits", func() (string, error) {
		var l map[string]struct {
			Max       int `json:"Max"`
			Remaining int `json:"Remaining"`
		}
		if err := getJSON(sf, "/limits", &l); err != nil {
			return "", err
		}
		d, ok := l["DailyApiRequests"]
		if err := check(ok && d.Max > 0 && d.Remaining <= d.Max, "DailyApiRequests %+v", d); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d/%d remaining", d.Remaining, d.Max), nil
	})

	step("describe via DoRequest GET /sobjects/Account/describe", func() (string, error) {
		var d struct {
			Name   string `json:"name"`
			Fields []struct {
				Name       string `json:"name"`
				ExternalID bool   `json:"externalId"`
			} `json:"fields"`
		}
		if err := getJSON(sf, "/sobjects/Account/describe", &d); err != nil {
			return "", err
		}
		for _, f := range d.Fields {
			if f.Name == extField {
				return "", check(d.Name == "Account" && f.ExternalID, "describe name %q, %s externalId %v", d.Name, extField, f.ExternalID)
			}
		}
		return "", fmt.Errorf("%s not in describe", extField)
	})

	passed := 0
	for _, r := range results {
		if r[1] == "PASS" {
			passed++
		}
	}
	fmt.Printf("go-salesforce %s (API %s): %d/%d passed, %d failed\n", clientVersion(), sf.GetAPIVersion(), passed, len(results), failures)
	if failures > 0 {
		os.Exit(1)
	}
}
