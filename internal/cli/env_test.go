package cli_test

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"orgsync/internal/cli"
)

func TestEnvName(t *testing.T) {
	tests := map[string]string{
		"fail-rate":            "ORGSYNC_FAIL_RATE",
		"nats-url":             "ORGSYNC_NATS_URL",
		"target-client-secret": "ORGSYNC_TARGET_CLIENT_SECRET",
		"addr":                 "ORGSYNC_ADDR",
	}
	for in, want := range tests {
		if got := cli.EnvName(in); got != want {
			t.Errorf("EnvName(%q): got %q, want %q", in, got, want)
		}
	}
}

func newFlags() (*flag.FlagSet, *float64, *time.Duration, *string, *bool) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rate := fs.Float64("fail-rate", 0, "")
	lat := fs.Duration("latency", 0, "")
	addr := fs.String("addr", "127.0.0.1:8081", "")
	once := fs.Bool("once", false, "")
	return fs, rate, lat, addr, once
}

func TestEnvDefaults(t *testing.T) {
	env := map[string]string{
		"ORGSYNC_FAIL_RATE": "0.5",
		"ORGSYNC_LATENCY":   "20ms",
		"ORGSYNC_ADDR":      "0.0.0.0:1",
		"ORGSYNC_ONCE":      "true",
	}
	fs, rate, lat, addr, once := newFlags()
	if err := cli.Parse(fs, []string{"-addr", "127.0.0.1:0", "pos"}, func(k string) string { return env[k] }, "once"); err != nil {
		t.Fatal(err)
	}
	if *rate != 0.5 || *lat != 20*time.Millisecond {
		t.Errorf("env not applied: rate %v latency %v", *rate, *lat)
	}
	if *addr != "127.0.0.1:0" {
		t.Errorf("addr: got %q, want the command line's 127.0.0.1:0", *addr)
	}
	if *once {
		t.Errorf("skipped flag read the environment")
	}
	if fs.NArg() != 1 || fs.Arg(0) != "pos" {
		t.Errorf("args: %v", fs.Args())
	}
}

func TestEnvDefaults_Errors(t *testing.T) {
	env := map[string]string{"ORGSYNC_FAIL_RATE": "lots", "ORGSYNC_LATENCY": "soon"}
	fs, _, _, _, _ := newFlags()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	err := cli.EnvDefaults(fs, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	var usage *cli.UsageError
	if perr := cli.Parse(fs, nil, func(k string) string { return env[k] }); !errors.As(perr, &usage) {
		t.Errorf("Parse: got %v, want a *UsageError", perr)
	}
	if perr := cli.Parse(fs, []string{"-h"}, func(string) string { return "" }); !errors.Is(perr, flag.ErrHelp) {
		t.Errorf("Parse -h: got %v, want flag.ErrHelp", perr)
	}
	for _, name := range []string{"ORGSYNC_FAIL_RATE", "ORGSYNC_LATENCY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	// Empty values count as unset.
	fs, rate, _, _, _ := newFlags()
	if err := cli.Parse(fs, nil, func(string) string { return "" }); err != nil || *rate != 0 {
		t.Errorf("got %v, %v", *rate, err)
	}
}
