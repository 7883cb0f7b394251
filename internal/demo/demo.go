// Package demo runs the whole of orgsync in one process on loopback: an
// embedded JetStream server, a fake source org and a fake target org, the
// producer polling the source and a pool of workers writing to the target.
// It is what `go run ./cmd/demo` shows a newcomer.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/credentials"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/capture"
	"orgsync/internal/app"
	"orgsync/internal/natsembed"
	"orgsync/queue"
	"orgsync/replicate"
	"orgsync/salesforce"
	"orgsync/salesforce/fakeorg"
	"orgsync/salesforce/fakeorg/eventbus"
)

// Config is the demo's settings (the flags of cmd/demo).
type Config struct {
	Accounts int           // Accounts created in the source (default 1000)
	Workers  int           // worker instances (default 3)
	Latency  time.Duration // added to every target call
	FailRate float64       // share of target calls answered 503
	// RejectEvery makes every RejectEvery-th Account fail the target's
	// validation rule until it is lifted (default 50; negative: none).
	RejectEvery int
	// Progress is how the run is shown: "bar" (a terminal), "lines"
	// (periodic lines) or "" to choose from Out.
	Progress string
	Out      io.Writer
	Logger   *slog.Logger // the components' logs; nil discards
	// Timeout bounds each phase (default 2 minutes).
	Timeout time.Duration
	// Capture is how the producer captures: "poll" (default) or "cdc"
	// (Change Data Capture from the source's fake Pub/Sub API).
	Capture string
}

// Report is what a run found.
type Report struct {
	Accounts, Synced, DeadLettered, Replayed int
	Reasons                                  map[string]int // "CODE: message" → count
	TargetCalls, WriteCalls, SourceCalls     int
	Elapsed                                  time.Duration
	Links                                    int    // child records linked to their parent
	Capture                                  string // "poll" or "cdc"
	Problems                                 []string
}

// rejectPrefix starts the names the target's validation rule rejects.
const rejectPrefix = "Invalid"

// Run runs the demo and writes its progress and report to cfg.Out. It
// returns the report and an error when a phase did not finish or the
// final check failed.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Accounts <= 0 {
		cfg.Accounts = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 3
	}
	if cfg.RejectEvery == 0 {
		cfg.RejectEvery = 50
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Capture == "" {
		cfg.Capture = "poll"
	}
	if cfg.Capture != "poll" && cfg.Capture != "cdc" {
		return nil, fmt.Errorf("demo: capture %q must be poll or cdc", cfg.Capture)
	}
	if cfg.FailRate < 0 || cfg.FailRate >= 1 {
		return nil, fmt.Errorf("demo: fail rate %v must be in [0, 1)", cfg.FailRate)
	}
	out := cfg.Out
	dir, err := os.MkdirTemp("", "orgsync-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// JetStream, in process.
	emb, err := natsembed.Run(natsembed.Config{Dir: dir + "/jetstream"})
	if err != nil {
		return nil, err
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	q, err := queue.New(ctx, js, queue.Config{})
	if err != nil {
		return nil, err
	}

	// The two orgs.
	source, sourceURL, stopSource, err := serveOrg(fakeorg.Config{Seed: 1})
	if err != nil {
		return nil, err
	}
	defer stopSource()
	target, targetURL, stopTarget, err := serveOrg(fakeorg.Config{
		Seed: 2, Latency: cfg.Latency, FailRate: cfg.FailRate, RejectName: "^" + rejectPrefix,
	})
	if err != nil {
		return nil, err
	}
	defer stopTarget()

	fmt.Fprintf(out, "orgsync demo: %d Accounts from a source org to a target org through JetStream, %d workers\n", cfg.Accounts, cfg.Workers)
	fmt.Fprintf(out, "  source org %s at %s\n  target org %s at %s (latency %v, %.0f%% of calls fail with 503,\n", source.OrgID(), sourceURL, target.OrgID(), targetURL, cfg.Latency, 100*cfg.FailRate)
	fmt.Fprintf(out, "  and a validation rule rejects names starting with %q)\n", rejectPrefix)
	var cdcAddr string
	var bus *eventbus.Server
	if cfg.Capture == "cdc" {
		var stopBus func()
		if bus, cdcAddr, stopBus, err = servePubSub(source); err != nil {
			return nil, err
		}
		defer stopBus()
		fmt.Fprintf(out, "  capture: Change Data Capture from the source's Pub/Sub API at %s\n", cdcAddr)
	}

	// Accounts in the source: some are children of an earlier Account, some
	// break the target's validation rule. With CDC they are created once
	// the producer subscribed, so that they travel as change events.
	var want, children map[string]string
	if cfg.Capture == "poll" {
		if want, children, err = seed(source, cfg.Accounts, cfg.RejectEvery); err != nil {
			return nil, err
		}
	}
	rep := &Report{Accounts: cfg.Accounts, Reasons: map[string]int{}, Capture: cfg.Capture}

	// The pipeline.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	creds := func(url string) salesforce.AuthConfig {
		return salesforce.AuthConfig{URL: url, ClientID: fakeorg.DefaultClientID, ClientSecret: fakeorg.DefaultClientSecret}
	}
	cdcReady := make(chan *capture.CDC, 1)
	g.Go(func() error {
		if cfg.Capture == "cdc" {
			_, err := app.RunCDC(gctx, app.CDCConfig{
				NATS: app.NATSConfig{Conn: nc}, Source: creds(sourceURL), DataDir: dir,
				PubSubAddr: cdcAddr, PubSubInsecure: true,
				CDC:    capture.CDCConfig{SkipField: "Source_Id__c", Settle: 100 * time.Millisecond},
				Ready:  func(c *capture.CDC) { cdcReady <- c },
				Logger: cfg.Logger.With("component", "producer"),
			})
			return err
		}
		_, err := app.RunPoller(gctx, app.PollerConfig{
			NATS: app.NATSConfig{Conn: nc}, Source: creds(sourceURL), DataDir: dir,
			Poll:   capture.PollerConfig{Interval: 200 * time.Millisecond, SkipField: "Source_Id__c", RateLimit: -1},
			Logger: cfg.Logger.With("component", "producer"),
		})
		return err
	})
	for i := range cfg.Workers {
		g.Go(func() error {
			return app.RunWorker(gctx, app.WorkerConfig{
				NATS: app.NATSConfig{Conn: nc}, Target: creds(targetURL), DataDir: dir,
				Engine: replicate.Config{WorkerID: fmt.Sprintf("demo-%d", i+1),
					ProbeInterval: time.Second, PauseFor: 5 * time.Second},
				Logger: cfg.Logger.With("component", "worker"),
			})
		})
	}
	failed := make(chan error, 1)
	go func() {
		if err := g.Wait(); err != nil && runCtx.Err() == nil {
			failed <- err
		}
	}()
	if cfg.Capture == "cdc" {
		var c *capture.CDC
		select {
		case c = <-cdcReady:
		case err := <-failed:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := wait(ctx, failed, cfg.Timeout, func() (bool, error) {
			return c.Ready() == nil && bus.Subscribers() > 0, nil
		}); err != nil {
			return nil, fmt.Errorf("demo: subscribing to change events: %w", err)
		}
		if want, children, err = seed(source, cfg.Accounts, cfg.RejectEvery); err != nil {
			return nil, err
		}
	}

	// Phase 1: every Account synced or dead-lettered.
	start := time.Now()
	fmt.Fprintln(out)
	show := newProgress(out, cfg.Progress, cfg.Accounts)
	err = wait(ctx, failed, cfg.Timeout, func() (bool, error) {
		synced := target.Stats().Records["Account"]
		dl, err := q.ListDLQ(ctx)
		if err != nil {
			return false, err
		}
		show.update(synced, len(dl), time.Since(start))
		b, err := q.Backlog(ctx)
		return err == nil && synced+len(dl) >= cfg.Accounts && b.Pending == 0 && b.AckPending == 0, err
	})
	show.done()
	rep.Elapsed = time.Since(start)
	if err != nil {
		return rep, fmt.Errorf("demo: syncing: %w", err)
	}
	entries, err := q.ListDLQ(ctx)
	if err != nil {
		return rep, err
	}
	st := target.Stats()
	rep.Synced, rep.DeadLettered = st.Records["Account"], len(entries)
	rep.TargetCalls = st.APICalls
	rep.WriteCalls = st.ByRoute["PATCH /composite/sobjects/Account/{field}"] + st.ByRoute["POST /composite"] // collections or composite upserts
	rep.SourceCalls = source.Stats().APICalls
	for _, e := range entries {
		rep.Reasons[e.Code+": "+e.Message]++
	}
	printReport(out, rep)

	// Phase 2: lift the rule, replay the DLQ, check exactly once.
	fmt.Fprintf(out, "\nLifting the validation rule and replaying the dead-letter queue (worker dlq replay)…\n")
	none := ""
	if err := target.Configure(fakeorg.ConfigPatch{RejectName: &none}); err != nil {
		return rep, err
	}
	res, err := q.Replay(ctx, queue.ReplayOptions{})
	if err != nil {
		return rep, fmt.Errorf("demo: replay: %w", err)
	}
	rep.Replayed = res.Replayed
	fmt.Fprintf(out, "  replayed %d dead letters\n", res.Replayed)
	err = wait(ctx, failed, cfg.Timeout, func() (bool, error) {
		dl, err := q.ListDLQ(ctx)
		if err != nil {
			return false, err
		}
		b, err := q.Backlog(ctx)
		return err == nil && len(dl) == 0 && b.Pending == 0 && b.AckPending == 0 &&
			target.Stats().Records["Account"] >= cfg.Accounts && linked(target, children), err
	})
	if err != nil {
		return rep, fmt.Errorf("demo: after replay: %w", err)
	}
	stop()
	rep.Problems, rep.Links = check(target, want, children)
	if len(rep.Problems) > 0 {
		fmt.Fprintf(out, "\nCHECK FAILED: %d problems\n", len(rep.Problems))
		for i, p := range rep.Problems {
			if i == 20 {
				fmt.Fprintf(out, "  … and %d more\n", len(rep.Problems)-20)
				break
			}
			fmt.Fprintf(out, "  %s\n", p)
		}
		return rep, errors.New("demo: the target does not hold every Account exactly once")
	}
	fmt.Fprintf(out, "\nCheck: all %d source Accounts are in the target exactly once, with their names and %d parent links. OK\n",
		cfg.Accounts, rep.Links)
	return rep, nil
}

// serveOrg serves a fake org on a loopback port.
func serveOrg(cfg fakeorg.Config) (*fakeorg.Org, string, func(), error) {
	org, err := fakeorg.New(cfg)
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	srv := &http.Server{Handler: org, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return org, "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// servePubSub serves the source's Pub/Sub API over TLS (a self-signed
// certificate) on a loopback port.
func servePubSub(org *fakeorg.Org) (*eventbus.Server, string, func(), error) {
	bus, err := eventbus.New(eventbus.Config{Org: org})
	if err != nil {
		return nil, "", nil, err
	}
	cert, _, err := eventbus.SelfSigned()
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	go func() { _ = bus.Serve(ln, credentials.NewServerTLSFromCert(&cert)) }()
	return bus, ln.Addr().String(), bus.Stop, nil
}

// seed creates n Accounts in the source org and returns their names by
// 18-character ID and the child → parent links among them.
func seed(org *fakeorg.Org, n, rejectEvery int) (map[string]string, map[string]string, error) {
	names := make(map[string]string, n)
	children := map[string]string{}
	var ids []string
	created := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := range n {
		name := fmt.Sprintf("Account %05d", i+1)
		if rejectEvery > 0 && i%rejectEvery == rejectEvery/2 {
			name = fmt.Sprintf("%s Co %05d", rejectPrefix, i+1)
		}
		fields := fakeorg.Record{"Name": name, "Industry": "Technology", "Phone": fmt.Sprintf("+1 555 %04d", i%10000)}
		// Every 20th Account is a subsidiary of the one before it (never a
		// rejected one, so links always resolve once parents land).
		var parent string
		if i%20 == 19 && !strings.HasPrefix(names[ids[i-1]], rejectPrefix) {
			parent = ids[i-1]
			fields["ParentId"] = parent
		}
		// Many Accounts share one CreatedDate second, as in a data load.
		id, err := org.InsertAccount(fields, created.Add(time.Duration(i/250)*time.Second))
		if err != nil {
			return nil, nil, fmt.Errorf("demo: seeding the source: %w", err)
		}
		ids = append(ids, id)
		names[id] = name
		if parent != "" {
			children[id] = parent
		}
	}
	return names, children, nil
}

// targetIndex maps source IDs to the target's records.
func targetIndex(org *fakeorg.Org) map[string][]fakeorg.Record {
	idx := map[string][]fakeorg.Record{}
	for _, r := range org.Accounts() {
		sid, _ := r["Source_Id__c"].(string)
		if n, err := salesforce.NormalizeID(sid); err == nil {
			sid = n
		}
		idx[sid] = append(idx[sid], r)
	}
	return idx
}

func linked(org *fakeorg.Org, children map[string]string) bool {
	idx := targetIndex(org)
	for child, parent := range children {
		c, p := idx[child], idx[parent]
		if len(c) != 1 || len(p) != 1 || c[0]["ParentId"] != p[0]["Id"] {
			return false
		}
	}
	return true
}

// check compares the target with the source: every Account exactly once
// with its name, nothing else, and every parent link set.
func check(org *fakeorg.Org, want, children map[string]string) (problems []string, links int) {
	idx := targetIndex(org)
	for id, name := range want {
		recs := idx[id]
		switch {
		case len(recs) == 0:
			problems = append(problems, "lost: "+id+" "+name)
		case len(recs) > 1:
			problems = append(problems, fmt.Sprintf("duplicated %d times: %s %s", len(recs), id, name))
		case recs[0]["Name"] != name:
			problems = append(problems, fmt.Sprintf("%s: name %v, want %q", id, recs[0]["Name"], name))
		}
	}
	for id := range idx {
		if _, ok := want[id]; !ok {
			problems = append(problems, "unexpected target record for source "+id)
		}
	}
	for child, parent := range children {
		c, p := idx[child], idx[parent]
		if len(c) == 1 && len(p) == 1 && c[0]["ParentId"] == p[0]["Id"] {
			links++
		} else {
			problems = append(problems, "parent link missing: "+child+" → "+parent)
		}
	}
	sort.Strings(problems)
	return problems, links
}

// wait polls cond every 100ms until it holds, the pipeline fails, ctx is
// done or timeout passes.
func wait(ctx context.Context, failed <-chan error, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, err := cond(); ok {
			return nil
		} else if err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return fmt.Errorf("the pipeline stopped: %w", err)
		case <-deadline.C:
			return fmt.Errorf("not done after %v", timeout)
		case <-tick.C:
		}
	}
}

func printReport(out io.Writer, r *Report) {
	fmt.Fprintf(out, "\nReport\n")
	fmt.Fprintf(out, "  synced:            %d of %d Accounts\n", r.Synced, r.Accounts)
	fmt.Fprintf(out, "  dead-lettered:     %d\n", r.DeadLettered)
	reasons := make([]string, 0, len(r.Reasons))
	for k := range r.Reasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(out, "    %4d × %s\n", r.Reasons[k], clip(k, 110))
	}
	perCall := 0.0
	if r.WriteCalls > 0 {
		perCall = float64(r.Synced) / float64(r.WriteCalls)
	}
	fmt.Fprintf(out, "  target API calls:  %d, of which %d upsert calls (collections or composite, %.1f records per write call);\n", r.TargetCalls, r.WriteCalls, perCall)
	fmt.Fprintf(out, "                     the trigger + @future recipe makes one call per record: %d\n", r.Accounts)
	how := "polling"
	if r.Capture == "cdc" {
		how = "Change Data Capture: describe and catch-ups only"
	}
	fmt.Fprintf(out, "  source API calls:  %d (%s)\n", r.SourceCalls, how)
	fmt.Fprintf(out, "  elapsed:           %.1f s, %.0f records/s\n", r.Elapsed.Seconds(), float64(r.Synced+r.DeadLettered)/r.Elapsed.Seconds())
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// progress shows how far phase 1 is: a bar redrawn in place on a
// terminal, or a line every two seconds otherwise.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	bar   bool
	total int
	last  time.Time
	shown bool
	final bool // the last line (everything accounted for) was printed
}

func newProgress(out io.Writer, mode string, total int) *progress {
	bar := mode == "bar"
	if mode == "" {
		if f, ok := out.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				bar = true
			}
		}
	}
	return &progress{out: out, bar: bar, total: total}
}

func (p *progress) update(synced, dead int, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := synced + dead
	if p.bar {
		const width = 40
		filled := min(width, width*done/max(p.total, 1))
		fmt.Fprintf(p.out, "\r  [%s%s] %5d/%d  synced %d · dead letters %d · %.1f s ",
			strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, p.total, synced, dead, elapsed.Seconds())
		p.shown = true
		return
	}
	final := done >= p.total
	if final && p.final {
		return
	}
	if time.Since(p.last) >= 2*time.Second || final {
		p.final = final
		fmt.Fprintf(p.out, "  %5d/%d  synced %d, dead letters %d, %.1f s\n", done, p.total, synced, dead, elapsed.Seconds())
		p.last = time.Now()
		p.shown = true
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar && p.shown {
		fmt.Fprintln(p.out)
	}
}
