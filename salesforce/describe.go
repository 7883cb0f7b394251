package salesforce

import (
	"context"
	"net/http"
	"strings"
)

// Describe is the part of an sObject describe orgsync uses.
type Describe struct {
	Name      string  `json:"name"`
	Label     string  `json:"label"`
	KeyPrefix string  `json:"keyPrefix"`
	Custom    bool    `json:"custom"`
	Fields    []Field `json:"fields"`
}

// Field is one field of a Describe.
type Field struct {
	Name             string   `json:"name"`
	Label            string   `json:"label"`
	Type             string   `json:"type"`
	Length           int      `json:"length"`
	ExternalID       bool     `json:"externalId"`
	Unique           bool     `json:"unique"`
	CaseSensitive    bool     `json:"caseSensitive"`
	Nillable         bool     `json:"nillable"`
	Createable       bool     `json:"createable"`
	Updateable       bool     `json:"updateable"`
	Custom           bool     `json:"custom"`
	ReferenceTo      []string `json:"referenceTo"`
	RelationshipName string   `json:"relationshipName"`
}

// Field returns the field named name, compared without regard to case.
func (d *Describe) Field(name string) (Field, bool) {
	for _, f := range d.Fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Field{}, false
}

// Describe returns the describe of an sObject (GET sobjects/<sobject>/describe).
func (c *Client) Describe(ctx context.Context, sobject string) (*Describe, error) {
	route := "GET /sobjects/" + sobject + "/describe"
	if err := checkName("sobject", sobject); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, c.dataPath("/sobjects/"+sobject+"/describe"), route, nil)
	if err != nil {
		return nil, err
	}
	var d Describe
	if err := decode(resp, route, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
