package fakeorg

import (
	"fmt"
	"net/http"
	"time"
)

// Replication resources (sObject Get Updated / Get Deleted):
//
//	GET /sobjects/Account/updated/?start=…&end=…  → {"ids":[…],"latestDateCovered":…}
//	GET /sobjects/Account/deleted/?start=…&end=…  → {"deletedRecords":[{"id","deletedDate"}],
//	                                                  "earliestDateAvailable":…,"latestDateCovered":…}
const (
	// replicationMinVersion is the first API version with both resources.
	replicationMinVersion = 29
	// replicationWindow is how far back start may lie.
	replicationWindow = 30 * 24 * time.Hour
)

// replicationIDLimit is the most IDs one answer may hold; past it the call
// fails with EXCEEDED_ID_LIMIT. A variable so tests can lower it.
var replicationIDLimit = 600000

// replicationLayouts are the datetime forms start and end may take: ISO 8601
// with Z or a ±hh:mm offset (what the documentation asks for), optional
// fractional seconds, and Salesforce's own ±hhmm rendering, so that a
// latestDateCovered can be passed back as the next start.
var replicationLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
}

func errReplicationDate(msg string) *Error {
	return newError("INVALID_REPLICATION_DATE", msg)
}

// replicationSpan is a validated [start, end] window, seconds dropped.
type replicationSpan struct {
	start, end time.Time
	// covered is latestDateCovered: end, but never later than the current
	// minute, since minutes still running are not covered yet.
	covered time.Time
}

// parseReplicationSpan reads and checks ?start= and ?end=.
func (o *Org) parseReplicationSpan(r *http.Request) (replicationSpan, *Error) {
	q := r.URL.Query()
	var ts [2]time.Time
	for i, name := range []string{"start", "end"} {
		raw := q.Get(name)
		if raw == "" {
			return replicationSpan{}, newError("MISSING_ARGUMENT", fmt.Sprintf("Missing required parameter: %s", name))
		}
		t, ok := parseReplicationDate(raw)
		if !ok {
			return replicationSpan{}, errReplicationDate(fmt.Sprintf(
				"%s: '%s' is not a valid dateTime; use the ISO 8601 form YYYY-MM-DDThh:mm:ss+hh:mm, URL-encoded", name, raw))
		}
		// The API ignores the seconds of both values.
		ts[i] = t.UTC().Truncate(time.Minute)
	}
	start, end := ts[0], ts[1]
	now := o.nowUTC()
	if !end.After(start) {
		// Salesforce's wording, start and end swapped as it has them.
		return replicationSpan{}, errReplicationDate("startDate must be at least one minute greater than endDate")
	}
	if start.Before(now.Add(-replicationWindow)) {
		return replicationSpan{}, errReplicationDate("startDate cannot be more than 30 days ago")
	}
	covered := end
	if m := now.Truncate(time.Minute); covered.After(m) {
		covered = m
		if covered.Before(start) {
			covered = start
		}
	}
	return replicationSpan{start: start, end: end, covered: covered}, nil
}

func parseReplicationDate(s string) (time.Time, bool) {
	for _, layout := range replicationLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (s replicationSpan) contains(t time.Time) bool {
	return !t.Before(s.start) && !t.After(s.end)
}

func errExceededIDLimit() *Error {
	return newError("EXCEEDED_ID_LIMIT", fmt.Sprintf(
		"More than %d ids were found. Choose start and end dates that are closer together.", replicationIDLimit))
}

// replicationAllowed answers 404 for API versions before the resources existed.
func replicationAllowed(w http.ResponseWriter, c *call) bool {
	if c.major < replicationMinVersion {
		writeErrors(w, http.StatusNotFound, errNotFound())
		return false
	}
	return true
}

// updatedResult is the Get Updated answer.
type updatedResult struct {
	IDs               []string `json:"ids"`
	LatestDateCovered string   `json:"latestDateCovered"`
}

// handleUpdated answers GET /sobjects/Account/updated: the live accounts
// whose SystemModstamp (set on create and on every update) lies in the
// window, in creation order.
func (o *Org) handleUpdated(w http.ResponseWriter, r *http.Request, c *call) {
	if !replicationAllowed(w, c) {
		return
	}
	span, err := o.parseReplicationSpan(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	ids := []string{}
	o.mu.Lock()
	for _, id := range o.order {
		a := o.accounts[id]
		if ts, ok := a.f["SystemModstamp"].(time.Time); ok && !a.deleted && span.contains(ts) {
			ids = append(ids, id)
		}
	}
	o.mu.Unlock()
	if len(ids) > replicationIDLimit {
		writeErrors(w, http.StatusBadRequest, errExceededIDLimit())
		return
	}
	writeJSON(w, http.StatusOK, updatedResult{IDs: ids, LatestDateCovered: sfTime(span.covered)})
}

// deletedRecord is one element of deletedRecords.
type deletedRecord struct {
	ID          string `json:"id"`
	DeletedDate string `json:"deletedDate"`
}

// deletedResult is the Get Deleted answer.
type deletedResult struct {
	DeletedRecords        []deletedRecord `json:"deletedRecords"`
	EarliestDateAvailable string          `json:"earliestDateAvailable"`
	LatestDateCovered     string          `json:"latestDateCovered"`
}

// handleDeleted answers GET /sobjects/Account/deleted: the accounts in the
// recycle bin whose deletion (their SystemModstamp) lies in the window. The
// fake never purges its delete log, so earliestDateAvailable is the minute
// the log started (the org's creation or its last Reset).
func (o *Org) handleDeleted(w http.ResponseWriter, r *http.Request, c *call) {
	if !replicationAllowed(w, c) {
		return
	}
	span, err := o.parseReplicationSpan(r)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err)
		return
	}
	recs := []deletedRecord{}
	o.mu.Lock()
	for _, id := range o.order {
		a := o.accounts[id]
		if ts, ok := a.f["SystemModstamp"].(time.Time); ok && a.deleted && span.contains(ts) {
			recs = append(recs, deletedRecord{ID: id, DeletedDate: sfTime(ts)})
		}
	}
	since := o.logSince
	o.mu.Unlock()
	if len(recs) > replicationIDLimit {
		writeErrors(w, http.StatusBadRequest, errExceededIDLimit())
		return
	}
	writeJSON(w, http.StatusOK, deletedResult{
		DeletedRecords:        recs,
		EarliestDateAvailable: sfTime(since.Truncate(time.Minute)),
		LatestDateCovered:     sfTime(span.covered),
	})
}
