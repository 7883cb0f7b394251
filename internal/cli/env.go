// Package cli holds the command-line plumbing shared by orgsync's commands:
// every configuration flag can also come from an ORGSYNC_* environment
// variable, and a flag given on the command line wins.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
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
// *UsageError (exit status 2), except flag.ErrHelp, returned as is.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, skip ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return Usagef("%v", err)
	}
	if err := EnvDefaults(fs, getenv, skip...); err != nil {
		return Usagef("%v", err)
	}
	return nil
}
