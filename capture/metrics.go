package capture

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orgsync/salesforce"
)

// Capture paths, the "path" label of the metrics.
const (
	PathPoll    = "poll"
	PathServe   = "serve"
	PathPublish = "publish"
)

// Metrics are the producer's Prometheus metrics. A nil *Metrics records
// nothing. No label or value ever carries a secret.
type Metrics struct {
	captured      *prometheus.CounterVec
	duplicates    *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	apiCalls      *prometheus.CounterVec
	usageRatio    prometheus.Gauge
	paused        prometheus.Gauge
	checkpoint    prometheus.Gauge
	lastSuccess   prometheus.Gauge
}

// NewMetrics creates the producer's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		captured: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_producer_captured_total", Help: "Records acknowledged by JetStream as new events, by capture path."}, []string{"path"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_producer_duplicates_total", Help: "Records acknowledged by JetStream as duplicates of an event already in the window, by capture path."}, []string{"path"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_producer_skipped_total", Help: "Records not published: -skip-field set (orgsync's own writes), by capture path."}, []string{"path"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_producer_rejected_total", Help: "Refused requests or lines, by capture path and reason."}, []string{"path", "reason"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_producer_publish_errors_total", Help: "Publishes JetStream did not acknowledge, by capture path."}, []string{"path"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_source_api_calls_total", Help: "Calls to the source org, by route and HTTP status (0: no answer)."}, []string{"route", "status"}),
		usageRatio: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_source_api_usage_ratio", Help: "Share of the source's daily API limit used, from the last Sforce-Limit-Info."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_poller_paused", Help: "1 while the poller holds back because the source's API usage is above -api-budget."}),
		checkpoint: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_poller_checkpoint_timestamp_seconds", Help: "CreatedDate of the poller's checkpoint (Unix time)."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_poller_last_success_timestamp_seconds", Help: "When the last poll cycle completed (Unix time)."}),
	}
	reg.MustRegister(m.captured, m.duplicates, m.skipped, m.rejected, m.publishErrors, m.apiCalls,
		m.usageRatio, m.paused, m.checkpoint, m.lastSuccess)
	return m
}

// ObserveCall counts a source call; pass it as salesforce.Config.Observe.
func (m *Metrics) ObserveCall(ci salesforce.CallInfo) {
	if m == nil {
		return
	}
	m.apiCalls.WithLabelValues(ci.Route, strconv.Itoa(ci.Status)).Inc()
}

func (m *Metrics) stats(path string, s Stats) {
	if m == nil {
		return
	}
	m.captured.WithLabelValues(path).Add(float64(s.Published))
	m.duplicates.WithLabelValues(path).Add(float64(s.Duplicates))
	if path != PathPoll { // the poller's skips are in its SOQL, not counted here
		m.skipped.WithLabelValues(path).Add(float64(s.Skipped))
	}
}

func (m *Metrics) reject(path, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(path, reason).Inc()
	}
}

func (m *Metrics) publishError(path string) {
	if m != nil {
		m.publishErrors.WithLabelValues(path).Inc()
	}
}

func (m *Metrics) usage(r float64) {
	if m != nil {
		m.usageRatio.Set(r)
	}
}

func (m *Metrics) setPaused(p bool) {
	if m == nil {
		return
	}
	if p {
		m.paused.Set(1)
	} else {
		m.paused.Set(0)
	}
}

func (m *Metrics) setCheckpoint(t time.Time) {
	if m != nil && !t.IsZero() {
		m.checkpoint.Set(float64(t.UnixMilli()) / 1000)
	}
}

func (m *Metrics) cycleDone(t time.Time) {
	if m != nil {
		m.lastSuccess.Set(float64(t.UnixMilli()) / 1000)
	}
}
