package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"orgsync/event"
)

const (
	org15   = "00D000000000001"
	org18   = "00D000000000001EAA"
	acct15  = "001000000000001"
	acct18  = "001000000000001AAA"
	paren15 = "001000000000002"
	paren18 = "001000000000002AAA"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    event.Event
		wantErr string
	}{
		{
			name: "created with 15-char ids normalised",
			body: `{"v":1,"type":"account.created","source_org":"` + org15 + `","source_id":"` + acct15 + `","created_at":"2026-11-22T10:00:00Z","fields":{"Name":"Acme","ParentId":"` + paren15 + `","NumberOfEmployees":12}}`,
			want: event.Event{V: 1, Type: "account.created", SourceOrg: org18, SourceID: acct18,
				CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
				Fields:    map[string]any{"Name": "Acme", "ParentId": paren18, "NumberOfEmployees": json.Number("12")}},
		},
		{
			name: "link",
			body: `{"v":1,"type":"account.link","source_org":"` + org18 + `","source_id":"` + acct18 + `","parent_id":"` + paren15 + `"}`,
			want: event.Event{V: 1, Type: "account.link", SourceOrg: org18, SourceID: acct18, ParentID: paren18},
		},
		{
			name: "empty ParentId dropped",
			body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `","fields":{"Name":"A","ParentId":""}}`,
			want: event.Event{V: 1, Type: "account.created", SourceOrg: org18, SourceID: acct18, Fields: map[string]any{"Name": "A"}},
		},
		{name: "not json", body: `nope`, wantErr: "invalid character"},
		{name: "empty", body: ``, wantErr: "EOF"},
		{name: "array", body: `[]`, wantErr: "cannot unmarshal array"},
		{name: "no source_id", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `"}`, wantErr: "no source_id"},
		{name: "bad source_id", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"001000000000001AAB"}`, wantErr: "source_id"},
		{name: "contact id", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"003000000000001"}`, wantErr: "key prefix"},
		{name: "bad org", body: `{"v":1,"type":"account.created","source_org":"x","source_id":"` + acct18 + `"}`, wantErr: "source_org"},
		{name: "version 2", body: `{"v":2,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `"}`, wantErr: "version 2"},
		{name: "unknown type", body: `{"v":1,"type":"account.merged","source_org":"` + org18 + `","source_id":"` + acct18 + `"}`, wantErr: "type"},
		{
			name: "updated with a blanked field",
			body: `{"v":1,"type":"account.updated","source_org":"` + org18 + `","source_id":"` + acct18 + `","changed_at":"2026-11-22T10:05:00.123Z","change_key":"tx1:2","fields":{"Phone":null,"Name":"Acme Ltd","ParentId":""}}`,
			want: event.Event{V: 1, Type: "account.updated", SourceOrg: org18, SourceID: acct18,
				ChangedAt: time.Date(2026, 11, 22, 10, 5, 0, 123e6, time.UTC), ChangeKey: "tx1:2",
				Fields: map[string]any{"Phone": nil, "Name": "Acme Ltd", "ParentId": nil}},
		},
		{
			name: "deleted",
			body: `{"v":1,"type":"account.deleted","source_org":"` + org18 + `","source_id":"` + acct18 + `","changed_at":"2026-11-22T10:05:00Z","change_key":"k"}`,
			want: event.Event{V: 1, Type: "account.deleted", SourceOrg: org18, SourceID: acct18,
				ChangedAt: time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC), ChangeKey: "k"},
		},
		{name: "deleted without changed_at", body: `{"v":1,"type":"account.deleted","source_org":"` + org18 + `","source_id":"` + acct18 + `","change_key":"k"}`, wantErr: "changed_at"},
		{name: "updated without change_key", body: `{"v":1,"type":"account.updated","source_org":"` + org18 + `","source_id":"` + acct18 + `","changed_at":"2026-11-22T10:05:00Z"}`, wantErr: "change_key"},
		{name: "change_key with a space", body: `{"v":1,"type":"account.undeleted","source_org":"` + org18 + `","source_id":"` + acct18 + `","changed_at":"2026-11-22T10:05:00Z","change_key":"a b"}`, wantErr: "change_key"},
		{name: "deleted with fields", body: `{"v":1,"type":"account.deleted","source_org":"` + org18 + `","source_id":"` + acct18 + `","changed_at":"2026-11-22T10:05:00Z","change_key":"k","fields":{"Name":"x"}}`, wantErr: "fields"},
		{name: "link without parent", body: `{"v":1,"type":"account.link","source_org":"` + org18 + `","source_id":"` + acct18 + `"}`, wantErr: "parent_id"},
		{name: "Id in fields", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `","fields":{"Id":"x"}}`, wantErr: "never copied"},
		{name: "ParentId not string", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `","fields":{"ParentId":5}}`, wantErr: "ParentId"},
		{name: "bad field name", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `","fields":{"a b":1}}`, wantErr: "field name"},
		{name: "trailing data", body: `{"v":1,"type":"account.link","source_org":"` + org18 + `","source_id":"` + acct18 + `","parent_id":"` + paren18 + `"} {}`, wantErr: "trailing"},
		{name: "bad created_at", body: `{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `","created_at":"yesterday"}`, wantErr: "parsing time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := event.Decode([]byte(tt.body))
			if tt.wantErr != "" {
				if !errors.Is(err, event.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode error = %v, want ErrMalformed mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("Decode = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestMsgID(t *testing.T) {
	c := event.Event{V: 1, Type: event.TypeAccountCreated, SourceOrg: org18, SourceID: acct18}
	if got, want := c.MsgID(), org18+":"+acct18+":created"; got != want {
		t.Errorf("created MsgID = %q, want %q", got, want)
	}
	l := event.Event{V: 1, Type: event.TypeAccountLink, SourceOrg: org18, SourceID: acct18, ParentID: paren18}
	if got, want := l.MsgID(), org18+":"+acct18+":link:"+paren18; got != want {
		t.Errorf("link MsgID = %q, want %q", got, want)
	}
}

func TestNewAccountCreated(t *testing.T) {
	allow, err := event.ParseFields("")
	if err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{
		"attributes":  map[string]any{"type": "Account"},
		"Id":          acct15,
		"Name":        "Acme",
		"phone":       "555", // API names are case-insensitive
		"OwnerId":     "005000000000001AAA",
		"CreatedDate": "2026-11-22T10:00:00.000+0000",
		"Website":     nil,
		"Secret__c":   "not allow-listed",
		"ParentId":    paren15,
	}
	e, err := event.NewAccountCreated(org15, rec, allow)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"Name": "Acme", "phone": "555", "Website": nil, "ParentId": paren18}
	gotJSON, _ := json.Marshal(e.Fields)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("fields = %s, want %s", gotJSON, wantJSON)
	}
	if e.SourceID != acct18 || e.SourceOrg != org18 || !e.CreatedAt.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("event = %+v", e)
	}
	if e.ParentSourceID() != paren18 {
		t.Errorf("ParentSourceID = %q, want %q", e.ParentSourceID(), paren18)
	}
	// Round trip through the wire format.
	body, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := event.Decode(body)
	if err != nil {
		t.Fatalf("Decode(Encode(e)): %v", err)
	}
	if back.MsgID() != e.MsgID() || back.Fields["Name"] != "Acme" {
		t.Errorf("round trip = %+v", back)
	}

	if _, err := event.NewAccountCreated(org15, map[string]any{"Name": "x"}, allow); !errors.Is(err, event.ErrMalformed) {
		t.Errorf("record without Id: err = %v, want ErrMalformed", err)
	}
	if _, err := event.NewAccountCreated(org15, map[string]any{"Id": acct15, "CreatedDate": "soon"}, allow); !errors.Is(err, event.ErrMalformed) {
		t.Errorf("bad CreatedDate: err = %v, want ErrMalformed", err)
	}
}

func TestParseFields(t *testing.T) {
	f, err := event.ParseFields(" Name, phone ,Name,,Custom__c")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Names(), ","); got != "Name,phone,Custom__c" {
		t.Errorf("Names = %q", got)
	}
	if !f.Has("PHONE") || f.Has("Fax") {
		t.Errorf("Has: PHONE=%v Fax=%v", f.Has("PHONE"), f.Has("Fax"))
	}
	for _, bad := range []string{"Name,OwnerId", "Id", "Name,Bad Field", "SystemModstamp"} {
		if _, err := event.ParseFields(bad); err == nil {
			t.Errorf("ParseFields(%q) accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"account.created","source_org":"` + org18 + `","source_id":"` + acct18 + `","fields":{"Name":"A","ParentId":"` + paren15 + `"}}`))
	f.Add([]byte(`{"v":1,"type":"account.link","source_org":"` + org18 + `","source_id":"` + acct18 + `","parent_id":"` + paren18 + `"}`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := event.Decode(body)
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// A decoded event re-encodes to a body that decodes to the same key.
		again, err := e.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		e2, err := event.Decode(again)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))): %v", body, err)
		}
		if e2.MsgID() != e.MsgID() || len(e.SourceID) != 18 {
			t.Fatalf("round trip changed the event: %+v vs %+v", e, e2)
		}
	})
}

func TestMsgIDAndChange(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)
	tests := []struct {
		ev         event.Event
		msgID      string
		change     string
		ordered    bool
		wantWhenAt time.Time
	}{
		{event.Event{Type: event.TypeAccountCreated, SourceOrg: org18, SourceID: acct18, CreatedAt: at},
			org18 + ":" + acct18 + ":created", "created", false, at},
		{event.Event{Type: event.TypeAccountLink, SourceOrg: org18, SourceID: acct18, ParentID: paren18},
			org18 + ":" + acct18 + ":link:" + paren18, "link", false, time.Time{}},
		{event.Event{Type: event.TypeAccountUpdated, SourceOrg: org18, SourceID: acct18, ChangedAt: at, ChangeKey: "tx:3"},
			org18 + ":" + acct18 + ":updated:tx:3", "updated", true, at},
		{event.Event{Type: event.TypeAccountDeleted, SourceOrg: org18, SourceID: acct18, ChangedAt: at, ChangeKey: "m:h"},
			org18 + ":" + acct18 + ":deleted:m:h", "deleted", true, at},
		{event.Event{Type: event.TypeAccountUndeleted, SourceOrg: org18, SourceID: acct18, ChangedAt: at, ChangeKey: "m:h"},
			org18 + ":" + acct18 + ":undeleted:m:h", "undeleted", true, at},
	}
	for _, tt := range tests {
		if got := tt.ev.MsgID(); got != tt.msgID {
			t.Errorf("%s: MsgID = %q, want %q", tt.ev.Type, got, tt.msgID)
		}
		if got := tt.ev.Change(); got != tt.change {
			t.Errorf("%s: Change = %q, want %q", tt.ev.Type, got, tt.change)
		}
		if got := event.TypeOf(tt.change); got != tt.ev.Type {
			t.Errorf("TypeOf(%q) = %q, want %q", tt.change, got, tt.ev.Type)
		}
		if got := tt.ev.Ordered(); got != tt.ordered {
			t.Errorf("%s: Ordered = %v, want %v", tt.ev.Type, got, tt.ordered)
		}
		if got := tt.ev.When(); !got.Equal(tt.wantWhenAt) {
			t.Errorf("%s: When = %v, want %v", tt.ev.Type, got, tt.wantWhenAt)
		}
	}
}
