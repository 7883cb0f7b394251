package fakeorg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ConfigPatch changes the live settings of an Org; nil fields are left
// alone. It is what PUT /_fake/config decodes, with JSON names latency
// ("20ms"), latency_per_record ("50us"), fail_rate, lock_rate, token_ttl ("4s"), reject_name (a regular
// expression; "" lifts the rule), daily_api_limit, page_size,
// redirect_hosts and bulk_processing_delay ("2s").
type ConfigPatch struct {
	Latency *time.Duration
	// LatencyPerRecord is Config.LatencyPerRecord.
	LatencyPerRecord *time.Duration
	FailRate         *float64
	LockRate         *float64
	TokenTTL         *time.Duration
	RejectName       *string
	DailyAPILimit    *int
	PageSize         *int
	// RedirectHosts replaces the old-host redirects when non-nil (an empty
	// map removes them).
	RedirectHosts map[string]string
	// BulkProcessingDelay applies to Bulk jobs closed from then on.
	BulkProcessingDelay *time.Duration
}

// configJSON is the wire form of the live settings.
type configJSON struct {
	Latency       *string           `json:"latency,omitempty"`
	PerRecord     *string           `json:"latency_per_record,omitempty"`
	FailRate      *float64          `json:"fail_rate,omitempty"`
	LockRate      *float64          `json:"lock_rate,omitempty"`
	TokenTTL      *string           `json:"token_ttl,omitempty"`
	RejectName    *string           `json:"reject_name,omitempty"`
	DailyAPILimit *int              `json:"daily_api_limit,omitempty"`
	PageSize      *int              `json:"page_size,omitempty"`
	RedirectHosts map[string]string `json:"redirect_hosts,omitempty"`
	BulkDelay     *string           `json:"bulk_processing_delay,omitempty"`
}

// UnmarshalJSON reads the PUT /_fake/config body; unknown keys are errors.
func (p *ConfigPatch) UnmarshalJSON(b []byte) error {
	var c configJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("fakeorg: config: %w", err)
	}
	parse := func(name string, s *string) (*time.Duration, error) {
		if s == nil {
			return nil, nil
		}
		d, err := time.ParseDuration(*s)
		if err != nil {
			return nil, fmt.Errorf("fakeorg: config: %s: want a duration like \"20ms\", got %q", name, *s)
		}
		return &d, nil
	}
	var out ConfigPatch
	var err error
	if out.Latency, err = parse("latency", c.Latency); err != nil {
		return err
	}
	if out.LatencyPerRecord, err = parse("latency_per_record", c.PerRecord); err != nil {
		return err
	}
	if out.TokenTTL, err = parse("token_ttl", c.TokenTTL); err != nil {
		return err
	}
	if out.BulkProcessingDelay, err = parse("bulk_processing_delay", c.BulkDelay); err != nil {
		return err
	}
	out.FailRate, out.LockRate, out.RejectName = c.FailRate, c.LockRate, c.RejectName
	out.DailyAPILimit, out.PageSize, out.RedirectHosts = c.DailyAPILimit, c.PageSize, c.RedirectHosts
	*p = out
	return nil
}

// Configure applies p atomically: if any value is invalid nothing changes.
func (o *Org) Configure(p ConfigPatch) error {
	var errs []error
	rate := func(name string, v *float64) {
		if v != nil && !(*v >= 0 && *v <= 1) {
			errs = append(errs, fmt.Errorf("%s %v outside 0..1", name, *v))
		}
	}
	rate("fail_rate", p.FailRate)
	rate("lock_rate", p.LockRate)
	if p.Latency != nil && *p.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v is negative", *p.Latency))
	}
	if p.LatencyPerRecord != nil && *p.LatencyPerRecord < 0 {
		errs = append(errs, fmt.Errorf("latency_per_record %v is negative", *p.LatencyPerRecord))
	}
	if p.BulkProcessingDelay != nil && *p.BulkProcessingDelay < 0 {
		errs = append(errs, fmt.Errorf("bulk_processing_delay %v is negative", *p.BulkProcessingDelay))
	}
	if p.TokenTTL != nil && *p.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("token_ttl %v is negative", *p.TokenTTL))
	}
	if p.DailyAPILimit != nil && *p.DailyAPILimit < 1 {
		errs = append(errs, fmt.Errorf("daily_api_limit %d is not positive", *p.DailyAPILimit))
	}
	if p.PageSize != nil && (*p.PageSize < 1 || *p.PageSize > DefaultPageSize) {
		errs = append(errs, fmt.Errorf("page_size %d outside 1..%d", *p.PageSize, DefaultPageSize))
	}
	var re *regexp.Regexp
	if p.RejectName != nil && *p.RejectName != "" {
		var err error
		if re, err = regexp.Compile(*p.RejectName); err != nil {
			errs = append(errs, fmt.Errorf("reject_name: %w", err))
		}
	}
	for host, target := range p.RedirectHosts {
		if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
			errs = append(errs, fmt.Errorf("redirect_hosts[%q]: %q is not an http(s) base URL", host, target))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("fakeorg: config: %w", errors.Join(errs...))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	l := &o.live
	if p.Latency != nil {
		l.latency = *p.Latency
	}
	if p.LatencyPerRecord != nil {
		l.perRecord = *p.LatencyPerRecord
	}
	if p.FailRate != nil {
		l.failRate = *p.FailRate
	}
	if p.LockRate != nil {
		l.lockRate = *p.LockRate
	}
	if p.TokenTTL != nil {
		l.tokenTTL = *p.TokenTTL
	}
	if p.BulkProcessingDelay != nil {
		l.bulkDelay = *p.BulkProcessingDelay
	}
	if p.DailyAPILimit != nil {
		l.dailyLimit = *p.DailyAPILimit
	}
	if p.PageSize != nil {
		l.pageSize = *p.PageSize
	}
	if p.RejectName != nil {
		l.rejectName, l.rejectRE = *p.RejectName, re
	}
	if p.RedirectHosts != nil {
		l.redirectHosts = make(map[string]string, len(p.RedirectHosts))
		for h, t := range p.RedirectHosts {
			l.redirectHosts[strings.ToLower(h)] = t
		}
	}
	return nil
}

// currentConfig renders the live settings in their wire form.
func (o *Org) currentConfig() map[string]any {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.live
	hosts := make(map[string]string, len(l.redirectHosts))
	for h, t := range l.redirectHosts {
		hosts[h] = t
	}
	return map[string]any{
		"latency": l.latency.String(), "latency_per_record": l.perRecord.String(), "fail_rate": l.failRate, "lock_rate": l.lockRate,
		"token_ttl": l.tokenTTL.String(), "reject_name": l.rejectName, "daily_api_limit": l.dailyLimit,
		"page_size": l.pageSize, "redirect_hosts": hosts, "bulk_processing_delay": l.bulkDelay.String(),
		"org_id": o.orgID, "external_id_field": o.schema.extID.Name,
	}
}
