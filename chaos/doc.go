// Package chaos holds orgsync's chaos suite (issue 6). It has no code of its
// own: its tests build the real binaries (cmd/worker, cmd/producer,
// cmd/fakeorg and nats-server from the module's own dependency), start them
// as processes on loopback, inject faults, SIGKILL workers, producers and
// NATS servers, and account for every record at the end.
//
//	go test ./chaos                              default variant (what CI's go test -race ./... runs)
//	go test -short ./chaos                       skipped: the quick test command leaves the suite to CI
//	ORGSYNC_CHAOS_FULL=1 go test -run Chaos -count=1 -v ./chaos    full: thousands of records, bigger cluster run
//	go test -run Chaos -count=1 -v ./chaos -chaos.full              the same
//
// Every process's output goes to a file in the test's temporary directory;
// the tails of those files are printed when a test fails.
package chaos
