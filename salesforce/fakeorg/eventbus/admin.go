package eventbus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// adminSettings is the JSON of GET and PUT /_fake/pubsub.
type adminSettings struct {
	Retention   *string `json:"retention,omitempty"`
	Keepalive   *string `json:"keepalive,omitempty"`
	IdleClose   *string `json:"idle_close,omitempty"`
	Stall       *bool   `json:"stall,omitempty"`
	Suppress    *bool   `json:"suppress,omitempty"`
	Origin      *string `json:"change_origin,omitempty"`
	DiffCreates *bool   `json:"diff_creates,omitempty"`
}

type adminState struct {
	Events         int    `json:"events"`
	Subscribers    int    `json:"subscribers"`
	LatestReplayID string `json:"latest_replay_id"`
	OldestReplayID string `json:"oldest_replay_id"` // "" when no event is retained
	SchemaID       string `json:"schema_id"`
	Retention      string `json:"retention"`
	Keepalive      string `json:"keepalive"`
	IdleClose      string `json:"idle_close"`
	Stall          bool   `json:"stall"`
	Suppress       bool   `json:"suppress"`
	Origin         string `json:"change_origin"`
	DiffCreates    bool   `json:"diff_creates"`
}

// AdminHandler serves the Pub/Sub admin endpoints (see the package
// documentation) and passes every other request to next; PUT /_fake/config
// loses its event_retention key to the Server and goes on to next with the
// rest.
func (s *Server) AdminHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_fake/pubsub":
			s.serveSettings(w, r)
		case "/_fake/pubsub/gap":
			s.serveGap(w, r)
		case "/_fake/pubsub/overflow":
			if r.Method != http.MethodPost {
				adminErr(w, http.StatusMethodNotAllowed, "use POST")
				return
			}
			s.Overflow()
			w.WriteHeader(http.StatusNoContent)
		case "/_fake/config":
			if r.Method == http.MethodPut {
				if !s.takeRetention(w, r) {
					return
				}
			}
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func adminErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// takeRetention applies and removes event_retention from a PUT /_fake/config
// body; false means it answered an error.
func (s *Server) takeRetention(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		adminErr(w, http.StatusBadRequest, "reading body: "+err.Error())
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		if raw, ok := m["event_retention"]; ok {
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				adminErr(w, http.StatusBadRequest, "event_retention: want a duration string like \"72h\"")
				return false
			}
			d, err := parsePositive(v)
			if err != nil {
				adminErr(w, http.StatusBadRequest, "event_retention: "+err.Error())
				return false
			}
			st := s.Settings()
			st.Retention = d
			s.Configure(st)
			delete(m, "event_retention")
			body, _ = json.Marshal(m)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}

func parsePositive(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", v)
	}
	return d, nil
}

func (s *Server) serveSettings(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		var in adminSettings
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			adminErr(w, http.StatusBadRequest, "bad settings: "+err.Error())
			return
		}
		st := s.Settings()
		for _, d := range []struct {
			v   *string
			dst *time.Duration
			key string
		}{{in.Retention, &st.Retention, "retention"}, {in.Keepalive, &st.Keepalive, "keepalive"}, {in.IdleClose, &st.IdleClose, "idle_close"}} {
			if d.v == nil {
				continue
			}
			v, err := parsePositive(*d.v)
			if err != nil {
				adminErr(w, http.StatusBadRequest, d.key+": "+err.Error())
				return
			}
			*d.dst = v
		}
		if in.Stall != nil {
			st.Stall = *in.Stall
		}
		if in.Suppress != nil {
			st.Suppress = *in.Suppress
		}
		if in.Origin != nil {
			st.Origin = *in.Origin
		}
		if in.DiffCreates != nil {
			st.DiffCreates = *in.DiffCreates
		}
		s.Configure(st)
	default:
		adminErr(w, http.StatusMethodNotAllowed, "use GET or PUT")
		return
	}
	s.mu.Lock()
	s.purgeLocked()
	oldest := ""
	if len(s.events) > 0 {
		oldest = Hex(s.events[0].replay)
	}
	out := adminState{OldestReplayID: oldest, Events: len(s.events), Subscribers: s.subscribers, LatestReplayID: Hex(replayID(s.last)),
		SchemaID: s.schema.id, Retention: s.retention.String(), Keepalive: s.keepalive.String(),
		IdleClose: s.idleClose.String(), Stall: s.stall, Suppress: s.suppress, Origin: s.origin, DiffCreates: s.diffCreates}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) serveGap(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		adminErr(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	var in struct {
		ChangeType string   `json:"change_type"`
		RecordIDs  []string `json:"record_ids"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		adminErr(w, http.StatusBadRequest, "bad gap: "+err.Error())
		return
	}
	if in.ChangeType == "" {
		in.ChangeType = "GAP_CREATE"
	}
	if err := s.Gap(in.ChangeType, in.RecordIDs); err != nil {
		adminErr(w, http.StatusBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
