package pubsub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"orgsync/salesforce"
	pb "orgsync/salesforce/pubsub/proto"
)

// Defaults applied by Dial to zero Config fields.
const (
	// MaxRequested is the most events a subscriber may have requested and
	// not yet received (the server counts anything above as 100).
	MaxRequested = 100
	// DefaultIdleTimeout exceeds the server's 270-second keepalive bound.
	DefaultIdleTimeout = 300 * time.Second
	// maxRecvMsgSize leaves room for 100 events of up to 1 MB.
	maxRecvMsgSize = 128 << 20
)

// TokenSource hands out access tokens; *salesforce.Auth is one.
type TokenSource interface {
	Token(ctx context.Context) (*salesforce.Token, error)
	Invalidate(t *salesforce.Token)
}

// Config configures a Client.
type Config struct {
	// Addr is the server's host:port, e.g. api.pubsub.salesforce.com:7443.
	Addr string
	// Tokens supplies the access token and instance URL of every call.
	Tokens TokenSource
	// TenantID is the org ID sent as tenantid; empty means the token's.
	TenantID string
	// TLS configures the connection; nil means the system's roots.
	TLS *tls.Config
	// BatchSize is the most events requested at once (1..100, default 100).
	BatchSize int
	// IdleTimeout is how long a stream may send nothing, neither events
	// nor keepalives, before Recv fails with ErrStalled (default 300s).
	IdleTimeout time.Duration
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Client talks to one Pub/Sub API endpoint. It is safe for concurrent use.
type Client struct {
	cfg  Config
	conn *grpc.ClientConn
	api  pb.PubSubClient
	log  *slog.Logger

	mu      sync.Mutex
	schemas map[string]*avro.RecordSchema
}

// Dial prepares a client; the connection is made on first use.
func Dial(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("pubsub: empty address")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("pubsub: no token source")
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > MaxRequested {
		if cfg.BatchSize > MaxRequested || cfg.BatchSize < 0 {
			return nil, fmt.Errorf("pubsub: batch size %d outside 1..%d", cfg.BatchSize, MaxRequested)
		}
		cfg.BatchSize = MaxRequested
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tc := cfg.TLS
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := grpc.NewClient(cfg.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithPerRPCCredentials(&authCreds{tokens: cfg.Tokens, tenant: cfg.TenantID}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("pubsub: dial %s: %w", cfg.Addr, err)
	}
	return &Client{cfg: cfg, conn: conn, api: pb.NewPubSubClient(conn), log: cfg.Logger,
		schemas: make(map[string]*avro.RecordSchema)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// authCreds puts the auth metadata on every call.
type authCreds struct {
	tokens TokenSource
	tenant string
}

type tokenKey struct{}

func (a *authCreds) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	t, err := a.tokens.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("pubsub: token: %w", err)
	}
	if h, ok := ctx.Value(tokenKey{}).(*tokenHolder); ok {
		h.set(t)
	}
	tenant := a.tenant
	if tenant == "" {
		tenant = t.OrgID()
	}
	return map[string]string{"accesstoken": t.AccessToken, "instanceurl": t.InstanceURL, "tenantid": tenant}, nil
}

func (a *authCreds) RequireTransportSecurity() bool { return true }

// tokenHolder remembers the token a call used, so that an UNAUTHENTICATED
// answer invalidates exactly that token.
type tokenHolder struct {
	mu sync.Mutex
	t  *salesforce.Token
}

func (h *tokenHolder) set(t *salesforce.Token) { h.mu.Lock(); h.t = t; h.mu.Unlock() }
func (h *tokenHolder) get() *salesforce.Token  { h.mu.Lock(); defer h.mu.Unlock(); return h.t }

// withToken returns a context that records the call's token.
func withToken(ctx context.Context) (context.Context, *tokenHolder) {
	h := &tokenHolder{}
	return context.WithValue(ctx, tokenKey{}, h), h
}

// fail converts a call's error and drops its token after UNAUTHENTICATED.
func (c *Client) fail(op string, err error, trailer metadata.MD, h *tokenHolder) error {
	err = wrapStatus(op, err, trailer)
	if errors.Is(err, ErrUnauthenticated) {
		if t := h.get(); t != nil {
			c.cfg.Tokens.Invalidate(t)
		}
	}
	return err
}

// Topic returns the topic's info (its current schema ID, whether the
// integration user may subscribe).
func (c *Client) Topic(ctx context.Context, name string) (*pb.TopicInfo, error) {
	ctx, h := withToken(ctx)
	var trailer metadata.MD
	ti, err := c.api.GetTopic(ctx, &pb.TopicRequest{TopicName: name}, grpc.Trailer(&trailer))
	if err != nil {
		return nil, c.fail("GetTopic", err, trailer, h)
	}
	return ti, nil
}

// Schema returns the record schema with the given ID, from the cache or
// fetched once with GetSchema.
func (c *Client) Schema(ctx context.Context, id string) (*avro.RecordSchema, error) {
	c.mu.Lock()
	rec, ok := c.schemas[id]
	c.mu.Unlock()
	if ok {
		return rec, nil
	}
	ctx, h := withToken(ctx)
	var trailer metadata.MD
	si, err := c.api.GetSchema(ctx, &pb.SchemaRequest{SchemaId: id}, grpc.Trailer(&trailer))
	if err != nil {
		return nil, c.fail("GetSchema", err, trailer, h)
	}
	s, err := avro.Parse(si.GetSchemaJson())
	if err != nil {
		return nil, fmt.Errorf("pubsub: schema %s: %w", id, err)
	}
	rec, ok = s.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("pubsub: schema %s is a %s, not a record", id, s.Type())
	}
	c.mu.Lock()
	c.schemas[id] = rec
	c.mu.Unlock()
	return rec, nil
}

// Preset selects where a subscription starts.
type Preset = pb.ReplayPreset

// Replay presets.
const (
	Latest   = pb.ReplayPreset_LATEST
	Earliest = pb.ReplayPreset_EARLIEST
	Custom   = pb.ReplayPreset_CUSTOM
)

// Batch is what one FetchResponse delivered: events (possibly none, a
// keepalive) and the latest replay ID of the topic.
type Batch struct {
	Events         []*Event
	LatestReplayID []byte
	// PendingRequested is the server's count of events still requested
	// after this response. An empty response with PendingRequested > 0
	// means every event up to LatestReplayID was delivered.
	PendingRequested int
}

// Stream is one Subscribe call. Recv must be called from one goroutine;
// Release may be called from any.
type Stream struct {
	c       *Client
	topic   string
	stream  grpc.BidiStreamingClient[pb.FetchRequest, pb.FetchResponse]
	cancel  context.CancelFunc
	ctx     context.Context
	h       *tokenHolder
	watch   *time.Timer
	stalled chan struct{}
	batch   int

	sendMu      sync.Mutex
	outstanding int // requested and not yet delivered
	held        int // delivered and not yet released
}

// Subscribe opens a stream on topic starting at preset (replayID only with
// Custom: the events after it) and requests the first batch.
func (c *Client) Subscribe(ctx context.Context, topic string, preset Preset, replayID []byte) (*Stream, error) {
	if preset == Custom && len(replayID) == 0 {
		return nil, errors.New("pubsub: CUSTOM subscription without a replay id")
	}
	sctx, cancel := context.WithCancel(ctx)
	sctx, h := withToken(sctx)
	st, err := c.api.Subscribe(sctx)
	if err != nil {
		cancel()
		return nil, c.fail("Subscribe", err, nil, h)
	}
	s := &Stream{c: c, topic: topic, stream: st, cancel: cancel, ctx: sctx, h: h,
		stalled: make(chan struct{}), batch: c.cfg.BatchSize}
	s.watch = time.AfterFunc(c.cfg.IdleTimeout, func() {
		close(s.stalled)
		cancel()
	})
	req := &pb.FetchRequest{TopicName: topic, ReplayPreset: preset, NumRequested: int32(s.batch)}
	if preset == Custom {
		req.ReplayId = replayID
	}
	s.outstanding = s.batch
	if err := st.Send(req); err != nil {
		// The status of a stream that ended is read by Recv.
		if errors.Is(err, io.EOF) {
			_, err = st.Recv()
		}
		s.Close()
		return nil, s.recvErr(err)
	}
	return s, nil
}

// Close ends the stream.
func (s *Stream) Close() {
	s.watch.Stop()
	s.cancel()
}

// Recv waits for the next FetchResponse and decodes its events. A keepalive
// is a Batch without events. Errors: ErrStalled when the idle timeout
// passed, *Error for a status the server answered.
func (s *Stream) Recv() (*Batch, error) {
	resp, err := s.stream.Recv()
	if err != nil {
		return nil, s.recvErr(err)
	}
	s.watch.Reset(s.c.cfg.IdleTimeout)
	b := &Batch{LatestReplayID: resp.GetLatestReplayId(), PendingRequested: int(resp.GetPendingNumRequested()),
		Events: make([]*Event, 0, len(resp.GetEvents()))}
	for _, ce := range resp.GetEvents() {
		pe := ce.GetEvent()
		rec, err := s.c.Schema(s.ctx, pe.GetSchemaId())
		if err != nil {
			return nil, err
		}
		hdr, fields, err := decodeEvent(rec, pe.GetPayload())
		if err != nil {
			return nil, fmt.Errorf("pubsub: event %s (schema %s): %w", pe.GetId(), pe.GetSchemaId(), err)
		}
		b.Events = append(b.Events, &Event{ReplayID: ce.GetReplayId(), ID: pe.GetId(), SchemaID: pe.GetSchemaId(), Header: hdr, Fields: fields})
	}
	s.sendMu.Lock()
	s.outstanding = int(resp.GetPendingNumRequested())
	s.held += len(b.Events)
	s.sendMu.Unlock()
	if err := s.topUp(); err != nil {
		return nil, err
	}
	return b, nil
}

// Release tells the stream that n delivered events are done with (their
// publication acknowledged), so that more may be requested: the stream
// never has more than the batch size requested or held.
func (s *Stream) Release(n int) error {
	s.sendMu.Lock()
	s.held -= n
	if s.held < 0 {
		s.held = 0
	}
	s.sendMu.Unlock()
	return s.topUp()
}

// Requested reports the events requested and not delivered, and the events
// delivered and not released.
func (s *Stream) Requested() (outstanding, held int) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.outstanding, s.held
}

// topUp requests more events once at least half the batch is free, or when
// nothing is requested at all (so the server does not close an idle stream).
func (s *Stream) topUp() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	free := s.batch - s.outstanding - s.held
	if free <= 0 || (free < (s.batch+1)/2 && s.outstanding > 0) {
		return nil
	}
	if err := s.stream.Send(&pb.FetchRequest{TopicName: s.topic, NumRequested: int32(free)}); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // the stream ended; Recv reports why
		}
		return s.recvErr(err)
	}
	s.outstanding += free
	return nil
}

func (s *Stream) recvErr(err error) error {
	select {
	case <-s.stalled:
		return fmt.Errorf("%w after %s", ErrStalled, s.c.cfg.IdleTimeout)
	default:
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("pubsub: Subscribe: stream closed by the server: %w", io.ErrUnexpectedEOF)
	}
	return s.c.fail("Subscribe", err, s.stream.Trailer(), s.h)
}
