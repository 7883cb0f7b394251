// Package eventbus serves a fake Salesforce Pub/Sub API (gRPC, package
// eventbus.v1) beside a fakeorg.Org: Change Data Capture events for every
// Account create, update, delete and undelete the org commits, whatever API
// made it. Each event's changeOrigin is the one Salesforce sets
// (fakeorg.Change.Origin): com/salesforce/api/<rest|bulkapi|soap>/<version>,
// with ";client=<id>" when the writing request's Sforce-Call-Options named
// a client.
//
// It follows Salesforce's semantics where they are documented: GetTopic and
// GetSchema; Subscribe with LATEST, EARLIEST and CUSTOM (exclusive: the
// events after the given replay ID); replay_preset and replay_id read from
// the first FetchRequest only; at most 100 events requested at a time;
// empty keepalive responses carrying the latest replay ID; a stream with
// nothing requested closed after an idle time; events kept for a retention
// window (72 hours by default). Replay IDs are 10 bytes: an 8-byte
// big-endian counter (below 2^53) that grows with each event, then two zero
// bytes; the 8-byte prefix alone names the same position, as clients that
// read the ID as a number send it back.
//
// Errors are Salesforce's: a gRPC status whose description ends in
// "rpcId: <id>", with the trailers error-code and rpc-id. A replay ID that
// is malformed, unknown or past retention answers INVALID_ARGUMENT with
// error-code sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted
// (CUSTOM without one: …replayid.validation.failed); bad or missing auth
// metadata (accesstoken, instanceurl, tenantid) answers UNAUTHENTICATED with
// sfdc.platform.eventbus.grpc.service.auth.error. The status and code of an
// unknown topic or schema are not documented; the fake answers NOT_FOUND.
//
// Change events use an AccountChangeEvent-shaped Avro schema: the
// ChangeEventHeader record first, then every Account field nullable, the
// address fields as a nested Address record, dates and datetimes as epoch
// milliseconds, and changedFields, nulledFields and diffFields as bitmaps.
// An update carries values only for the fields it changed; a delete carries
// none. A long text value (1,000 characters or more) changed by an update
// travels as a diff and is listed in diffFields.
//
// AdminHandler adds loopback tooling to the org's HTTP handler:
//
//	GET  /_fake/pubsub                 {"events":N,"subscribers":N,"latest_replay_id":"HEX","oldest_replay_id":"HEX",…}
//	PUT  /_fake/pubsub                 any of {"retention":"72h","keepalive":"60s","idle_close":"60s",
//	                                   "stall":bool,"suppress":bool,"change_origin":"…","diff_creates":bool}
//	POST /_fake/pubsub/gap             {"change_type":"GAP_CREATE","record_ids":["001…"]}
//	POST /_fake/pubsub/overflow        {} (a GAP_OVERFLOW event for Account, committed now)
//	PUT  /_fake/config                 also accepts "event_retention" ("72h")
//
// stall keeps streams open but sends nothing, not even keepalives;
// suppress drops the org's changes instead of publishing them (so that a
// forced gap or overflow event is the only trace of them); change_origin,
// when not "", replaces the changeOrigin of later events whatever wrote
// them ("" restores the writes' own);
// diff_creates sends a create's long Description as a diff too.
package eventbus
