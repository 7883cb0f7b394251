package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"orgsync/event"
	"orgsync/salesforce"
	"orgsync/store"
)

// memSource is a Source over a map of source records.
type memSource struct {
	recs   map[string]map[string]any // source ID → fields
	calls  int
	failAt int // Page fails on this call (1-based); 0 never
}

func (m *memSource) Count(context.Context) (int, error) { return len(m.recs), nil }

func (m *memSource) Page(_ context.Context, after string, limit int) ([]Record, error) {
	m.calls++
	if m.failAt == m.calls {
		return nil, errors.New("boom")
	}
	ids := slices.Sorted(maps.Keys(m.recs))
	var out []Record
	for _, id := range ids {
		if id > after && len(out) < limit {
			out = append(out, Record{ID: id, SourceID: id, Fields: maps.Clone(m.recs[id])})
		}
	}
	return out, nil
}

func (m *memSource) Live(_ context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		if _, ok := m.recs[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

// memTarget is a Target over target records keyed by source ID.
type memTarget struct {
	recs map[string]Record // source ID → record
}

func (m *memTarget) Count(context.Context) (int, error) { return len(m.recs), nil }

func (m *memTarget) BySourceID(_ context.Context, ids []string) (map[string]Record, error) {
	out := map[string]Record{}
	for _, id := range ids {
		if r, ok := m.recs[id]; ok {
			out[id] = Record{ID: r.ID, SourceID: id, Fields: maps.Clone(r.Fields)}
		}
	}
	return out, nil
}

func (m *memTarget) Page(_ context.Context, after string, limit int) ([]Record, error) {
	ids := slices.Sorted(maps.Keys(m.recs))
	var out []Record
	for _, id := range ids {
		if id > after && len(out) < limit {
			out = append(out, Record{ID: m.recs[id].ID, SourceID: id})
		}
	}
	return out, nil
}

// memMap is an IDMap.
type memMap struct{ m map[string]string }

func (m *memMap) Lookup(ids []string) (map[string]store.Mapping, error) {
	out := map[string]store.Mapping{}
	for _, id := range ids {
		if t, ok := m.m[id]; ok {
			out[id] = store.Mapping{SourceID: id, TargetID: t}
		}
	}
	return out, nil
}

func (m *memMap) PutMappings(ms []store.Mapping) error {
	for _, x := range ms {
		m.m[x.SourceID] = x.TargetID
	}
	return nil
}

// memPublisher records what it is asked to publish.
type memPublisher struct {
	mu  sync.Mutex
	evs []event.Event
	err error
}

func (p *memPublisher) Publish(_ context.Context, ev event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.evs = append(p.evs, ev)
	return nil
}

func (p *memPublisher) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.evs {
		out = append(out, e.SourceID)
	}
	sort.Strings(out)
	return out
}

var (
	srcOrg = salesforce.ID18("00D000000000SRC")
	sid    = func(i int) string { return salesforce.ID18(fmt.Sprintf("001S%011d", i)) }
	tid    = func(i int) string { return salesforce.ID18(fmt.Sprintf("001T%011d", i)) }
	fields = []Field{{"Name", KindText}, {"Phone", KindText}, {"AnnualRevenue", KindNumber}, {"Industry", KindPicklist}, {"ParentId", KindID}}
)

// synced returns n source records and a target that agrees with them.
func synced(n int) (*memSource, *memTarget) {
	s := &memSource{recs: map[string]map[string]any{}}
	t := &memTarget{recs: map[string]Record{}}
	for i := range n {
		f := map[string]any{"Name": fmt.Sprintf("A%d", i), "Phone": nil, "AnnualRevenue": json.Number("10.50"), "Industry": "Energy", "ParentId": nil}
		s.recs[sid(i)] = f
		t.recs[sid(i)] = Record{ID: tid(i), SourceID: sid(i), Fields: maps.Clone(f)}
	}
	return s, t
}

// runCase is one scenario of a run over synced(10) edited behind its back.
type runCase struct {
	name  string
	edit  func(*memSource, *memTarget, *memMap)
	want  Result
	diffs []string // "kind source_id [fields]"
}

func runCases() []runCase {
	return []runCase{
		{name: "clean", edit: func(*memSource, *memTarget, *memMap) {}},
		{
			name: "missing in the target",
			edit: func(_ *memSource, tg *memTarget, _ *memMap) { delete(tg.recs, sid(3)) },
			want: Result{Missing: 1}, diffs: []string{"missing " + sid(3)},
		},
		{
			name: "deleted in the source",
			edit: func(s *memSource, _ *memTarget, _ *memMap) { delete(s.recs, sid(4)) },
			want: Result{Extra: 1}, diffs: []string{"extra " + sid(4)},
		},
		{
			name: "added in the target with an unknown source ID",
			edit: func(_ *memSource, tg *memTarget, _ *memMap) {
				tg.recs[sid(99)] = Record{ID: tid(99), SourceID: sid(99), Fields: map[string]any{"Name": "X"}}
			},
			want: Result{Extra: 1}, diffs: []string{"extra " + sid(99)},
		},
		{
			name: "edited in the target",
			edit: func(_ *memSource, tg *memTarget, _ *memMap) {
				tg.recs[sid(2)].Fields["Phone"] = "555"
				tg.recs[sid(2)].Fields["AnnualRevenue"] = json.Number("11")
			},
			want: Result{Different: 1}, diffs: []string{"different " + sid(2) + " AnnualRevenue,Phone"},
		},
		{
			name: "equal as Salesforce compares",
			edit: func(_ *memSource, tg *memTarget, _ *memMap) {
				tg.recs[sid(2)].Fields["Phone"] = ""
				tg.recs[sid(2)].Fields["AnnualRevenue"] = json.Number("10.5")
				tg.recs[sid(2)].Fields["Industry"] = "ENERGY"
			},
		},
		{
			name: "parent link lost",
			edit: func(s *memSource, _ *memTarget, _ *memMap) { s.recs[sid(5)]["ParentId"] = sid(1)[:15] },
			want: Result{Different: 1}, diffs: []string{"different " + sid(5) + " ParentId"},
		},
		{
			name: "stale ID map entries",
			edit: func(_ *memSource, tg *memTarget, m *memMap) {
				m.m[sid(1)] = tid(50) // target record replaced
				m.m[sid(2)] = tid(2)  // right
				m.m[sid(3)] = tid(3)  // target record gone
				delete(tg.recs, sid(3))
			},
			want:  Result{Missing: 1, StaleMappings: 2},
			diffs: []string{"missing " + sid(3), "stale_mapping " + sid(1), "stale_mapping " + sid(3)},
		},
	}
}

func TestRun(t *testing.T) { testRun(t, 0) }

// testRun runs runCases with the given bulk threshold (0: the REST path).
func testRun(t *testing.T, bulkThreshold int) {
	for _, tt := range runCases() {
		t.Run(tt.name, func(t *testing.T) {
			s, tg := synced(10)
			m := &memMap{m: map[string]string{}}
			tt.edit(s, tg, m)
			var got []string
			r, err := New(Config{Source: s, Target: tg, Fields: fields, IDMap: m, PageSize: 3,
				BulkThreshold: bulkThreshold, SortRun: 4, TempDir: t.TempDir(),
				Report: func(d Difference) {
					line := string(d.Kind) + " " + d.SourceID
					if len(d.Fields) > 0 {
						line += " " + strings.Join(d.SortedFieldNames(), ",")
					}
					got = append(got, line)
				}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			tt.want.SourceRecords = len(s.recs)
			tt.want.TargetRecords = len(tg.recs)
			tt.want.Bulk = bulkThreshold > 0
			if res != tt.want {
				t.Errorf("result = %+v, want %+v", res, tt.want)
			}
			sort.Strings(got)
			sort.Strings(tt.diffs)
			if strings.Join(got, "\n") != strings.Join(tt.diffs, "\n") {
				t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.diffs, "\n"))
			}
			if res.Clean() != (len(tt.diffs) == 0) {
				t.Errorf("Clean() = %v with %d differences", res.Clean(), len(tt.diffs))
			}
		})
	}
}

// Repairs: one event per missing and different record, the event poll
// would publish; extra records only reported; stale entries corrected.
func TestRunRepair(t *testing.T) {
	s, tg := synced(7)
	delete(tg.recs, sid(1))
	tg.recs[sid(2)].Fields["Name"] = "changed"
	delete(s.recs, sid(3))
	m := &memMap{m: map[string]string{sid(4): tid(40)}}
	pub := &memPublisher{}
	var diffs []Difference
	r, err := New(Config{Source: s, Target: tg, Fields: fields, SourceOrg: srcOrg, Publisher: pub, IDMap: m, PageSize: 2,
		Report: func(d Difference) { diffs = append(diffs, d) }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sid(1), sid(2)}; !slices.Equal(pub.ids(), want) {
		t.Errorf("published %v, want %v", pub.ids(), want)
	}
	if res.Repairs != 2 || res.MapFixes != 1 || m.m[sid(4)] != tid(4) {
		t.Errorf("repairs %d, map fixes %d, map entry %s", res.Repairs, res.MapFixes, m.m[sid(4)])
	}
	// The repair of sid(1) is exactly the event poll builds from the record.
	rec := maps.Clone(s.recs[sid(1)])
	rec["Id"] = sid(1)
	allow, _ := event.ParseFields("Name,Phone,AnnualRevenue,Industry,ParentId")
	want, err := event.NewAccountCreated(srcOrg, rec, allow)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range pub.evs {
		if ev.SourceID == sid(1) {
			a, _ := ev.Encode()
			b, _ := want.Encode()
			if string(a) != string(b) {
				t.Errorf("repair event %s, want %s", a, b)
			}
		}
	}
	for _, d := range diffs {
		wantRepair := map[Kind]string{Missing: "published", Different: "published", Extra: "", StaleMapping: "mapping corrected"}[d.Kind]
		if d.Repair != wantRepair {
			t.Errorf("%s %s: repair %q, want %q", d.Kind, d.SourceID, d.Repair, wantRepair)
		}
	}
}

func TestRunDryRunChangesNothing(t *testing.T) {
	s, tg := synced(3)
	delete(tg.recs, sid(0))
	m := &memMap{m: map[string]string{sid(1): tid(9)}}
	pub := &memPublisher{}
	var diffs []Difference
	r, _ := New(Config{Source: s, Target: tg, Fields: fields, SourceOrg: srcOrg, Publisher: pub, DryRun: true, IDMap: m,
		Report: func(d Difference) { diffs = append(diffs, d) }})
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if m.m[sid(1)] != tid(9) || res.MapFixes != 1 {
		t.Errorf("dry run changed the map: %v (fixes %d)", m.m, res.MapFixes)
	}
	for _, d := range diffs {
		if !strings.HasPrefix(d.Repair, "would ") {
			t.Errorf("%s: repair %q in a dry run", d.Kind, d.Repair)
		}
	}
}

func TestRunErrors(t *testing.T) {
	s, tg := synced(5)
	s.failAt = 2
	r, _ := New(Config{Source: s, Target: tg, Fields: fields, PageSize: 2})
	res, err := r.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "boom") || res.SourceRecords != 2 {
		t.Errorf("source failure: %+v, %v", res, err)
	}

	s, tg = synced(5)
	delete(tg.recs, sid(0))
	pub := &memPublisher{err: errors.New("nats down")}
	r, _ = New(Config{Source: s, Target: tg, Fields: fields, SourceOrg: srcOrg, Publisher: pub})
	if _, err := r.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "nats down") {
		t.Errorf("publish failure: %v", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	s, tg := synced(1)
	for name, cfg := range map[string]Config{
		"no source":          {Target: tg, Fields: fields},
		"no fields":          {Source: s, Target: tg},
		"repair without org": {Source: s, Target: tg, Fields: fields, Publisher: &memPublisher{}},
		"page too big":       {Source: s, Target: tg, Fields: fields, PageSize: 2001},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		kind FieldKind
		a, b any
		want bool
	}{
		{KindText, "Acme", "Acme", true},
		{KindText, "Acme", "acme", false},
		{KindText, "", nil, true},
		{KindText, "  ", nil, true},
		{KindText, nil, nil, true},
		{KindText, "x", nil, false},
		{KindPicklist, "Technology", "TECHNOLOGY", true},
		{KindPicklist, "Technology", "Banking", false},
		{KindPicklist, "", nil, true},
		{KindNumber, json.Number("10.50"), json.Number("10.5"), true},
		{KindNumber, json.Number("1e3"), json.Number("1000"), true},
		{KindNumber, json.Number("10.5"), 10.5, true},
		{KindNumber, json.Number("10.5"), json.Number("10.6"), false},
		{KindNumber, json.Number("0"), nil, false},
		{KindNumber, "", nil, true},
		{KindBool, nil, false, true},
		{KindBool, true, false, false},
		{KindID, salesforce.ID18("001000000000ABC"), "001000000000ABC", true},
		{KindID, salesforce.ID18("001000000000ABC"), salesforce.ID18("001000000000ABD"), false},
		{KindID, nil, "", true},
		{KindDateTime, "2026-11-22T10:00:00.000+0000", "2026-11-22T11:00:00+01:00", true},
		{KindDateTime, "2026-11-22T10:00:00.000+0000", "2026-11-22T10:00:01Z", false},
	}
	for _, tt := range tests {
		if got := Equal(tt.kind, tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%v, %#v, %#v) = %v, want %v", tt.kind, tt.a, tt.b, got, tt.want)
		}
		if got := Equal(tt.kind, tt.b, tt.a); got != tt.want {
			t.Errorf("Equal(%v, %#v, %#v) = %v, want %v (reversed)", tt.kind, tt.b, tt.a, got, tt.want)
		}
	}
}

func TestKindOfAndResolveFields(t *testing.T) {
	src := &salesforce.Describe{Fields: []salesforce.Field{{Name: "Name", Type: "string"}, {Name: "Industry", Type: "picklist"}, {Name: "Extra__c", Type: "string"}}}
	tgt := &salesforce.Describe{Fields: []salesforce.Field{{Name: "Name", Type: "string"}, {Name: "Industry", Type: "picklist"}, {Name: "AnnualRevenue", Type: "currency"}}}
	allow, _ := event.ParseFields("name,industry,AnnualRevenue,Extra__c")
	got, skipped := ResolveFields(allow, src, tgt)
	want := []Field{{"Name", KindText}, {"Industry", KindPicklist}}
	if !slices.Equal(got, want) || !slices.Equal(skipped, []string{"AnnualRevenue", "Extra__c"}) {
		t.Errorf("ResolveFields = %v, skipped %v", got, skipped)
	}
	for typ, k := range map[string]FieldKind{"currency": KindNumber, "int": KindNumber, "reference": KindID, "boolean": KindBool, "datetime": KindDateTime, "textarea": KindText, "multipicklist": KindPicklist} {
		if KindOf(typ) != k {
			t.Errorf("KindOf(%s) = %v, want %v", typ, KindOf(typ), k)
		}
	}
}

func FuzzEqual(f *testing.F) {
	f.Add(int(KindNumber), "10.50", "10.5")
	f.Add(int(KindDateTime), "2026-11-22T10:00:00.000+0000", "x")
	f.Add(int(KindID), "001000000000ABC", "")
	f.Fuzz(func(t *testing.T, k int, a, b string) {
		kind := FieldKind(k % 6)
		if Equal(kind, a, b) != Equal(kind, b, a) {
			t.Errorf("Equal(%v) is not symmetric for %q, %q", kind, a, b)
		}
		if !Equal(kind, a, a) {
			t.Errorf("Equal(%v, %q, itself) is false", kind, a)
		}
	})
}

// Every repaired difference says so, however many one page holds.
func TestRunMarksEveryRepair(t *testing.T) {
	s, tg := synced(50)
	for i := range 50 {
		if i%2 == 0 {
			delete(tg.recs, sid(i))
		} else {
			tg.recs[sid(i)].Fields["Name"] = "changed"
		}
	}
	var diffs []Difference
	r, _ := New(Config{Source: s, Target: tg, Fields: fields, SourceOrg: srcOrg, Publisher: &memPublisher{},
		Report: func(d Difference) { diffs = append(diffs, d) }})
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 50 || res.Repairs != 50 {
		t.Fatalf("%d differences, %d repairs; want 50 and 50", len(diffs), res.Repairs)
	}
	for _, d := range diffs {
		if d.Repair != "published" {
			t.Errorf("%s %s: repair %q, want published", d.Kind, d.SourceID, d.Repair)
		}
	}
}
