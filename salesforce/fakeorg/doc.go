// Package fakeorg is an in-memory Salesforce org served as an http.Handler:
// the OAuth 2.0 endpoints, the REST resources orgsync and third-party
// clients (jsforce, k-capehart/go-salesforce) use on Account, the seed's
// Apex REST endpoint, validation, API limits and fault injection. Tests,
// the demo and the benchmarks run against it; cmd/fakeorg serves it.
//
// An Org is safe for concurrent use. Every JSON answer carries
// Content-Type application/json;charset=UTF-8, and every REST and Apex REST
// answer carries Sforce-Limit-Info: api-usage=N/M, except the versions
// list, a 401 INVALID_SESSION_ID and a 404 for an unknown API version, as
// in the answers recorded from real orgs (testdata/recorded, which the
// conformance tests replay).
//
// # Endpoints
//
//	POST /services/oauth2/token       grant_type password, client_credentials (body or HTTP Basic),
//	                                  refresh_token, urn:ietf:params:oauth:grant-type:jwt-bearer
//	POST /services/oauth2/revoke      token=… (GET ?token= too)
//	GET  /services/oauth2/userinfo    OpenID Connect user info
//	GET  /id/<orgId>/<userId>         identity URL (the token answer's "id")
//	GET  /services/data[/]            versions list (no auth, not counted)
//	     /services/data/vNN.N/…       REST, see the route templates below (v20.0 to v66.0)
//	POST /services/apexrest/arrify/v1/accounts   ArrifyAccountsApi from the seed
//	POST /services/Soap/u/NN.N        SOAP API (partner WSDL): undelete() only, see below
//	GET  /_fake/stats, GET|PUT /_fake/config, POST /_fake/reset, POST /_fake/tokens   loopback tooling, no auth
//	POST /_fake/undelete {"ids":[…]}  fake-only JSON shortcut to undelete() (Undelete), no auth, not counted
//
// # Route templates
//
// Stats.ByRoute counts authenticated REST and Apex REST calls by
// "METHOD template", whatever their outcome; Stats.Subrequests counts the
// subrequests of composite calls by the same templates. A template is the path after
// /services/data/vNN.N, with a trailing slash dropped and IDs and values
// replaced by placeholders:
//
//	GET /                                        resources of a version
//	GET /limits
//	GET /sobjects                                describe global
//	GET|POST /sobjects/Account                   basic info | create
//	GET /sobjects/Account/describe
//	GET /sobjects/Account/updated                Get Updated (?start=&end=)
//	GET /sobjects/Account/deleted                Get Deleted (?start=&end=)
//	GET|PATCH|DELETE /sobjects/Account/{id}
//	GET|PATCH|DELETE /sobjects/Account/{field}/{value}   by external ID (PATCH = upsert)
//	POST|PATCH|DELETE /composite/sobjects         collections create | update | delete
//	GET|POST /composite/sobjects/Account         collections retrieve
//	PATCH /composite/sobjects/Account/{field}    collections upsert ({field} may be Id)
//	GET /query, GET /queryAll
//	GET /query/{locator}, GET /queryAll/{locator}
//	GET|POST /jobs/ingest                        Bulk API 2.0: list | create a job
//	GET|PATCH|DELETE /jobs/ingest/{id}           job info | close or abort | delete
//	PUT /jobs/ingest/{id}/batches                upload the job's CSV
//	GET /jobs/ingest/{id}/successfulResults      (and /failedResults, /unprocessedrecords)
//	POST /jobs/query                             Bulk API 2.0 query: create a job (query, queryAll)
//	GET|PATCH|DELETE /jobs/query/{id}            job info | abort | delete
//	GET /jobs/query/{id}/results                 CSV sets: ?locator=&maxRecords=, Sforce-Locator
//	POST /apexrest/arrify/v1/accounts            (the Apex REST path, kept whole)
//	POST /Soap/u/undelete                        SOAP undelete() (not a path: the operation's key)
//
// Paths that match no resource count as "METHOD /{unknown}" (or
// "/apexrest/{unknown}"), other sObject types as /sobjects/{sobject}… and
// /composite/sobjects/{sobject}….
//
// # SOAP undelete()
//
// POST /services/Soap/u/NN.N with a partner-WSDL envelope whose Body holds
// <undelete><ids>…</ids>…</undelete> restores accounts from the recycle
// bin (Undelete; UNDELETE changes whose changeOrigin is
// com/salesforce/api/soap/NN.N, with ";client=X" when the envelope's
// CallOptions header names a client). The SessionHeader's sessionId is an
// access token. The answer (text/xml;charset=UTF-8, HTTP 200) is an
// undeleteResponse with one result per ID in order: errors (fields,
// message, statusCode), then id (the 18-character ID, also of a failed
// result; xsi:nil for a malformed one), then success; the envelope's
// LimitInfoHeader carries the daily usage ("API REQUESTS") and there is no
// Sforce-Limit-Info header. Per record: UNDELETE_FAILED "Entity is not in
// the recycle bin" for a live account; INVALID_CROSS_REFERENCE_KEY "invalid
// cross reference id" for an ID that names no account; MALFORMED_ID
// "malformed id X"; DUPLICATE_VALUE when a live account now holds the
// unique external ID. Faults are HTTP 500 with faultcode sf:CODE,
// faultstring "CODE: message" and an UnexpectedErrorFault detail:
// INVALID_SESSION_ID (not counted), UNSUPPORTED_API_VERSION,
// REQUEST_LIMIT_EXCEEDED, EXCEEDED_ID_LIMIT (more than 200 IDs); the
// injected outage is a SERVER_UNAVAILABLE fault with HTTP 503. A request
// the SOAP layer cannot read (not XML, not one operation, another
// operation, GET, another path) is a soapenv:Client fault. Every call that
// passes authentication counts one API call under POST /Soap/u/undelete;
// latency, FailRate and the daily limit apply as to REST.
//
// # Semantics
//
// Records get 18-character IDs: key prefix (001 Account, 005 User, 01g query
// locator), the last three characters of the 15-character org ID, a base-62
// counter, then the checksum suffix; so fakes whose org IDs differ in those
// three characters (random org IDs almost always do) never mint the same ID. Datetimes are UTC with millisecond precision and render
// as 2026-01-01T00:00:00.000+0000. Deleting moves a record to the recycle
// bin: it answers ENTITY_IS_DELETED and only queryAll sees it, with
// IsDeleted=true.
//
// The replication resources (API v29.0 and later) take start and end as
// URL-encoded ISO 8601 datetimes (Z, ±hh:mm or Salesforce's ±hhmm, so a
// latestDateCovered can be passed back) and drop their seconds. Get Updated
// answers {"ids":[…],"latestDateCovered":…} with the live accounts whose
// SystemModstamp (set on create and on every update) lies in [start, end];
// Get Deleted answers {"deletedRecords":[{"id","deletedDate"}],
// "earliestDateAvailable","latestDateCovered"} for the recycle bin, the
// deletedDate being the SystemModstamp the delete set. latestDateCovered is
// end, but never past the current minute (the documentation's example asks
// for an end two days ahead and gets the minute of the call).
// INVALID_REPLICATION_DATE answers an end not at least a minute after start
// ("startDate must be at least one minute greater than endDate", Salesforce's
// wording) and a start more than 30 days back ("startDate cannot be more than
// 30 days ago"), for both resources; more than 600,000 IDs is 400
// EXCEEDED_ID_LIMIT.
//
// An Id key holding "" or null is no Id on every write path (a record to
// create); a text, ID or reference value "" is stored as null, as null is;
// "Parent": null references nothing.
// A collections upsert keyed on Id creates the records without an Id and
// updates the others. Writes validate like Salesforce: Name is required and at most 255
// characters, other text fields follow describe's lengths, unknown fields
// are INVALID_FIELD, system fields INVALID_FIELD_FOR_INSERT_UPDATE,
// ParentId must name a live Account, "Parent": {"<ext field>": v} resolves
// by external ID, the external ID field is unique and case-insensitive.
// sObject Collections calls fail as a whole (400) for request-level errors
// (bad JSON, a value of the wrong type, an unknown field, a missing
// attributes.type, more than 200 records) and otherwise answer 200 with one
// result per record, rolling everything back under allOrNone.
//
// Bulk API 2.0 ingest jobs (insert, update, upsert, delete of Account; CSV
// with any of the six column delimiters and LF or CRLF) go Open → (one PUT
// of at most 100 MB) → UploadComplete → InProgress → JobComplete, or Failed
// with errorMessage when the CSV cannot be read or names an unknown column
// ("InvalidBatch : Field name not found : X"), or Aborted. Processing runs
// in a goroutine after the close, in 200-record chunks, each record through
// the same validation, upsert logic, lock faults and within-call duplicate
// external ID check as sObject Collections (the whole job is "the call").
// In the CSV an empty value leaves a field alone, #N/A sets it to null and
// a Parent.<external ID field> column references the parent. The job stays
// InProgress for Config.BulkProcessingDelay after its close. Results are CSV
// with "sf__Id","sf__Created" or "sf__Id","sf__Error" ahead of the uploaded
// columns, errors formatted "CODE:message:Field --" ("CODE:message:--"
// without fields), in upload order; Salesforce does not guarantee any
// order, so clients must match rows by a key column. Every Bulk call is one
// API call; each started 10,000 records of a job count as one
// DailyBulkApiBatches batch.
//
// Fault injection (Config and PUT /_fake/config): Latency on every REST
// call; FailRate, the chance that a REST call fails whole with 503
// SERVER_UNAVAILABLE before anything is committed; LockRate, the chance that
// one record write fails with UNABLE_TO_LOCK_ROW; TokenTTL; DailyAPILimit,
// past which calls answer 403 REQUEST_LIMIT_EXCEEDED; RejectName, a
// validation rule. GET /limits neither counts toward the daily usage nor is
// refused by the limit, so a paused client can watch its budget free up.
//
// # Choices where Salesforce's behaviour is unverified
//
//   - Two records of one collections call with the same external ID value
//     (ignoring case) both fail with DUPLICATE_VALUE "Duplicate external id
//     specified: v" (SOAP upsert calls this DUPLICATE_EXTERNAL_ID; an upsert
//     that matches several stored records fails with DUPLICATE_EXTERNAL_ID).
//   - A record without attributes.type fails the whole call with 400
//     INVALID_TYPE; a missing "records" key with REQUIRED_FIELD_MISSING.
//   - A malformed ID in a URL path is 400 MALFORMED_ID "Record ID: id
//     value of incorrect type: X" (recorded for PATCH); in a record body
//     the message starts "Account ID:". Upsert with ?updateOnly=true and
//     no match is 404 NOT_FOUND.
//   - A collections upsert keyed on Id with an Id that names no record
//     fails that record with INVALID_CROSS_REFERENCE_KEY, as an update does.
//   - An empty string for a number, boolean or date field is a
//     JSON_PARSER_ERROR, like any other value that does not convert.
//   - Collections update of an unknown ID, and delete of one, fail with
//     INVALID_CROSS_REFERENCE_KEY; a record of a collections update without
//     Id with MISSING_ARGUMENT. A failed record of a collections update or
//     delete keeps its id, except a malformed one (documented: "malformed
//     id X" without an id) and a rolled-back one.
//   - SOAP undelete(): the codes and messages of an ID that names no
//     record (INVALID_CROSS_REFERENCE_KEY), a malformed one (MALFORMED_ID,
//     nil id), a live record (UNDELETE_FAILED, recorded only for a purged
//     one), more than 200 IDs (the EXCEEDED_ID_LIMIT fault), an unknown
//     version (UNSUPPORTED_API_VERSION "Invalid Api version specified on
//     URL"), the soapenv:Client faults, and the 503 outage fault.
//   - JWT bearer refusals: a bad signature, a malformed assertion or an exp
//     in the past or more than 1h05 ahead → invalid_grant "invalid
//     assertion"; a wrong aud → "audience is invalid"; an unknown sub →
//     "user hasn't approved this consumer"; a wrong iss → invalid_client_id.
//   - The validation rule's message, the 503 message, and
//     invalid_client "invalid client credentials" for a wrong secret.
//   - An upsert body's own external ID value is ignored: the path's value
//     names the record, and an update keeps the stored spelling.
//   - Replication: a missing start or end is 400 MISSING_ARGUMENT "Missing
//     required parameter: start"; a value that does not parse (an
//     unencoded + arrives as a space) is 400 INVALID_REPLICATION_DATE; the
//     EXCEEDED_ID_LIMIT message. Get Updated leaves deleted records out.
//     The delete log is never purged, so earliestDateAvailable is the
//     minute the org was created or last Reset, and records deleted more
//     than 15 days ago are still listed. IDs come in creation order.
//   - userinfo and the identity URL answer 403 "Bad_OAuth_Token" (text) to a
//     bad token.
//   - Bulk: an unknown or malformed job ID is 404 NOT_FOUND; a PUT to a job
//     that is not Open, a close of a job that is not Open, an abort of a
//     finished job, a DELETE of a job still Open or InProgress and a results
//     GET before the job finished are 400 INVALIDJOBSTATE (Salesforce
//     documents the code for job updates); an upload whose Content-Type is
//     not text/csv is 400 INVALIDCONTENTTYPE; hardDelete is refused with
//     400 INVALIDJOB; the list of jobs is one page. A row whose value does
//     not convert fails with INVALID_TYPE_ON_FIELD_IN_RECORD, several fields
//     of an sf__Error are joined with ", ".
package fakeorg
