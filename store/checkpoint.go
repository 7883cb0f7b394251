package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Checkpoint is a producer's position in the source org: the CreatedDate and
// Id of the last record it has published.
type Checkpoint struct {
	Time time.Time // UTC when read back
	ID   string
}

// IsZero reports whether cp is the zero Checkpoint, which stands for "never
// set".
func (cp Checkpoint) IsZero() bool { return cp.Time.IsZero() && cp.ID == "" }

// Checkpoint returns the checkpoint stored under name, or the zero
// Checkpoint and a nil error if none was ever set.
func (s *Store) Checkpoint(name string) (Checkpoint, error) {
	if name == "" {
		return Checkpoint{}, fmt.Errorf("store: checkpoint: empty name")
	}
	var cp Checkpoint
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketCheckpoints))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		var err error
		cp, err = decodeCheckpoint(v)
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("store: checkpoint %q in %s: %w", name, s.path, err)
	}
	return cp, nil
}

// SetCheckpoint stores cp under name, replacing any earlier value, in one
// transaction that is on disk when SetCheckpoint returns nil. The time is
// stored as an instant; Checkpoint returns it in UTC.
func (s *Store) SetCheckpoint(name string, cp Checkpoint) error {
	if name == "" {
		return fmt.Errorf("store: set checkpoint: empty name")
	}
	if s.readOnly {
		return fmt.Errorf("%w: set checkpoint %q in %s", ErrReadOnly, name, s.path)
	}
	v, err := encodeCheckpoint(cp)
	if err != nil {
		return fmt.Errorf("store: set checkpoint %q: %w", name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketCheckpoints)).Put([]byte(name), v)
	})
	if err != nil {
		return fmt.Errorf("store: set checkpoint %q in %s: %w", name, s.path, err)
	}
	return nil
}

// A checkpoint value is one byte n, the n bytes of time.Time.MarshalBinary
// (UTC), then the ID. Unlike unix nanoseconds this holds any time, the zero
// time included.
func encodeCheckpoint(cp Checkpoint) ([]byte, error) {
	t, err := cp.Time.UTC().MarshalBinary()
	if err != nil {
		return nil, err
	}
	v := make([]byte, 0, 1+len(t)+len(cp.ID))
	v = append(v, byte(len(t)))
	v = append(v, t...)
	return append(v, cp.ID...), nil
}

func decodeCheckpoint(v []byte) (Checkpoint, error) {
	if len(v) == 0 || len(v) < 1+int(v[0]) {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint value of %d bytes", ErrCorrupt, len(v))
	}
	n := int(v[0])
	var cp Checkpoint
	if err := cp.Time.UnmarshalBinary(v[1 : 1+n]); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint time: %v", ErrCorrupt, err)
	}
	cp.Time = cp.Time.UTC()
	cp.ID = string(v[1+n:])
	return cp, nil
}
