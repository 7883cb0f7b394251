package chaos

import (
	"hash/fnv"
	"strconv"
)

// The partitioned layout of docs/ordering.md, as the tests see it.
// TODO(merge): delegate to queue.PartitionOf, queue.PartitionBucket and
// queue.ConsumerFor once the queue's partitioned consumers are merged.

// leaseBucket is the KV bucket of the partition leases.
const leaseBucket = "ORGSYNC_PARTITIONS"

// partitionOf is the partition of a source ID: FNV-32a modulo n, the
// server's partition() transform.
func partitionOf(sourceID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sourceID))
	return int(h.Sum32() % uint32(n))
}

// partitionConsumer names partition p's consumer.
func partitionConsumer(p int) string { return "workers-" + strconv.Itoa(p) }
