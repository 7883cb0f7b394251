package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

// MappingReply is a worker's answer on queue.SubjectMappingGet.
type MappingReply struct {
	SourceID  string    `json:"source_id"`
	TargetID  string    `json:"target_id"`
	WrittenAt time.Time `json:"written_at"`
	Worker    string    `json:"worker,omitempty"`
	// From says where the answer came from: "worker" (an ID map) or
	// "target" (a query of the target org).
	From string `json:"from"`
}

// ErrMappingNotFound is returned by LookupMapping when no running worker
// knows the source ID and the target has no record with it.
var ErrMappingNotFound = errors.New("replicate: no mapping for that source id")

// ServeMappings answers mapping requests from this worker's ID map until
// ctx is done. Every worker subscribes (no queue group) and only a worker
// that knows the source ID answers, so the first answer wins.
func ServeMappings(ctx context.Context, nc *nats.Conn, st *store.Store, workerID string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := nc.Subscribe(queue.SubjectMappingGet, func(m *nats.Msg) {
		id, err := salesforce.NormalizeID(string(m.Data))
		if err != nil {
			return
		}
		mp, err := st.Target(id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				log.Warn("mapping lookup failed", "source_id", id, "err", err)
			}
			return
		}
		b, _ := json.Marshal(MappingReply{SourceID: mp.SourceID, TargetID: mp.TargetID, WrittenAt: mp.WrittenAt, Worker: workerID, From: "worker"})
		if err := m.Respond(b); err != nil {
			log.Debug("mapping reply failed", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("replicate: subscribe %s: %w", queue.SubjectMappingGet, err)
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

// LookupMapping asks every running worker for the target ID of sourceID
// (the first answer within timeout wins) and, when none answers and target
// is not nil, queries the target org by the external ID field.
func LookupMapping(ctx context.Context, nc *nats.Conn, target *salesforce.Client, extIDField, sourceID string, timeout time.Duration) (MappingReply, error) {
	id, err := salesforce.NormalizeID(sourceID)
	if err != nil {
		return MappingReply{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, queue.SubjectMappingGet, []byte(id))
	if err == nil {
		var r MappingReply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			return MappingReply{}, fmt.Errorf("replicate: bad mapping reply: %w", err)
		}
		return r, nil
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
		return MappingReply{}, fmt.Errorf("replicate: mapping request: %w", err)
	}
	if target == nil {
		return MappingReply{}, ErrMappingNotFound
	}
	q := fmt.Sprintf("SELECT Id FROM Account WHERE %s = '%s' LIMIT 2", extIDField, id)
	for rec, err := range target.Query(ctx, q) {
		if err != nil {
			return MappingReply{}, fmt.Errorf("replicate: query the target: %w", err)
		}
		tid, _ := rec["Id"].(string)
		return MappingReply{SourceID: id, TargetID: tid, From: "target"}, nil
	}
	return MappingReply{}, ErrMappingNotFound
}
