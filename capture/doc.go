// Package capture is where events enter orgsync: it turns Account records and
// changes of the source org into account.created, account.updated,
// account.deleted and account.undeleted events (package event) and publishes
// them to JetStream on orgsync.account.<change>.<source_id> with their
// Nats-Msg-Id deduplication key. A record counts as captured only once
// JetStream has acknowledged it, and the events of one record are published
// in the order of its changes.
//
// There are four capture paths, one per `producer` subcommand:
//
//   - Poller (producer poll) reads new Accounts with SOQL, ordered by
//     CreatedDate and Id, from a checkpoint kept in bbolt, re-reading an
//     overlap window behind it; the checkpoint advances only over records
//     whose publishes were acknowledged. With ChangesAll it reads by
//     SystemModstamp instead and publishes updates (dropping rows whose
//     copied values' hash did not change) and deletes (Get Deleted).
//   - Ingest (producer serve) is the http.Handler of POST /v1/accounts, which
//     a bulk-safe Apex trigger in the source org calls with up to 200 records.
//   - PublishNDJSON (producer publish) reads one record per line, for
//     backfills and replays from files.
//   - CDC (producer cdc) reads Change Data Capture events over the Pub/Sub
//     API: creates, updates, deletes and undeletes, with catch-ups by SOQL
//     and Get Deleted where events were lost.
//
// Every path publishes the same created event for the same record with the
// same key (<source_org>:<source_id>:created), so capturing a record twice,
// by one path or by two, is absorbed by the stream's duplicate window and,
// past it, by the worker's idempotent upsert. Later changes are keyed by
// change: <transactionKey>:<sequenceNumber> from Change Data Capture,
// <SystemModstamp>:<hash of the copied values> from polling.
package capture
