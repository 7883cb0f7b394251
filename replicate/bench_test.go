package replicate

import (
	"fmt"
	"testing"
	"time"

	"orgsync/queue"
	"orgsync/salesforce/fakeorg"
)

// BenchmarkBacklog drains a backlog of b.N events with one worker against
// the fake org at several latencies and reports records per target write
// call and records per second. Run it with a fixed backlog, e.g.
//
//	go test -run=NONE -bench=Backlog -benchtime=20000x ./replicate
func BenchmarkBacklog(b *testing.B) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", latency), func(b *testing.B) {
			h := newHarness(b, fakeorg.Config{Latency: latency}, queue.Config{})
			ns := names("Bench", b.N)
			h.publish(0, ns...)
			b.ResetTimer()
			start := time.Now()
			h.startWorker("bench", func(c *Config) { c.BulkThreshold = -1 }) // collections and composite calls only
			h.waitFor("backlog drained", 10*time.Minute, func() bool {
				return h.org.Stats().Records["Account"] == b.N && h.settled()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			st := h.org.Stats()
			calls := st.ByRoute["PATCH /composite/sobjects/Account/{field}"] + st.ByRoute["POST /composite"]
			b.ReportMetric(float64(b.N)/float64(max(calls, 1)), "records/call")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
