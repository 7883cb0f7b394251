package salesforce

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limit is one entry of GET /limits.
type Limit struct {
	Max       int `json:"Max"`
	Remaining int `json:"Remaining"`
}

// Limits returns the org's limits (GET limits), e.g. "DailyApiRequests".
func (c *Client) Limits(ctx context.Context) (map[string]Limit, error) {
	const route = "GET /limits"
	resp, err := c.do(ctx, http.MethodGet, c.dataPath("/limits"), route, nil)
	if err != nil {
		return nil, err
	}
	var m map[string]Limit
	if err := decode(resp, route, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// APIUsage is the org's daily API usage from a Sforce-Limit-Info header.
type APIUsage struct {
	Used, Max int
	At        time.Time // when the response carrying it arrived
}

// Ratio is Used/Max (0 when Max is 0); it may exceed 1.
func (u APIUsage) Ratio() float64 {
	if u.Max <= 0 {
		return 0
	}
	return float64(u.Used) / float64(u.Max)
}

// Usage returns the last Sforce-Limit-Info seen on any response, and false
// before the first one.
func (c *Client) Usage() (APIUsage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usage, c.haveUsage
}

func (c *Client) trackUsage(h http.Header) {
	for _, v := range h.Values("Sforce-Limit-Info") {
		if u, ok := ParseLimitInfo(v); ok {
			u.At = time.Now()
			c.mu.Lock()
			c.usage, c.haveUsage = u, true
			c.mu.Unlock()
			return
		}
	}
}

// ParseLimitInfo parses the api-usage part of a Sforce-Limit-Info header,
// "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)", and
// reports whether it found a well-formed one (Used ≥ 0, Max > 0). At is
// left zero.
func ParseLimitInfo(h string) (APIUsage, bool) {
	for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == ';' || r == ',' }) {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "api-usage") {
			continue
		}
		used, max, ok := strings.Cut(strings.TrimSpace(v), "/")
		if !ok {
			return APIUsage{}, false
		}
		u, err1 := strconv.Atoi(strings.TrimSpace(used))
		m, err2 := strconv.Atoi(strings.TrimSpace(max))
		if err1 != nil || err2 != nil || u < 0 || m <= 0 {
			return APIUsage{}, false
		}
		return APIUsage{Used: u, Max: m}, true
	}
	return APIUsage{}, false
}

// DailyUsage returns the org's daily API usage from a GET /limits answer
// (its DailyApiRequests entry), and false when the answer has none.
func DailyUsage(limits map[string]Limit) (APIUsage, bool) {
	d, ok := limits["DailyApiRequests"]
	if !ok || d.Max <= 0 {
		return APIUsage{}, false
	}
	return APIUsage{Used: d.Max - d.Remaining, Max: d.Max, At: time.Now()}, true
}
