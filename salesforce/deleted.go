package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DeletedRecord is one record of a Get Deleted answer.
type DeletedRecord struct {
	ID          string    // 18 characters
	DeletedDate time.Time // UTC
}

// DeletedResult is the answer of the Get Deleted resource.
type DeletedResult struct {
	Records []DeletedRecord
	// EarliestDateAvailable is the oldest time the org's delete log covers:
	// deletes before it may have been purged from the log and cannot be
	// listed any more.
	EarliestDateAvailable time.Time
	// LatestDateCovered is the newest time the answer covers; the next
	// window should start there.
	LatestDateCovered time.Time
}

// GetDeleted lists the records of sobject deleted between start and end
// (GET sobjects/<sobject>/deleted/?start=…&end=…). Salesforce ignores the
// seconds of both, wants end at least a minute after start and start at most
// 30 days back (INVALID_REPLICATION_DATE otherwise), and answers
// EXCEEDED_ID_LIMIT past 600,000 records; those failures are *APIError.
func (c *Client) GetDeleted(ctx context.Context, sobject string, start, end time.Time) (DeletedResult, error) {
	route := "GET /sobjects/" + sobject + "/deleted"
	if err := checkName("sobject", sobject); err != nil {
		return DeletedResult{}, err
	}
	q := url.Values{}
	q.Set("start", start.UTC().Format(time.RFC3339))
	q.Set("end", end.UTC().Format(time.RFC3339))
	resp, err := c.do(ctx, http.MethodGet, c.dataPath("/sobjects/"+sobject+"/deleted/")+"?"+q.Encode(), route, nil)
	if err != nil {
		return DeletedResult{}, err
	}
	r, err := ParseDeleted(resp.Body)
	if err != nil {
		return DeletedResult{}, fmt.Errorf("salesforce: %s: %w", route, err)
	}
	return r, nil
}

// ParseDeleted decodes a Get Deleted answer:
//
//	{"deletedRecords":[{"id":"001…","deletedDate":"2026-11-22T10:00:00.000+0000"}],
//	 "earliestDateAvailable":"…","latestDateCovered":"…"}
//
// Record IDs are normalised to 18 characters; an ID that is not a record
// ID, a date that is not a Salesforce dateTime or a missing
// latestDateCovered is an error.
func ParseDeleted(body []byte) (DeletedResult, error) {
	var raw struct {
		DeletedRecords []struct {
			ID          string `json:"id"`
			DeletedDate string `json:"deletedDate"`
		} `json:"deletedRecords"`
		EarliestDateAvailable string `json:"earliestDateAvailable"`
		LatestDateCovered     string `json:"latestDateCovered"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return DeletedResult{}, fmt.Errorf("decoding the deleted records: %w", err)
	}
	var (
		out DeletedResult
		err error
	)
	if raw.LatestDateCovered == "" {
		return DeletedResult{}, fmt.Errorf("the answer has no latestDateCovered")
	}
	if out.LatestDateCovered, err = parseDateTime(raw.LatestDateCovered); err != nil {
		return DeletedResult{}, fmt.Errorf("latestDateCovered: %w", err)
	}
	if raw.EarliestDateAvailable != "" {
		if out.EarliestDateAvailable, err = parseDateTime(raw.EarliestDateAvailable); err != nil {
			return DeletedResult{}, fmt.Errorf("earliestDateAvailable: %w", err)
		}
	}
	out.Records = make([]DeletedRecord, 0, len(raw.DeletedRecords))
	for i, r := range raw.DeletedRecords {
		id, err := NormalizeID(r.ID)
		if err != nil {
			return DeletedResult{}, fmt.Errorf("deletedRecords[%d].id: %w", i, err)
		}
		d, err := parseDateTime(r.DeletedDate)
		if err != nil {
			return DeletedResult{}, fmt.Errorf("deletedRecords[%d].deletedDate: %w", i, err)
		}
		out.Records = append(out.Records, DeletedRecord{ID: id, DeletedDate: d})
	}
	return out, nil
}

// parseDateTime reads a dateTime as Salesforce writes it
// ("2026-11-22T10:00:00.000+0000") or as RFC 3339, in UTC.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a dateTime", clipText(s, 40))
}
