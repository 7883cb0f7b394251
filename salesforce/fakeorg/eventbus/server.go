package eventbus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"orgsync/salesforce/fakeorg"
	pb "orgsync/salesforce/pubsub/proto"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultRetention = 72 * time.Hour
	DefaultKeepalive = 60 * time.Second
	DefaultIdleClose = 60 * time.Second
	// maxRequested is the most events a stream may have requested.
	maxRequested = 100
	// firstCounter is the counter of the first event: replay IDs look like
	// an org's that has seen some events.
	firstCounter = 0x048744
)

// Topics the fake serves.
const (
	TopicAccount = "/data/AccountChangeEvent"
	TopicAll     = "/data/ChangeEvents"
)

// Error codes the fake sends in the error-code trailer.
const (
	codeReplayCorrupted  = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
	codeReplayValidation = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
	codeAuth             = "sfdc.platform.eventbus.grpc.service.auth.error"
	codeTopicMismatch    = "sfdc.platform.eventbus.grpc.subscription.fetch.topic.mismatch"
	codeTopicNotFound    = "sfdc.platform.eventbus.grpc.service.topic.notfound"
	codeSchemaNotFound   = "sfdc.platform.eventbus.grpc.service.schema.notfound"
	codeRequestedInvalid = "sfdc.platform.eventbus.grpc.subscription.fetch.requested.events.invalid"
)

// Config configures a Server.
type Config struct {
	Org       *fakeorg.Org
	Retention time.Duration // how long events are kept (default 72h)
	Keepalive time.Duration // idle time before an empty response (default 60s)
	IdleClose time.Duration // a stream with nothing requested is closed after this (default 60s)
	Now       func() time.Time
	Logger    *slog.Logger
}

// stored is one event in the log.
type stored struct {
	counter uint64
	replay  []byte
	id      string
	payload []byte
	at      time.Time
}

// Server is the fake Pub/Sub API. It is safe for concurrent use.
type Server struct {
	pb.UnimplementedPubSubServer
	org    *fakeorg.Org
	schema *entitySchema
	now    func() time.Time
	log    *slog.Logger
	orgID  string
	userID string

	mu          sync.Mutex
	events      []stored
	last        uint64 // counter of the newest event (firstCounter-1 before any)
	purged      uint64 // events with counter ≤ purged are gone
	retention   time.Duration
	keepalive   time.Duration
	idleClose   time.Duration
	stall       bool
	suppress    bool
	origin      string // overrides the changes' own changeOrigin when not ""
	diffCreates bool
	subscribers int
	changed     chan struct{}  // closed and replaced on every new event or setting
	calls       map[string]int // unary RPCs served, by method name
	grpc        *grpc.Server
}

// New makes a Server fed by cfg.Org's changes.
func New(cfg Config) (*Server, error) {
	if cfg.Org == nil {
		return nil, errors.New("eventbus: no org")
	}
	es, err := buildSchema(cfg.Org.ChangeFields())
	if err != nil {
		return nil, err
	}
	s := &Server{
		org: cfg.Org, schema: es, now: cfg.Now, log: cfg.Logger,
		orgID: cfg.Org.OrgID(), userID: cfg.Org.UserID(),
		last: firstCounter - 1, purged: firstCounter - 1,
		retention: cmpOr(cfg.Retention, DefaultRetention), keepalive: cmpOr(cfg.Keepalive, DefaultKeepalive),
		idleClose: cmpOr(cfg.IdleClose, DefaultIdleClose), changed: make(chan struct{}),
		calls: map[string]int{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	cfg.Org.OnChange(s.onChange)
	return s, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// SchemaID returns the ID of the AccountChangeEvent schema.
func (s *Server) SchemaID() string { return s.schema.id }

// Serve serves gRPC over TLS on ln until Stop.
func (s *Server) Serve(ln net.Listener, tc credentials.TransportCredentials) error {
	gs := grpc.NewServer(grpc.Creds(tc),
		grpc.UnaryInterceptor(s.unaryAuth), grpc.StreamInterceptor(s.streamAuth))
	pb.RegisterPubSubServer(gs, s)
	s.mu.Lock()
	s.grpc = gs
	s.mu.Unlock()
	return gs.Serve(ln)
}

// Stop ends every stream and stops serving.
func (s *Server) Stop() {
	s.mu.Lock()
	gs := s.grpc
	s.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
}

// rpcError is a Salesforce-style error: the description ends in the rpc ID,
// the trailer carries error-code and rpc-id.
func rpcError(ctx context.Context, code codes.Code, errorCode, msg string) error {
	id := rpcID()
	_ = grpc.SetTrailer(ctx, metadata.Pairs("error-code", errorCode, "rpc-id", id))
	return status.Error(code, msg+" rpcId: "+id)
}

func rpcID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// authenticate checks the accesstoken, instanceurl and tenantid metadata.
func (s *Server) authenticate(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	tenant := get("tenantid")
	okTenant := tenant == s.orgID || (len(tenant) == 15 && tenant == s.orgID[:15])
	if !s.org.ValidAccessToken(get("accesstoken")) || get("instanceurl") == "" || !okTenant {
		return rpcError(ctx, codes.Unauthenticated, codeAuth,
			"An authentication exception occurred. Provide valid authentication via metadata headers.")
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls[path.Base(info.FullMethod)]++
	s.mu.Unlock()
	if err := s.authenticate(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

func knownTopic(t string) bool { return t == TopicAccount || t == TopicAll }

// GetTopic answers the topic's schema ID and permissions.
func (s *Server) GetTopic(ctx context.Context, r *pb.TopicRequest) (*pb.TopicInfo, error) {
	if !knownTopic(r.GetTopicName()) {
		return nil, rpcError(ctx, codes.NotFound, codeTopicNotFound, "The topic "+r.GetTopicName()+" doesn't exist or you don't have access to it.")
	}
	return &pb.TopicInfo{TopicName: r.GetTopicName(), TenantGuid: s.orgID, CanSubscribe: true,
		SchemaId: s.schema.id, RpcId: rpcID()}, nil
}

// GetSchema answers the schema JSON of an ID.
func (s *Server) GetSchema(ctx context.Context, r *pb.SchemaRequest) (*pb.SchemaInfo, error) {
	if r.GetSchemaId() != s.schema.id {
		return nil, rpcError(ctx, codes.NotFound, codeSchemaNotFound, "The schema ID "+r.GetSchemaId()+" doesn't exist.")
	}
	return &pb.SchemaInfo{SchemaJson: s.schema.json, SchemaId: s.schema.id, RpcId: rpcID()}, nil
}

// replayID renders a counter as a 10-byte replay ID.
func replayID(counter uint64) []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint64(b, counter)
	return b
}

// parseReplay reads a replay ID the fake issued: 10 bytes with two zero
// bytes at the end, or their 8-byte prefix.
func parseReplay(b []byte) (uint64, bool) {
	switch len(b) {
	case 10:
		if b[8] != 0 || b[9] != 0 {
			return 0, false
		}
	case 8:
	default:
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:8]), true
}

// purgeLocked drops events past retention. The caller holds s.mu.
func (s *Server) purgeLocked() {
	cut := s.now().Add(-s.retention)
	n := 0
	for n < len(s.events) && s.events[n].at.Before(cut) {
		s.purged = s.events[n].counter
		n++
	}
	if n > 0 {
		s.events = append([]stored(nil), s.events[n:]...)
	}
}

// notifyLocked wakes every stream. The caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// appendLocked adds an event. The caller holds s.mu.
func (s *Server) appendLocked(h header, rec fakeorg.Record) {
	s.last++
	h.commitNumber = int64(s.last)
	payload, err := s.schema.encode(h, rec)
	if err != nil {
		s.log.Error("eventbus: encode change event", "err", err)
		s.last--
		return
	}
	s.events = append(s.events, stored{counter: s.last, replay: replayID(s.last), id: rpcID(), payload: payload, at: h.commit})
	s.notifyLocked()
}

// onChange turns an org change into a change event.
func (s *Server) onChange(c fakeorg.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.suppress {
		return
	}
	origin := c.Origin
	if s.origin != "" {
		origin = s.origin
	}
	h := header{changeType: c.Type, recordIDs: []string{c.RecordID}, origin: origin,
		txKey: txKey(), seq: 1, commit: c.Time, user: s.userID}
	rec := c.Fields
	if c.Type == fakeorg.ChangeCreate && s.diffCreates {
		if d, ok := rec["Description"].(string); ok && len([]rune(d)) >= 1000 {
			rec = maps.Clone(rec)
			rec["Description"] = fakeDiff(d)
			h.diffs = []string{"Description"}
		}
	}
	switch c.Type {
	case fakeorg.ChangeUpdate:
		h.changed = s.schema.eventFieldNames(c.Changed)
		h.nulls = s.schema.eventFieldNames(c.Nulled)
		only := fakeorg.Record{}
		for _, n := range c.Changed {
			only[n] = c.Fields[n]
		}
		if d, ok := only["Description"].(string); ok && len([]rune(d)) >= 1000 {
			only["Description"] = fakeDiff(d)
			h.diffs = []string{"Description"}
		}
		rec = only
	case fakeorg.ChangeDelete:
		rec = nil
	}
	s.appendLocked(h, rec)
}

// fakeDiff stands in for the unified diff Salesforce sends for long text.
func fakeDiff(v string) string {
	return "--- \n+++ " + fmt.Sprintf("%x", len(v)) + "\n@@ -1 +1 @@\n+" + v[:10] + "…\n"
}

func txKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "0000" + hex.EncodeToString(b[:])
}

// Gap publishes a gap event (GAP_CREATE … GAP_UNDELETE) for recordIDs.
func (s *Server) Gap(changeType string, recordIDs []string) error {
	switch changeType {
	case "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE":
	default:
		return fmt.Errorf("eventbus: %q is not a gap change type", changeType)
	}
	if len(recordIDs) == 0 {
		return errors.New("eventbus: a gap event needs record ids")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendLocked(header{changeType: changeType, recordIDs: recordIDs, txKey: txKey(), seq: 1,
		commit: s.now().UTC(), user: s.userID}, nil)
	return nil
}

// Overflow publishes a GAP_OVERFLOW event for Account, committed now.
func (s *Server) Overflow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendLocked(header{changeType: "GAP_OVERFLOW", recordIDs: []string{}, txKey: txKey(), seq: 1,
		commit: s.now().UTC(), user: s.userID}, nil)
}

// Settings are the live settings of a Server.
type Settings struct {
	Retention, Keepalive, IdleClose time.Duration
	Stall, Suppress                 bool
	// Origin, when not "", replaces the changeOrigin of the org's changes,
	// which otherwise is the one Salesforce reports for the write
	// ("com/salesforce/api/rest/66.0;client=orgsync" for a REST call with
	// Sforce-Call-Options: client=orgsync; fakeorg.Change.Origin).
	Origin string
	// DiffCreates sends long Description values of creates as diffs too.
	DiffCreates bool
}

// Settings returns the current settings.
func (s *Server) Settings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Settings{s.retention, s.keepalive, s.idleClose, s.stall, s.suppress, s.origin, s.diffCreates}
}

// Configure replaces the settings; zero durations keep the current value.
func (s *Server) Configure(st Settings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retention = cmpOr(st.Retention, s.retention)
	s.keepalive = cmpOr(st.Keepalive, s.keepalive)
	s.idleClose = cmpOr(st.IdleClose, s.idleClose)
	s.stall, s.suppress, s.diffCreates, s.origin = st.Stall, st.Suppress, st.DiffCreates, st.Origin
	s.purgeLocked()
	s.notifyLocked()
}

// LatestReplayID returns the replay ID of the newest position.
func (s *Server) LatestReplayID() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return replayID(s.last)
}

// Subscribe serves one subscription stream.
func (s *Server) Subscribe(stream grpc.BidiStreamingServer[pb.FetchRequest, pb.FetchResponse]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	topic := first.GetTopicName()
	if !knownTopic(topic) {
		return rpcError(ctx, codes.NotFound, codeTopicNotFound, "The topic "+topic+" doesn't exist or you don't have access to it.")
	}
	if first.GetNumRequested() < 0 {
		return rpcError(ctx, codes.InvalidArgument, codeRequestedInvalid, "The number of requested events must be greater than zero.")
	}
	s.mu.Lock()
	s.purgeLocked()
	var pos uint64
	switch first.GetReplayPreset() {
	case pb.ReplayPreset_LATEST:
		pos = s.last
	case pb.ReplayPreset_EARLIEST:
		pos = s.purged
	case pb.ReplayPreset_CUSTOM:
		if len(first.GetReplayId()) == 0 {
			s.mu.Unlock()
			return rpcError(ctx, codes.InvalidArgument, codeReplayValidation,
				"The Replay ID validation failed. Ensure that the replay_id field value in FetchRequest is valid.")
		}
		c, ok := parseReplay(first.GetReplayId())
		if !ok || c > s.last || (c <= s.purged && c != s.last) {
			s.mu.Unlock()
			return rpcError(ctx, codes.InvalidArgument, codeReplayCorrupted,
				"The Replay ID validation failed. Ensure that the replay_id field value in FetchRequest is valid and refers to an event that is within the retention window.")
		}
		pos = c
	default:
		s.mu.Unlock()
		return rpcError(ctx, codes.InvalidArgument, codeReplayValidation, "Unknown replay preset.")
	}
	s.subscribers++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.subscribers--
		s.mu.Unlock()
	}()

	// Demand grows with every FetchRequest; a reader goroutine adds it.
	var dmu sync.Mutex
	demand := min(int(first.GetNumRequested()), maxRequested)
	more := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				readErr <- err
				return
			}
			if t := req.GetTopicName(); t != "" && t != topic {
				readErr <- rpcError(ctx, codes.InvalidArgument, codeTopicMismatch,
					"The topic name in the FetchRequest doesn't match the topic of the subscription.")
				return
			}
			dmu.Lock()
			demand = min(demand+int(req.GetNumRequested()), maxRequested)
			dmu.Unlock()
			select {
			case more <- struct{}{}:
			default:
			}
		}
	}()

	lastSent := time.Now()
	idleSince := time.Now()
	for {
		s.mu.Lock()
		s.purgeLocked()
		changed := s.changed
		stall, keepalive, idleClose := s.stall, s.keepalive, s.idleClose
		latest := replayID(s.last)
		dmu.Lock()
		want := demand
		dmu.Unlock()
		var batch []*pb.ConsumerEvent
		if !stall && want > 0 {
			for _, e := range s.events {
				if e.counter <= pos {
					continue
				}
				batch = append(batch, &pb.ConsumerEvent{ReplayId: e.replay,
					Event: &pb.ProducerEvent{Id: e.id, SchemaId: s.schema.id, Payload: e.payload}})
				if len(batch) == want {
					break
				}
			}
		}
		s.mu.Unlock()

		if len(batch) > 0 {
			dmu.Lock()
			demand -= len(batch)
			pending := demand
			dmu.Unlock()
			pos, _ = parseReplay(batch[len(batch)-1].ReplayId)
			if err := stream.Send(&pb.FetchResponse{Events: batch, LatestReplayId: latest, RpcId: rpcID(),
				PendingNumRequested: int32(pending)}); err != nil {
				return err
			}
			lastSent = time.Now()
			idleSince = lastSent
			continue
		}
		if want > 0 {
			idleSince = time.Now()
		}
		var closeIn time.Duration = -1
		if want == 0 && !stall {
			closeIn = time.Until(idleSince.Add(idleClose))
		}
		keep, err := wait(ctx, readErr, changed, more, time.Until(lastSent.Add(keepalive)), closeIn)
		switch {
		case errors.Is(err, errIdle):
			s.log.Debug("eventbus: closing a stream with nothing requested", "idle", idleClose)
			return nil
		case err != nil:
			return err
		case !keep:
			continue
		case stall:
			lastSent = time.Now()
			continue
		}
		dmu.Lock()
		pending := demand
		dmu.Unlock()
		if err := stream.Send(&pb.FetchResponse{LatestReplayId: latest, RpcId: rpcID(), PendingNumRequested: int32(pending)}); err != nil {
			return err
		}
		lastSent = time.Now()
	}
}

var errIdle = errors.New("idle")

// wait blocks until something changed (false, nil), the keepalive is due
// (true, nil), the idle close is due (errIdle; closeIn < 0 means never) or
// the stream ended.
func wait(ctx context.Context, readErr <-chan error, changed <-chan struct{}, more <-chan struct{}, keepIn, closeIn time.Duration) (bool, error) {
	kt := time.NewTimer(keepIn)
	defer kt.Stop()
	var closeC <-chan time.Time
	if closeIn >= 0 {
		ct := time.NewTimer(closeIn)
		defer ct.Stop()
		closeC = ct.C
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case err := <-readErr:
		if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
			return false, ctx.Err()
		}
		return false, err
	case <-changed:
		return false, nil
	case <-more:
		return false, nil
	case <-closeC:
		return false, errIdle
	case <-kt.C:
		return true, nil
	}
}

// Hex renders a replay ID for logs and the admin endpoint.
func Hex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// Calls returns how many times a unary RPC ("GetSchema", "GetTopic") was
// called, authenticated or not.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Subscribers returns the number of positioned subscriptions: a
// subscription counts once its first FetchRequest was read and its start
// position fixed, so events committed after that reach it.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribers
}
