package composetest

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// The services each profile adds. The cluster profile is issue 6's.
var profileServices = map[string][]string{
	"":           {"nats", "producer", "worker"},
	"demo":       {"fakeorg-source", "fakeorg-target", "seed"},
	"monitoring": {"prometheus", "grafana"},
	"reconcile":  {"reconcile"},
}

// metricsServices serve /metrics on ORGSYNC_METRICS_ADDR; Prometheus scrapes them.
var metricsServices = []string{"producer", "worker"}

// noEnvFlags are one-shot options and filters, which read no environment
// (docs/contract.md): compose must not set them.
var noEnvFlags = []string{"once", "dry-run", "json", "code", "source-id", "format", "file", "timeout", "where", "repair"}

func serviceNames(p *types.Project) []string {
	return slices.Sorted(maps.Keys(p.Services))
}

func TestProfiles(t *testing.T) {
	cases := [][]string{nil, {"demo"}, {"monitoring"}, {"demo", "monitoring"}, {"reconcile"}}
	for _, profiles := range cases {
		for _, env := range [][]string{nil, {".env.example"}} {
			p := loadProject(t, profiles, env...)
			want := slices.Clone(profileServices[""])
			for _, pr := range profiles {
				want = append(want, profileServices[pr]...)
			}
			slices.Sort(want)
			if got := serviceNames(p); !slices.Equal(got, want) {
				t.Errorf("profiles %v, env %v: services %v, want %v", profiles, env, got, want)
			}
		}
	}
}

// orgsyncServices are the services that run the orgsync image.
func orgsyncServices(p *types.Project) map[string]types.ServiceConfig {
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if s.Build != nil {
			out[name] = s
		}
	}
	return out
}

func TestServices(t *testing.T) {
	p := loadProject(t, []string{"demo", "monitoring"})
	bins := orgsyncBinaries(t)

	// One image, built from the root Dockerfile, for every orgsync service.
	og := orgsyncServices(p)
	if want := []string{"fakeorg-source", "fakeorg-target", "producer", "worker"}; !slices.Equal(slices.Sorted(maps.Keys(og)), want) {
		t.Errorf("services built from the Dockerfile: %v, want %v", slices.Sorted(maps.Keys(og)), want)
	}
	for name, s := range og {
		if s.Build.Dockerfile != "Dockerfile" || s.Build.Context != mustAbs(t, repo) {
			t.Errorf("%s: build %+v, want the repository root and its Dockerfile", name, s.Build)
		}
		if s.Image != og["worker"].Image {
			t.Errorf("%s: image %q, want the same image as worker (%q)", name, s.Image, og["worker"].Image)
		}
		if len(s.Command) == 0 || !slices.Contains(bins, s.Command[0]) {
			t.Errorf("%s: command %q does not start with a binary of cmd/ %v", name, s.Command, bins)
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", name, s.Restart)
		}
	}
	if c := og["worker"].Command; !slices.Equal(c, types.ShellCommand{"worker", "run"}) {
		t.Errorf("worker command %q", c)
	}
	if c := og["producer"].Command; !slices.Equal(c, types.ShellCommand{"producer", "poll"}) {
		t.Errorf("producer command %q, want producer poll", c)
	}
	// The fake source also serves the Pub/Sub API for the cdc profile.
	if c := og["fakeorg-source"].Command; !slices.Equal(c, types.ShellCommand{"fakeorg", "-addr", "0.0.0.0:8081", "-pubsub-addr", "0.0.0.0:7443"}) {
		t.Errorf("fakeorg-source command %q", c)
	}
	if c := og["fakeorg-target"].Command; !slices.Equal(c, types.ShellCommand{"fakeorg", "-addr", "0.0.0.0:8081"}) {
		t.Errorf("fakeorg-target command %q", c)
	}

	// Three workers by default.
	w := p.Services["worker"]
	if w.Deploy == nil || w.Deploy.Replicas == nil {
		t.Error("worker: no deploy.replicas")
	} else if *w.Deploy.Replicas != 3 {
		t.Errorf("worker: deploy.replicas %d, want 3", *w.Deploy.Replicas)
	}
	if w.StopGracePeriod == nil {
		t.Error("worker: no stop_grace_period for in-flight batches")
	}

	// Metrics on :9090 in every container that serves them.
	for _, name := range metricsServices {
		if v := env(p, name, "ORGSYNC_METRICS_ADDR"); v != ":9090" {
			t.Errorf("%s: ORGSYNC_METRICS_ADDR=%q, want :9090", name, v)
		}
		if v := env(p, name, "ORGSYNC_NATS_URL"); v != "nats://nats:4222" {
			t.Errorf("%s: ORGSYNC_NATS_URL=%q, want nats://nats:4222", name, v)
		}
		if v := env(p, name, "ORGSYNC_DATA_DIR"); v != "/data" {
			t.Errorf("%s: ORGSYNC_DATA_DIR=%q, want /data", name, v)
		}
		deps := p.Services[name].DependsOn
		if d, ok := deps["nats"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: depends_on nats %+v, want condition service_healthy", name, d)
		}
	}

	// Volumes: NATS, the worker ID maps and the producer checkpoint each on a
	// named volume at /data; the worker replicas share theirs (one file each).
	wantVol := map[string]string{"nats": "nats-data", "producer": "producer-data", "worker": "worker-data",
		"prometheus": "prometheus-data", "grafana": "grafana-data"}
	for svc, vol := range wantVol {
		found := false
		for _, v := range p.Services[svc].Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source == vol {
				found = true
				if _, ok := p.Volumes[vol]; !ok {
					t.Errorf("%s: volume %s is not declared", svc, vol)
				}
				if svc == "nats" || svc == "producer" || svc == "worker" {
					if v.Target != "/data" {
						t.Errorf("%s: %s mounted at %s, want /data", svc, vol, v.Target)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no named volume %s", svc, vol)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func env(p *types.Project, service, key string) string {
	v := p.Services[service].Environment[key]
	if v == nil {
		return ""
	}
	return *v
}

func TestNATS(t *testing.T) {
	p := loadProject(t, nil)
	n := p.Services["nats"]
	if !strings.HasPrefix(n.Image, "nats:2.") || !strings.Contains(n.Image, "alpine") {
		t.Errorf("nats image %q: want the official nats:2.x-alpine image (its busybox wget runs the healthcheck)", n.Image)
	}
	cmd := strings.Join(n.Command, " ")
	if !regexp.MustCompile(`(^| )(-js|--jetstream)( |$)`).MatchString(cmd) {
		t.Errorf("nats command %q does not enable JetStream", cmd)
	}
	if !regexp.MustCompile(`(^| )(-sd|--store_dir) /data( |$)`).MatchString(cmd) {
		t.Errorf("nats command %q: want the store dir on the /data volume", cmd)
	}
	if !regexp.MustCompile(`(^| )(-m|--http_port) 8222( |$)`).MatchString(cmd) {
		t.Errorf("nats command %q: want monitoring on 8222 (the healthcheck uses it)", cmd)
	}
	if strings.HasPrefix(cmd, "nats-server") {
		t.Errorf("nats command %q: give only flags (the image's entrypoint adds nats-server)", cmd)
	}
	hc := n.HealthCheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" || !strings.Contains(strings.Join(hc.Test, " "), ":8222/healthz") {
		t.Errorf("nats healthcheck %+v: want CMD wget …:8222/healthz", hc)
	}
}

// TestEnvIsFlags checks that every ORGSYNC_* variable given to an orgsync
// container is the variable of a flag of the command it runs, as the binary's
// -h prints them. For the producer that is poll's and serve's flags: the
// compose file shows how to switch it to serve, and poll ignores serve's.
func TestEnvIsFlags(t *testing.T) {
	for _, env := range [][]string{nil, {".env.example"}} {
		p := loadProject(t, []string{"demo", "reconcile"}, env...)
		for name, s := range orgsyncServices(p) {
			var flags []string
			switch s.Command[0] {
			case "producer":
				flags = append(flagsOf(t, "producer", "poll"), flagsOf(t, "producer", "serve")...)
			case "worker":
				flags = flagsOf(t, "worker", s.Command[1])
			default:
				flags = flagsOf(t, s.Command[0])
			}
			byEnv := map[string]string{}
			for _, f := range flags {
				byEnv[envName(f)] = f
			}
			for key := range s.Environment {
				if !strings.HasPrefix(key, "ORGSYNC_") {
					continue
				}
				f, ok := byEnv[key]
				switch {
				case !ok:
					t.Errorf("%s (%s): %s is no flag's variable", name, strings.Join(s.Command, " "), key)
				case slices.Contains(noEnvFlags, f):
					t.Errorf("%s: %s sets -%s, which reads no environment", name, key, f)
				}
			}
		}
	}
}

// TestDemoWiring checks that without a .env the producer and the workers talk
// to the demo's fake orgs, by service name, with the fake orgs' credentials.
func TestDemoWiring(t *testing.T) {
	p := loadProject(t, []string{"demo"})
	checks := []struct{ svc, key, want string }{
		{"producer", "ORGSYNC_SOURCE_URL", "http://fakeorg-source:8081"},
		{"producer", "ORGSYNC_SOURCE_CLIENT_ID", env(p, "fakeorg-source", "ORGSYNC_CLIENT_ID")},
		{"producer", "ORGSYNC_SOURCE_CLIENT_SECRET", env(p, "fakeorg-source", "ORGSYNC_CLIENT_SECRET")},
		{"worker", "ORGSYNC_TARGET_URL", "http://fakeorg-target:8081"},
		{"worker", "ORGSYNC_TARGET_CLIENT_ID", env(p, "fakeorg-target", "ORGSYNC_CLIENT_ID")},
		{"worker", "ORGSYNC_TARGET_CLIENT_SECRET", env(p, "fakeorg-target", "ORGSYNC_CLIENT_SECRET")},
		{"seed", "SEED_URL", "http://fakeorg-source:8081"},
		{"seed", "SEED_CLIENT_ID", env(p, "fakeorg-source", "ORGSYNC_CLIENT_ID")},
		{"seed", "SEED_CLIENT_SECRET", env(p, "fakeorg-source", "ORGSYNC_CLIENT_SECRET")},
	}
	for _, c := range checks {
		if got := env(p, c.svc, c.key); got != c.want || got == "" {
			t.Errorf("%s: %s=%q, want %q", c.svc, c.key, got, c.want)
		}
	}
	// The seed script is mounted and exists.
	seed := p.Services["seed"]
	mounted := false
	for _, v := range seed.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, "deploy/demo/seed.sh") && v.ReadOnly {
			mounted = true
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("seed: %v", err)
			}
			if !slices.Contains(seed.Entrypoint, v.Target) {
				t.Errorf("seed: entrypoint %q does not run %s", seed.Entrypoint, v.Target)
			}
		}
	}
	if !mounted {
		t.Error("seed: deploy/demo/seed.sh is not mounted read-only")
	}
	if seed.Restart != "no" {
		t.Errorf("seed: restart %q, want no (a one-shot job)", seed.Restart)
	}
	// The producer and the workers wait for their fake org when it is there.
	if d := p.Services["producer"].DependsOn["fakeorg-source"]; d.Required {
		t.Error("producer: depends_on fakeorg-source must be required: false (it exists only in the demo)")
	}
	if d := p.Services["worker"].DependsOn["fakeorg-target"]; d.Required {
		t.Error("worker: depends_on fakeorg-target must be required: false (it exists only in the demo)")
	}
}

// TestEnvExample checks .env.example against the compose file: it documents
// every variable the compose file reads, and only those, and with it loaded
// the org connections are the real-org placeholders, not the demo's.
func TestEnvExample(t *testing.T) {
	compose := readFile(t, "docker-compose.yml")
	example := readFile(t, ".env.example")
	var used []string
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(compose, -1) {
		if !slices.Contains(used, m[1]) {
			used = append(used, m[1])
		}
	}
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(example, -1) {
		if slices.Contains(documented, m[1]) {
			t.Errorf(".env.example sets %s twice", m[1])
		}
		documented = append(documented, m[1])
	}
	for _, v := range used {
		if !slices.Contains(documented, v) {
			t.Errorf("docker-compose.yml reads ${%s}, which .env.example does not list", v)
		}
	}
	for _, v := range documented {
		if !slices.Contains(used, v) {
			t.Errorf(".env.example lists %s, which docker-compose.yml does not read", v)
		}
	}

	p := loadProject(t, nil, ".env.example")
	if got := env(p, "producer", "ORGSYNC_SOURCE_URL"); !strings.HasPrefix(got, "https://") {
		t.Errorf("with .env.example: producer ORGSYNC_SOURCE_URL=%q, want the real-org placeholder", got)
	}
	if got := env(p, "worker", "ORGSYNC_TARGET_CLIENT_SECRET"); got != "" {
		t.Errorf("with .env.example: worker ORGSYNC_TARGET_CLIENT_SECRET=%q, want empty (no demo secret leaks into a real setup)", got)
	}
	if got := env(p, "worker", "ORGSYNC_METRICS_ADDR"); got != ":9090" {
		t.Errorf("with .env.example: worker ORGSYNC_METRICS_ADDR=%q", got)
	}
}

// TestNetworkExposure checks that the services find each other by name and
// that only NATS monitoring, Prometheus and Grafana publish ports, on the
// host's loopback by default.
func TestNetworkExposure(t *testing.T) {
	p := loadProject(t, []string{"demo", "monitoring"})
	wantPorts := map[string]uint32{"nats": 8222, "prometheus": 9090, "grafana": 3000}
	for name, s := range p.Services {
		want, publishes := wantPorts[name]
		switch {
		case !publishes && len(s.Ports) > 0:
			t.Errorf("%s publishes %+v; only %v may", name, s.Ports, slices.Sorted(maps.Keys(wantPorts)))
		case publishes && (len(s.Ports) != 1 || s.Ports[0].Target != want || s.Ports[0].HostIP != "127.0.0.1"):
			t.Errorf("%s ports %+v, want 127.0.0.1:…:%d", name, s.Ports, want)
		}
		for k, v := range s.Environment {
			if v != nil && regexp.MustCompile(`(?i)localhost|127\.0\.0\.1`).MatchString(*v) {
				t.Errorf("%s: %s=%q points at loopback; use the service name", name, k, *v)
			}
		}
	}
}

// TestDockerfile checks the build: static binaries of every command, a
// distroless non-root final image, a /data directory the non-root user owns.
func TestDockerfile(t *testing.T) {
	df := readFile(t, "Dockerfile")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM golang:1\.26\S* AS build$`),
		// Every binary the compose file runs is built into the image.
		regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o \S+/ .*\./cmd/producer\b`),
		regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o \S+/ .*\./cmd/worker\b`),
		regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o \S+/ .*\./cmd/fakeorg\b`),
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot$`),
		regexp.MustCompile(`(?m)^COPY --from=build --chown=65532:65532 \S+ /data$`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^COPY --from=build /out/bin/ /usr/local/bin/$`),
	} {
		if !want.MatchString(df) {
			t.Errorf("Dockerfile: nothing matches %s", want)
		}
	}
	ignore := readFile(t, ".dockerignore")
	for _, want := range []string{".git", "deploy", ".env"} {
		if !slices.Contains(strings.Split(ignore, "\n"), want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, keep := range []string{"cmd", "go.mod", "go.sum", "internal"} {
		if slices.Contains(strings.Split(ignore, "\n"), keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
	// The image holds the binaries compose runs.
	bins := orgsyncBinaries(t)
	for _, b := range []string{"producer", "worker", "fakeorg"} {
		if !slices.Contains(bins, b) {
			t.Errorf("cmd/%s is missing", b)
		}
	}
}
