package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Entry is one dead letter in ORGSYNC_DLQ. Its JSON form is the line
// `worker dlq list -json` prints.
type Entry struct {
	// Seq is the entry's ORGSYNC_DLQ stream sequence.
	Seq uint64 `json:"stream_seq"`
	// Subject is the entry's subject in ORGSYNC_DLQ
	// (orgsync.dlq.account.created).
	Subject string `json:"-"`
	// OriginalSubject is the subject it was consumed from
	// (orgsync.account.updated.<source_id>.<p>, or a legacy
	// orgsync.account.created).
	OriginalSubject string `json:"-"`
	// ReplaySubject is where Replay republishes it: the original subject
	// without its partition (orgsync.account.<change>.<source_id>), so that
	// ORGSYNC partitions it again; a legacy orgsync.account.created or
	// orgsync.account.link gets its source ID appended.
	ReplaySubject string `json:"-"`
	// OriginalSeq is its sequence in ORGSYNC (0 if unknown).
	OriginalSeq uint64 `json:"-"`
	// SourceID is the source record's ID (Orgsync-Source-Id).
	SourceID string `json:"source_id"`
	// Change is the event's change ("created", "updated", "deleted",
	// "undeleted", "link"): from the original subject, or the body's type.
	Change string `json:"change"`
	// SourceOrg is the body's "source_org", or "unknown".
	SourceOrg string `json:"-"`
	// Code and Message describe the failure.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Attempts is the number of deliveries before it was dead-lettered.
	Attempts int `json:"attempts"`
	// FailedAt is when it was dead-lettered (the DLQ's stream time when the
	// header is missing).
	FailedAt time.Time `json:"failed_at"`
	// Data is the original body.
	Data []byte `json:"-"`
	// Header holds every header of the dead letter.
	Header nats.Header `json:"-"`
}

// unknownOrg stands for the source org of a body that names none.
const unknownOrg = "unknown"

// entryFrom decodes a stored dead letter: its DLQ sequence, subject,
// headers, body and stream time.
func entryFrom(seq uint64, subject string, h nats.Header, data []byte, stored time.Time) Entry {
	if h == nil {
		h = nats.Header{}
	}
	e := Entry{
		Seq:      seq,
		Subject:  subject,
		SourceID: h.Get(HeaderSourceID),
		Code:     h.Get(HeaderErrorCode),
		Message:  h.Get(HeaderErrorMessage),
		Data:     data,
		Header:   h,
	}
	if e.SourceID == "" {
		e.SourceID = bodyString(data, "source_id")
	}
	e.SourceOrg = bodyString(data, "source_org")
	if e.SourceOrg == "" {
		e.SourceOrg = unknownOrg
	}
	e.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	e.OriginalSeq, _ = strconv.ParseUint(h.Get(HeaderOriginalSeq), 10, 64)
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderFailedAt)); err == nil {
		e.FailedAt = t
	} else {
		e.FailedAt = stored.UTC()
	}
	if s, ok := replaySubject(subject); ok {
		e.OriginalSubject = s
	} else if s := h.Get(HeaderOriginalSubject); strings.HasPrefix(s, subjectRoot) {
		e.OriginalSubject = s
	} else {
		e.OriginalSubject = SubjectCreated
	}
	e.Change = changeOf(e.OriginalSubject, data)
	e.ReplaySubject = replayTarget(e.OriginalSubject, e.SourceID)
	return e
}

// accountPrefix starts every account event subject.
const accountPrefix = "orgsync.account."

// changeOf is the change token of an event on subject: the subject's third
// token, or else the body's type (account.<change>).
func changeOf(subject string, body []byte) string {
	if rest, ok := strings.CutPrefix(subject, accountPrefix); ok {
		if change, _, _ := strings.Cut(rest, "."); change != "" {
			return change
		}
	}
	change, _ := strings.CutPrefix(bodyString(body, "type"), "account.")
	return change
}

// replayTarget is where a dead letter consumed from original goes back:
// orgsync.account.<change>.<source_id>.<p> loses its partition, a legacy
// orgsync.account.<change> gains the source ID (when it can be a subject
// token); anything else is kept.
func replayTarget(original, sourceID string) string {
	rest, ok := strings.CutPrefix(original, accountPrefix)
	if !ok {
		return original
	}
	tokens := strings.Split(rest, ".")
	switch {
	case len(tokens) == 3 && isPartitionToken(tokens[2]):
		return accountPrefix + tokens[0] + "." + tokens[1]
	case len(tokens) == 1 && subjectToken(strings.TrimSpace(sourceID)):
		return AccountSubject(tokens[0], strings.TrimSpace(sourceID))
	}
	return original
}

// isPartitionToken reports whether s is a partition number.
func isPartitionToken(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && strconv.Itoa(n) == s
}

// ScanDLQ calls fn for each entry of ORGSYNC_DLQ in sequence order, up to
// the DLQ's last sequence when the scan starts (a snapshot: entries added
// meanwhile are left for the next scan). It holds one entry at a time, so a
// DLQ of any size is read in bounded memory; an entry is fn's to keep. It
// stops at the first error fn returns and returns it. It returns an error
// wrapping ErrNoStream if ORGSYNC_DLQ does not exist.
func (q *Queue) ScanDLQ(ctx context.Context, fn func(Entry) error) error {
	return q.scanDLQ(ctx, func(_ jetstream.Stream, e Entry) error { return fn(e) })
}

// ListDLQ returns every entry of ORGSYNC_DLQ in sequence order, all in
// memory: for tests and small queues. Operator commands stream with ScanDLQ.
// It returns an error wrapping ErrNoStream if ORGSYNC_DLQ does not exist.
func (q *Queue) ListDLQ(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := q.ScanDLQ(ctx, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// scanBatch is how many dead letters a scan asks for at a time; it bounds
// the entries a scan holds (at most scanBatch bodies and headers).
const scanBatch = 256

// scanDLQ calls fn for each entry of ORGSYNC_DLQ up to its last sequence at
// the start (the snapshot), in sequence order, until fn returns an error.
//
// It reads through an ephemeral consumer (no acks, removed at the end, or by
// the server after 10 minutes of inactivity if the scan dies), scanBatch
// entries a request, so memory stays bounded whatever the DLQ's size.
func (q *Queue) scanDLQ(ctx context.Context, fn func(jetstream.Stream, Entry) error) error {
	s, err := q.js.Stream(ctx, DLQStream)
	if err != nil {
		return streamErr("read dlq", DLQStream, err)
	}
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	last := state.LastSeq
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "orgsync dlq scan",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(state.FirstSeq, 1),
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     SubjectDLQ,
		InactiveThreshold: 10 * time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return streamErr("read dlq", DLQStream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name) // else the server removes it when inactive
	}()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("queue: read dlq: %w", err)
		}
		batch, err := c.FetchNoWait(scanBatch)
		if err != nil {
			return streamErr("read dlq", DLQStream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("queue: read dlq: %w: %w", ErrNotJetStream, err)
			}
			seq := md.Sequence.Stream
			if seq > last {
				return nil
			}
			if err := fn(s, entryFrom(seq, m.Subject(), m.Headers(), m.Data(), md.Timestamp)); err != nil {
				return err
			}
			if seq == last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return streamErr("read dlq", DLQStream, err)
		}
		if n == 0 {
			return nil // the rest of the snapshot was deleted meanwhile
		}
	}
}

// ReplayOptions selects the dead letters to replay. Filters AND together; an
// empty filter matches everything.
type ReplayOptions struct {
	// Code matches Orgsync-Error-Code (case-insensitive).
	Code string
	// SourceID matches Entry.SourceID exactly (surrounding spaces aside).
	// Callers that accept other spellings of an ID (the 15-character form)
	// normalise it, or filter with Match.
	SourceID string
	// Match, when set, is one more filter.
	Match func(Entry) bool
	// DryRun reports the matching entries and changes nothing.
	DryRun bool
	// Each, when set, is called for each matching entry in sequence order:
	// after its republish was acknowledged and it was deleted from the DLQ,
	// or, in a dry run, when it matched. An error from Each stops the
	// replay and is returned.
	Each func(Entry) error
}

// matches reports whether e passes the filters of o.
func (o ReplayOptions) matches(e Entry) bool {
	if o.Code != "" && !strings.EqualFold(strings.TrimSpace(o.Code), e.Code) {
		return false
	}
	if id := strings.TrimSpace(o.SourceID); id != "" && id != e.SourceID {
		return false
	}
	return o.Match == nil || o.Match(e)
}

// ReplayResult reports what Replay did.
type ReplayResult struct {
	// Matched counts the entries that passed the filters.
	Matched int
	// Replayed counts the entries republished and deleted from the DLQ
	// (0 in a dry run).
	Replayed int
}

// Replay republishes dead letters to ORGSYNC, as docs/contract.md specifies:
//   - it works on a snapshot, ORGSYNC_DLQ's last sequence when it starts, so
//     entries added meanwhile (e.g. a replayed event failing again) wait for
//     the next replay, and replay cannot loop;
//   - each matching entry goes back to its original subject without the
//     partition (Entry.ReplaySubject: orgsync.dlq.account.updated.<id>.<p> →
//     orgsync.account.updated.<id>, which ORGSYNC partitions again;
//     orgsync.dlq.account.created → orgsync.account.created.<id>) with its body and original
//     headers, Nats-Msg-Id <source_org>:<source_id>:replay:<dlq sequence> (a
//     fresh key: the original may still sit in the duplicate window and be
//     dropped silently) and Orgsync-Replay-Of <dlq sequence>;
//   - an entry is deleted from the DLQ only after ORGSYNC acknowledged its
//     republish (a republish reported as duplicate, left by an interrupted
//     replay, counts as acknowledged);
//   - with DryRun nothing is published or deleted.
//
// Entries are streamed one at a time (opt.Each sees each one), so a DLQ of
// any size replays in bounded memory.
//
// A failed republish or delete stops the replay: the result so far is
// returned with the error, and the entry stays in the DLQ (a later replay
// reuses its key, so ORGSYNC drops a copy already stored). Errors wrap
// ErrNoStream or ErrStreamFull when they apply.
func (q *Queue) Replay(ctx context.Context, opt ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	err := q.scanDLQ(ctx, func(s jetstream.Stream, e Entry) error {
		if !opt.matches(e) {
			return nil
		}
		res.Matched++
		if !opt.DryRun {
			if err := q.replayOne(ctx, s, e); err != nil {
				return err
			}
			res.Replayed++
		}
		if opt.Each != nil {
			return opt.Each(e)
		}
		return nil
	})
	return res, err
}

// replayOne republishes e and deletes it from the DLQ.
func (q *Queue) replayOne(ctx context.Context, dlq jetstream.Stream, e Entry) error {
	m := nats.NewMsg(e.ReplaySubject)
	m.Data = e.Data
	m.Header = cloneHeader(e.Header, HeaderErrorCode, HeaderErrorMessage, HeaderAttempts,
		HeaderFailedAt, HeaderOriginalSubject, HeaderOriginalSeq, HeaderReplayOf)
	seq := strconv.FormatUint(e.Seq, 10)
	m.Header.Set(HeaderReplayOf, seq)
	sourceID := e.SourceID
	if sourceID == "" {
		sourceID = "unknown"
	}
	msgID := e.SourceOrg + ":" + sourceID + ":replay:" + seq
	if _, err := q.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(Stream)); err != nil {
		return publishErr(fmt.Sprintf("replay dlq seq %d to %s", e.Seq, e.ReplaySubject), Stream, err)
	}
	if err := dlq.DeleteMsg(ctx, e.Seq); err != nil && !deletedAlready(err) {
		return streamErr(fmt.Sprintf("replay: republished dlq seq %d, but delete it", e.Seq), DLQStream, err)
	}
	return nil
}

// deletedAlready reports whether a DeleteMsg error says the message is gone
// (deleted by a concurrent replay or purge): the server answers "sequence N
// not found" (JSSequenceNotFoundErr), which the client reports as text.
func deletedAlready(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) ||
		errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "not found")
}
