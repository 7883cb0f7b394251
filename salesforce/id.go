package salesforce

import (
	"errors"
	"fmt"
)

// Key prefixes of the record IDs orgsync deals with.
const (
	PrefixAccount      = "001"
	PrefixUser         = "005"
	PrefixOrganization = "00D"
	PrefixBulkJob      = "750"
)

// ErrInvalidID is returned (wrapped) for a string that is not a Salesforce record ID.
var ErrInvalidID = errors.New("salesforce: invalid record id")

const suffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

// NormalizeID validates a 15- or 18-character record ID and returns its
// 18-character, case-insensitive form. A 15-character ID gets its checksum
// suffix; an 18-character ID must carry the right one (compared without
// regard to case, as Salesforce does).
func NormalizeID(id string) (string, error) {
	switch len(id) {
	case 15, 18:
	default:
		return "", fmt.Errorf("%w: %q has %d characters, want 15 or 18", ErrInvalidID, clip(id), len(id))
	}
	for i := 0; i < len(id); i++ {
		if !isAlnum(id[i]) {
			return "", fmt.Errorf("%w: %q has a character outside [0-9A-Za-z] at %d", ErrInvalidID, clip(id), i)
		}
	}
	if len(id) == 15 {
		sum := checksum(id)
		return id + string(sum[:]), nil
	}
	want := checksum(id[:15])
	for i := 0; i < 3; i++ {
		if upper(id[15+i]) != want[i] {
			return "", fmt.Errorf("%w: %q has checksum %q, want %q", ErrInvalidID, id, id[15:], want[:])
		}
	}
	// Canonical form: the case-sensitive 15 characters and an upper-case
	// suffix (id itself when it is already, without a copy).
	if id[15:] == string(want[:]) {
		return id, nil
	}
	return id[:15] + string(want[:]), nil
}

// ValidID reports whether id is a well-formed 15- or 18-character record ID.
func ValidID(id string) bool {
	_, err := NormalizeID(id)
	return err == nil
}

// NormalizeIDWithPrefix is NormalizeID that also requires the key prefix, e.g.
// PrefixAccount for an Account ID.
func NormalizeIDWithPrefix(id, prefix string) (string, error) {
	n, err := NormalizeID(id)
	if err != nil {
		return "", err
	}
	if n[:3] != prefix {
		return "", fmt.Errorf("%w: %q has key prefix %q, want %q", ErrInvalidID, id, n[:3], prefix)
	}
	return n, nil
}

// SameID reports whether a and b name the same record, in either form.
// Invalid IDs are never the same as anything.
func SameID(a, b string) bool {
	na, err := NormalizeID(a)
	if err != nil {
		return false
	}
	nb, err := NormalizeID(b)
	return err == nil && na == nb
}

// ID18 returns the 18-character form of a 15-character ID without
// validating it; it is for code that builds IDs itself (such as the fake org).
// It panics if id15 is not 15 bytes long.
func ID18(id15 string) string {
	if len(id15) != 15 {
		panic("salesforce.ID18: need 15 characters")
	}
	sum := checksum(id15)
	return id15 + string(sum[:])
}

// checksum computes the 3-character suffix of a 15-character ID: for each
// block of 5 characters, a bit per upper-case letter, read as an index into
// suffixAlphabet.
func checksum(id15 string) [3]byte {
	var out [3]byte
	for block := 0; block < 3; block++ {
		bits := 0
		for j := 0; j < 5; j++ {
			c := id15[block*5+j]
			if c >= 'A' && c <= 'Z' {
				bits |= 1 << j
			}
		}
		out[block] = suffixAlphabet[bits]
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// clip shortens hostile input before it is quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
