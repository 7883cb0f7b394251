package queue

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish stores body on subject in ORGSYNC and waits for the stream's ack.
// msgID goes into Nats-Msg-Id (none when empty): a second publish with the
// same msgID inside the duplicate window is not stored and reports
// duplicate=true. hdr (may be nil) is copied, never modified.
//
// A full stream (DiscardNew) returns an error wrapping ErrStreamFull; a
// subject that no stream listens on returns one wrapping ErrNoStream.
func (q *Queue) Publish(ctx context.Context, subject, msgID string, body []byte, hdr nats.Header) (duplicate bool, err error) {
	m := nats.NewMsg(subject)
	m.Data = body
	for k, vs := range hdr {
		m.Header[k] = append([]string(nil), vs...)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(Stream)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := q.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return false, publishErr("publish to "+subject, Stream, err)
	}
	return ack.Duplicate, nil
}

// isPublishControlHeader reports whether k is a header that changes how
// JetStream stores a published message (dedup id, expectations, rollups, TTL,
// batches, schedules). Such headers are stripped when a stored message is
// republished: to the DLQ, or back from it.
func isPublishControlHeader(k string) bool {
	k = strings.ToLower(k)
	if !strings.HasPrefix(k, "nats-") {
		return false
	}
	switch k {
	case "nats-msg-id", "nats-rollup", "nats-ttl", "nats-incr", "nats-required-api-level",
		"nats-marker-reason":
		return true
	}
	for _, p := range []string{"nats-expected-", "nats-batch-", "nats-schedule"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// cloneHeader copies h without its publish-control headers and without the
// headers in drop (canonical names).
func cloneHeader(h nats.Header, drop ...string) nats.Header {
	out := nats.Header{}
	for k, vs := range h {
		if isPublishControlHeader(k) {
			continue
		}
		skip := false
		for _, d := range drop {
			if strings.EqualFold(k, d) {
				skip = true
				break
			}
		}
		if !skip {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// headerValue makes s safe as a header value: the NATS header block is line
// based, so CR and LF (and other control characters) become spaces.
func headerValue(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
