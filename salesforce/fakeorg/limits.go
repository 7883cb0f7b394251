package fakeorg

import "net/http"

// limit is one entry of the /limits answer.
type limit struct {
	Max       int `json:"Max"`
	Remaining int `json:"Remaining"`
}

// fixedLimits are the other standard limits the fake reports, never used
// up: at least every key that the recorded /limits answers of 2018, 2020
// and 2022 (testdata/recorded/limits_*.json) all have.
var fixedLimits = map[string]int{
	"ConcurrentAsyncGetReportInstances":     200,
	"ConcurrentSyncReportRuns":              20,
	"DailyAsyncApexExecutions":              250000,
	"DailyBulkApiBatches":                   15000,
	"DailyBulkV2QueryFileStorageMB":         976562,
	"DailyBulkV2QueryJobs":                  10000,
	"DailyDurableGenericStreamingApiEvents": 10000,
	"DailyDurableStreamingApiEvents":        10000,
	"DailyGenericStreamingApiEvents":        10000,
	"DailyStreamingApiEvents":               1000000,
	"DailyWorkflowEmails":                   1000,
	"DurableStreamingApiConcurrentClients":  20,
	"FileStorageMB":                         20480,
	"HourlyAsyncReportRuns":                 1200,
	"HourlyDashboardRefreshes":              200,
	"HourlyDashboardResults":                5000,
	"HourlyDashboardStatuses":               999999999,
	"HourlyODataCallout":                    10000,
	"HourlyPublishedPlatformEvents":         250000,
	"HourlySyncReportRuns":                  500,
	"HourlyTimeBasedWorkflow":               1000,
	"MassEmail":                             5000,
	"SingleEmail":                           5000,
	"StreamingApiConcurrentClients":         20,
}

// dataStorageMB is the org's data storage; each record takes 2 KB, as in Salesforce.
const dataStorageMB = 1024

// handleLimits answers GET /limits. DailyApiRequests agrees with the
// Sforce-Limit-Info header; this call itself neither counts toward the daily
// limit nor is refused by it, so a client over budget can watch it free up.
func (o *Org) handleLimits(w http.ResponseWriter, r *http.Request, c *call) {
	out := make(map[string]limit, len(fixedLimits)+2)
	for k, v := range fixedLimits {
		out[k] = limit{Max: v, Remaining: v}
	}
	o.mu.Lock()
	out["DailyApiRequests"] = limit{Max: o.live.dailyLimit, Remaining: max(o.live.dailyLimit-o.apiUsed, 0)}
	bulk := "DailyBulkApiBatches"
	if c.major < 49 { // the limit's name in API v48.0 and earlier (testdata/recorded/limits_2018.json)
		delete(out, bulk)
		bulk = "DailyBulkApiRequests"
	}
	out[bulk] = limit{Max: dailyBulkBatches, Remaining: max(dailyBulkBatches-o.bulkBatches, 0)}
	live := 0
	for _, a := range o.accounts {
		if !a.deleted {
			live++
		}
	}
	o.mu.Unlock()
	usedMB := (live*2 + 1023) / 1024
	out["DataStorageMB"] = limit{Max: dataStorageMB, Remaining: max(dataStorageMB-usedMB, 0)}
	writeJSON(w, http.StatusOK, out)
}
