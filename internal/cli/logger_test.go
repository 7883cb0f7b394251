package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"orgsync/internal/cli"
)

// Durations are logged as "1s", not as nanosecond integers.
func TestLoggerWritesDurationsAsText(t *testing.T) {
	var b bytes.Buffer
	log, err := cli.Logger(&b, "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("poller started", "interval", time.Second, "overlap", 2*time.Minute)
	if got := b.String(); !strings.Contains(got, `"interval":"1s","overlap":"2m0s"`) {
		t.Errorf("got %s", got)
	}
	if _, err := cli.Logger(io.Discard, "loud"); err == nil || err.Error() != `-log-level "loud": want debug, info, warn or error` {
		t.Errorf("bad level: %v", err)
	}
}

// A bad value is one line naming the flag and what it wants, without the
// flag list; -h prints the flag list.
func TestParseShortErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-wait", "250"}, `-wait "250": want a duration such as 250ms, 2s or 1m`},
		{[]string{"-n", "x"}, `-n "x": want a whole number`},
		{[]string{"-rate", "x"}, `-rate "x": want a number`},
		{[]string{"-on=maybe"}, `-on "maybe": want true or false`},
		{[]string{"-nope"}, `flag provided but not defined: -nope`},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		fs := cli.NewFlagSet("cmd", &out)
		fs.Duration("wait", 0, "")
		fs.Int("n", 0, "")
		fs.Float64("rate", 0, "")
		fs.Bool("on", false, "")
		err := cli.Parse(fs, tt.args, func(string) string { return "" })
		var ue *cli.UsageError
		if !errors.As(err, &ue) || err.Error() != tt.want {
			t.Errorf("%v: got %v, want usage error %q", tt.args, err, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q", tt.args, out.String())
		}
	}
	var out bytes.Buffer
	fs := cli.NewFlagSet("cmd", &out)
	fs.Int("n", 0, "a number")
	if err := cli.Parse(fs, []string{"-h"}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if !strings.HasPrefix(out.String(), "usage of cmd:\n  -n int") {
		t.Errorf("-h printed %q", out.String())
	}
	var stderr bytes.Buffer
	if code := cli.Exit(cli.Usagef("-n 0: must be at least 1"), &stderr, "prog", "prog cmd"); code != 2 ||
		stderr.String() != "prog: -n 0: must be at least 1\nRun \"prog cmd -h\" for the flags.\n" {
		t.Errorf("Exit: %d %q", code, stderr.String())
	}
}
