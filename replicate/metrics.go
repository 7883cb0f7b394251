package replicate

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orgsync/queue"
	"orgsync/salesforce"
)

// Metrics are a worker's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	syncedTotal  prometheus.Counter
	dlqTotal     *prometheus.CounterVec
	skippedByMap prometheus.Counter
	retriedMsgs  prometheus.Counter
	apiCalls     *prometheus.CounterVec
	batchSize    prometheus.Histogram
	latency      prometheus.Histogram
	usageRatio   prometheus.Gauge
	pausedGauge  prometheus.Gauge
	pending      prometheus.Gauge
	ackPending   prometheus.Gauge
	oldestAge    prometheus.Gauge
	dlqDepth     prometheus.Gauge
}

// NewMetrics creates the worker's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		syncedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgsync_records_synced_total", Help: "Events whose record was written to the target and acknowledged."}),
		dlqTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_records_dead_lettered_total", Help: "Events dead-lettered, by error code."}, []string{"code"}),
		skippedByMap: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgsync_records_skipped_total", Help: "Events acknowledged without an API call because the ID map already had the record."}),
		retriedMsgs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgsync_records_retried_total", Help: "Events retried later after a transient failure (in process, or nak'ed with a delay: links)."}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgsync_api_calls_total", Help: "Calls to the target org, by route and HTTP status (0: no answer)."}, []string{"route", "status"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orgsync_batch_size", Help: "Messages per fetched batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 150, 199, 200}}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "orgsync_sync_latency_seconds", Help: "From the source record's CreatedDate to its acknowledgement after the target write.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16)}),
		usageRatio: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_target_api_usage_ratio", Help: "Share of the target's daily API limit used, from the last Sforce-Limit-Info."}),
		pausedGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_paused", Help: "1 while the worker pool is paused (the API budget or the org's configuration: see /readyz for the cause)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_queue_pending", Help: "Events waiting in the queue, not yet delivered."}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_queue_ack_pending", Help: "Events delivered and not yet settled, incl. those waiting for a retry."}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_queue_oldest_event_age_seconds", Help: "Age of the oldest event not yet synced (0 when the queue is empty)."}),
		dlqDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orgsync_dlq_messages", Help: "Dead letters waiting for replay."}),
	}
	reg.MustRegister(m.syncedTotal, m.dlqTotal, m.skippedByMap, m.retriedMsgs, m.apiCalls, m.batchSize,
		m.latency, m.usageRatio, m.pausedGauge, m.pending, m.ackPending, m.oldestAge, m.dlqDepth)
	return m
}

// ObserveCall counts a target call; pass it as salesforce.Config.Observe.
func (m *Metrics) ObserveCall(ci salesforce.CallInfo) {
	if m == nil {
		return
	}
	m.apiCalls.WithLabelValues(ci.Route, strconv.Itoa(ci.Status)).Inc()
}

func (m *Metrics) batch(n int) {
	if m != nil {
		m.batchSize.Observe(float64(n))
	}
}

func (m *Metrics) synced(n int, createdAt time.Time) {
	if m == nil {
		return
	}
	m.syncedTotal.Add(float64(n))
	if !createdAt.IsZero() {
		for range n {
			m.latency.Observe(time.Since(createdAt).Seconds())
		}
	}
}

func (m *Metrics) skipped(n int) {
	if m != nil {
		m.skippedByMap.Add(float64(n))
	}
}

func (m *Metrics) retried(n int) {
	if m != nil {
		m.retriedMsgs.Add(float64(n))
	}
}

func (m *Metrics) deadLettered(code string) {
	if m != nil {
		m.dlqTotal.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) usage(ratio float64) {
	if m != nil {
		m.usageRatio.Set(ratio)
	}
}

func (m *Metrics) setPaused(p bool) {
	if m == nil {
		return
	}
	if p {
		m.pausedGauge.Set(1)
	} else {
		m.pausedGauge.Set(0)
	}
}

func (m *Metrics) backlog(b queue.Backlog) {
	if m == nil {
		return
	}
	m.pending.Set(float64(b.Pending))
	m.ackPending.Set(float64(b.AckPending))
	m.dlqDepth.Set(float64(b.DLQ))
	if b.Oldest.IsZero() {
		m.oldestAge.Set(0)
	} else {
		m.oldestAge.Set(time.Since(b.Oldest).Seconds())
	}
}
