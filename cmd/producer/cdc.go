package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"orgsync/capture"
	"orgsync/internal/app"
	"orgsync/internal/cli"
	"orgsync/queue"
	"orgsync/salesforce/pubsub"
)

func cmdCDC(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("producer cdc", stderr)
	nf := cli.AddNATSFlags(fs)
	org := cli.AddOrgFlags(fs, "source")
	cf := addCaptureFlags(fs)
	addr := fs.String("pubsub-addr", app.DefaultPubSubAddr, "the Pub/Sub API's host:port")
	topic := fs.String("topic", capture.DefaultTopic, "change event channel")
	overlap := fs.Duration("overlap", capture.DefaultOverlap, "how far before the checkpoint's commit time a catch-up reads")
	since := fs.String("since", "", "first start only (no checkpoint): also publish the Accounts created since this RFC 3339 time, by SOQL")
	ca := fs.String("pubsub-ca", "", "PEM file of extra certificate authorities for the Pub/Sub API")
	insecure := fs.Bool("pubsub-insecure", false, "do not check the Pub/Sub API's certificate (a local fake org only)")
	idle := fs.Duration("idle-timeout", pubsub.DefaultIdleTimeout, "resubscribe when the stream sends neither events nor keepalives for this long")
	srcOrg := fs.String("source-org-id", "", "the source org's ID, only needed when the token has no identity URL (-source-access-token)")
	dataDir := fs.String("data-dir", "data", "directory of the producer's checkpoint file (producer.db)")
	metricsAddr := fs.String("metrics-addr", "", "address for /metrics, /healthz and /readyz (off when empty)")
	if err := cli.Parse(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("producer cdc takes no arguments, got %q", fs.Args())
	}
	fields, err := cf.parse()
	if err != nil {
		return err
	}
	switch {
	case *overlap < 0:
		return cli.Usagef("-overlap %v: must not be negative (0: no overlap)", *overlap)
	case *idle <= 0:
		return cli.Usagef("-idle-timeout must be positive")
	case *addr == "":
		return cli.Usagef("-pubsub-addr is required")
	}
	var sinceT time.Time
	if *since != "" {
		if sinceT, err = time.Parse(time.RFC3339, *since); err != nil {
			return cli.Usagef("-since %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", *since)
		}
	}
	orgID, err := pollerOrgID(org, *srcOrg)
	if err != nil {
		return err
	}
	auth, err := org.AuthConfig()
	if err != nil {
		return err
	}
	natsOpts, err := nf.Options()
	if err != nil {
		return err
	}
	log, err := cli.Logger(stderr, *cf.logLevel)
	if err != nil {
		return err
	}
	ov := *overlap
	if ov == 0 {
		ov = -1 // no overlap rather than the default
	}
	st, err := app.RunCDC(ctx, app.CDCConfig{
		NATS:           app.NATSConfig{URL: nf.URL, Options: natsOpts},
		Queue:          queue.Config{Replicas: nf.StreamReplicas},
		Source:         auth,
		APIVersion:     org.APIVersion,
		PubSubAddr:     *addr,
		PubSubCA:       *ca,
		PubSubInsecure: *insecure,
		IdleTimeout:    *idle,
		CDC: capture.CDCConfig{SourceOrg: orgID, Topic: *topic, Fields: fields, SkipField: *cf.skipField,
			Overlap: ov, Since: sinceT},
		DataDir:     *dataDir,
		MetricsAddr: *metricsAddr,
		Logger:      log,
	})
	fmt.Fprintf(stdout, "read %d, published %d, duplicates %d, skipped %d, catch-ups %v, reconnects %v\n",
		st.Read, st.Published, st.Duplicates, st.Skipped, st.CatchUps, st.Reconnects)
	return err
}
