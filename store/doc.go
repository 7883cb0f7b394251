/*
Package store keeps a worker's durable state in a bbolt file: the ID map from
source record IDs to target record IDs (in both directions, with the time each
entry was written) and the producers' checkpoints.

# Basics

Open a file with Open and release it with Close. A Store is safe for
concurrent use by many goroutines:

	s, err := store.Open(filepath.Join(dataDir, "worker-"+id+".db"), nil)
	if err != nil {
		return err
	}
	defer s.Close()

	err = s.PutMappings([]store.Mapping{{SourceID: src, TargetID: dst}})
	m, err := s.Target(src) // errors.Is(err, store.ErrNotFound) when absent

The map is one-to-one. PutMappings of a source ID that already maps to
another target removes the old target's reverse entry, and mapping a target ID
that was mapped from another source removes that source's entry, so Target
and Source always answer each other.

Every write is one bbolt transaction that is synced to disk (fdatasync)
before the call returns: once PutMappings or SetCheckpoint returns nil, the
data survives a crash of the process or of the machine (on a disk that
honours flushes).

# Caveats

Only one process can open a file for writing: bbolt takes an exclusive flock
on it. A second Open waits up to Options.Timeout and then fails with an error
wrapping ErrLocked that names the path. The lock belongs to the open file
description, so a second Open of the same path in the same process blocks
just the same.

A read-only Store (Options.ReadOnly) takes a shared flock instead. Any number
of read-only Stores can share a file, but not with a writer: a read-only Open
fails with ErrLocked while a worker holds the file, and a worker's Open fails
with ErrLocked while a read-only Store is open. To read a running worker's map,
the worker itself must write it out (Export, or WriteTo for a copy of the
whole file).

ForEach, Export and WriteTo hold one read transaction for their whole run.
A long read transaction keeps bbolt from reusing freed pages and, when the
file must grow, makes writers wait for it to finish.
*/
package store
