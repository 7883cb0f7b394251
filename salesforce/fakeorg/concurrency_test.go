package fakeorg_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"orgsync/salesforce/fakeorg"
)

// TestConcurrentCreates hammers every write path at once; run it with -race.
func TestConcurrentCreates(t *testing.T) {
	f := newFixture(t, fakeorg.Config{LockRate: 0.1})
	const workers, each = 8, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	errs := make(chan error, workers*each*4)
	add := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if ids[id] {
			errs <- fmt.Errorf("duplicate id %s", id)
		}
		ids[id] = true
	}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("W%d-%d", w, i)
				var rs []saveResult
				res := f.do(http.MethodPatch, B+"/composite/sobjects/Account/Source_Id__c",
					collection(false, map[string]any{"Name": key, "Source_Id__c": key}, map[string]any{"Name": key + "b", "Source_Id__c": key + "b"}))
				if err := json.Unmarshal(res.body, &rs); err != nil {
					errs <- fmt.Errorf("upsert %s: %d %s", key, res.status, res.body)
				}
				for _, r := range rs {
					if r.Success {
						add(r.ID)
					} else if r.code() != "UNABLE_TO_LOCK_ROW" {
						errs <- fmt.Errorf("upsert %s: %+v", key, r)
					}
				}
				var sr saveResult
				res = f.do(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": key})
				if res.status == http.StatusCreated && json.Unmarshal(res.body, &sr) == nil {
					add(sr.ID)
				} else if res.status != http.StatusBadRequest {
					errs <- fmt.Errorf("create %s: %d %s", key, res.status, res.body)
				}
				id, err := f.org.InsertAccount(fakeorg.Record{"Name": key}, f.clock.Now())
				if err != nil {
					errs <- err
				}
				add(id)
				f.do(http.MethodGet, B+"/query?q=SELECT+COUNT()+FROM+Account", nil)
				_ = f.org.Stats()
				_ = f.org.Accounts()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(f.org.Accounts()); got != len(ids) {
		t.Errorf("accounts: got %d, want %d", got, len(ids))
	}
}

// TestTwoOrgsMintDistinctIDs checks that fakes with different org IDs never
// share record IDs.
func TestTwoOrgsMintDistinctIDs(t *testing.T) {
	a := newFixture(t, fakeorg.Config{OrgID: "00D000000000001"})
	b := newFixture(t, fakeorg.Config{OrgID: "00D000000000002"})
	c := newFixture(t, fakeorg.Config{})
	seen := map[string]string{}
	for _, f := range []*fixture{a, b, c} {
		for range 5 {
			id := f.create(map[string]any{"Name": "x"})
			if other, dup := seen[id]; dup {
				t.Errorf("id %s minted by %s and %s", id, other, f.org.OrgID())
			}
			seen[id] = f.org.OrgID()
		}
	}
}
