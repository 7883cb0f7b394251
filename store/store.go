package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// fileMode is the permission of a database file that Open creates, before
// the process umask.
const fileMode = 0o600

// batchDelay is how long concurrent PutMappings calls wait for company
// before their combined transaction starts (bbolt's DB.MaxBatchDelay, 10ms by
// default). Syncs take about as long, so callers that arrive during one sync
// still share the next one, and none waits 10ms for nothing.
const batchDelay = time.Millisecond

// formatVersion is the layout of the buckets and values below. Open refuses a
// file written with another version.
const formatVersion = "1"

// Bucket and key names.
const (
	bucketMeta        = "meta"        // key "version" → formatVersion
	bucketForward     = "source"      // source ID → unix nanos (8 bytes, big endian) + target ID
	bucketReverse     = "target"      // target ID → unix nanos (8 bytes, big endian) + source ID
	bucketCheckpoints = "checkpoints" // name → checkpoint encoding (checkpoint.go)

	keyVersion = "version"
)

// Errors returned by the package. They are wrapped with context, so compare
// them with errors.Is.
var (
	// ErrLocked is returned by Open when the file lock could not be taken
	// within Options.Timeout: another Store, in this or another process,
	// holds the file. The error names the path.
	ErrLocked = errors.New("store: database file is locked by another process")

	// ErrNotFound is returned by Target and Source when the ID has no mapping.
	ErrNotFound = errors.New("store: not found")

	// ErrReadOnly is returned by the write methods of a Store opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("store: database opened read-only")

	// ErrCorrupt is returned when a stored value cannot be decoded, and by
	// Check when it finds an inconsistency.
	ErrCorrupt = errors.New("store: corrupt database")
)

// Options are the options of Open. A nil *Options means the zero value.
type Options struct {
	// Timeout is how long Open waits for the file lock before it returns
	// ErrLocked. Zero means DefaultTimeout; a negative value means one
	// attempt, no waiting.
	Timeout time.Duration

	// ReadOnly opens an existing file for reading only, with a shared lock.
	// Several read-only Stores, in any processes, can share a file, but not
	// with a writable Store: while a worker holds the file, a read-only Open
	// fails with ErrLocked after Timeout (and vice versa). Open creates
	// nothing in this mode, and the write methods return ErrReadOnly.
	ReadOnly bool
}

// Store is an open database file. It is safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
	writers  atomic.Int32 // PutMappings calls in progress
}

// Open opens the database file at path, creating it (mode 0600, and its
// parent directory with mode 0700) and its buckets if needed. A nil opts
// means the defaults.
//
// If another Store holds the file, Open waits up to opts.Timeout and then
// returns an error wrapping ErrLocked. The caller must Close the Store to
// release the file.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, fileMode, &bolt.Options{
		Timeout:  o.Timeout,
		ReadOnly: o.ReadOnly,
		// The hashmap freelist stays fast when the file is large and
		// fragmented; its choice of pages does not affect durability.
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, o.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	s := &Store{db: db, path: path, readOnly: o.ReadOnly}
	if o.ReadOnly {
		err = db.View(checkVersion)
	} else {
		err = db.Update(initBuckets)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// initBuckets creates the buckets of a new file and checks the format
// version of an existing one.
func initBuckets(tx *bolt.Tx) error {
	for _, name := range []string{bucketMeta, bucketForward, bucketReverse, bucketCheckpoints} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	if meta := tx.Bucket([]byte(bucketMeta)); meta.Get([]byte(keyVersion)) == nil {
		return meta.Put([]byte(keyVersion), []byte(formatVersion))
	}
	return checkVersion(tx)
}

// checkVersion fails if the file was written with an unknown format version.
// A file without the meta bucket (never opened for writing) passes.
func checkVersion(tx *bolt.Tx) error {
	b := tx.Bucket([]byte(bucketMeta))
	if b == nil {
		return nil
	}
	if v := b.Get([]byte(keyVersion)); v != nil && string(v) != formatVersion {
		return fmt.Errorf("format version %q, want %q", v, formatVersion)
	}
	return nil
}

// Close releases the file and its lock. It waits for running transactions to
// finish. Calling Close again does nothing and returns nil; any other method
// called after Close returns an error.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the path the Store was opened with.
func (s *Store) Path() string { return s.path }

// WriteTo writes a consistent copy of the whole database file to w, taken in
// one read transaction, and returns the number of bytes written. The copy can
// be opened with Open like the original; it lets a running worker hand out
// its map while it keeps the file locked.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: write copy of %s: %w", s.path, err)
	}
	return n, nil
}

// Check verifies the database: bbolt's page-level consistency check
// (Tx.Check) and that the two directions of the ID map agree, every source
// entry having the matching target entry and back, with equal times. It
// reads the whole file. A writable Store runs the check in a write
// transaction that it rolls back, so writers wait until it is done. The
// errors found are joined and wrap ErrCorrupt.
func (s *Store) Check() error {
	tx, err := s.db.Begin(!s.readOnly)
	if err != nil {
		return fmt.Errorf("store: check %s: %w", s.path, err)
	}
	defer func() { _ = tx.Rollback() }()

	var errs []error
	add := func(err error) bool {
		errs = append(errs, err)
		return len(errs) < 20
	}
	for err := range tx.Check() {
		if !add(fmt.Errorf("%w: %v", ErrCorrupt, err)) {
			break
		}
	}
	if len(errs) == 0 {
		checkDirections(tx, add)
	}
	if len(errs) > 0 {
		return fmt.Errorf("store: check %s: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// checkDirections reports through add every entry of either direction of the
// map without its counterpart, until add returns false.
func checkDirections(tx *bolt.Tx, add func(error) bool) {
	fwd, rev := tx.Bucket([]byte(bucketForward)), tx.Bucket([]byte(bucketReverse))
	if fwd == nil || rev == nil {
		if (fwd != nil && fwd.Stats().KeyN > 0) || (rev != nil && rev.Stats().KeyN > 0) {
			add(fmt.Errorf("%w: one direction of the map is missing", ErrCorrupt))
		}
		return
	}
	pairs := []struct {
		from, to *bolt.Bucket
		what     string
	}{
		{fwd, rev, "source"},
		{rev, fwd, "target"},
	}
	for _, p := range pairs {
		c := p.from.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) < nanosLen {
				if !add(fmt.Errorf("%w: %s %q: value of %d bytes", ErrCorrupt, p.what, k, len(v))) {
					return
				}
				continue
			}
			back := p.to.Get(v[nanosLen:])
			if len(back) < nanosLen || !bytes.Equal(back[nanosLen:], k) || !bytes.Equal(back[:nanosLen], v[:nanosLen]) {
				if !add(fmt.Errorf("%w: %s %q → %q has no matching entry back", ErrCorrupt, p.what, k, v[nanosLen:])) {
					return
				}
			}
		}
	}
}
