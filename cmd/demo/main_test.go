package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"-accounts", "120", "-workers", "2", "-latency", "1ms"}, noEnv, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "all 120 source Accounts are in the target exactly once") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-accounts", "0"}, {"-fail-rate", "1"}, {"-workers", "x"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), args, noEnv, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

func noEnv(string) string { return "" }

func TestHelpAndEnvironment(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, noEnv, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-accounts") {
		t.Errorf("-h: exit %d, stderr %q; want 0 and the flags", code, errb.String())
	}
	errb.Reset()
	env := func(k string) string {
		if k == "ORGSYNC_ACCOUNTS" {
			return "many"
		}
		return ""
	}
	if code := run(t.Context(), nil, env, &out, &errb); code != 2 || !strings.Contains(errb.String(), "ORGSYNC_ACCOUNTS") {
		t.Errorf("ORGSYNC_ACCOUNTS=many: exit %d, stderr %q; want 2 naming the variable", code, errb.String())
	}
}
