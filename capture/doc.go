// Package capture is where events enter orgsync: it turns Account records of
// the source org into account.created events (package event) and publishes
// them to JetStream with their Nats-Msg-Id deduplication key. A record counts
// as captured only once JetStream has acknowledged it.
//
// There are three capture paths, one per `producer` subcommand:
//
//   - Poller (producer poll) reads new Accounts with SOQL, ordered by
//     CreatedDate and Id, from a checkpoint kept in bbolt, re-reading an
//     overlap window behind it; the checkpoint advances only over records
//     whose publishes were acknowledged.
//   - Ingest (producer serve) is the http.Handler of POST /v1/accounts, which
//     a bulk-safe Apex trigger in the source org calls with up to 200 records.
//   - PublishNDJSON (producer publish) reads one record per line, for
//     backfills and replays from files.
//
// Every path publishes the same event for the same record with the same key
// (<source_org>:<source_id>:created), so capturing a record twice, by one path
// or by two, is absorbed by the stream's duplicate window and, past it, by the
// worker's idempotent upsert.
package capture
