package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"orgsync/queue"
	"orgsync/salesforce"
)

// NATSConfig says how to reach NATS.
type NATSConfig struct {
	URL     string // default nats.DefaultURL
	Options []nats.Option
	// Conn, when set, is used as it is (the demo's in-process connection)
	// and not closed.
	Conn *nats.Conn
	// FailFast: a server that cannot be reached is an error at once,
	// naming the URL (one-shot commands), instead of being waited for.
	FailFast bool
}

// waitLogEvery is how often a process waiting for NATS says so again.
const waitLogEvery = 15 * time.Second

func (c NATSConfig) url() string {
	if c.Conn != nil {
		return c.Conn.ConnectedUrlRedacted()
	}
	if c.URL == "" {
		return nats.DefaultURL
	}
	return c.URL
}

// ConnectNATS is the one way orgsync's processes connect to NATS. Without
// FailFast it waits for a server that is not up yet (it starts after us, or
// restarts), logging "waiting for NATS at <url>" at once and every 15 s
// until it is connected or ctx ends, and reconnects forever afterwards.
// With FailFast an unreachable server is an error naming the URL. Passwords
// in the URL never reach a log or an error. The returned function flushes
// and closes the connection.
func ConnectNATS(ctx context.Context, c NATSConfig, name string, log *slog.Logger) (*nats.Conn, func(), error) {
	if c.Conn != nil {
		return c.Conn, func() {}, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where := redact(c.url())
	connected := make(chan struct{}, 1)
	signal := func(*nats.Conn) {
		select {
		case connected <- struct{}{}:
		default:
		}
	}
	opts := []nats.Option{nats.Name(name)}
	if c.FailFast {
		opts = append(opts, nats.Timeout(5*time.Second))
	} else {
		opts = append(opts,
			nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(true),
			nats.ConnectHandler(signal),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					log.Warn("disconnected from NATS", "url", where, "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				signal(nc)
				log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}),
		)
	}
	nc, err := nats.Connect(c.url(), append(opts, c.Options...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", where, err)
	}
	closeNC := func() { _ = nc.FlushTimeout(2 * time.Second); nc.Close() }
	if nc.IsConnected() {
		if !c.FailFast {
			log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted())
		}
		return nc, closeNC, nil
	}
	start := time.Now()
	log.Warn("waiting for NATS at " + where)
	t := time.NewTicker(waitLogEvery)
	defer t.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w", where, ctx.Err())
		case <-connected:
		case <-t.C:
			log.Warn("waiting for NATS at "+where, "waited", time.Since(start).Round(time.Second))
		}
	}
	log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "waited", time.Since(start).Round(time.Millisecond))
	return nc, closeNC, nil
}

// OpenQueue connects to NATS at once (FailFast) and opens the queue, for an
// operator command. The returned function drains the connection.
func OpenQueue(ctx context.Context, c NATSConfig, name string) (*queue.Queue, func(), error) {
	return OpenQueueConfig(ctx, c, name, queue.Config{})
}

// OpenQueueConfig is OpenQueue with the queue's configuration (used when
// the command may create ORGSYNC, e.g. `worker migrate -partitions`).
func OpenQueueConfig(ctx context.Context, c NATSConfig, name string, qcfg queue.Config) (*queue.Queue, func(), error) {
	c.FailFast = true
	nc, closeNC, err := ConnectNATS(ctx, c, name, nil)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		closeNC()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	q, err := queue.New(ctx, js, qcfg)
	if err != nil {
		closeNC()
		return nil, nil, fmt.Errorf("NATS at %s: %w", redact(c.url()), err)
	}
	return q, func() { _ = nc.Drain() }, nil
}

// NewOrgClient is the one builder of an org's token source and REST client:
// every call is marked client=orgsync and, when observe is set, observed.
func NewOrgClient(ctx context.Context, auth salesforce.AuthConfig, version string, observe func(salesforce.CallInfo), log *slog.Logger) (*salesforce.Auth, *salesforce.Client, error) {
	a, err := salesforce.NewAuth(ctx, auth)
	if err != nil {
		return nil, nil, err
	}
	c, err := salesforce.NewClient(salesforce.Config{
		Auth: a, APIVersion: version, CallOptions: "client=orgsync", Observe: observe, Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	return a, c, nil
}

// tokenRetry bounds the wait between two token attempts at start-up;
// Salesforce limits logins per user, so it grows to a minute.
var tokenRetry = struct{ first, max time.Duration }{5 * time.Second, time.Minute}

// waitForToken gets a first token for the org named by which ("target",
// "source"), retrying with backoff while ctx lasts; /readyz says what it
// waits for meanwhile. With once it tries a single time.
func waitForToken(ctx context.Context, a *salesforce.Auth, which string, rd *readiness, log *slog.Logger, once bool) error {
	delay := tokenRetry.first
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := a.Token(tctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("got a token for the "+which+" org", "flow", a.Flow())
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if once {
			return fmt.Errorf("%s org: %w", which, err)
		}
		rd.wait(fmt.Sprintf("a token for the %s org (%v)", which, err))
		log.Error("cannot get a token for the "+which+" org; not ready, retrying", "flow", a.Flow(),
			"attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, tokenRetry.max)
	}
}

// readiness is what /readyz reports: while a process sets up, the step it
// waits for; afterwards the running component's own check.
type readiness struct {
	mu      sync.Mutex
	waiting string
	check   func() error
}

func newReadiness(first string) *readiness { return &readiness{waiting: first} }

// wait records the step the process now waits for.
func (r *readiness) wait(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting = what
}

// running ends set-up: from now on check decides.
func (r *readiness) running(check func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting, r.check = "", check
}

// ready is the /readyz check.
func (r *readiness) ready() error {
	r.mu.Lock()
	waiting, check := r.waiting, r.check
	r.mu.Unlock()
	if waiting != "" {
		return errors.New("waiting for " + waiting)
	}
	if check == nil {
		return errors.New("starting")
	}
	return check()
}

// natsCheck fails while nc is not connected.
func natsCheck(nc *nats.Conn, where string) error {
	if !nc.IsConnected() {
		return fmt.Errorf("not connected to NATS at %s", where)
	}
	return nil
}

// redact removes a password or token from a URL (or a comma-separated list
// of them) before it is logged or put in an error.
func redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
