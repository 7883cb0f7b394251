package fakeorg_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"orgsync/salesforce/fakeorg"
)

// changeLog records the org's changes.
type changeLog struct {
	mu  sync.Mutex
	all []fakeorg.Change
}

func watchChanges(org *fakeorg.Org) *changeLog {
	l := &changeLog{}
	org.OnChange(func(c fakeorg.Change) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.all = append(l.all, c)
	})
	return l
}

func (l *changeLog) since(n int) []fakeorg.Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fakeorg.Change(nil), l.all[n:]...)
}

func (l *changeLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// TestChangeOriginFollowsCallOptions: every write path reports the
// changeOrigin Salesforce sets, com/salesforce/api/<api>/<version>, with
// ";client=<id>" when the writing request's Sforce-Call-Options names a
// client, and without it otherwise.
func TestChangeOriginFollowsCallOptions(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	log := watchChanges(f.org)
	seed := f.create(map[string]any{"Name": "seed"})
	hdr := func(opts string) map[string]string {
		h := map[string]string{"Authorization": "Bearer " + f.token}
		if opts != "" {
			h["Sforce-Call-Options"] = opts
		}
		return h
	}
	bulk := func(opts string) {
		var j jobInfo
		f.doWith(http.MethodPost, B+"/jobs/ingest", map[string]any{"object": "Account", "operation": "insert"}, hdr(opts)).
			want(t, http.StatusOK).decode(t, &j)
		f.upload(j.ID, "Name\nbulk\n").want(t, http.StatusCreated)
		f.setState(j.ID, "UploadComplete").want(t, http.StatusOK)
		if got := f.waitJob(j.ID); got.State != "JobComplete" {
			t.Fatalf("job %s", got.State)
		}
	}
	for _, tt := range []struct {
		name  string
		opts  string
		write func(opts string)
		want  []string // change type and origin, one per change
	}{
		{"REST create", "client=orgsync", func(o string) {
			f.doWith(http.MethodPost, B+"/sobjects/Account", map[string]any{"Name": "a"}, hdr(o)).want(t, http.StatusCreated)
		}, []string{"CREATE com/salesforce/api/rest/63.0;client=orgsync"}},
		{"REST update, no client", "", func(o string) {
			f.doWith(http.MethodPatch, B+"/sobjects/Account/"+seed, map[string]any{"Industry": "Energy"}, hdr(o)).want(t, http.StatusNoContent)
		}, []string{"UPDATE com/salesforce/api/rest/63.0"}},
		{"REST upsert, other options first", "defaultNamespace=battle, client=ETL", func(o string) {
			f.doWith(http.MethodPatch, "/services/data/v61.0/sobjects/Account/Source_Id__c/001000000000777",
				map[string]any{"Name": "u"}, hdr(o)).want(t, http.StatusCreated)
		}, []string{"CREATE com/salesforce/api/rest/61.0;client=ETL"}},
		{"collections", "client=orgsync", func(o string) {
			f.doWith(http.MethodPost, B+"/composite/sobjects", collection(false, map[string]any{"Name": "c1"}, map[string]any{"Name": "c2"}), hdr(o)).
				want(t, http.StatusOK)
		}, []string{"CREATE com/salesforce/api/rest/63.0;client=orgsync", "CREATE com/salesforce/api/rest/63.0;client=orgsync"}},
		{"composite", "client=orgsync", func(o string) {
			f.doWith(http.MethodPost, B+"/composite", map[string]any{"compositeRequest": []map[string]any{{
				"method": "POST", "url": B + "/sobjects/Account", "referenceId": "r1", "body": map[string]any{"Name": "comp"},
			}}}, hdr(o)).want(t, http.StatusOK)
		}, []string{"CREATE com/salesforce/api/rest/63.0;client=orgsync"}},
		{"composite allOrNone rolled back after a collection", "client=orgsync", func(o string) {
			f.doWith(http.MethodPost, B+"/composite", map[string]any{"allOrNone": true, "compositeRequest": []map[string]any{
				{"method": "POST", "url": B + "/composite/sobjects", "referenceId": "ok", "body": collection(false, map[string]any{"Name": "kept?"})},
				{"method": "PATCH", "url": B + "/sobjects/Account/001000000000999", "referenceId": "bad", "body": map[string]any{"Name": "x"}},
			}}, hdr(o)).want(t, http.StatusOK)
		}, nil},
		{"REST delete", "client=orgsync", func(o string) {
			f.doWith(http.MethodDelete, B+"/sobjects/Account/"+seed, nil, hdr(o)).want(t, http.StatusNoContent)
		}, []string{"DELETE com/salesforce/api/rest/63.0;client=orgsync"}},
		{"Bulk API 2.0", "client=orgsync", bulk, []string{"CREATE com/salesforce/api/bulkapi/63.0;client=orgsync"}},
		{"Bulk API 2.0, no client", "", bulk, []string{"CREATE com/salesforce/api/bulkapi/63.0"}},
		{"Apex REST", "client=orgsync", func(o string) {
			f.doWith(http.MethodPost, apexPath, `{"Name":"apex"}`, hdr(o)).want(t, http.StatusCreated)
		}, []string{"CREATE com/salesforce/api/rest/66.0;client=orgsync"}},
		{"undelete", "client=orgsync", func(o string) {
			f.doWith(http.MethodPost, "/_fake/undelete", map[string]any{"ids": []string{seed}}, hdr(o)).want(t, http.StatusOK)
		}, []string{"UNDELETE com/salesforce/api/soap/66.0;client=orgsync"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := log.len()
			tt.write(tt.opts)
			var got []string
			for _, c := range log.since(n) {
				got = append(got, c.Type+" "+c.Origin)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("changes %q, want %q", got, tt.want)
			}
		})
	}
	// Writes outside the APIs carry no origin.
	n := log.len()
	if _, err := f.org.InsertAccount(fakeorg.Record{"Name": "inserted"}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if c := log.since(n); len(c) != 1 || c[0].Origin != "" {
		t.Fatalf("InsertAccount changes %+v, want one without origin", c)
	}
}

// TestUndelete: POST /_fake/undelete restores deleted accounts (queryable
// again, UNDELETE changes with the whole record) and answers one result
// per ID; each bad ID fails alone.
func TestUndelete(t *testing.T) {
	f := newFixture(t, fakeorg.Config{})
	log := watchChanges(f.org)
	gone := f.create(map[string]any{"Name": "gone", "Industry": "Energy"})
	live := f.create(map[string]any{"Name": "live"})
	f.do(http.MethodDelete, B+"/sobjects/Account/"+gone, nil).want(t, http.StatusNoContent)
	f.do(http.MethodGet, B+"/sobjects/Account/"+gone, nil).want(t, http.StatusNotFound)
	n := log.len()
	var res []saveResult
	f.do(http.MethodPost, "/_fake/undelete", map[string]any{"ids": []string{gone, live, "001000000000999", "bad"}}).
		want(t, http.StatusOK).decode(t, &res)
	var codes []string
	for _, r := range res {
		codes = append(codes, r.code())
	}
	if want := []string{"", "UNDELETE_FAILED", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"}; strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Fatalf("results %q, want %q", codes, want)
	}
	if !res[0].Success || res[0].ID != gone {
		t.Fatalf("first result %+v, want success for %s", res[0], gone)
	}
	f.do(http.MethodGet, B+"/sobjects/Account/"+gone, nil).want(t, http.StatusOK)
	ch := log.since(n)
	if len(ch) != 1 || ch[0].Type != fakeorg.ChangeUndelete || ch[0].RecordID != gone {
		t.Fatalf("changes %+v, want one UNDELETE of %s", ch, gone)
	}
	if ch[0].Fields["Industry"] != "Energy" || ch[0].Fields["IsDeleted"] != false {
		t.Fatalf("UNDELETE fields %v, want the whole live record", ch[0].Fields)
	}
	if ch[0].Origin != "com/salesforce/api/soap/66.0" {
		t.Fatalf("origin %q", ch[0].Origin)
	}
	// Undeleting it again fails: it is no longer in the recycle bin.
	f.do(http.MethodPost, "/_fake/undelete", map[string]any{"ids": []string{gone}}).want(t, http.StatusOK).decode(t, &res)
	if res[0].code() != "UNDELETE_FAILED" {
		t.Fatalf("second undelete %+v", res[0])
	}
	for _, body := range []any{`{}`, `{"ids":"x"}`, `{"id":["x"]}`, `[]`} {
		f.do(http.MethodPost, "/_fake/undelete", body).want(t, http.StatusBadRequest)
	}
	f.do(http.MethodGet, "/_fake/undelete", nil).want(t, http.StatusMethodNotAllowed)
}
