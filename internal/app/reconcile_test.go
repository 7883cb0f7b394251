package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orgsync/event"
	"orgsync/reconcile"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
)

func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// With an interval, reconcile runs again and again; the gauges describe the
// last completed run.
func TestRunReconcileEveryIntervalSetsTheGauges(t *testing.T) {
	src, srcSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000SRC"})
	_, tgtSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000TGT"})
	if _, err := src.InsertAccount(fakeorg.Record{"Name": "Only in the source"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	fields, _ := event.ParseFields("")
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var runs []reconcile.Result
	res, err := RunReconcile(ctx, ReconcileConfig{
		Source:          salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		Target:          salesforce.AuthConfig{URL: tgtSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		APIVersion:      "61.0",
		ExternalIDField: "Source_Id__c", Fields: fields, RateLimit: -1,
		Interval: time.Millisecond, Registry: reg,
		Finished: func(r reconcile.Result, err error) {
			if err != nil {
				t.Errorf("run %d: %v", len(runs)+1, err)
			}
			runs = append(runs, r)
			if len(runs) == 2 {
				if v, ok := gauge(t, reg, "orgsync_reconcile_differences", "kind", "missing"); !ok || v != 1 {
					t.Errorf("missing gauge = %v (present %v), want 1", v, ok)
				}
				cancel()
			}
		},
	})
	if err != nil || len(runs) != 2 || res.Missing != 1 {
		t.Errorf("RunReconcile: %+v, %v after %d runs", res, err, len(runs))
	}
}

// -repair without a reachable NATS fails at once with a clear error.
func TestRunReconcileRepairNeedsNATS(t *testing.T) {
	_, srcSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000SRC"})
	_, tgtSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000TGT"})
	fields, _ := event.ParseFields("Name")
	_, err := RunReconcile(t.Context(), ReconcileConfig{
		Source:          salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		Target:          salesforce.AuthConfig{URL: tgtSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		APIVersion:      "61.0",
		ExternalIDField: "Source_Id__c", Fields: fields, RateLimit: -1,
		Repair: true, NATS: NATSConfig{URL: "nats://127.0.0.1:1"},
	})
	if err == nil || !strings.Contains(err.Error(), "connect to NATS") {
		t.Errorf("err = %v, want a NATS connection error", err)
	}
}

// A target without the external ID field is a clear error, before any
// record is read.
func TestRunReconcileNeedsTheExternalIDField(t *testing.T) {
	_, srcSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000SRC"})
	_, tgtSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000TGT"})
	fields, _ := event.ParseFields("Name")
	_, err := RunReconcile(t.Context(), ReconcileConfig{
		Source:          salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		Target:          salesforce.AuthConfig{URL: tgtSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		APIVersion:      "61.0",
		ExternalIDField: "Other_Id__c", Fields: fields, RateLimit: -1,
	})
	if err == nil || !strings.Contains(err.Error(), "no field Other_Id__c") {
		t.Errorf("err = %v, want the missing field named", err)
	}
}

// -metrics-addr serves the gauges while the command runs; an address in
// use is an error, as for the other commands.
func TestRunReconcileMetricsAddr(t *testing.T) {
	src, srcSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000SRC"})
	_, tgtSrv := fakeOrg(t, fakeorg.Config{OrgID: "00D000000000TGT"})
	if _, err := src.InsertAccount(fakeorg.Record{"Name": "Only in the source"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	fields, _ := event.ParseFields("Name")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	cfg := ReconcileConfig{
		Source:          salesforce.AuthConfig{URL: srcSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		Target:          salesforce.AuthConfig{URL: tgtSrv.URL, ClientID: "demo", ClientSecret: "demo-secret"},
		APIVersion:      "61.0",
		ExternalIDField: "Source_Id__c", Fields: fields, RateLimit: -1, MetricsAddr: addr,
	}
	if _, err := RunReconcile(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "-metrics-addr") {
		t.Errorf("address in use: err = %v", err)
	}
	ln.Close()

	var body string
	cfg.Finished = func(reconcile.Result, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Errorf("GET /metrics: %v", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	}
	if _, err := RunReconcile(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `orgsync_reconcile_differences{kind="missing"} 1`) {
		t.Errorf("/metrics after the run:\n%.2000s", body)
	}
}
