package composetest

import (
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// The scrape jobs: job name → the compose service whose replicas it finds.
var scrapeJobs = map[string]string{"orgsync-worker": "worker", "orgsync-producer": "producer"}

var promql = parser.NewParser(parser.Options{})

// metricNames parses a PromQL expression and returns the metric names it selects.
func metricNames(t *testing.T, where, expr string) (names []string, jobs []string) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return nil, nil
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			switch {
			case m.Name == labels.MetricName && m.Type == labels.MatchEqual:
				name = m.Value
			case m.Name == "job" && m.Type == labels.MatchEqual:
				jobs = append(jobs, m.Value)
			}
		}
		if name == "" {
			t.Errorf("%s: %q selects no metric by name", where, expr)
		}
		names = append(names, name)
		return nil
	})
	return names, jobs
}

// checkMetrics reports names the code does not export. up comes from
// Prometheus; process_* from the process collector the admin server registers.
func checkMetrics(t *testing.T, where string, names, jobs []string, exported map[string]bool) {
	t.Helper()
	admin := readFile(t, "internal", "app", "admin.go")
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && exported[b] {
				base = b
			}
		}
		switch {
		case exported[base]:
		case n == "up":
		case strings.HasPrefix(n, "process_") && strings.Contains(admin, "collectors.NewProcessCollector"):
		default:
			t.Errorf("%s: metric %s is not exported by the code", where, n)
		}
	}
	for _, j := range jobs {
		if _, ok := scrapeJobs[j]; !ok {
			t.Errorf("%s: job %q is no scrape job of prometheus.yml", where, j)
		}
	}
}

func TestAlertRules(t *testing.T) {
	path := repoPath("deploy", "prometheus", "alerts.yml")
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		return
	}
	exported := exportedMetrics(t)
	alerts := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = r
			names, jobs := metricNames(t, "alert "+r.Alert, r.Expr)
			checkMetrics(t, "alert "+r.Alert, names, jobs, exported)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a severity label and a summary", r.Alert)
			}
		}
	}
	// The four alerts of issue 5, by the metrics they must watch.
	required := map[string][]string{
		"OrgsyncNoSuccessfulWrites":  {"orgsync_records_synced_total", "orgsync_queue_pending"},
		"OrgsyncDeadLettersWaiting":  {"orgsync_dlq_messages"},
		"OrgsyncTargetAPIBudgetHigh": {"orgsync_target_api_usage_ratio", "0.9"},
		"OrgsyncWorkerDown":          {`up{job="orgsync-worker"}`},
		"OrgsyncNoWorkers":           {`up{job="orgsync-worker"}`},
		"OrgsyncWorkerPoolPaused":    {"orgsync_paused"},
	}
	for name, subs := range required {
		r, ok := alerts[name]
		if !ok {
			t.Errorf("alert %s is missing", name)
			continue
		}
		for _, s := range subs {
			if !strings.Contains(r.Expr, s) {
				t.Errorf("alert %s: expr %q does not use %s", name, r.Expr, s)
			}
		}
	}
}

// promConfig is the part of prometheus.yml this test reads. (Prometheus' own
// config package would pull every service discovery SDK into this module;
// `promtool check config` is the full check where Docker is available.)
type promConfig struct {
	Global        map[string]any `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
			// A Prometheus duration ("15s"): decoding checks it.
			RefreshInterval model.Duration `yaml:"refresh_interval"`
		} `yaml:"dns_sd_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		RelabelConfigs []map[string]any `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
	Alerting map[string]any `yaml:"alerting"`
}

func TestPrometheusConfig(t *testing.T) {
	var cfg promConfig
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, "deploy", "prometheus", "prometheus.yml")))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	p := loadProject(t, []string{"demo", "monitoring"})
	prom := p.Services["prometheus"]

	// The directory is mounted at /etc/prometheus; the rule files are in it.
	var mountedAt string
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, filepath.Join("deploy", "prometheus")) {
			mountedAt = v.Target
		}
	}
	if mountedAt == "" {
		t.Fatal("prometheus: deploy/prometheus is not mounted")
	}
	if !slices.Contains(prom.Command, "--config.file="+mountedAt+"/prometheus.yml") {
		t.Errorf("prometheus command %q: want --config.file=%s/prometheus.yml", prom.Command, mountedAt)
	}
	if len(cfg.RuleFiles) == 0 {
		t.Error("prometheus.yml: no rule_files")
	}
	for _, rf := range cfg.RuleFiles {
		rel, ok := strings.CutPrefix(rf, mountedAt+"/")
		if !ok {
			t.Errorf("rule file %s is outside the mounted %s", rf, mountedAt)
			continue
		}
		if _, err := os.Stat(repoPath("deploy", "prometheus", rel)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}

	// Every worker and producer replica is scraped: DNS A records of the
	// compose service name, on the port of ORGSYNC_METRICS_ADDR.
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		svc, ok := scrapeJobs[sc.JobName]
		if !ok {
			continue
		}
		if len(sc.DNSSDConfigs) != 1 {
			t.Errorf("job %s: want one dns_sd_config", sc.JobName)
			continue
		}
		d := sc.DNSSDConfigs[0]
		if !slices.Equal(d.Names, []string{svc}) || d.Type != "A" {
			t.Errorf("job %s: dns_sd %+v, want type A on %q", sc.JobName, d, svc)
		}
		addr := env(p, svc, "ORGSYNC_METRICS_ADDR")
		if _, port, _ := strings.Cut(addr, ":"); port != strconv.Itoa(d.Port) {
			t.Errorf("job %s: port %d, but %s serves metrics on %q", sc.JobName, d.Port, svc, addr)
		}
		if _, ok := p.Services[svc]; !ok {
			t.Errorf("job %s: no compose service %s", sc.JobName, svc)
		}
	}
	for j := range scrapeJobs {
		if !jobs[j] {
			t.Errorf("prometheus.yml: no scrape job %s", j)
		}
	}
}

// TestGrafana checks the provisioning and the dashboard: the data source the
// panels use is the provisioned one, the dashboard directory is the mounted
// one, and every panel's PromQL parses and uses exported metrics.
func TestGrafana(t *testing.T) {
	p := loadProject(t, []string{"monitoring"})
	g := p.Services["grafana"]
	mounts := map[string]string{}
	for _, v := range g.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[v.Target] = v.Source
		}
	}
	prov, ok := mounts["/etc/grafana/provisioning"]
	if !ok || !strings.HasSuffix(prov, filepath.Join("deploy", "grafana", "provisioning")) {
		t.Fatalf("grafana: deploy/grafana/provisioning is not mounted at /etc/grafana/provisioning: %v", mounts)
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")), &ds); err != nil {
		t.Fatal(err)
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("data source: %+v, want one prometheus source at http://prometheus:9090", ds)
	}
	dsUID := ""
	if len(ds.Datasources) > 0 {
		dsUID = ds.Datasources[0].UID
	}

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "grafana", "provisioning", "dashboards", "orgsync.yml")), &dp); err != nil {
		t.Fatal(err)
	}
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboard provider: %+v", dp)
	}
	dir, ok := mounts[dp.Providers[0].Options.Path]
	if !ok || !strings.HasSuffix(dir, filepath.Join("deploy", "grafana", "dashboards")) {
		t.Errorf("dashboard provider path %s is not where deploy/grafana/dashboards is mounted: %v", dp.Providers[0].Options.Path, mounts)
	}
	if home := env(p, "grafana", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); !strings.HasPrefix(home, dp.Providers[0].Options.Path+"/") {
		t.Errorf("grafana home dashboard %q is outside %s", home, dp.Providers[0].Options.Path)
	}

	var dash struct {
		UID, Title string
		Panels     []struct {
			Title      string
			Type       string
			Datasource struct{ Type, UID string }
			Targets    []struct {
				Expr       string
				Datasource struct{ Type, UID string }
			}
		}
	}
	b := []byte(readFile(t, "deploy", "grafana", "dashboards", "orgsync.json"))
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("orgsync.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("orgsync.json: want a uid and a title")
	}
	exported := exportedMetrics(t)
	grafanaVars := regexp.MustCompile(`\$__(rate_interval|interval|range)`)
	titles := map[string]bool{}
	for _, pn := range dash.Panels {
		titles[pn.Title] = true
		if pn.Datasource.UID != dsUID {
			t.Errorf("panel %q: data source uid %q, want the provisioned %q", pn.Title, pn.Datasource.UID, dsUID)
		}
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, tg := range pn.Targets {
			if tg.Datasource.UID != dsUID {
				t.Errorf("panel %q: query data source uid %q, want %q", pn.Title, tg.Datasource.UID, dsUID)
			}
			expr := grafanaVars.ReplaceAllString(tg.Expr, "5m")
			names, jobs := metricNames(t, "panel "+pn.Title, expr)
			checkMetrics(t, "panel "+pn.Title, names, jobs, exported)
		}
	}
	for _, want := range []string{"Throughput", "Dead letters", "Queue", "Oldest pending event", "Lag",
		"API budget used", "Pool paused", "Batch size", "Sync latency"} {
		if !titles[want] {
			t.Errorf("dashboard: no panel %q (have %v)", want, slices.Sorted(maps.Keys(titles)))
		}
	}
}

// Ensure that every alert rule has a promtool unit test in
// deploy/prometheus/alerts_test.yml that expects it to fire (.ci/run runs
// them with promtool test rules).
func TestAlertRulesHaveUnitTests(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "prometheus", "alerts.yml")), &rules); err != nil {
		t.Fatal(err)
	}
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "prometheus", "alerts_test.yml")), &tests); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tests.RuleFiles, "alerts.yml") {
		t.Errorf("alerts_test.yml reads %v, want alerts.yml", tests.RuleFiles)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no unit test in deploy/prometheus/alerts_test.yml that expects it to fire", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Error("no alert rules found")
	}
}
