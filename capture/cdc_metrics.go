package capture

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CDCMetrics are the Change Data Capture metrics. A nil *CDCMetrics records
// nothing.
type CDCMetrics struct {
	events     *prometheus.CounterVec
	catchUps   *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	lagHist    prometheus.Histogram
	connected  prometheus.Gauge
	catching   prometheus.Gauge
	cpTime     prometheus.Gauge
}

// NewCDCMetrics creates the CDC metrics and registers them with reg.
func NewCDCMetrics(reg prometheus.Registerer) *CDCMetrics {
	m := &CDCMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_cdc_events_total", Help: "Change events received, by change type (CREATE, UPDATE, DELETE, UNDELETE, GAP_*)."}, []string{"change_type"}),
		catchUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_cdc_catchups_total", Help: "Catch-ups done, by cause (since, replay_invalid, gap, overflow)."}, []string{"cause"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_cdc_reconnects_total", Help: "Resubscriptions from the checkpoint, by cause (stalled, error)."}, []string{"cause"}),
		lagHist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orgsync_cdc_lag_seconds", Help: "From a create's commitTimestamp in the source to JetStream's ack of its event.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_cdc_connected", Help: "1 while a change event subscription is answering."}),
		catching: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_cdc_catching_up", Help: "1 while a catch-up runs."}),
		cpTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_cdc_checkpoint_timestamp_seconds", Help: "Commit time the CDC checkpoint stands for (Unix time)."}),
	}
	reg.MustRegister(m.events, m.catchUps, m.reconnects, m.lagHist, m.connected, m.catching, m.cpTime)
	return m
}

func (m *CDCMetrics) event(changeType string) {
	if m != nil {
		m.events.WithLabelValues(changeType).Inc()
	}
}

func (m *CDCMetrics) catchUp(cause string) {
	if m != nil {
		m.catchUps.WithLabelValues(cause).Inc()
	}
}

func (m *CDCMetrics) reconnect(cause string) {
	if m != nil {
		m.reconnects.WithLabelValues(cause).Inc()
	}
}

func (m *CDCMetrics) lag(d time.Duration) {
	if m != nil {
		m.lagHist.Observe(max(d, 0).Seconds())
	}
}

func (m *CDCMetrics) state(connected, catching bool) {
	if m == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.connected.Set(b(connected))
	m.catching.Set(b(catching))
}

func (m *CDCMetrics) checkpoint(t time.Time) {
	if m != nil && !t.IsZero() {
		m.cpTime.Set(float64(t.UnixMilli()) / 1000)
	}
}
