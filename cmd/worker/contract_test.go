package main

import (
	"bytes"
	"strings"
	"testing"

	"orgsync/internal/contracttest"
)

// docs/contract.md documents every flag of every worker command, with the
// defaults -h shows, and nothing else; every command `worker -h` lists has
// documentation (commands other pages document are only checked for that);
// the README's synopsis of each command shows every flag too.
func TestContractDocumentsEveryFlag(t *testing.T) {
	contract, all, readme := contracttest.Contract(t), contracttest.AllDocs(t), contracttest.README(t)
	cmds := contracttest.Commands(usage, "worker")
	if len(cmds) < 5 {
		t.Fatalf("usage lists %d commands: %v", len(cmds), cmds)
	}
	for _, cmd := range cmds {
		t.Run(cmd, func(t *testing.T) {
			if !strings.Contains(all, "`"+cmd+"`") {
				t.Fatalf("no page in docs/ documents `%s`", cmd)
			}
			if !strings.Contains(contract, "### `"+cmd+"`\n") {
				return // documented on its own page
			}
			var out, errb bytes.Buffer
			args := append(strings.Fields(cmd)[1:], "-h")
			if code := run(t.Context(), args, noEnv, nil, &out, &errb); code != 0 {
				t.Fatalf("%s -h: exit %d", cmd, code)
			}
			contracttest.Check(t, contract, cmd, errb.String())
			contracttest.CheckREADME(t, readme, cmd, errb.String())
		})
	}
}
