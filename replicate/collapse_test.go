package replicate

import (
	"maps"
	"testing"
	"time"

	"orgsync/event"
)

func TestCollapse(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ev := func(typ string, fields map[string]any) event.Event {
		at = at.Add(time.Second)
		e := event.Event{V: 1, Type: typ, SourceID: "001000000000001AAA", Fields: fields}
		if typ == event.TypeAccountCreated {
			e.CreatedAt = at
		} else {
			e.ChangedAt, e.ChangeKey = at, at.Format(time.RFC3339)
		}
		return e
	}
	const (
		c = event.TypeAccountCreated
		u = event.TypeAccountUpdated
		d = event.TypeAccountDeleted
		n = event.TypeAccountUndeleted
	)
	f := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		evs     []event.Event
		deletes DeleteMode
		op      op
		typ     string
		fields  map[string]any
	}{
		{"create alone", []event.Event{ev(c, f("Name", "A", "Phone", "1"))}, DeletesDelete, opCreate, c, f("Name", "A", "Phone", "1")},
		{"create then updates merge", []event.Event{ev(c, f("Name", "A", "Phone", "1")), ev(u, f("Phone", "2")), ev(u, f("Phone", nil, "Fax", "9"))},
			DeletesDelete, opCreate, c, f("Name", "A", "Phone", nil, "Fax", "9")},
		{"updates merge, the later wins", []event.Event{ev(u, f("Phone", "2", "Name", "B")), ev(u, f("Phone", "3"))}, DeletesDelete, opUpdate, u, f("Phone", "3", "Name", "B")},
		{"a delete wins over earlier changes", []event.Event{ev(c, f("Name", "A")), ev(u, f("Phone", "2")), ev(d, nil)}, DeletesDelete, opDelete, d, nil},
		{"changes after a delete are stale", []event.Event{ev(d, nil), ev(u, f("Phone", "2")), ev(c, f("Name", "A"))}, DeletesDelete, opDelete, d, nil},
		{"an undelete brings it back, later updates merge", []event.Event{ev(u, f("Phone", "1")), ev(d, nil), ev(n, f("Name", "A")), ev(u, f("Phone", "4"))},
			DeletesDelete, opUndelete, n, f("Name", "A", "Phone", "4")},
		{"an undelete alone", []event.Event{ev(n, f("Name", "A"))}, DeletesDelete, opUndelete, n, f("Name", "A")},
		{"an undelete of a live record is an update", []event.Event{ev(u, f("Phone", "1")), ev(n, f("Name", "A"))}, DeletesDelete, opUpdate, u, f("Phone", "1", "Name", "A")},
		{"deletes off: a delete is ignored", []event.Event{ev(u, f("Phone", "1")), ev(d, nil), ev(u, f("Phone", "2"))}, DeletesOff, opUpdate, u, f("Phone", "2")},
		{"deletes off: a delete alone is nothing", []event.Event{ev(d, nil)}, DeletesOff, opNone, "", nil},
		{"deletes off: an undelete is an update", []event.Event{ev(n, f("Name", "A"))}, DeletesOff, opUpdate, u, f("Name", "A")},
		{"deletes off: an undelete without fields is nothing", []event.Event{ev(n, nil)}, DeletesOff, opNone, u, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, out := collapse(tt.evs, tt.deletes)
			if got != tt.op {
				t.Fatalf("op = %d, want %d", got, tt.op)
			}
			if tt.op == opNone {
				return
			}
			if out.Type != tt.typ {
				t.Errorf("type = %q, want %q", out.Type, tt.typ)
			}
			if !maps.Equal(out.Fields, tt.fields) {
				t.Errorf("fields = %v, want %v", out.Fields, tt.fields)
			}
			if tt.op == opCreate && out.CreatedAt.IsZero() {
				t.Errorf("a collapsed create lost its CreatedAt")
			}
		})
	}
}

func TestSubjectMatches(t *testing.T) {
	ev := event.Event{Type: event.TypeAccountUpdated, SourceID: "001000000000001AAA"}
	tests := []struct {
		subject string
		want    bool
	}{
		{"orgsync.account.updated.001000000000001AAA.7", true},
		{"orgsync.account.updated.001000000000001AAA", true},
		{"orgsync.account.created.001000000000001AAA.7", false},
		{"orgsync.account.updated.001000000000002AAA.7", false},
		{"orgsync.account.updated.001000000000001AAA.x", false},
		{"orgsync.account.updated", false},
		{"orgsync.account.created", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.subject, ev); got != tt.want {
			t.Errorf("subjectMatches(%q) = %v, want %v", tt.subject, got, tt.want)
		}
	}
}
