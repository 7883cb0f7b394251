package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Create inserts one record with POST sobjects/<sobject> (201). A failure is
// an *APIError.
func (c *Client) Create(ctx context.Context, sobject string, rec Record) (SaveResult, error) {
	route := "POST /sobjects/" + sobject
	if err := checkName("sobject", sobject); err != nil {
		return SaveResult{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, c.dataPath("/sobjects/"+sobject), route, outgoing(rec))
	if err != nil {
		return SaveResult{}, err
	}
	var r SaveResult
	if err := decode(resp, route, &r); err != nil {
		return SaveResult{}, err
	}
	c.redactResults([]SaveResult{r})
	return r, nil
}

// Upsert inserts or updates the record whose extIDField is extID with PATCH
// sobjects/<sobject>/<extIDField>/<extID>. The answer is 201 (created), 200
// (updated, API 46.0+, with the id) or 204 (updated, older versions, no id);
// the result's Created tells them apart. The external ID field and
// "attributes" are left out of the body. Several matching records (300) are
// an *APIError with Code MULTIPLE_CHOICES.
func (c *Client) Upsert(ctx context.Context, sobject, extIDField, extID string, rec Record) (SaveResult, error) {
	route := "PATCH /sobjects/" + sobject + "/{field}/{value}"
	if err := checkName("sobject", sobject); err != nil {
		return SaveResult{}, err
	}
	if err := checkName("external id field", extIDField); err != nil {
		return SaveResult{}, err
	}
	if err := checkValue("external id", extID); err != nil {
		return SaveResult{}, err
	}
	p := c.dataPath("/sobjects/" + sobject + "/" + extIDField + "/" + escapeSegment(extID))
	resp, err := c.do(ctx, http.MethodPatch, p, route, outgoing(rec, extIDField))
	if err != nil {
		return SaveResult{}, err
	}
	r := SaveResult{Success: true}
	if len(strings.TrimSpace(string(resp.Body))) > 0 {
		if err := decode(resp, route, &r); err != nil {
			return SaveResult{}, err
		}
	}
	switch resp.Status {
	case http.StatusCreated:
		r.Created = true
	case http.StatusNoContent:
		r.Created = false
	}
	c.redactResults([]SaveResult{r})
	return r, nil
}

// Get reads one record with GET sobjects/<sobject>/<id>, only the given
// fields if any (Id is always returned). "attributes" is stripped.
func (c *Client) Get(ctx context.Context, sobject, id string, fields ...string) (Record, error) {
	route := "GET /sobjects/" + sobject + "/{id}"
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	if err := checkValue("id", id); err != nil {
		return nil, err
	}
	p := c.dataPath("/sobjects/" + sobject + "/" + escapeSegment(id))
	if len(fields) > 0 {
		for _, f := range fields {
			if err := checkFieldPath(f); err != nil {
				return nil, err
			}
		}
		p += "?" + url.Values{"fields": {strings.Join(fields, ",")}}.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, p, route, nil)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := decode(resp, route, &m); err != nil {
		return nil, err
	}
	return incoming(m), nil
}

// Update changes fields of one record with PATCH sobjects/<sobject>/<id>
// (204). "attributes" and Id are left out of the body.
func (c *Client) Update(ctx context.Context, sobject, id string, rec Record) error {
	route := "PATCH /sobjects/" + sobject + "/{id}"
	if err := checkName("sobject", sobject); err != nil {
		return err
	}
	if err := checkValue("id", id); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodPatch, c.dataPath("/sobjects/"+sobject+"/"+escapeSegment(id)), route, outgoing(rec, "Id"))
	return err
}

// Delete deletes one record with DELETE sobjects/<sobject>/<id> (204). A
// record already deleted is an *APIError 404 ENTITY_IS_DELETED.
func (c *Client) Delete(ctx context.Context, sobject, id string) error {
	route := "DELETE /sobjects/" + sobject + "/{id}"
	if err := checkName("sobject", sobject); err != nil {
		return err
	}
	if err := checkValue("id", id); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, c.dataPath("/sobjects/"+sobject+"/"+escapeSegment(id)), route, nil)
	return err
}

func checkValue(what, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidRequest, what)
	}
	return nil
}

// checkFieldPath validates a field name, possibly through relationships
// ("Parent.Name").
func checkFieldPath(f string) error {
	for _, part := range strings.Split(f, ".") {
		if err := checkName("field", part); err != nil {
			return err
		}
	}
	return nil
}

// escapeSegment escapes a value for one path segment; "." and ".." are
// escaped too so that no server resolves them as path steps.
func escapeSegment(v string) string {
	e := url.PathEscape(v)
	if strings.Trim(e, ".") == "" {
		e = strings.ReplaceAll(e, ".", "%2E")
	}
	return e
}
