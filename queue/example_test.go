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

// Publish an event, fetch it as a worker and acknowledge it.
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
	msgID := "00D000000000001AAA:001000000000001AAA:created"
	for range 2 {
		dup, err := q.Publish(ctx, queue.SubjectCreated, msgID, body, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("duplicate:", dup)
	}

	c, err := q.Consumer(ctx)
	if err != nil {
		log.Fatal(err)
	}
	ds, err := c.Deliveries(ctx, 200, 250*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range ds {
		fmt.Println("fetched:", d.Subject)
		if err := d.AckSync(ctx); err != nil {
			log.Fatal(err)
		}
	}
	b, err := q.Backlog(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pending:", b.Pending, "in flight:", b.AckPending)
	// Output:
	// duplicate: false
	// duplicate: true
	// fetched: orgsync.account.created
	// pending: 0 in flight: 0
}
