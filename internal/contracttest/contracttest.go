// Package contracttest holds the test helpers that keep docs/contract.md
// true: they compare a command's -h output with the synopsis and the flag
// tables documented for it. Only tests import it.
package contracttest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Flag is one flag of a command: its name and its default as -h shows it
// ("" when -h shows none, i.e. the zero value).
type Flag struct {
	Name    string
	Default string
}

var defaultRE = regexp.MustCompile(`\(default (.+)\)$`)

// ParseHelp reads the flags of flag.PrintDefaults output.
func ParseHelp(help string) map[string]Flag {
	flags := map[string]Flag{}
	var cur string
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(line, "  -") {
			fields := strings.Fields(line)
			cur = strings.TrimPrefix(fields[0], "-")
			flags[cur] = Flag{Name: cur}
			// A bool flag with a short usage prints it on the same line.
			line = strings.Join(fields[1:], " ")
		}
		if cur == "" {
			continue
		}
		if m := defaultRE.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			d := m[1]
			if u, err := strconv.Unquote(d); err == nil {
				d = u
			}
			flags[cur] = Flag{Name: cur, Default: d}
		}
	}
	return flags
}

// Synopsis reads the synopsis block of command in the contract: the first
// fenced block after the heading "### `command`". It maps each flag to the
// value shown after it ("" for none).
func Synopsis(t *testing.T, contract, command string) map[string]string {
	t.Helper()
	heading := "### `" + command + "`\n"
	i := strings.Index(contract, heading)
	if i < 0 {
		t.Fatalf("docs/contract.md has no section %q", strings.TrimSpace(heading))
	}
	rest := contract[i+len(heading):]
	start := strings.Index(rest, "```")
	if start < 0 {
		t.Fatalf("section %q has no synopsis block", command)
	}
	rest = rest[start+3:]
	rest = rest[strings.Index(rest, "\n")+1:]
	end := strings.Index(rest, "```")
	if end < 0 {
		t.Fatalf("section %q: unterminated synopsis block", command)
	}
	tokens := strings.Fields(rest[:end])
	flags := map[string]string{}
	for k := 0; k < len(tokens); k++ {
		tok := tokens[k]
		if !flagToken(tok) {
			continue
		}
		name := strings.TrimPrefix(tok, "-")
		if _, dup := flags[name]; dup {
			t.Errorf("section %q lists -%s twice", command, name)
		}
		flags[name] = ""
		if k+1 < len(tokens) && !flagToken(tokens[k+1]) {
			flags[name] = tokens[k+1]
			k++
		}
	}
	return flags
}

var flagRE = regexp.MustCompile(`^-[a-z][a-z0-9-]*$`)

func flagToken(s string) bool { return flagRE.MatchString(s) }

var placeholderRE = regexp.MustCompile(`^[A-Z][A-Z_]*$`)

// sameValue reports whether the documented value doc shows the default def.
func sameValue(doc, def string) bool {
	switch {
	case placeholderRE.MatchString(doc):
		return true
	case doc == def:
		return true
	case def == "":
		return doc == "" || doc == "0" || doc == "0s" || doc == "false"
	}
	if a, err := time.ParseDuration(doc); err == nil {
		b, err := time.ParseDuration(def)
		return err == nil && a == b
	}
	if a, err := strconv.ParseFloat(doc, 64); err == nil {
		b, err := strconv.ParseFloat(def, 64)
		return err == nil && a == b
	}
	return false
}

// Contract returns docs/contract.md, read from the module root.
func Contract(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// AllDocs returns every docs/*.md page, concatenated.
func AllDocs(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Check compares the flags of command's -h output with its synopsis in the
// contract (names and defaults), and checks that each flag is described in
// one of the contract's flag tables.
func Check(t *testing.T, contract, command, help string) {
	t.Helper()
	have := ParseHelp(help)
	if len(have) == 0 {
		t.Fatalf("%s -h shows no flags:\n%s", command, help)
	}
	doc := Synopsis(t, contract, command)
	var names []string
	for n := range have {
		names = append(names, n)
	}
	for n := range doc {
		if _, ok := have[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		f, inHelp := have[n]
		v, inDoc := doc[n]
		switch {
		case !inDoc:
			t.Errorf("%s: -h shows -%s, docs/contract.md's synopsis does not", command, n)
		case !inHelp:
			t.Errorf("%s: docs/contract.md's synopsis shows -%s, -h does not", command, n)
		case !sameValue(v, f.Default):
			t.Errorf("%s: docs/contract.md shows -%s %s, -h's default is %q", command, n, v, f.Default)
		}
		if inHelp && !described(contract, n) {
			t.Errorf("%s: -%s is in no flag table of docs/contract.md", command, n)
		}
	}
}

// described reports whether a table row of the contract names the flag.
func described(contract, name string) bool {
	for _, line := range strings.Split(contract, "\n") {
		if strings.HasPrefix(line, "| ") {
			cell, _, _ := strings.Cut(line[2:], " |")
			if strings.Contains(cell+" ", "`-"+name+"`") {
				return true
			}
		}
	}
	return false
}

// Commands returns the commands a usage text lists: the lowercase words at
// the start of each indented line ("worker dlq list").
func Commands(usage, binary string) []string {
	var cmds []string
	for _, line := range strings.Split(usage, "\n") {
		fields := strings.Fields(line)
		if !strings.HasPrefix(line, "  ") || len(fields) < 2 || fields[0] != binary {
			continue
		}
		words := []string{binary}
		for _, w := range fields[1:] {
			if w != strings.ToLower(w) || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") {
				break
			}
			words = append(words, w)
			if len(words) == 3 {
				break
			}
		}
		cmds = append(cmds, strings.Join(words, " "))
	}
	return cmds
}

// README returns the repository's README.md.
func README(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var readmeFlagRE = regexp.MustCompile(`-[a-z][a-z0-9-]*(…)?`)

// ReadmeSynopsis returns the flags the README's synopsis of command shows:
// the line starting with the command inside a plain code block (opened by
// "```" without a language; examples are in "```sh" blocks) and its
// indented continuation lines. "-nats-url …" stands for every -nats-* flag, and
// "-source-…" or "-target-…" for every flag with that prefix plus
// -api-version; those groups are expanded against have.
func ReadmeSynopsis(t *testing.T, readme, command string, have map[string]Flag) map[string]bool {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var text []string
	open, plain := false, false
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "```") {
			open = !open
			plain = open && lines[i] == "```"
			continue
		}
		if !plain || !strings.HasPrefix(lines[i], command+" ") {
			continue
		}
		text = append(text, strings.TrimPrefix(lines[i], command))
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") {
			i++
			text = append(text, lines[i])
		}
		break
	}
	if text == nil {
		t.Fatalf("README.md has no synopsis line for %s", command)
	}
	flags := map[string]bool{}
	body := strings.Join(text, " ")
	for _, m := range readmeFlagRE.FindAllString(body, -1) {
		switch {
		case strings.HasSuffix(m, "-…"): // -source-…, -target-…
			prefix := strings.TrimSuffix(strings.TrimPrefix(m, "-"), "…")
			for n := range have {
				if strings.HasPrefix(n, prefix) {
					flags[n] = true
				}
			}
		default:
			flags[strings.TrimSuffix(strings.TrimPrefix(m, "-"), "…")] = true
		}
	}
	if strings.Contains(body, "-nats-url …") {
		for n := range have {
			if strings.HasPrefix(n, "nats-") {
				flags[n] = true
			}
		}
	}
	return flags
}

// CheckREADME compares the README's synopsis of command with its -h.
func CheckREADME(t *testing.T, readme, command, help string) {
	t.Helper()
	have := ParseHelp(help)
	doc := ReadmeSynopsis(t, readme, command, have)
	for n := range have {
		if !doc[n] {
			t.Errorf("%s: -h shows -%s, README.md's synopsis does not", command, n)
		}
	}
	for n := range doc {
		if _, ok := have[n]; !ok {
			t.Errorf("%s: README.md's synopsis shows -%s, -h does not", command, n)
		}
	}
}

// CheckCommands runs Check and CheckREADME for every subcommand that
// binary's usage lists (at least min of them): each must be documented on
// some docs/ page, and one with a section in docs/contract.md must match its
// -h there and in the README's synopsis. help runs the subcommand's args
// (e.g. ["dlq", "list", "-h"]) and returns what it printed on stderr and its
// exit code.
func CheckCommands(t *testing.T, usage, binary string, min int, help func(args []string) (string, int)) {
	t.Helper()
	contract, all, readme := Contract(t), AllDocs(t), README(t)
	cmds := Commands(usage, binary)
	if len(cmds) < min {
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
			out, code := help(append(strings.Fields(cmd)[1:], "-h"))
			if code != 0 {
				t.Fatalf("%s -h: exit %d", cmd, code)
			}
			Check(t, contract, cmd, out)
			CheckREADME(t, readme, cmd, out)
		})
	}
}
