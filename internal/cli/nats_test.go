package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"orgsync/internal/app"
	"orgsync/internal/cli"
)

// connect is the one-shot connection every operator command makes.
func connect(t *testing.T, url string, opts []nats.Option) (*nats.Conn, error) {
	nc, closeNC, err := app.ConnectNATS(t.Context(), app.NATSConfig{URL: url, Options: opts, FailFast: true}, "test", nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(closeNC)
	return nc, nil
}

// pki is a throwaway CA with a server and a client certificate.
type pki struct {
	dir                       string
	caFile, certFile, keyFile string
	serverCert                tls.Certificate
	pool                      *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orgsync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &pki{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	sDER, sKey := issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
	p.serverCert = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := issue("orgsync-worker", x509.ExtKeyUsageClientAuth)
	p.certFile = write("client.pem", "CERTIFICATE", cDER)
	keyDER, _ := x509.MarshalECPrivateKey(cKey)
	p.keyFile = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// A NATS server that requires TLS with a client certificate and an nkey
// user accepts exactly the connections the -nats-* flags configure fully.
func TestNATSFlagsTLSAndNkey(t *testing.T) {
	p := newPKI(t)
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	seedFile := filepath.Join(p.dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLS: true, TLSVerify: true, TLSTimeout: 2,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientCAs: p.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		Nkeys: []*server.NkeyUser{{Nkey: pub}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := "tls://" + ns.Addr().String()

	tests := []struct {
		name    string
		flags   cli.NATSFlags
		wantErr string
	}{
		{name: "all set", flags: cli.NATSFlags{URL: url, TLSCA: p.caFile, TLSCert: p.certFile, TLSKey: p.keyFile, NKey: seedFile}},
		{name: "no nkey", flags: cli.NATSFlags{URL: url, TLSCA: p.caFile, TLSCert: p.certFile, TLSKey: p.keyFile}, wantErr: "authorization"},
		{name: "no client cert", flags: cli.NATSFlags{URL: url, TLSCA: p.caFile, NKey: seedFile}, wantErr: "tls"},
		{name: "server not trusted", flags: cli.NATSFlags{URL: url, TLSCert: p.certFile, TLSKey: p.keyFile, NKey: seedFile}, wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.flags.Options()
			if err != nil {
				t.Fatal(err)
			}
			nc, err := connect(t, tt.flags.URL, opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("connected, want a refusal")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), string(seed)) {
				t.Error("the error contains the nkey seed")
			}
		})
	}
}

func TestNATSFlagsUsage(t *testing.T) {
	if _, err := (&cli.NATSFlags{TLSCert: "a"}).Options(); err == nil {
		t.Error("-nats-tls-cert without -nats-tls-key accepted")
	}
	if _, err := (&cli.NATSFlags{NKey: filepath.Join(t.TempDir(), "missing")}).Options(); err == nil {
		t.Error("a missing nkey seed file accepted")
	}
}

// A server in operator mode (decentralised JWT auth) accepts a user whose
// credentials file -nats-creds names, and refuses one without it.
func TestNATSFlagsCreds(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opClaims := jwt.NewOperatorClaims(opPub)
	opJWT, err := opClaims.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, err = jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := nkeys.CreateAccount()
	acctPub, _ := acct.PublicKey()
	acctJWT, err := jwt.NewAccountClaims(acctPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userClaims := jwt.NewUserClaims(userPub)
	userJWT, err := userClaims.Encode(acct)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "orgsync.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}

	resolver := &server.MemAccResolver{}
	if err := resolver.Store(acctPub, acctJWT); err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := "nats://" + ns.Addr().String()

	opts, err := (&cli.NATSFlags{URL: url, Creds: credsFile}).Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := connect(t, url, opts)
	if err != nil {
		t.Fatalf("connect with -nats-creds: %v", err)
	}
	nc.Close()

	if nc, err := connect(t, url, nil); err == nil {
		nc.Close()
		t.Fatal("connected without credentials to a server that requires them")
	} else if strings.Contains(err.Error(), string(seed)) {
		t.Error("the error contains the seed")
	}
}
