package store_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"orgsync/store"
)

func Example() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(filepath.Join(dir, "worker-w1.db"), &store.Options{Timeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A worker records the targets of the records it has written.
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	err = s.PutMappings([]store.Mapping{
		{SourceID: "001Sa000001AbCdIAK", TargetID: "001Ta000009XyZwIAC", WrittenAt: at},
		{SourceID: "001Sa000001AbCeIAK", TargetID: "001Ta000009XyZxIAC", WrittenAt: at.Add(time.Second)},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Before writing a batch, it skips the records already there.
	done, err := s.Lookup([]string{"001Sa000001AbCdIAK", "001Sa000001AbCfIAK"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("already written:", len(done), done["001Sa000001AbCdIAK"].TargetID)

	m, err := s.Source("001Ta000009XyZxIAC")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("source of 001Ta000009XyZxIAC:", m.SourceID)

	_, err = s.Target("001Sa000001AbCfIAK")
	fmt.Println("not found:", errors.Is(err, store.ErrNotFound))

	if err := s.Export(os.Stdout, store.FormatCSV); err != nil {
		log.Fatal(err)
	}
	// Output:
	// already written: 1 001Ta000009XyZwIAC
	// source of 001Ta000009XyZxIAC: 001Sa000001AbCeIAK
	// not found: true
	// source_id,target_id,written_at
	// 001Sa000001AbCdIAK,001Ta000009XyZwIAC,2026-11-22T10:00:00Z
	// 001Sa000001AbCeIAK,001Ta000009XyZxIAC,2026-11-22T10:00:01Z
}
