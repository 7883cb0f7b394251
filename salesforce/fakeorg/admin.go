package fakeorg

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
)

// Stats counts the calls an Org has served.
type Stats struct {
	// APICalls counts authenticated REST, Apex REST and SOAP calls, whatever
	// their outcome (OAuth, /_fake and the versions list are not counted).
	APICalls int `json:"api_calls"`
	// ByRoute splits APICalls by "METHOD template", the template being the
	// path after /services/data/vNN.N (or /apexrest/… for Apex REST) with
	// IDs and values replaced, and "POST /Soap/u/undelete" for SOAP
	// undelete(): see the package documentation.
	ByRoute map[string]int `json:"by_route"`
	// Subrequests counts the subrequests of composite calls by the same
	// "METHOD template" (they are not API calls of their own: the
	// composite call is one, under "POST /composite").
	Subrequests map[string]int `json:"subrequests_by_route"`
	// Records counts live records by sObject type.
	Records map[string]int `json:"records"`
	// APIUsage is the daily API usage, as in Sforce-Limit-Info.
	APIUsage int `json:"api_usage"`
	// DailyAPILimit is the daily API allocation.
	DailyAPILimit int `json:"daily_api_limit"`
}

// Stats returns a snapshot of the call counters.
func (o *Org) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	live := 0
	for _, a := range o.accounts {
		if !a.deleted {
			live++
		}
	}
	return Stats{
		APICalls: o.apiCalls, ByRoute: maps.Clone(o.byRoute), Subrequests: maps.Clone(o.subRoutes), Records: map[string]int{"Account": live},
		APIUsage: o.apiUsed, DailyAPILimit: o.live.dailyLimit,
	}
}

// Reset deletes every record, open query cursor and Bulk job, restarts the
// delete log (Get Deleted's earliestDateAvailable becomes now) and zeroes
// the call counters and the daily API and Bulk batch usage. Settings and
// tokens stay.
func (o *Org) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accounts = make(map[string]*account)
	o.order = nil
	o.extIndex = make(map[string][]string)
	o.locators = make(map[string]*locator)
	o.locOrder = nil
	for _, j := range o.jobs {
		if j.state == jobUploadComplete {
			j.state = jobAborted // stops its processing
		}
	}
	o.jobs = make(map[string]*bulkJob)
	o.jobOrder = nil
	o.qjobs = make(map[string]*queryJob)
	o.bulkBatches = 0
	o.apiUsed, o.apiCalls = 0, 0
	o.byRoute = make(map[string]int)
	o.subRoutes = make(map[string]int)
	o.logSince = o.nowUTC()
}

// adminError is the body of an admin endpoint's error.
type adminError struct {
	Error string `json:"error"`
}

// serveAdmin answers the loopback tooling endpoints under /_fake/ (no auth,
// not counted): GET /_fake/stats, GET|PUT /_fake/config, POST /_fake/reset,
// POST /_fake/undelete (undelete.go), and POST /_fake/tokens, which mints a refresh token and an access token
// tied to it (for clients outside Go, as IssueRefreshToken is for tests).
func (o *Org) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_fake/stats":
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusMethodNotAllowed, adminError{"use GET"})
			return
		}
		writeJSON(w, http.StatusOK, o.Stats())
	case "/_fake/config":
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut, http.MethodPatch, http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, adminError{"read body: " + err.Error()})
				return
			}
			var p ConfigPatch
			if err := json.Unmarshal(body, &p); err != nil {
				writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
				return
			}
			if err := o.Configure(p); err != nil {
				writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
				return
			}
			o.log.Info("fake org reconfigured")
		default:
			writeJSON(w, http.StatusMethodNotAllowed, adminError{"use GET or PUT"})
			return
		}
		writeJSON(w, http.StatusOK, o.currentConfig())
	case "/_fake/tokens":
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, adminError{"use POST"})
			return
		}
		refresh := o.IssueRefreshToken()
		writeJSON(w, http.StatusOK, map[string]string{
			"access_token": o.mintAccessToken(refresh), "refresh_token": refresh, "instance_url": baseURL(r),
		})
	case "/_fake/undelete":
		o.serveUndelete(w, r)
	case "/_fake/reset":
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, adminError{"use POST"})
			return
		}
		o.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusNotFound, adminError{"no such admin endpoint; try /_fake/stats, /_fake/config, /_fake/tokens, /_fake/undelete or /_fake/reset"})
	}
}
