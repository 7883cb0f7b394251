package capture

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"orgsync/event"
	"orgsync/salesforce"
)

// IngestConfig configures the ingest handler of `producer serve`.
type IngestConfig struct {
	Queue Publisher // required
	// SourceOrg is the source org's ID (-source-org-id), part of every
	// event's dedup key (required).
	SourceOrg string
	// Token is the bearer token callers must present (-ingest-token,
	// required). It is never logged.
	Token string
	// Fields is the -fields allow-list; the zero value means
	// event.DefaultFields.
	Fields event.Fields
	// SkipField: records that carry this field with a value are accepted
	// but not published (orgsync's own writes). Empty: none is skipped.
	SkipField string
	// Publishers is how many publishes of one request wait for their ack at
	// once (default 32).
	Publishers int
	Metrics    *Metrics
	Logger     *slog.Logger // nil discards
}

// Ingest is the http.Handler of POST /v1/accounts. The body is a JSON array
// of at most MaxRecords Account records as Apex's JSON.serialize writes them
// (or one record), at most MaxBody bytes. It answers:
//
//   - 401 without the right bearer token (compared in constant time);
//   - 405 for another method;
//   - 413 for a body over MaxBody;
//   - 400 {"error": "record 3: …"} for malformed JSON, more than MaxRecords
//     records, or a record without a valid Account Id (records are numbered
//     from 1) — nothing of such a request is published;
//   - 503 when JetStream does not acknowledge every event; some of the
//     request's records may be stored already, which is harmless: the caller
//     retries the whole request and the dedup keys absorb the repeats;
//   - 202 {"accepted": n, "duplicates": d, "skipped": s} only after every
//     record is durably enqueued.
type Ingest struct {
	cfg       IngestConfig
	tokenHash [sha256.Size]byte
	log       *slog.Logger
}

// NewIngest checks cfg and returns the handler.
func NewIngest(cfg IngestConfig) (*Ingest, error) {
	if cfg.Queue == nil {
		return nil, errors.New("capture: IngestConfig.Queue is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("capture: an ingest token is required")
	}
	org, err := salesforce.NormalizeIDWithPrefix(cfg.SourceOrg, salesforce.PrefixOrganization)
	if err != nil {
		return nil, fmt.Errorf("capture: source org id: %w", err)
	}
	cfg.SourceOrg = org
	if len(cfg.Fields.Names()) == 0 {
		if cfg.Fields, err = event.ParseFields(""); err != nil {
			return nil, err
		}
	}
	if cfg.SkipField != "" && !event.ValidFieldName(cfg.SkipField) {
		return nil, fmt.Errorf("capture: skip field %q is not a field name", clip(cfg.SkipField))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ingest{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token)), log: cfg.Logger}, nil
}

// authorized compares the bearer token in constant time (of the hashes, so
// the token's length does not leak either).
func (h *Ingest) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		tok = ""
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1 && ok
}

func (h *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "use POST"})
		return
	}
	if !h.authorized(r) {
		h.cfg.Metrics.reject(PathServe, "unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="orgsync"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong bearer token"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.cfg.Metrics.reject(PathServe, "too_large")
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": fmt.Sprintf("body larger than %d bytes", MaxBody)})
			return
		}
		h.cfg.Metrics.reject(PathServe, "read")
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "reading the body: " + err.Error()})
		return
	}
	out, skipped, err := h.decode(body)
	if err != nil {
		h.cfg.Metrics.reject(PathServe, "bad_request")
		h.log.Info("ingest request refused", "err", err, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	st, err := publishAll(r.Context(), h.cfg.Queue, out, h.cfg.Publishers)
	st.Skipped = skipped
	h.cfg.Metrics.stats(PathServe, st)
	if err != nil {
		h.cfg.Metrics.publishError(PathServe)
		h.log.Warn("ingest request not fully enqueued; answered 503 so the caller retries",
			"err", err, "records", len(out), "published", st.Published, "duplicates", st.Duplicates)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "the queue is unavailable; retry the whole request"})
		return
	}
	h.log.Debug("ingest request enqueued", "records", len(out), "published", st.Published,
		"duplicates", st.Duplicates, "skipped", skipped)
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": st.Captured(), "duplicates": st.Duplicates, "skipped": skipped})
}

// decode parses a body into events; an error names the record (from 1).
func (h *Ingest) decode(body []byte) ([]outgoing, int, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, 0, errors.New("empty body: want a JSON array of Account records")
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := decodeOne(body, &raws); err != nil {
			return nil, 0, fmt.Errorf("malformed JSON: %v", err)
		}
	} else {
		var one json.RawMessage
		if err := decodeOne(body, &one); err != nil {
			return nil, 0, fmt.Errorf("malformed JSON: %v", err)
		}
		raws = []json.RawMessage{one}
	}
	switch {
	case len(raws) == 0:
		return nil, 0, errors.New("no records")
	case len(raws) > MaxRecords:
		return nil, 0, fmt.Errorf("%d records: at most %d per request", len(raws), MaxRecords)
	}
	out := make([]outgoing, 0, len(raws))
	skipped := 0
	for i, raw := range raws {
		rec, err := decodeRecord(raw)
		if err == nil {
			var o outgoing
			var skip bool
			if o, skip, err = prepare(h.cfg.SourceOrg, rec, h.cfg.Fields, h.cfg.SkipField); err == nil {
				if skip {
					skipped++
				} else {
					out = append(out, o)
				}
				continue
			}
		}
		return nil, 0, fmt.Errorf("record %d: %v", i+1, err)
	}
	return out, skipped, nil
}

// decodeOne decodes exactly one JSON value (numbers as json.Number) and
// refuses trailing data.
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// decodeRecord decodes one record object.
func decodeRecord(raw []byte) (map[string]any, error) {
	var v any
	if err := decodeOne(raw, &v); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	rec, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a %s, want a JSON object", jsonKind(v))
	}
	return rec, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
