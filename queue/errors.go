package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors. Methods wrap them (test with errors.Is) together with the
// underlying NATS error, which stays reachable through errors.As.
var (
	// ErrStreamFull is returned by Publish (and by Replay and DeadLetter,
	// wrapped) when a stream refuses a message because it reached one of its
	// limits: DiscardNew makes a full ORGSYNC refuse new events instead of
	// dropping old ones. The caller should back off and publish again.
	ErrStreamFull = errors.New("queue: stream full")

	// ErrNoStream is returned when ORGSYNC or ORGSYNC_DLQ does not exist (it
	// was deleted after New created it) or no JetStream server answers for
	// its subjects.
	ErrNoStream = errors.New("queue: stream not found")

	// ErrNoConsumer is returned when the durable consumer "workers" does not
	// exist (Pause, Resume, Paused, Consumer.Info, Consumer.Fetch). Calling
	// Queue.Consumer creates it.
	ErrNoConsumer = errors.New("queue: consumer not found")

	// ErrInvalidConfig is returned by New for a Config that Validate rejects.
	ErrInvalidConfig = errors.New("queue: invalid config")

	// ErrLegacyLayout is returned by Queue.Partitions when ORGSYNC still has
	// the layout of before partitions: the consumer "workers", or no subject
	// transform. `worker migrate` moves it to the partitioned layout.
	ErrLegacyLayout = errors.New("queue: ORGSYNC has the single-consumer layout of an older orgsync (consumer \"workers\" or no partition transform): stop the old workers and run `worker migrate`")

	// ErrOldWorkersRunning is returned by Migrate while the consumer
	// "workers" has pull requests waiting: an old worker still runs.
	ErrOldWorkersRunning = errors.New("queue: the consumer \"workers\" has pull requests waiting: an old worker is still running; stop every old worker first")

	// ErrStopped is returned by Partitions.Next once the Partitions stopped
	// (Run returned or is shutting down).
	ErrStopped = errors.New("queue: partitions stopped")

	// ErrLeaseLost is returned by Delivery.InProgress once this worker lost
	// the lease of the delivery's partition.
	ErrLeaseLost = errors.New("queue: the partition's lease was lost")

	// ErrNotJetStream is returned by DeadLetter for a message that carries
	// no JetStream metadata (it did not come from a consumer).
	ErrNotJetStream = errors.New("queue: message has no jetstream metadata")
)

// JetStream API error codes orgsync branches on (nats-server errors.json).
const (
	errCodeAccountResourcesExceeded = 10002 // resource limits exceeded for account
	errCodeInsufficientResources    = 10023 // insufficient resources
	errCodeMemoryResourcesExceeded  = 10028 // insufficient memory resources available
	errCodeStorageResourcesExceeded = 10047 // insufficient storage resources available
	errCodeStreamStoreFailed        = 10077 // "{err}": the store refused the message
)

// isStreamFull reports whether err is a publish refused for lack of room.
func isStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeAccountResourcesExceeded, errCodeInsufficientResources,
		errCodeMemoryResourcesExceeded, errCodeStorageResourcesExceeded:
		return true
	case errCodeStreamStoreFailed:
		// The texts of nats-server's ErrMaxMsgs, ErrMaxBytes and
		// ErrMaxMsgsPerSubject: a DiscardNew limit was hit.
		switch apiErr.Description {
		case "maximum messages exceeded", "maximum bytes exceeded", "maximum messages per subject exceeded":
			return true
		}
	}
	return false
}

// publishErr wraps an error of a publish to stream with the sentinel it
// matches.
func publishErr(op, stream string, err error) error {
	switch {
	case isStreamFull(err):
		return fmt.Errorf("queue: %s: %w: %s: %w", op, ErrStreamFull, stream, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("queue: %s: %w: %s: %w", op, ErrNoStream, stream, err)
	default:
		return fmt.Errorf("queue: %s: %w", op, err)
	}
}

// streamErr wraps an error of a stream look-up or stream operation.
func streamErr(op, stream string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("queue: %s: %w: %s", op, ErrNoStream, stream)
	}
	return fmt.Errorf("queue: %s %s: %w", op, stream, err)
}

// consumerErr wraps an error of a consumer look-up or consumer operation on
// the legacy consumer "workers".
func consumerErr(op string, err error) error { return consumerNamedErr(op, ConsumerName, err) }

// consumerNamedErr wraps an error of an operation on consumer name.
func consumerNamedErr(op, name string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDoesNotExist),
		errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("queue: %s: %w: %s > %s: %w", op, ErrNoConsumer, Stream, name, err)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("queue: %s: %w: %s", op, ErrNoStream, Stream)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("queue: %s: %w", op, err)
	default:
		return fmt.Errorf("queue: %s %s > %s: %w", op, Stream, name, err)
	}
}
