package main

import (
	"bytes"
	"testing"

	"orgsync/internal/contracttest"
)

// docs/contract.md documents every demo flag with the default -h shows.
func TestContractDocumentsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, &out, &errb); code != 0 {
		t.Fatalf("demo -h: exit %d", code)
	}
	contracttest.Check(t, contracttest.Contract(t), "demo", errb.String())
}
