package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// The ID-map request-reply over core NATS: every running worker answers
// look-ups of the source IDs its map knows (SubjectMappingGet, first answer
// wins) and streams its whole map on request (ExportSubject).

// MappingReply is a worker's answer on SubjectMappingGet.
type MappingReply struct {
	SourceID  string    `json:"source_id"`
	TargetID  string    `json:"target_id"`
	WrittenAt time.Time `json:"written_at"`
	Worker    string    `json:"worker,omitempty"`
	// From says where the answer came from: "worker" (an ID map) or
	// "target" (a query of the target org).
	From string `json:"from"`
}

// MappingSource is what a worker serves: its ID map.
type MappingSource interface {
	// Mapping returns the mapping of a (normalised) source ID, and false
	// when the map does not have it.
	Mapping(sourceID string) (MappingReply, bool, error)
	// Export writes the whole map in format ("csv" or "json").
	Export(w io.Writer, format string) error
}

// ErrNoWorker is returned by ExportFromWorker when no running worker of
// that ID answers, and by AskWorkers when no worker knows the source ID.
var ErrNoWorker = errors.New("queue: no running worker answered")

// ServeMappings answers mapping requests from src until ctx is done, and
// export requests for the whole map. Every worker subscribes (no queue
// group) and only a worker that knows the source ID answers, so the first
// answer wins.
func ServeMappings(ctx context.Context, nc *nats.Conn, src MappingSource, workerID string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := nc.Subscribe(SubjectMappingGet, func(m *nats.Msg) {
		mp, ok, err := src.Mapping(string(m.Data))
		if err != nil {
			log.Warn("mapping lookup failed", "source_id", string(m.Data), "err", err)
			return
		}
		if !ok {
			return
		}
		mp.Worker, mp.From = workerID, "worker"
		b, _ := json.Marshal(mp)
		if err := m.Respond(b); err != nil {
			log.Debug("mapping reply failed", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("queue: subscribe %s: %w", SubjectMappingGet, err)
	}
	defer sub.Unsubscribe()
	exp, err := nc.Subscribe(ExportSubject(workerID), func(m *nats.Msg) { serveExport(nc, src, m) })
	if err != nil {
		return fmt.Errorf("queue: subscribe %s: %w", ExportSubject(workerID), err)
	}
	defer exp.Unsubscribe()
	<-ctx.Done()
	return nil
}

// AskWorkers asks every running worker for the mapping of sourceID (already
// normalised); the first answer within timeout wins. It returns an error
// wrapping ErrNoWorker when none answers.
func AskWorkers(ctx context.Context, nc *nats.Conn, sourceID string, timeout time.Duration) (MappingReply, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, SubjectMappingGet, []byte(sourceID))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) {
			return MappingReply{}, fmt.Errorf("%w: no worker knows %s", ErrNoWorker, sourceID)
		}
		return MappingReply{}, fmt.Errorf("queue: mapping request: %w", err)
	}
	var r MappingReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return MappingReply{}, fmt.Errorf("queue: bad mapping reply: %w", err)
	}
	return r, nil
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
func serveExport(nc *nats.Conn, src MappingSource, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	cw := &chunkWriter{nc: nc, subject: m.Reply}
	err := src.Export(cw, string(m.Data))
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

// ExportFromWorker asks the running worker workerID for its ID map in
// format and copies it to w. Each chunk must arrive within timeout.
func ExportFromWorker(ctx context.Context, nc *nats.Conn, workerID, format string, w io.Writer, timeout time.Duration) error {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("queue: export: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(ExportSubject(workerID), inbox, []byte(format)); err != nil {
		return fmt.Errorf("queue: export: %w", err)
	}
	for first := true; ; first = false {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		m, err := sub.NextMsgWithContext(cctx)
		cancel()
		if err != nil {
			if first && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s", ErrNoWorker, workerID)
			}
			return fmt.Errorf("queue: export from %s: %w", workerID, err)
		}
		if len(m.Data) == 0 {
			if e := m.Header.Get(headerExportError); e != "" {
				return fmt.Errorf("queue: export from %s: %s", workerID, e)
			}
			return nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
	}
}
