package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketHashes holds one nested bucket per set (a poller's source org):
// source ID → unix nanos of the change time (8 bytes, big endian) + hash
// (8 bytes). It is created on first write.
const bucketHashes = "hashes"

// RecordHash is what a producer last published of one source record: the
// record's change time (SystemModstamp) and a hash of its copied values.
type RecordHash struct {
	Stamp time.Time // UTC when read back
	Hash  uint64
}

// RecordHashes returns the stored hashes of ids in set; an ID without one is
// absent from the map.
func (s *Store) RecordHashes(set string, ids []string) (map[string]RecordHash, error) {
	out := make(map[string]RecordHash, len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := hashBucket(tx, set)
		if b == nil {
			return nil
		}
		for _, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				continue
			}
			if len(v) != 16 {
				return fmt.Errorf("%w: hash of %q is %d bytes, want 16", ErrCorrupt, id, len(v))
			}
			out[id] = RecordHash{
				Stamp: time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))).UTC(),
				Hash:  binary.BigEndian.Uint64(v[8:]),
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: record hashes %q in %s: %w", set, s.path, err)
	}
	return out, nil
}

// UpdateRecordHashes stores put and removes del in set, in one transaction
// that is on disk when it returns nil.
func (s *Store) UpdateRecordHashes(set string, put map[string]RecordHash, del []string) error {
	if set == "" {
		return fmt.Errorf("store: record hashes: empty set name")
	}
	if s.readOnly {
		return fmt.Errorf("%w: record hashes %q in %s", ErrReadOnly, set, s.path)
	}
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists([]byte(bucketHashes))
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(set))
		if err != nil {
			return err
		}
		for id, h := range put {
			v := make([]byte, 16)
			binary.BigEndian.PutUint64(v[:8], uint64(h.Stamp.UnixNano()))
			binary.BigEndian.PutUint64(v[8:], h.Hash)
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		for _, id := range del {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: update record hashes %q in %s: %w", set, s.path, err)
	}
	return nil
}

// PruneRecordHashes removes the hashes of set whose change time is before
// before, and returns how many it removed and how many are left.
func (s *Store) PruneRecordHashes(set string, before time.Time) (removed, left int, err error) {
	if s.readOnly {
		return 0, 0, fmt.Errorf("%w: prune record hashes %q in %s", ErrReadOnly, set, s.path)
	}
	cut := uint64(before.UnixNano())
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := hashBucket(tx, set)
		if b == nil {
			return nil
		}
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(v) == 16 && binary.BigEndian.Uint64(v[:8]) >= cut {
				left++
				return nil
			}
			stale = append(stale, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		removed = len(stale)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: prune record hashes %q in %s: %w", set, s.path, err)
	}
	return removed, left, nil
}

func hashBucket(tx *bolt.Tx, set string) *bolt.Bucket {
	top := tx.Bucket([]byte(bucketHashes))
	if top == nil {
		return nil
	}
	return top.Bucket([]byte(set))
}
