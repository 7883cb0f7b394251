package store_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"orgsync/store"
)

// holdLockEnv makes the test binary, run as a child process, open the store
// at the path it names, print "locked" and hold the file until its stdin
// closes.
const holdLockEnv = "ORGSYNC_STORE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		os.Exit(holdLock(path))
	}
	os.Exit(m.Run())
}

func holdLock(path string) int {
	s, err := store.Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Ensure that Open creates the file with mode 0600 and a missing parent
// directory with mode 0700 (both less the umask).
func TestOpen_Modes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "worker-x.db")
	t.Cleanup(func() { checkFile(t, path) })
	openT(t, path, nil)

	mask, ok := umask()
	if !ok {
		t.Log("umask unknown; checking only that group and others get nothing")
		mask = 0o077
	}
	tests := []struct {
		name string
		path string
		want os.FileMode
	}{
		{name: "file", path: path, want: 0o600 &^ mask},
		{name: "parent", path: filepath.Dir(path), want: 0o700 &^ mask},
		{name: "grandparent", path: filepath.Dir(filepath.Dir(path)), want: 0o700 &^ mask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode of %s: got %v, want %v (umask %03o)", tt.path, got, tt.want, mask)
			}
		})
	}
}

// Ensure that a second Open of a file held in the same process waits for the
// timeout and then fails with ErrLocked, naming the path.
func TestOpen_LockedInProcess(t *testing.T) {
	s := mustOpen(t)

	const timeout = 300 * time.Millisecond
	start := time.Now()
	s2, err := store.Open(s.Path(), &store.Options{Timeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded; want ErrLocked")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("error %q does not name the path %s", err, s.Path())
	}
	// bbolt polls every 50ms and gives up once less than 50ms would remain.
	if elapsed < timeout-100*time.Millisecond {
		t.Errorf("Open gave up after %v; want it to wait about %v", elapsed, timeout)
	}

	// Once the first store is closed, the file opens.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, s.Path(), &store.Options{Timeout: timeout})
}

// Ensure that a negative Timeout fails at once: before an Open that waits
// for the same lock (less long than DefaultTimeout) gives up.
func TestOpen_LockedNoWait(t *testing.T) {
	s := mustOpen(t)
	waiter := make(chan error, 1)
	go func() {
		s2, err := store.Open(s.Path(), &store.Options{Timeout: store.DefaultTimeout * 3 / 4})
		if err == nil {
			s2.Close()
		}
		waiter <- err
	}()
	_, err := store.Open(s.Path(), &store.Options{Timeout: -1})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	select {
	case werr := <-waiter:
		t.Errorf("an Open waiting %v gave up (%v) before the one with a negative Timeout: that one waited", store.DefaultTimeout*3/4, werr)
	default:
	}
	if werr := <-waiter; !errors.Is(werr, store.ErrLocked) {
		t.Errorf("the waiting Open: got %v, want ErrLocked", werr)
	}
}

// Ensure that a file held by another process is reported with ErrLocked and
// opens once that process lets go.
func TestOpen_LockedByOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker-x.db")
	t.Cleanup(func() { checkFile(t, path) })

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			stdin.Close()
			_ = cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: got %q, %v; want \"locked\"", line, err)
	}

	tests := []struct {
		name string
		opts *store.Options
	}{
		{name: "writer", opts: &store.Options{Timeout: 200 * time.Millisecond}},
		{name: "read-only", opts: &store.Options{Timeout: 200 * time.Millisecond, ReadOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded while another process holds the file")
			}
			if !errors.Is(err, store.ErrLocked) {
				t.Fatalf("got %v, want ErrLocked", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path %s", err, path)
			}
		})
	}

	stdin.Close()
	exited = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	openT(t, path, &store.Options{Timeout: 200 * time.Millisecond})
}

// Ensure that read-only stores share a file with each other but not with a
// writer, create nothing and refuse writes.
func TestOpen_ReadOnly(t *testing.T) {
	s := mustOpen(t)
	mustPut(t, s, store.Mapping{SourceID: srcID(1), TargetID: dstID(1)})
	path := s.Path()
	short := &store.Options{Timeout: 100 * time.Millisecond}
	ro := &store.Options{Timeout: 100 * time.Millisecond, ReadOnly: true}

	if _, err := store.Open(path, ro); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("read-only Open while a writer holds the file: got %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r1 := openT(t, path, ro)
	r2 := openT(t, path, ro)
	for i, r := range []*store.Store{r1, r2} {
		if m, err := r.Target(srcID(1)); err != nil || m.TargetID != dstID(1) {
			t.Errorf("reader %d: Target: got %v, %v; want %s", i+1, m, err, dstID(1))
		}
	}
	if _, err := store.Open(path, short); !errors.Is(err, store.ErrLocked) {
		t.Errorf("writer Open while readers hold the file: got %v, want ErrLocked", err)
	}
	if err := r1.PutMappings([]store.Mapping{{SourceID: srcID(2), TargetID: dstID(2)}}); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("PutMappings: got %v, want ErrReadOnly", err)
	}
	if err := r1.SetCheckpoint("poll", store.Checkpoint{ID: srcID(1)}); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("SetCheckpoint: got %v, want ErrReadOnly", err)
	}
	if err := r1.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "none", "worker-y.db")
	if _, err := store.Open(missing, ro); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only Open of a missing file: got %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only Open created %s", filepath.Dir(missing))
	}
}

// Ensure that data and checkpoints survive Close and Open, and that Close
// can be called twice.
func TestOpen_Reopen(t *testing.T) {
	s := mustOpen(t)
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	want := []store.Mapping{
		{SourceID: srcID(1), TargetID: dstID(1), WrittenAt: at},
		{SourceID: srcID(2), TargetID: dstID(2), WrittenAt: at.Add(time.Second)},
	}
	mustPut(t, s, want...)
	cp := store.Checkpoint{Time: at, ID: srcID(2)}
	if err := s.SetCheckpoint("poll", cp); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if _, err := s.Target(srcID(1)); err == nil {
		t.Error("Target after Close succeeded")
	}

	s = reopen(t, s)
	for _, w := range want {
		got, err := s.Target(w.SourceID)
		if err != nil || !equalMapping(got, w) {
			t.Errorf("Target(%s): got %v, %v; want %v", w.SourceID, got, err, w)
		}
		got, err = s.Source(w.TargetID)
		if err != nil || !equalMapping(got, w) {
			t.Errorf("Source(%s): got %v, %v; want %v", w.TargetID, got, err, w)
		}
	}
	if got, err := s.Checkpoint("poll"); err != nil || !got.Time.Equal(cp.Time) || got.ID != cp.ID {
		t.Errorf("Checkpoint: got %v, %v; want %v", got, err, cp)
	}
}

// Ensure that Open refuses a file written in another format version.
func TestOpen_FormatVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker-x.db")
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	setRaw(t, path, "meta", "version", []byte("99"))
	for _, ro := range []bool{false, true} {
		if s, err := store.Open(path, &store.Options{ReadOnly: ro}); err == nil || !strings.Contains(err.Error(), "format version") {
			if err == nil {
				s.Close()
			}
			t.Errorf("Open(ReadOnly: %v): got %v, want a format version error", ro, err)
		}
	}
}

// Ensure that Check finds a map whose directions disagree.
func TestStore_Check(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker-x.db")
	s := openT(t, path, nil)
	mustPut(t, s, store.Mapping{SourceID: srcID(1), TargetID: dstID(1)})
	if err := s.Check(); err != nil {
		t.Fatalf("Check of a sound file: %v", err)
	}
	s.Close()

	// A forward entry without its reverse entry.
	val := append(make([]byte, 8), dstID(2)...)
	setRaw(t, path, "source", srcID(2), val)
	s = openT(t, path, nil)
	err := s.Check()
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), srcID(2)) {
		t.Errorf("error %q does not name %s", err, srcID(2))
	}
}

// setRaw writes one key straight into the bbolt file, behind the store's back.
func setRaw(t *testing.T, path, bucket, key string, val []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no bucket %q", bucket)
		}
		return b.Put([]byte(key), val)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure that WriteTo writes a copy that opens as a store with the same data.
func TestStore_WriteTo(t *testing.T) {
	s := mustOpen(t)
	want := store.Mapping{SourceID: srcID(1), TargetID: dstID(1), WrittenAt: time.Unix(1, 2).UTC()}
	mustPut(t, s, want)

	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkFile(t, copyPath) })
	c := openT(t, copyPath, &store.Options{ReadOnly: true})
	if got, err := c.Target(srcID(1)); err != nil || !equalMapping(got, want) {
		t.Errorf("Target in copy: got %v, %v; want %v", got, err, want)
	}
}
