package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"orgsync/event"
	"orgsync/salesforce"
)

// UsageError is a mistake in how a command was called: main prints it and
// exits 2.
type UsageError struct{ msg string }

// HelpHint is the line printed after a usage error, pointing at -h instead
// of dumping every flag.
func HelpHint(cmd string) string { return fmt.Sprintf("Run \"%s -h\" for the flags.", cmd) }

func (e *UsageError) Error() string { return e.msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// Exit prints err, if any, and returns the exit status: 0 (also for -h), 2
// for usage errors or 1. prog names the binary in the message; cmd is the
// command line whose -h the usage hint points at ("worker run").
func Exit(err error, stderr io.Writer, prog, cmd string) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %v\n%s\n", prog, err, HelpHint(cmd))
		return 2
	}
	fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
	return 1
}

// NewFlagSet returns a flag set that reports errors instead of exiting.
func NewFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// FieldName reports whether s is a Salesforce API field name.
func FieldName(s string) bool { return event.ValidFieldName(s) }

// Logger returns a JSON slog logger at the named level. Durations are
// written as Go durations ("1s", "250ms"), not as nanosecond integers.
func Logger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: durationsAsText})), nil
}

// ParseLevel parses -log-level.
func ParseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return 0, Usagef("-log-level %q: want debug, info, warn or error", level)
	}
	return l, nil
}

// durationsAsText is a slog ReplaceAttr that writes time.Duration values as
// their String form.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// OrgFlags are the connection flags of one org, prefixed "source-" or "target-".
type OrgFlags struct {
	prefix       string
	URL          string
	ClientID     string
	ClientSecret string
	Username     string
	JWTKeyFile   string
	JWTAudience  string
	RefreshToken string
	AccessToken  string
	APIVersion   string
}

// AddOrgFlags adds -<prefix>-url, -<prefix>-client-id, … and -api-version.
func AddOrgFlags(fs *flag.FlagSet, prefix string) *OrgFlags {
	o := &OrgFlags{prefix: prefix}
	p := prefix + "-"
	fs.StringVar(&o.URL, p+"url", "", "the "+prefix+" org's My Domain URL, e.g. https://acme.my.salesforce.com")
	fs.StringVar(&o.ClientID, p+"client-id", "", "the connected app's consumer key")
	fs.StringVar(&o.ClientSecret, p+"client-secret", "", "the connected app's consumer secret (client credentials flow)")
	fs.StringVar(&o.Username, p+"username", "", "the integration user (JWT bearer flow)")
	fs.StringVar(&o.JWTKeyFile, p+"jwt-key", "", "PEM file of the RSA private key (JWT bearer flow)")
	fs.StringVar(&o.JWTAudience, p+"jwt-audience", "https://login.salesforce.com", "JWT audience: https://login.salesforce.com, or https://test.salesforce.com for sandboxes")
	fs.StringVar(&o.RefreshToken, p+"refresh-token", "", "a refresh token (refresh-token flow)")
	fs.StringVar(&o.AccessToken, p+"access-token", "", "a static access token, for development (with -"+p+"url as the instance)")
	if fs.Lookup("api-version") == nil {
		fs.StringVar(&o.APIVersion, "api-version", "61.0", "Salesforce REST API version")
	}
	return o
}

// Configured reports whether any connection flag was given.
func (o *OrgFlags) Configured() bool {
	return o.URL != "" || o.ClientID != "" || o.AccessToken != ""
}

// AuthConfig turns the flags into a salesforce.AuthConfig, reading the JWT
// key file. Errors name the flags to fix, never a secret.
func (o *OrgFlags) AuthConfig() (salesforce.AuthConfig, error) {
	p := "-" + o.prefix + "-"
	if o.URL == "" {
		return salesforce.AuthConfig{}, Usagef("%surl is required", p)
	}
	if !strings.HasPrefix(o.URL, "https://") && !strings.HasPrefix(o.URL, "http://") {
		return salesforce.AuthConfig{}, Usagef("%surl %q must start with https://", p, o.URL)
	}
	c := salesforce.AuthConfig{
		URL: strings.TrimRight(o.URL, "/"), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, JWTAudience: o.JWTAudience, RefreshToken: o.RefreshToken,
	}
	switch {
	case o.AccessToken != "":
		c.AccessToken, c.InstanceURL = o.AccessToken, c.URL
	case o.RefreshToken != "":
		if o.ClientID == "" {
			return c, Usagef("%srefresh-token needs %sclient-id", p, p)
		}
	case o.JWTKeyFile != "":
		if o.ClientID == "" || o.Username == "" {
			return c, Usagef("%sjwt-key needs %sclient-id and %susername", p, p, p)
		}
		key, err := os.ReadFile(o.JWTKeyFile)
		if err != nil {
			return c, fmt.Errorf("%sjwt-key: %w", p, err)
		}
		c.JWTKey = key
	case o.ClientID != "" && o.ClientSecret != "":
	default:
		return c, Usagef("no credentials for the %s org: give %sclient-id and %sclient-secret (client credentials), %sclient-id, %susername and %sjwt-key (JWT bearer), %sclient-id and %srefresh-token, or %saccess-token",
			o.prefix, p, p, p, p, p, p, p, p)
	}
	return c, nil
}

// NATSFlags are -nats-url and the NATS security options.
type NATSFlags struct {
	URL     string
	Creds   string
	NKey    string
	TLSCA   string
	TLSCert string
	TLSKey  string
	// StreamReplicas is the replica count of the streams this process
	// creates when they are missing (3 on a JetStream cluster); only
	// commands that create streams (AddStreamFlags) offer it.
	StreamReplicas int
}

// AddStreamFlags adds the NATS flags and -stream-replicas, for the
// long-running commands that create missing streams.
func AddStreamFlags(fs *flag.FlagSet) *NATSFlags {
	n := AddNATSFlags(fs)
	fs.IntVar(&n.StreamReplicas, "stream-replicas", 1, "replicas of the streams this process creates when missing (3 on a JetStream cluster)")
	return n
}

// AddNATSFlags adds -nats-url, -nats-creds, -nats-nkey and the -nats-tls-* flags.
func AddNATSFlags(fs *flag.FlagSet) *NATSFlags {
	n := &NATSFlags{}
	fs.StringVar(&n.URL, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated")
	fs.StringVar(&n.Creds, "nats-creds", "", "NATS user credentials file (JWT + nkey seed)")
	fs.StringVar(&n.NKey, "nats-nkey", "", "NATS nkey seed file")
	fs.StringVar(&n.TLSCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server")
	fs.StringVar(&n.TLSCert, "nats-tls-cert", "", "client certificate file for NATS mutual TLS")
	fs.StringVar(&n.TLSKey, "nats-tls-key", "", "client key file for NATS mutual TLS")
	return n
}

// Options returns the nats.Options the flags ask for.
func (n *NATSFlags) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(n.NKey)
		if err != nil {
			return nil, Usagef("-nats-nkey: %v", err)
		}
		opts = append(opts, o)
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		return nil, Usagef("-nats-tls-cert and -nats-tls-key go together")
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts, nil
}
