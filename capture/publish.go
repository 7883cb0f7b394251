package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"orgsync/event"
	"orgsync/queue"
	"orgsync/salesforce"
)

// Publisher stores an event in JetStream and waits for the stream's ack.
// *queue.Queue implements it.
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, body []byte, hdr nats.Header) (duplicate bool, err error)
}

var _ Publisher = (*queue.Queue)(nil)

// Defaults shared by the capture paths.
const (
	// DefaultSkipField is the field orgsync's worker writes in the target;
	// in a two-way setup, a source record with it set is orgsync's own write.
	DefaultSkipField = "Source_Id__c"
	// DefaultPublishers is how many publishes wait for their ack at once.
	DefaultPublishers = 32
	// MaxRecords is the most records one ingest request may carry (one
	// trigger chunk).
	MaxRecords = 200
	// MaxBody is the largest ingest request body, in bytes: 12 MiB, an
	// asynchronous Apex callout's limit, so that the trigger's 200-record
	// requests fit even with long Description fields.
	MaxBody = 12 << 20
)

// Stats counts what a capture run did.
type Stats struct {
	Read       int // records read (polled rows, request records, NDJSON lines with a record)
	Published  int // records acknowledged by JetStream as new messages
	Duplicates int // records acknowledged as duplicates of a message already in the window
	Skipped    int // records not published: -skip-field or -skip-user, already published by this process, or (-changes all, cdc) no copied field changed
	Bad        int // records refused (invalid Id, not an object, …)
	APICalls   int // source API calls (poll only)
}

// Captured is Published + Duplicates: the records JetStream acknowledged.
func (s Stats) Captured() int { return s.Published + s.Duplicates }

func (s *Stats) add(o Stats) {
	s.Read += o.Read
	s.Published += o.Published
	s.Duplicates += o.Duplicates
	s.Skipped += o.Skipped
	s.Bad += o.Bad
	s.APICalls += o.APICalls
}

// ErrUnavailable is wrapped by the error of a publish that JetStream did not
// acknowledge (no stream, a full stream, no connection, a timeout): the
// caller should retry later.
var ErrUnavailable = errors.New("capture: queue unavailable")

// outgoing is one encoded event ready to publish.
type outgoing struct {
	ev   event.Event
	body []byte
}

// prepare turns a source record into its event. It checks the record's Id
// (15 or 18 characters, Account key prefix) and reports skip=true when the
// record's skipField is set (orgsync's own write).
func prepare(sourceOrg string, rec map[string]any, fields event.Fields, skipField string) (o outgoing, skip bool, err error) {
	raw, ok := rec["Id"]
	if !ok || raw == nil {
		return o, false, errors.New("no Id")
	}
	id, ok := raw.(string)
	if !ok {
		return o, false, fmt.Errorf("field Id is a %s, want a string", jsonKind(raw))
	}
	if _, err := salesforce.NormalizeIDWithPrefix(id, salesforce.PrefixAccount); err != nil {
		return o, false, fmt.Errorf("field Id %q is not an Account ID", clip(id))
	}
	if skipField != "" {
		for k, v := range rec {
			if strings.EqualFold(k, skipField) && v != nil && v != "" {
				return o, true, nil
			}
		}
	}
	ev, err := event.NewAccountCreated(sourceOrg, rec, fields)
	if err != nil {
		return o, false, errors.New(strings.TrimPrefix(err.Error(), event.ErrMalformed.Error()+": "))
	}
	body, err := ev.Encode()
	if err != nil {
		return o, false, err
	}
	return outgoing{ev: ev, body: body}, false, nil
}

// publishAll publishes every event, at most n at once, and returns when all
// were acknowledged or one failed. After an error some events may have been
// published: their keys make a retry harmless.
func publishAll(ctx context.Context, p Publisher, evs []outgoing, n int) (Stats, error) {
	var (
		mu sync.Mutex
		st Stats
	)
	if n <= 0 {
		n = DefaultPublishers
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, o := range evs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			hdr := nats.Header{}
			hdr.Set(queue.HeaderSourceID, o.ev.SourceID)
			dup, err := p.Publish(gctx, queue.AccountSubject(o.ev.Change(), o.ev.SourceID), o.ev.MsgID(), o.body, hdr)
			if err != nil {
				return fmt.Errorf("%w: publish %s: %w", ErrUnavailable, o.ev.SourceID, err)
			}
			mu.Lock()
			if dup {
				st.Duplicates++
			} else {
				st.Published++
			}
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return st, err
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		return "number"
	}
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	for i := n; i > 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return s[:i] + "…"
		}
	}
	return "…"
}
