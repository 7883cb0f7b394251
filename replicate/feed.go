package replicate

import (
	"context"
	"time"

	"orgsync/queue"
)

// PartitionFeed is the Feed of a queue.Partitions: lots of partitions this
// worker holds the lease of, at most one lot per partition in flight
// (docs/ordering.md).
func PartitionFeed(p *queue.Partitions) Feed { return partitionFeed{p} }

type partitionFeed struct{ p *queue.Partitions }

func (f partitionFeed) Next(ctx context.Context, max int, linger time.Duration) (Lot, error) {
	l, err := f.p.Next(ctx, max, linger)
	if err != nil {
		return nil, err
	}
	return partitionLot{l}, nil
}

func (f partitionFeed) Pending() uint64                   { return f.p.Pending() }
func (f partitionFeed) AckWait() time.Duration            { return f.p.AckWait() }
func (f partitionFeed) Suspend(ctx context.Context) error { return f.p.Suspend(ctx) }
func (f partitionFeed) Resume()                           { f.p.Resume() }

type partitionLot struct{ l *queue.Lot }

func (l partitionLot) Deliveries() []*queue.Delivery { return l.l.Deliveries }
func (l partitionLot) Done()                         { l.l.Done() }
func (l partitionLot) Fenced() bool                  { return l.l.Fenced() }
