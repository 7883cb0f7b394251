package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a run's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	differences *prometheus.GaugeVec
	records     *prometheus.GaugeVec
	lastRun     prometheus.Gauge
	lastSuccess prometheus.Gauge
	paused      *prometheus.GaugeVec
	apiCalls    *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orgsync_reconcile_differences",
			Help: "Differences the last completed reconcile run found, by kind (missing, extra, different, stale_mapping)."}, []string{"kind"}),
		records: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orgsync_reconcile_records",
			Help: "Records the last completed reconcile run read, by org (source, target)."}, []string{"org"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_reconcile_last_run_timestamp_seconds", Help: "When the last reconcile run ended, successfully or not (Unix time)."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_reconcile_last_success_timestamp_seconds", Help: "When the last reconcile run completed (Unix time)."}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orgsync_reconcile_paused", Help: "1 while the run holds back because the org's API usage is at or above -api-budget, by org."}, []string{"org"}),
		apiCalls: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orgsync_reconcile_api_calls", Help: "API calls the last reconcile run made, by org."}, []string{"org"}),
	}
	reg.MustRegister(m.differences, m.records, m.lastRun, m.lastSuccess, m.paused, m.apiCalls)
	return m
}

// Finished records a run that ended at t; res and calls are set only when
// it completed (err == nil), so the gauges always describe a whole run.
func (m *Metrics) Finished(t time.Time, res Result, sourceCalls, targetCalls int64, err error) {
	if m == nil {
		return
	}
	m.lastRun.Set(float64(t.Unix()))
	if err != nil {
		return
	}
	for _, k := range Kinds {
		m.differences.WithLabelValues(string(k)).Set(float64(res.Count(k)))
	}
	m.records.WithLabelValues("source").Set(float64(res.SourceRecords))
	m.records.WithLabelValues("target").Set(float64(res.TargetRecords))
	m.apiCalls.WithLabelValues("source").Set(float64(sourceCalls))
	m.apiCalls.WithLabelValues("target").Set(float64(targetCalls))
	m.lastSuccess.Set(float64(t.Unix()))
}

// Paused returns an OrgConfig.OnPause that sets the paused gauge of org.
func (m *Metrics) Paused(org string) func(bool) {
	return func(p bool) {
		if m == nil {
			return
		}
		v := 0.0
		if p {
			v = 1
		}
		m.paused.WithLabelValues(org).Set(v)
	}
}
