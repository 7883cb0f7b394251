package fakeorg

import (
	"maps"
	"net/http"
	"reflect"
	"time"

	"orgsync/salesforce"
)

// Change types of a Change, named as in Change Data Capture.
const (
	ChangeCreate   = "CREATE"
	ChangeUpdate   = "UPDATE"
	ChangeDelete   = "DELETE"
	ChangeUndelete = "UNDELETE"
)

// Change is one committed write of an Account, whatever API made it: what a
// Change Data Capture event reports.
type Change struct {
	Type     string // ChangeCreate, ChangeUpdate, ChangeDelete or ChangeUndelete
	RecordID string // 18 characters
	// Fields is a copy of the record after the change (for a delete, as it
	// was), with canonical field names.
	Fields Record
	// Changed lists the fields whose value the change set or altered
	// (updates only), in schema order.
	Changed []string
	// Nulled lists the fields the change set to null (updates only).
	Nulled []string
	Time   time.Time // commit time, UTC
	// Origin is the changeOrigin Salesforce would report (see
	// changeOrigin); "" for writes made outside the APIs (InsertAccount).
	Origin string
}

// ChangeField is one Account field as change events carry it. Type is one
// of string, double, int, boolean, datetime, date and address (a compound
// field whose components are <Prefix>Street … <Prefix>GeocodeAccuracy).
type ChangeField struct {
	Name, Type string
}

// ChangeFields returns the Account fields a change event carries, in
// schema order: every field except Id, IsDeleted, SystemModstamp, the
// last-viewed dates and the components of compound address fields (which
// travel inside BillingAddress and ShippingAddress).
func (o *Org) ChangeFields() []ChangeField {
	var out []ChangeField
	for _, f := range o.schema.fields {
		switch f.Name {
		case "Id", "IsDeleted", "SystemModstamp", "LastViewedDate", "LastReferencedDate":
			continue
		}
		if isAddressComponent(f.Name) {
			continue
		}
		t := typeString
		switch f.Type {
		case typeBoolean, typeDateTime, typeDate, typeDouble, typeInt, typeAddress:
			t = f.Type
		case typeCurrency:
			t = typeDouble
		}
		out = append(out, ChangeField{Name: f.Name, Type: t})
	}
	return out
}

func isAddressComponent(name string) bool {
	for _, prefix := range addressParts {
		if len(name) > len(prefix) && name[:len(prefix)] == prefix && name != prefix+"Address" {
			return true
		}
	}
	return false
}

// OnChange registers fn to receive every committed Account change, in
// commit order. fn runs while the org's lock is held: it must return
// quickly and must not call the Org. Changes of an allOrNone call that is
// rolled back are never reported.
func (o *Org) OnChange(fn func(Change)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.listeners = append(o.listeners, fn)
}

// noteChange reports a change now, or when tx commits. The caller holds o.mu.
func (o *Org) noteChange(tx *txn, typ string, old, cur Record) {
	if len(o.listeners) == 0 {
		return
	}
	c := Change{Type: typ, RecordID: cur["Id"].(string), Fields: maps.Clone(cur), Time: o.nowUTC()}
	if tx != nil {
		c.Origin = tx.origin
	}
	if typ == ChangeUpdate {
		for _, f := range o.schema.fields {
			nv, ov := cur[f.Name], old[f.Name]
			if reflect.DeepEqual(nv, ov) && f.Name != "LastModifiedDate" {
				continue
			}
			c.Changed = append(c.Changed, f.Name)
			if nv == nil {
				c.Nulled = append(c.Nulled, f.Name)
			}
		}
	}
	emit := func() {
		for _, fn := range o.listeners {
			fn(c)
		}
	}
	if tx == nil || tx.direct {
		emit()
		return
	}
	tx.pending = append(tx.pending, emit)
}

// commit reports the changes of a transaction that was not rolled back
// (for a composite subrequest's, once the whole call was not).
func (t *txn) commit() {
	if t.inComposite {
		return
	}
	for _, fn := range t.pending {
		fn()
	}
	t.pending = nil
}

// ValidAccessToken reports whether tok is a live access token of the org
// (for servers beside the REST API, like the Pub/Sub API fake).
func (o *Org) ValidAccessToken(tok string) bool { return o.validToken(tok) }

// API names of changeOrigin.
const (
	apiREST = "rest"
	apiBulk = "bulkapi"
	apiSOAP = "soap"
)

// changeOrigin renders the changeOrigin Salesforce reports for a write made
// through api at version ("66.0"):
// com/salesforce/api/<api>/<version>, then ";client=<id>" when the
// request's Sforce-Call-Options header names a client ("client=orgsync",
// options separated by commas or semicolons); without one the suffix is
// left out, as Salesforce does.
func changeOrigin(api, version string, h http.Header) string {
	origin := "com/salesforce/api/" + api + "/" + version
	if client := salesforce.CallOptionsClient(h.Get("Sforce-Call-Options")); client != "" {
		origin += ";client=" + client
	}
	return origin
}
