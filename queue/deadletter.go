package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter describes why a message is dead-lettered.
type DeadLetter struct {
	// Code is the failure's code (e.g. REQUIRED_FIELD_MISSING,
	// MALFORMED_EVENT, MAX_DELIVERIES); it is also the term reason.
	Code string
	// Message is the failure's message; it is cut to MaxErrorMessage bytes.
	Message string
	// SourceID is the source record's ID; when empty, the message's
	// Orgsync-Source-Id header or its body's "source_id" is used.
	SourceID string
	// Attempts is the number of deliveries; when 0, the message's
	// NumDelivered is used.
	Attempts int
	// Keep leaves the message unsettled when the DLQ publish fails, for a
	// caller that retries it in process (an ordered partition must not let
	// the record's later events overtake it); otherwise it is nak'ed with
	// Config.DeadLetterNakDelay.
	Keep bool
}

// DeadLetter copies m to ORGSYNC_DLQ and, once the DLQ acknowledged the copy,
// terminates m (TermWithReason(dl.Code)), which removes it from the work
// queue.
//
// The copy has m's body and headers (Nats-Msg-Id and other publish-control
// headers excepted) plus Orgsync-Error-Code, Orgsync-Error-Message,
// Orgsync-Attempts, Orgsync-Failed-At, Orgsync-Source-Id,
// Orgsync-Original-Subject and Orgsync-Original-Seq. It goes to
// orgsync.dlq.account.X for a message on orgsync.account.X, with Nats-Msg-Id
// ORGSYNC:<original stream sequence>, so dead-lettering the same message
// twice (a crash between the two steps) stores it once.
//
// If the DLQ publish fails, m is nak'ed with Config.DeadLetterNakDelay, never
// dropped, and the error is returned (wrapping ErrStreamFull or ErrNoStream
// when they apply). A message without JetStream metadata yields an error
// wrapping ErrNotJetStream, after the same nak.
func (q *Queue) DeadLetter(ctx context.Context, m jetstream.Msg, dl DeadLetter) error {
	if dl.Keep {
		return q.deadLetter(ctx, m, dl, func(_ jetstream.Msg, err error) error { return err })
	}
	return q.deadLetter(ctx, m, dl, q.dlqFailed)
}

func (q *Queue) deadLetter(ctx context.Context, m jetstream.Msg, dl DeadLetter, dlqFailed func(jetstream.Msg, error) error) error {
	md, err := m.Metadata()
	if err != nil {
		return dlqFailed(m, fmt.Errorf("queue: dead-letter: %w: %w", ErrNotJetStream, err))
	}
	out := nats.NewMsg(dlqSubject(m.Subject()))
	out.Data = m.Data()
	out.Header = cloneHeader(m.Headers())
	attempts := dl.Attempts
	if attempts <= 0 {
		attempts = int(min(md.NumDelivered, uint64(1<<31-1)))
	}
	sourceID := dl.SourceID
	if sourceID == "" {
		sourceID = m.Headers().Get(HeaderSourceID)
	}
	if sourceID == "" {
		sourceID = bodyString(m.Data(), "source_id")
	}
	out.Header.Set(HeaderErrorCode, headerValue(dl.Code))
	out.Header.Set(HeaderErrorMessage, truncateUTF8(headerValue(dl.Message), MaxErrorMessage))
	out.Header.Set(HeaderAttempts, strconv.Itoa(attempts))
	out.Header.Set(HeaderFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	out.Header.Set(HeaderSourceID, headerValue(sourceID))
	out.Header.Set(HeaderOriginalSubject, m.Subject())
	out.Header.Set(HeaderOriginalSeq, strconv.FormatUint(md.Sequence.Stream, 10))

	op := fmt.Sprintf("dead-letter %s seq %d", m.Subject(), md.Sequence.Stream)
	msgID := Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	ack, err := q.js.PublishMsg(ctx, out, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(DLQStream))
	if err != nil {
		return dlqFailed(m, publishErr(op, DLQStream, err))
	}
	if ack.Duplicate {
		clash, err := q.dlqClash(ctx, ack.Sequence, m)
		if err != nil {
			return dlqFailed(m, fmt.Errorf("queue: %s: check the duplicate: %w", op, err))
		}
		if clash {
			// ORGSYNC was re-created inside the duplicate window and its
			// sequences started again: the DLQ holds another message under
			// this key. Store this one under a key of its own.
			msgID += ":" + strconv.FormatInt(md.Timestamp.UnixNano(), 10)
			q.log.Warn("queue: dead-letter key already used by another message (was ORGSYNC re-created?)",
				logKeyStream, DLQStream, "dlq_seq", ack.Sequence, "msg_id", msgID)
			if _, err := q.js.PublishMsg(ctx, out, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(DLQStream)); err != nil {
				return dlqFailed(m, publishErr(op, DLQStream, err))
			}
		}
	}
	if err := Term(m, dl.Code); err != nil {
		// The copy is in the DLQ; a redelivery dead-letters it again and the
		// DLQ drops the second copy as a duplicate.
		return fmt.Errorf("queue: dead-letter seq %d: stored in %s, but %w", md.Sequence.Stream, DLQStream, err)
	}
	return nil
}

// dlqClash reports whether the DLQ entry at seq, which the DLQ named as the
// original of a duplicate dead letter of m, is another message: a different
// subject or body. An entry already gone (replayed or purged) is no clash.
func (q *Queue) dlqClash(ctx context.Context, seq uint64, m jetstream.Msg) (bool, error) {
	s, err := q.js.Stream(ctx, DLQStream)
	if err != nil {
		return false, streamErr("read dlq", DLQStream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, streamErr(fmt.Sprintf("read dlq seq %d", seq), DLQStream, err)
	}
	return raw.Header.Get(HeaderOriginalSubject) != m.Subject() || !bytes.Equal(raw.Data, m.Data()), nil
}

// dlqFailed naks m for a later retry and returns err (joined with the nak's
// error, if any).
func (q *Queue) dlqFailed(m jetstream.Msg, err error) error {
	if nerr := Nak(m, q.cfg.DeadLetterNakDelay); nerr != nil {
		return errors.Join(err, nerr)
	}
	return err
}

// dlqSubject maps orgsync.X to orgsync.dlq.X; any other subject S goes to
// orgsync.dlq.S.
func dlqSubject(subject string) string {
	return dlqRoot + strings.TrimPrefix(subject, subjectRoot)
}

// replaySubject maps a DLQ subject orgsync.dlq.X back to orgsync.X; ok is
// false for a subject outside orgsync.dlq.
func replaySubject(dlq string) (subject string, ok bool) {
	rest, ok := strings.CutPrefix(dlq, dlqRoot)
	if !ok || rest == "" {
		return "", false
	}
	return subjectRoot + rest, true
}

// bodyString returns the string field key of a JSON object body, or "" when
// the body is not a JSON object or lacks that string.
func bodyString(body []byte, key string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(obj[key], &s) != nil {
		return ""
	}
	return s
}
