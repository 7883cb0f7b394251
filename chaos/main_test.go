package chaos

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var fullFlag = flag.Bool("chaos.full", false, "run the full chaos variant (thousands of records, bigger cluster run); also ORGSYNC_CHAOS_FULL=1")

// full reports whether the full variant runs.
func full() bool {
	v := os.Getenv("ORGSYNC_CHAOS_FULL")
	return *fullFlag || (v != "" && v != "0" && v != "false")
}

// The binaries, built once per test binary run, on first use.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// packages built into binDir: the three orgsync mains and the real
// nats-server from the module cache (a dependency in go.mod).
var packages = []string{
	"orgsync/cmd/worker",
	"orgsync/cmd/producer",
	"orgsync/cmd/fakeorg",
	"github.com/nats-io/nats-server/v2",
}

// bin returns the path of a built binary (worker, producer, fakeorg,
// nats-server), building them all the first time.
func bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "orgsync-chaos-bin-")
		if buildErr != nil {
			return
		}
		gobin := "go"
		if p, err := exec.LookPath("go"); err == nil {
			gobin = p
		}
		// -race is not passed: the products run as they ship; only the
		// test binary itself runs under the race detector in CI.
		args := append([]string{"build", "-o", binDir + string(filepath.Separator)}, packages...)
		cmd := exec.Command(gobin, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

// skipShort skips a chaos test under -short: the suite builds the binaries
// and runs real processes for about a minute, so the quick test command
// (go test -short -race ./...) leaves it to CI's full run.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the chaos suite runs in CI's full run (go test -race ./chaos)")
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
