package queue_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"orgsync/internal/natsembed"
	"orgsync/queue"
)

// Publish an event, take it as a worker does (from the partition it falls
// in, under that partition's lease) and acknowledge it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "orgsync-queue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := natsembed.Run(natsembed.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}

	q, err := queue.New(ctx, js, queue.Config{})
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"v":1,"type":"account.created","source_org":"00D000000000001AAA","source_id":"001000000000001AAA","fields":{"Name":"Acme"}}`)
	subject := queue.AccountSubject("created", "001000000000001AAA")
	msgID := "00D000000000001AAA:001000000000001AAA:created"
	for range 2 {
		dup, err := q.Publish(ctx, subject, msgID, body, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("duplicate:", dup)
	}

	// A worker holds partition leases and takes lots of deliveries from
	// the partitions it holds.
	ps, err := q.Partitions(ctx, queue.PartitionsConfig{WorkerID: "example"})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ps.Run(runCtx) }()
	lot, err := ps.Next(ctx, 200, 250*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range lot.Deliveries {
		fmt.Println("fetched:", d.Subject, "partition", lot.Partitions)
		if err := d.AckSync(ctx); err != nil {
			log.Fatal(err)
		}
	}
	lot.Done()
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	b, err := q.Backlog(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pending:", b.Pending, "in flight:", b.AckPending)
	// Output:
	// duplicate: false
	// duplicate: true
	// fetched: orgsync.account.created.001000000000001AAA.8 partition [8]
	// pending: 0 in flight: 0
}
