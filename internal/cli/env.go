// Package cli holds the command-line plumbing shared by orgsync's commands:
// every configuration flag can also come from an ORGSYNC_* environment
// variable, and a flag given on the command line wins.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// EnvPrefix starts the name of every orgsync environment variable.
const EnvPrefix = "ORGSYNC_"

// EnvName returns the environment variable of a flag: ORGSYNC_ and the flag
// name in upper snake case ("fail-rate" → "ORGSYNC_FAIL_RATE").
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// EnvDefaults applies ORGSYNC_* environment values to the flags of fs that
// were not set on the command line. Call it after fs.Parse. Flags named in
// skip (one-shot options such as -once or -dry-run) read no environment. An
// empty value counts as unset. A value the flag does not accept is an error
// naming the variable.
func EnvDefaults(fs *flag.FlagSet, getenv func(string) string, skip ...string) error {
	onCommandLine := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	for _, s := range skip {
		onCommandLine[s] = true
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] {
			return
		}
		name := EnvName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (for -%s): %w", name, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// Parse parses args into fs, then applies the environment with EnvDefaults.
// Arguments left after the flags stay in fs.Args(). Its errors are
// *UsageError (exit status 2) with a one-line message and no flag list,
// except flag.ErrHelp, returned as is after the flags were printed.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, skip ...string) error {
	out := fs.Output()
	usage := fs.Usage
	// The flag package prints the error and the whole flag list on a bad
	// value; we print one line and point at -h instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(out, "usage of %s:\n", fs.Name())
			fs.PrintDefaults()
			return err
		}
		return Usagef("%s", flagError(fs, err))
	}
	if err := EnvDefaults(fs, getenv, skip...); err != nil {
		return Usagef("%v", err)
	}
	return nil
}

// flagError rewrites the flag package's "invalid value "250" for flag
// -linger: parse error" into "-linger "250": want a duration such as 250ms
// or 2s".
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if v, rest, ok := strings.Cut(msg, "invalid boolean value "); ok && v == "" {
		if value, name, ok := strings.Cut(rest, " for -"); ok {
			name, _, _ = strings.Cut(name, ":")
			return fmt.Sprintf("-%s %s: want true or false", name, value)
		}
	}
	const marker = " for flag -"
	i := strings.Index(msg, marker)
	if !strings.HasPrefix(msg, "invalid value ") || i < 0 {
		return msg
	}
	rest := msg[i+len(marker):]
	name, _, _ := strings.Cut(rest, ":")
	value := msg[len("invalid value "):i]
	f := fs.Lookup(name)
	if f == nil {
		return msg
	}
	want := ""
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			want = "want a duration such as 250ms, 2s or 1m"
		case int, int64, uint, uint64:
			want = "want a whole number"
		case float64:
			want = "want a number"
		case bool:
			want = "want true or false"
		}
	}
	if want == "" {
		return msg
	}
	return fmt.Sprintf("-%s %s: %s", name, value, want)
}

// NotZero returns a usage error for the first of the named flags whose
// value is zero ("0", "0s"): for settings where zero has no meaning on the
// command line, while in the config structs zero stands for the default.
func NotZero(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			continue
		}
		if g, ok := f.Value.(flag.Getter); ok {
			switch v := g.Get().(type) {
			case int:
				if v == 0 {
					return Usagef("-%s 0: must be at least 1", n)
				}
			case float64:
				if v == 0 {
					return Usagef("-%s 0: must be above 0", n)
				}
			case time.Duration:
				if v == 0 {
					return Usagef("-%s 0s: must be above 0", n)
				}
			}
		}
	}
	return nil
}
