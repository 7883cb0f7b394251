// Package pubsub is a client of the Salesforce Pub/Sub API (gRPC, package
// eventbus.v1) for Change Data Capture: it authenticates every call with the
// accesstoken, instanceurl and tenantid metadata taken from a salesforce
// token source (a new token after UNAUTHENTICATED), opens Subscribe streams
// with pull flow control (at most 100 events requested, topped up as the
// caller releases delivered events), decodes the Avro payloads with schemas
// fetched by schema ID and cached, and expands the change event header's
// changedFields, nulledFields and diffFields bitmaps into field names,
// compound fields included (BillingAddress.City).
//
// Replay IDs are opaque bytes: the package stores and sends them back as
// received and never compares or computes them.
//
// A Stream has a watchdog: when neither events nor keepalives arrive within
// Config.IdleTimeout, Recv fails with ErrStalled and the caller subscribes
// again from its checkpoint. Errors the server sends are *Error values
// carrying the gRPC status and the error-code trailer; ErrReplayInvalid,
// ErrUnauthenticated and ErrStalled are matched with errors.Is.
//
// A Stream is one Subscribe call; resubscribing (from a checkpoint, with
// backoff, and what to do about an expired replay ID) is the caller's
// decision: orgsync's capture.CDC does it.
package pubsub
