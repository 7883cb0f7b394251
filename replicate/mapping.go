package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"orgsync/queue"
	"orgsync/salesforce"
	"orgsync/store"
)

// ErrMappingNotFound is returned by LookupMapping when no running worker
// knows the source ID and the target has no record with it.
var ErrMappingNotFound = errors.New("replicate: no mapping for that source id")

// MapSource serves a worker's ID map over NATS (queue.ServeMappings):
// source IDs are normalised to 18 characters first.
func MapSource(st *store.Store) queue.MappingSource { return mapSource{st} }

type mapSource struct{ st *store.Store }

func (m mapSource) Mapping(sourceID string) (queue.MappingReply, bool, error) {
	id, err := salesforce.NormalizeID(sourceID)
	if err != nil {
		return queue.MappingReply{}, false, nil // not an ID: nobody knows it
	}
	mp, err := m.st.Target(id)
	if errors.Is(err, store.ErrNotFound) {
		return queue.MappingReply{}, false, nil
	}
	if err != nil {
		return queue.MappingReply{}, false, err
	}
	return queue.MappingReply{SourceID: mp.SourceID, TargetID: mp.TargetID, WrittenAt: mp.WrittenAt}, true, nil
}

func (m mapSource) Export(w io.Writer, format string) error { return m.st.Export(w, format) }

// LookupMapping asks every running worker for the target ID of sourceID
// (the first answer within timeout wins) and, when none answers and target
// is not nil, queries the target org by the external ID field.
func LookupMapping(ctx context.Context, nc *nats.Conn, target *salesforce.Client, extIDField, sourceID string, timeout time.Duration) (queue.MappingReply, error) {
	id, err := salesforce.NormalizeID(sourceID)
	if err != nil {
		return queue.MappingReply{}, err
	}
	r, err := queue.AskWorkers(ctx, nc, id, timeout)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, queue.ErrNoWorker) {
		return queue.MappingReply{}, fmt.Errorf("replicate: %w", err)
	}
	if target == nil {
		return queue.MappingReply{}, ErrMappingNotFound
	}
	q := fmt.Sprintf("SELECT Id FROM Account WHERE %s = '%s' LIMIT 2", extIDField, id)
	for rec, err := range target.Query(ctx, q) {
		if err != nil {
			return queue.MappingReply{}, fmt.Errorf("replicate: query the target: %w", err)
		}
		tid, _ := rec["Id"].(string)
		return queue.MappingReply{SourceID: id, TargetID: tid, From: "target"}, nil
	}
	return queue.MappingReply{}, ErrMappingNotFound
}
