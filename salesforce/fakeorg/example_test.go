package fakeorg_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"orgsync/salesforce/fakeorg"
)

// A source org seeded directly, served over HTTP with a static token.
func ExampleNew() {
	org, err := fakeorg.New(fakeorg.Config{OrgID: "00D000000000001", LockRate: 0.01, Seed: 7})
	if err != nil {
		panic(err)
	}
	id, err := org.InsertAccount(fakeorg.Record{"Name": "Acme", "Industry": "Energy"}, time.Time{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(org)
	defer srv.Close()
	token := org.IssueAccessToken() // send as "Authorization: Bearer <token>"
	_ = token
	fmt.Println(id[:3], len(id), org.Stats().Records["Account"])
	// Output: 001 18 1
}
