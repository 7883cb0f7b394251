package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// ctx is done, and export requests for the whole map (ExportFromWorker). Every worker subscribes (no queue group) and only a worker
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
	defer sub.Unsubscribe()
	exp, err := nc.Subscribe(ExportSubject(workerID), func(m *nats.Msg) { serveExport(nc, st, m) })
	if err != nil {
		return fmt.Errorf("replicate: subscribe %s: %w", ExportSubject(workerID), err)
	}
	defer exp.Unsubscribe()
	<-ctx.Done()
	return nil
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

// ExportSubject is where a running worker answers export requests for its
// ID map: orgsync.mapping.export.<worker id>, with characters NATS does not
// allow in a subject token replaced by '_'.
func ExportSubject(workerID string) string {
	b := []byte(workerID)
	for i, c := range b {
		if c <= ' ' || c == '.' || c == '*' || c == '>' || c >= 0x7f {
			b[i] = '_'
		}
	}
	return "orgsync.mapping.export." + string(b)
}

// exportChunk bounds one export message, well under NATS's default 1 MiB
// payload limit.
const exportChunk = 256 << 10

// headerExportError carries a failed export's reason on the final message.
const headerExportError = "Orgsync-Export-Error"

// serveExport answers an export request: the map in the asked format
// ("csv" or "json" in the request body) as a sequence of chunks to the
// reply subject, ended by an empty message.
func serveExport(nc *nats.Conn, st *store.Store, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	cw := &chunkWriter{nc: nc, subject: m.Reply}
	err := st.Export(cw, string(m.Data))
	if err == nil {
		err = cw.flush()
	}
	end := nats.NewMsg(m.Reply)
	if err != nil {
		end.Header.Set(headerExportError, err.Error())
	}
	_ = nc.PublishMsg(end)
}

type chunkWriter struct {
	nc      *nats.Conn
	subject string
	buf     []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= exportChunk {
		if err := c.nc.Publish(c.subject, c.buf[:exportChunk]); err != nil {
			return 0, err
		}
		c.buf = append(c.buf[:0], c.buf[exportChunk:]...)
	}
	return len(p), nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := c.nc.Publish(c.subject, c.buf)
	c.buf = c.buf[:0]
	return err
}

// ErrNoWorker is returned by ExportFromWorker when no running worker of
// that ID answers.
var ErrNoWorker = errors.New("replicate: no running worker with that id answered")

// ExportFromWorker asks the running worker workerID for its ID map in
// format and copies it to w. Each chunk must arrive within timeout.
func ExportFromWorker(ctx context.Context, nc *nats.Conn, workerID, format string, w io.Writer, timeout time.Duration) error {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("replicate: export: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(ExportSubject(workerID), inbox, []byte(format)); err != nil {
		return fmt.Errorf("replicate: export: %w", err)
	}
	for first := true; ; first = false {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		m, err := sub.NextMsgWithContext(cctx)
		cancel()
		if err != nil {
			if first && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s", ErrNoWorker, workerID)
			}
			return fmt.Errorf("replicate: export from %s: %w", workerID, err)
		}
		if len(m.Data) == 0 {
			if e := m.Header.Get(headerExportError); e != "" {
				return fmt.Errorf("replicate: export from %s: %s", workerID, e)
			}
			return nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
	}
}
