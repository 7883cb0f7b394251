package main

import (
	"bytes"
	"testing"

	"orgsync/internal/contracttest"
)

// docs/contract.md documents every flag of every worker command, with the
// defaults -h shows, and nothing else; every command `worker -h` lists has
// documentation (commands other pages document are only checked for that);
// the README's synopsis of each command shows every flag too.
func TestContractDocumentsEveryFlag(t *testing.T) {
	contracttest.CheckCommands(t, usage, "worker", 5, func(args []string) (string, int) {
		var out, errb bytes.Buffer
		code := run(t.Context(), args, noEnv, nil, &out, &errb)
		return errb.String(), code
	})
}
