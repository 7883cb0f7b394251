package queue

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ensure that New and Consumer create the topology docs/contract.md specifies.
func TestNew_CreatesTopology(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{})

	tests := []struct {
		name      string
		subjects  []string
		retention jetstream.RetentionPolicy
	}{
		{Stream, []string{"orgsync.account.>"}, jetstream.WorkQueuePolicy},
		{DLQStream, []string{"orgsync.dlq.>"}, jetstream.LimitsPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ts.js.Stream(t.Context(), tt.name)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			cfg := s.CachedInfo().Config
			if !slices.Equal(cfg.Subjects, tt.subjects) {
				t.Errorf("Subjects = %v, want %v", cfg.Subjects, tt.subjects)
			}
			if cfg.Retention != tt.retention {
				t.Errorf("Retention = %v, want %v", cfg.Retention, tt.retention)
			}
			if cfg.Storage != jetstream.FileStorage {
				t.Errorf("Storage = %v, want file", cfg.Storage)
			}
			if cfg.Discard != jetstream.DiscardNew {
				t.Errorf("Discard = %v, want new", cfg.Discard)
			}
			if cfg.Duplicates != time.Hour {
				t.Errorf("Duplicates = %v, want 1h", cfg.Duplicates)
			}
			if cfg.MaxAge != 0 {
				t.Errorf("MaxAge = %v, want 0", cfg.MaxAge)
			}
			if cfg.Replicas != 1 {
				t.Errorf("Replicas = %d, want 1", cfg.Replicas)
			}
		})
	}

	// No consumer until a worker asks for it.
	if _, err := q.Paused(t.Context()); !errors.Is(err, ErrNoConsumer) {
		t.Fatalf("Paused before Consumer: err = %v, want ErrNoConsumer", err)
	}
	c := mustConsumer(t, q)
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	cc := info.Config
	if cc.Durable != "workers" {
		t.Errorf("Durable = %q, want workers", cc.Durable)
	}
	if cc.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("AckPolicy = %v, want explicit", cc.AckPolicy)
	}
	if cc.AckWait != 60*time.Second {
		t.Errorf("AckWait = %v, want 60s", cc.AckWait)
	}
	if cc.MaxDeliver != -1 {
		t.Errorf("MaxDeliver = %d, want -1", cc.MaxDeliver)
	}
	if cc.MaxAckPending != 20000 {
		t.Errorf("MaxAckPending = %d, want 20000", cc.MaxAckPending)
	}
	if cc.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("DeliverPolicy = %v, want all", cc.DeliverPolicy)
	}
	if cc.FilterSubject != "orgsync.account.>" {
		t.Errorf("FilterSubject = %q, want orgsync.account.>", cc.FilterSubject)
	}
	if cc.DeliverSubject != "" {
		t.Errorf("DeliverSubject = %q, want a pull consumer", cc.DeliverSubject)
	}
	if c.AckWait() != 60*time.Second {
		t.Errorf("Consumer.AckWait() = %v, want 60s", c.AckWait())
	}
}

// Ensure that the flags reach a consumer New creates.
func TestConsumer_FromConfig(t *testing.T) {
	ts := startServer(t, "")
	q := mustNew(t, ts.js, Config{AckWait: 90 * time.Second, MaxAckPending: 1234, Duplicates: 10 * time.Minute})
	info, err := mustConsumer(t, q).Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Config.AckWait != 90*time.Second || info.Config.MaxAckPending != 1234 {
		t.Errorf("AckWait, MaxAckPending = %v, %d, want 1m30s, 1234", info.Config.AckWait, info.Config.MaxAckPending)
	}
	s, err := ts.js.Stream(t.Context(), Stream)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 10*time.Minute {
		t.Errorf("Duplicates = %v, want 10m", got)
	}
	// A second worker with the same flags logs nothing.
	log, buf := newLogger()
	q2 := mustNew(t, ts.js, Config{AckWait: 90 * time.Second, MaxAckPending: 1234, Duplicates: 10 * time.Minute, Logger: log})
	mustConsumer(t, q2)
	if strings.Contains(buf.String(), "differs") {
		t.Errorf("same configuration logged differences:\n%s", buf)
	}
}

// Ensure that an existing, differently configured consumer is used as it is
// and its differences are logged.
func TestConsumer_ExistingNotRewritten(t *testing.T) {
	ts := startServer(t, "")
	log, buf := newLogger()
	q := mustNew(t, ts.js, Config{Logger: log})
	_, err := ts.js.CreateConsumer(t.Context(), Stream, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 100,
		MaxDeliver:    5,
		FilterSubject: SubjectAccounts,
	})
	if err != nil {
		t.Fatalf("CreateConsumer: %v", err)
	}
	c := mustConsumer(t, q)
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Config.AckWait != 30*time.Second || info.Config.MaxAckPending != 100 || info.Config.MaxDeliver != 5 {
		t.Errorf("consumer rewritten: AckWait %v, MaxAckPending %d, MaxDeliver %d; want 30s, 100, 5",
			info.Config.AckWait, info.Config.MaxAckPending, info.Config.MaxDeliver)
	}
	if c.AckWait() != 30*time.Second {
		t.Errorf("Consumer.AckWait() = %v, want the existing 30s", c.AckWait())
	}
	out := buf.String()
	for _, want := range []string{
		"field=AckWait existing=30s wanted=1m0s",
		"field=MaxAckPending existing=100 wanted=20000",
		"field=MaxDeliver existing=5 wanted=-1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "field=FilterSubject") {
		t.Errorf("log reports an equal field:\n%s", out)
	}
}

// Ensure that an existing stream is left as it is and its differences logged.
func TestNew_ExistingStreamKept(t *testing.T) {
	ts := startServer(t, "")
	_, err := ts.js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:      Stream,
		Subjects:  []string{SubjectAccounts},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Discard:   jetstream.DiscardNew,
		MaxMsgs:   2,
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	log, buf := newLogger()
	mustNew(t, ts.js, Config{Logger: log})
	s, err := ts.js.Stream(t.Context(), Stream)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if got := s.CachedInfo().Config.MaxMsgs; got != 2 {
		t.Errorf("MaxMsgs = %d, want the existing 2", got)
	}
	out := buf.String()
	for _, want := range []string{"stream=ORGSYNC field=MaxMsgs existing=2", "stream=ORGSYNC field=Duplicates existing=2m0s wanted=1h0m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "stream=ORGSYNC_DLQ field=") {
		t.Errorf("the DLQ New created reports differences:\n%s", out)
	}
}

// Ensure that Config.Validate rejects values out of range.
func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero", Config{}, false},
		{"unlimited ack pending", Config{MaxAckPending: -1}, false},
		{"negative ack wait", Config{AckWait: -time.Second}, true},
		{"ack pending below -1", Config{MaxAckPending: -2}, true},
		{"tiny window", Config{Duplicates: time.Millisecond}, true},
		{"six replicas", Config{Replicas: 6}, true},
		{"1024 partitions", Config{Partitions: 1024}, false},
		{"1025 partitions", Config{Partitions: 1025}, true},
		{"negative partitions", Config{Partitions: -1}, true},
		{"lease TTL 1s", Config{LeaseTTL: time.Second}, false},
		{"lease TTL below 1s", Config{LeaseTTL: 999 * time.Millisecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}
