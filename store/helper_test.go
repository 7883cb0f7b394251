package store_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"orgsync/store"
)

// mustOpen opens a new store under t.TempDir. When the test ends, every store
// the test opened is closed, then the file is checked: bbolt's Tx.Check and
// the agreement of both directions of the map (Store.Check).
func mustOpen(t testing.TB) *store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "worker-test.db")
	// Registered first, so it runs last, after the stores are closed.
	t.Cleanup(func() { checkFile(t, path) })
	return openT(t, path, nil)
}

// openT opens path and closes the store when the test ends.
func openT(t testing.TB, path string, opts *store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// reopen closes s and opens its file again.
func reopen(t testing.TB, s *store.Store) *store.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openT(t, s.Path(), nil)
}

// checkFile runs the consistency checks on the closed file at path.
func checkFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return // the test never created it
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("consistency check: bbolt open: %v", err)
		return
	}
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("consistency check: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("consistency check: close: %v", err)
	}

	s, err := store.Open(path, &store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("consistency check: open: %v", err)
		return
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Errorf("consistency check: %v", err)
	}
}

// mustPut stores ms or fails the test.
func mustPut(t testing.TB, s *store.Store, ms ...store.Mapping) {
	t.Helper()
	if err := s.PutMappings(ms); err != nil {
		t.Fatalf("PutMappings: %v", err)
	}
}

// srcID and dstID make distinct 18-character IDs shaped like Account IDs.
func srcID(n int) string { return fmt.Sprintf("001S%011dAAA", n) }
func dstID(n int) string { return fmt.Sprintf("001T%011dAAA", n) }

// umask returns the process umask from /proc/self/status, or false where
// that is not available. Reading it there avoids syscall.Umask, which can only
// read the mask by changing it for the whole process.
func umask() (os.FileMode, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return 0, false
			}
			return os.FileMode(n), true
		}
	}
	return 0, false
}

// equalMapping reports whether a and b hold the same IDs and instant.
func equalMapping(a, b store.Mapping) bool {
	return a.SourceID == b.SourceID && a.TargetID == b.TargetID && a.WrittenAt.Equal(b.WrittenAt)
}
