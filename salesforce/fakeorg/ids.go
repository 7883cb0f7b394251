package fakeorg

import (
	"crypto/rand"
	"fmt"

	"orgsync/salesforce"
)

// Key prefixes the fake mints besides those of package salesforce.
const (
	prefixQueryLocator = "01g"
	base62             = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	counterDigits      = 9 // 3 prefix + 3 org chars + 9 counter = 15
)

// idMinter builds record IDs: key prefix + 3 org-specific characters + a
// base-62 counter, 15 characters, then the checksum suffix. It is not safe
// for concurrent use; the Org's mutex guards it.
type idMinter struct {
	pod      string
	counters map[string]uint64
}

func newIDMinter(orgID string) *idMinter {
	// The last three characters of the 15-character org ID are the most
	// specific ones (random ones for a random org ID), so two fakes with
	// different org IDs mint different record IDs.
	return &idMinter{pod: orgID[12:15], counters: make(map[string]uint64)}
}

// next returns the next 18-character ID with the given key prefix.
func (m *idMinter) next(prefix string) string {
	m.counters[prefix]++
	return salesforce.ID18(prefix + m.pod + encodeBase62(m.counters[prefix], counterDigits))
}

// encodeBase62 writes n in base 62, left-padded with zeros to width.
func encodeBase62(n uint64, width int) string {
	buf := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		buf[i] = base62[n%62]
		n /= 62
	}
	return string(buf)
}

// randomString returns n characters drawn from alphabet by crypto/rand.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("fakeorg: crypto/rand: %v", err)) // never happens on supported platforms
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// randomOrgID returns a fresh 18-character Organization ID.
func randomOrgID() string {
	return salesforce.ID18(salesforce.PrefixOrganization + "0" + randomString(11, base62))
}
