package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Mapping is one entry of the ID map: the source record SourceID was written
// to the target org as TargetID at WrittenAt.
type Mapping struct {
	SourceID  string    `json:"source_id"`
	TargetID  string    `json:"target_id"`
	WrittenAt time.Time `json:"written_at"` // UTC when read back
}

// nanosLen is the length of the time prefix of a map value.
const nanosLen = 8

// PutMappings stores ms in both directions, in one transaction that is on
// disk when PutMappings returns nil; on error nothing of ms is stored. A zero
// WrittenAt is replaced by the current time. IDs are stored as given; an
// empty ID is an error. Later entries of ms win over earlier ones.
//
// The map stays one-to-one: rewriting a source ID with another target ID
// removes the old target's reverse entry, and a target ID that was mapped
// from another source ID takes that source's entry with it.
//
// A call made while no other is in progress commits at once. Calls made
// while others are in progress wait up to a millisecond and are combined into
// one transaction (bbolt's DB.Batch), which saves disk syncs when several
// goroutines write at once. An empty ms does nothing.
func (s *Store) PutMappings(ms []Mapping) error {
	if len(ms) == 0 {
		return nil
	}
	if s.readOnly {
		return fmt.Errorf("%w: put mappings in %s", ErrReadOnly, s.path)
	}
	// Encode everything before the transaction, into one buffer: bbolt needs
	// values to stay untouched until the commit, and DB.Batch may run the
	// closure more than once.
	now := time.Now()
	size := 0
	for i, m := range ms {
		if m.SourceID == "" || m.TargetID == "" {
			return fmt.Errorf("store: put mappings: entry %d (%q → %q): empty ID", i, m.SourceID, m.TargetID)
		}
		// A value holds int64 nanoseconds since the Unix epoch (years 1678-2262).
		if t := m.WrittenAt; !t.IsZero() && !time.Unix(0, t.UnixNano()).Equal(t) {
			return fmt.Errorf("store: put mappings: entry %d (%q): written_at %v out of range", i, m.SourceID, m.WrittenAt)
		}
		size += 2*nanosLen + 2*len(m.SourceID) + 2*len(m.TargetID)
	}
	buf := make([]byte, 0, size)
	type entry struct{ src, dst, fwdVal, revVal []byte }
	entries := make([]entry, len(ms))
	for i, m := range ms {
		t := m.WrittenAt
		if t.IsZero() {
			t = now
		}
		nanos := uint64(t.UnixNano())
		var e entry
		buf, e.fwdVal = appendValue(buf, nanos, m.TargetID)
		buf, e.revVal = appendValue(buf, nanos, m.SourceID)
		e.dst = e.fwdVal[nanosLen:]
		e.src = e.revVal[nanosLen:]
		entries[i] = e
	}

	put := func(tx *bolt.Tx) error {
		fwd, rev := tx.Bucket([]byte(bucketForward)), tx.Bucket([]byte(bucketReverse))
		fc, rc := fwd.Cursor(), rev.Cursor()
		for _, e := range entries {
			if err := putOne(fwd, rev, fc, rc, e.src, e.dst, e.fwdVal, e.revVal); err != nil {
				return fmt.Errorf("%q → %q: %w", e.src, e.dst, err)
			}
		}
		return nil
	}
	// A lone caller commits at once: DB.Batch would first wait
	// MaxBatchDelay for company.
	var err error
	if s.writers.Add(1) > 1 {
		err = s.db.Batch(put)
	} else {
		err = s.db.Update(put)
	}
	s.writers.Add(-1)
	if err != nil {
		return fmt.Errorf("store: put %d mappings in %s: %w", len(ms), s.path, err)
	}
	return nil
}

// appendValue appends the encoding of a map value to buf and returns the new
// buffer and the value, a slice of it.
func appendValue(buf []byte, nanos uint64, id string) (newBuf, value []byte) {
	start := len(buf)
	buf = binary.BigEndian.AppendUint64(buf, nanos)
	buf = append(buf, id...)
	return buf, buf[start:len(buf):len(buf)]
}

// putOne writes src → dst and dst → src, removing the entries they replace.
// fc and rc are cursors of fwd and rev, reused for the reads.
func putOne(fwd, rev *bolt.Bucket, fc, rc *bolt.Cursor, src, dst, fwdVal, revVal []byte) error {
	if old := get(fc, src); len(old) >= nanosLen && !bytes.Equal(old[nanosLen:], dst) {
		oldDst := bytes.Clone(old[nanosLen:])
		if back := get(rc, oldDst); len(back) >= nanosLen && bytes.Equal(back[nanosLen:], src) {
			if err := rev.Delete(oldDst); err != nil {
				return err
			}
		}
	}
	if old := get(rc, dst); len(old) >= nanosLen && !bytes.Equal(old[nanosLen:], src) {
		oldSrc := bytes.Clone(old[nanosLen:])
		if back := get(fc, oldSrc); len(back) >= nanosLen && bytes.Equal(back[nanosLen:], dst) {
			if err := fwd.Delete(oldSrc); err != nil {
				return err
			}
		}
	}
	if err := fwd.Put(src, fwdVal); err != nil {
		return err
	}
	return rev.Put(dst, revVal)
}

// get is Bucket.Get through a cursor of the bucket, which keeps its search
// stack from one read to the next (Bucket.Get makes a cursor each time).
// Seek starts from the root page, so writes between reads are seen.
func get(c *bolt.Cursor, key []byte) []byte {
	k, v := c.Seek(key)
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// decodeValue splits a stored value into the ID at the other end and the
// time. It copies out of v, which bbolt owns.
func decodeValue(v []byte) (id string, at time.Time, err error) {
	if len(v) <= nanosLen {
		return "", time.Time{}, fmt.Errorf("%w: map value of %d bytes", ErrCorrupt, len(v))
	}
	return string(v[nanosLen:]), time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), nil
}

// mapping builds the Mapping of a stored entry from key id and value v of the
// forward bucket (forward) or the reverse one.
func mapping(id string, v []byte, forward bool) (Mapping, error) {
	other, at, err := decodeValue(v)
	if err != nil {
		return Mapping{}, fmt.Errorf("%q: %w", id, err)
	}
	if forward {
		return Mapping{SourceID: id, TargetID: other, WrittenAt: at}, nil
	}
	return Mapping{SourceID: other, TargetID: id, WrittenAt: at}, nil
}

// Target returns the mapping of the source record sourceID, or an error
// wrapping ErrNotFound when there is none.
func (s *Store) Target(sourceID string) (Mapping, error) {
	return s.get(sourceID, bucketForward)
}

// Source returns the mapping whose target record is targetID, or an error
// wrapping ErrNotFound when there is none.
func (s *Store) Source(targetID string) (Mapping, error) {
	return s.get(targetID, bucketReverse)
}

func (s *Store) get(id, bucket string) (Mapping, error) {
	var m Mapping
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil || id == "" {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		var err error
		m, err = mapping(id, v, bucket == bucketForward)
		return err
	})
	if err != nil {
		return Mapping{}, fmt.Errorf("store: get %s ID %q: %w", bucket, id, err)
	}
	if !found {
		return Mapping{}, fmt.Errorf("%w: %s ID %q", ErrNotFound, bucket, id)
	}
	return m, nil
}

// Lookup returns the mappings of those of sourceIDs that have one, keyed by
// source ID, read in one transaction. Absent IDs are simply missing from the
// result, which is never nil when the error is nil.
func (s *Store) Lookup(sourceIDs []string) (map[string]Mapping, error) {
	found := make(map[string]Mapping, len(sourceIDs))
	if len(sourceIDs) == 0 {
		return found, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketForward))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for _, id := range sourceIDs {
			if id == "" {
				continue
			}
			if v := get(c, []byte(id)); v != nil {
				m, err := mapping(id, v, true)
				if err != nil {
					return err
				}
				found[id] = m
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lookup in %s: %w", s.path, err)
	}
	return found, nil
}

// Count returns the number of mappings. It walks the pages of the map, so its
// cost grows with the size of the map.
func (s *Store) Count() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketForward)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: count %s: %w", s.path, err)
	}
	return n, nil
}

// ForEach calls fn for every mapping in source-ID order (bytewise), in one
// read transaction. It stops at the first error fn returns and returns that
// error unchanged. fn must not write to the Store: a write that has to grow
// the file would wait for this transaction forever.
func (s *Store) ForEach(fn func(Mapping) error) error {
	var fnErr error
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketForward))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			m, err := mapping(string(k), v, true)
			if err != nil {
				return err
			}
			if fnErr = fn(m); fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: iterate %s: %w", s.path, err)
	}
	return nil
}
