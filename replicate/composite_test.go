package replicate

import (
	"log/slog"
	"strings"
	"testing"

	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

func TestCompositeSetting(t *testing.T) {
	base := Config{Queue: &queue.Queue{}, Feed: PartitionFeed(nil), Target: &salesforce.Client{}, Store: (*store.Store)(nil)}
	tests := []struct {
		mode      Mode
		composite int
		batch     int
		wantErr   string
		wantFetch int
	}{
		{ModeUpsert, 0, 0, "", 1000}, // the defaults: 5 × 200
		{ModeUpsert, 1, 0, "", 200},
		{ModeUpsert, 3, 50, "", 150},
		{ModeCreate, 0, 0, "", 200}, // packing is for upserts only
		{ModeUpsert, 6, 0, "composite 6 out of range 1..5", 0},
		{ModeUpsert, -1, 0, "composite -1 out of range 1..5", 0},
	}
	for _, tt := range tests {
		cfg := base
		cfg.Mode, cfg.Composite, cfg.Batch = tt.mode, tt.composite, tt.batch
		w, err := New(cfg)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v: got %v, want %q", tt, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tt, err)
		}
		if got := w.fetchSize(); got != tt.wantFetch {
			t.Errorf("%+v: fetch size %d, want %d", tt, got, tt.wantFetch)
		}
	}
}

// A slow composite call halves the collections of the next ones; fast
// calls add them back one at a time, up to -composite.
func TestCompositeBacksOffWhenSlow(t *testing.T) {
	w := &Worker{cfg: Config{Composite: 5}, log: slog.New(slog.DiscardHandler)}
	w.observeComposite(slowComposite, 5)
	if got := w.packLimit(); got != 2 {
		t.Fatalf("after a slow call: %d collections, want 2", got)
	}
	w.observeComposite(slowComposite, 2)
	if got := w.packLimit(); got != 1 {
		t.Fatalf("after a second slow call: %d, want 1", got)
	}
	for want := 2; want <= 5; want++ {
		w.observeComposite(slowComposite/8, 1)
		if got := w.packLimit(); got != want {
			t.Fatalf("after a fast call: %d, want %d", got, want)
		}
	}
	w.observeComposite(slowComposite/8, 5)
	if got := w.packLimit(); got != 5 {
		t.Fatalf("never above -composite: got %d", got)
	}
}
