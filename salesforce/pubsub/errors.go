package pubsub

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Error codes Salesforce sends in the error-code trailer.
const (
	CodeReplayCorrupted        = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
	CodeReplayValidationFailed = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
	CodeAuthError              = "sfdc.platform.eventbus.grpc.service.auth.error"
	CodeAuthRefreshInvalid     = "sfdc.platform.eventbus.grpc.service.auth.refresh.invalid"
	CodeServiceUnavailable     = "sfdc.platform.eventbus.grpc.service.unavailable"
	CodeLimitExceeded          = "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"
)

var (
	// ErrReplayInvalid matches an INVALID_ARGUMENT error whose error-code
	// says the replay ID is corrupted or failed validation (an expired replay
	// ID, outside the retention window, is answered so).
	ErrReplayInvalid = errors.New("pubsub: replay id invalid or expired")
	// ErrUnauthenticated matches UNAUTHENTICATED answers.
	ErrUnauthenticated = errors.New("pubsub: unauthenticated")
	// ErrStalled is returned by Stream.Recv when neither events nor
	// keepalives arrived within the idle timeout.
	ErrStalled = errors.New("pubsub: stream stalled (no events or keepalives)")
	// ErrLimitExceeded matches the org's event delivery allocation being used up.
	ErrLimitExceeded = errors.New("pubsub: event delivery limit exceeded")
)

// Error is an error status the Pub/Sub API answered.
type Error struct {
	Op        string // "Subscribe", "GetSchema", "GetTopic"
	Code      codes.Code
	ErrorCode string // the error-code trailer, "" when absent
	Message   string
	RPCID     string // the rpc-id trailer
}

func (e *Error) Error() string {
	s := fmt.Sprintf("pubsub: %s: %s", e.Op, e.Code)
	if e.ErrorCode != "" {
		s += " (" + e.ErrorCode + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches the sentinel errors of this package.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrReplayInvalid:
		return e.Code == codes.InvalidArgument &&
			(e.ErrorCode == CodeReplayCorrupted || e.ErrorCode == CodeReplayValidationFailed)
	case ErrUnauthenticated:
		return e.Code == codes.Unauthenticated || e.ErrorCode == CodeAuthError || e.ErrorCode == CodeAuthRefreshInvalid
	case ErrLimitExceeded:
		return e.ErrorCode == CodeLimitExceeded
	}
	return false
}

// wrapStatus turns a gRPC error into an *Error with the trailer's codes, or
// returns err wrapped when it carries no status.
func wrapStatus(op string, err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("pubsub: %s: %w", op, err)
	}
	e := &Error{Op: op, Code: st.Code(), Message: st.Message()}
	if v := trailer.Get("error-code"); len(v) > 0 {
		e.ErrorCode = v[0]
	}
	if v := trailer.Get("rpc-id"); len(v) > 0 {
		e.RPCID = v[0]
	}
	return e
}
