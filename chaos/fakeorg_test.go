package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const apiPath = "/services/data/v61.0"

// fakeOrg is a running cmd/fakeorg and a REST client of it (client
// credentials, client demo/demo-secret).
type fakeOrg struct {
	p   *proc
	url string

	mu    sync.Mutex
	token string
}

func (o *fakeOrg) getToken(ctx context.Context, renew bool) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.token != "" && !renew {
		return o.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo"}, "client_secret": {"demo-secret"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url+"/services/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("token: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", err
	}
	o.token = tok.AccessToken
	return o.token, nil
}

// call makes an authenticated REST call, renewing an expired token and
// retrying 503s (the target injects them), and decodes the answer into out.
func (o *fakeOrg) call(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var last error
	renew := false
	for attempt := 0; attempt < 30; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		tok, err := o.getToken(ctx, renew)
		if err != nil {
			last = err
			continue
		}
		renew = false
		req, err := http.NewRequestWithContext(ctx, method, o.url+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			renew, last = true, fmt.Errorf("%s %s: %s", method, path, resp.Status)
			continue
		case resp.StatusCode == http.StatusServiceUnavailable:
			last = fmt.Errorf("%s %s: %s", method, path, resp.Status)
			continue
		case resp.StatusCode >= 300:
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	return fmt.Errorf("giving up: %w", last)
}

// createAccounts creates one Account per name in one collections call
// (allOrNone) and returns their IDs in order.
func (o *fakeOrg) createAccounts(ctx context.Context, names []string) ([]string, error) {
	type rec struct {
		Attributes map[string]string `json:"attributes"`
		Name       string            `json:"Name"`
		Industry   string            `json:"Industry"`
	}
	body := struct {
		AllOrNone bool  `json:"allOrNone"`
		Records   []rec `json:"records"`
	}{AllOrNone: true}
	for _, n := range names {
		body.Records = append(body.Records, rec{map[string]string{"type": "Account"}, n, "Chaos"})
	}
	var res []struct {
		ID      string `json:"id"`
		Success bool   `json:"success"`
		Errors  []any  `json:"errors"`
	}
	if err := o.call(ctx, http.MethodPost, apiPath+"/composite/sobjects", body, &res); err != nil {
		return nil, err
	}
	if len(res) != len(names) {
		return nil, fmt.Errorf("create: %d results for %d records", len(res), len(names))
	}
	ids := make([]string, len(res))
	for i, r := range res {
		if !r.Success || r.ID == "" {
			return nil, fmt.Errorf("create %q: %v", names[i], r.Errors)
		}
		ids[i] = r.ID
	}
	return ids, nil
}

// account is one row of the accounting queries.
type account struct {
	ID       string `json:"Id"`
	Name     string `json:"Name"`
	SourceID string `json:"Source_Id__c"`
}

// query runs soql and follows nextRecordsUrl to the end.
func (o *fakeOrg) query(ctx context.Context, soql string) ([]account, error) {
	var all []account
	path := apiPath + "/query?q=" + url.QueryEscape(soql)
	for page := 0; page < 10000; page++ {
		var res struct {
			Done           bool      `json:"done"`
			NextRecordsURL string    `json:"nextRecordsUrl"`
			Records        []account `json:"records"`
		}
		if err := o.call(ctx, http.MethodGet, path, nil, &res); err != nil {
			return nil, err
		}
		all = append(all, res.Records...)
		if res.Done || res.NextRecordsURL == "" {
			return all, nil
		}
		path = res.NextRecordsURL
	}
	return nil, fmt.Errorf("query %q: too many pages", soql)
}

// configure changes the fake's live settings (PUT /_fake/config).
func (o *fakeOrg) configure(ctx context.Context, patch map[string]any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, o.url+"/_fake/config", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		rb, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT /_fake/config %s: %s: %s", b, resp.Status, rb)
	}
	return nil
}

// fakeStats is GET /_fake/stats.
type fakeStats struct {
	APICalls      int            `json:"api_calls"`
	ByRoute       map[string]int `json:"by_route"`
	Records       map[string]int `json:"records"`
	APIUsage      int            `json:"api_usage"`
	DailyAPILimit int            `json:"daily_api_limit"`
}

func (o *fakeOrg) stats(ctx context.Context) (fakeStats, error) {
	var s fakeStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url+"/_fake/stats", nil)
	if err != nil {
		return s, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /_fake/stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
