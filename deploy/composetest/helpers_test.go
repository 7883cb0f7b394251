package composetest

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// repo is the root of the orgsync repository (the main module).
const repo = "../.."

func repoPath(p ...string) string { return filepath.Join(append([]string{repo}, p...)...) }

func readFile(t *testing.T, p ...string) string {
	t.Helper()
	b, err := os.ReadFile(repoPath(p...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadProject loads docker-compose.yml the way `docker compose` does, with
// the given profiles and env files (none: no .env, the demo defaults) and
// no variable from the test's own environment.
func loadProject(t *testing.T, profiles []string, envFiles ...string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range envFiles {
		files = append(files, filepath.Join(abs, f))
	}
	fns := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(abs), cli.WithProfiles(profiles)}
	if len(files) > 0 { // without files, never a developer's .env either
		fns = append(fns, cli.WithEnvFiles(files...), cli.WithDotEnv)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yml")}, fns...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("profiles %v, env files %v: %v", profiles, envFiles, err)
	}
	return p
}

// orgsyncBinaries are the commands the image holds, in cmd/.
func orgsyncBinaries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(repoPath("cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var bins []string
	for _, e := range entries {
		if e.IsDir() {
			bins = append(bins, e.Name())
		}
	}
	return bins
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	buildOut  []byte
)

// buildBinaries builds every command of the image (go build ./cmd/...) once,
// into a directory removed by TestMain.
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "orgsync-composetest-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = repo
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", buildErr, buildOut)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var flagLine = regexp.MustCompile(`(?m)^\s+-([a-z0-9][a-z0-9.-]*)`)

// flagsOf runs "BIN [SUB] -h" and returns the flag names it lists.
func flagsOf(t *testing.T, bin string, sub ...string) []string {
	t.Helper()
	dir := buildBinaries(t)
	args := append(slices.Clone(sub), "-h")
	cmd := exec.Command(filepath.Join(dir, bin), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no ORGSYNC_* from the test's environment
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.String())
	}
	var flags []string
	for _, m := range flagLine.FindAllStringSubmatch(out.String(), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) == 0 {
		t.Fatalf("%s %s lists no flags:\n%s", bin, strings.Join(args, " "), out.String())
	}
	return flags
}

// envName is internal/cli.EnvName: ORGSYNC_ + the flag in upper snake case.
func envName(flag string) string {
	return "ORGSYNC_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// exportedMetrics returns every "orgsync_…" string literal in the main
// module's non-test Go sources: the names of the metrics the code registers.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"(orgsync_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "deploy", "interop", "node_modules", ".git", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("found no orgsync_* metric names in the Go sources")
	}
	return names
}
