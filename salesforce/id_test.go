package salesforce_test

import (
	"errors"
	"strings"
	"testing"

	"orgsync/salesforce"
)

// The vectors are Salesforce's documented 15-to-18-character ID conversion, checked by hand.
func TestNormalizeID(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "15 account", in: "001R00000033I6A", want: "001R00000033I6AIAU"},
		{name: "15 account lower", in: "001R00000064wdt", want: "001R00000064wdtIAA"},
		{name: "15 docs example", in: "00190000001pPvH", want: "00190000001pPvHAAU"},
		{name: "15 user", in: "00558000001N0Ke", want: "00558000001N0KeAAK"},
		{name: "15 contact", in: "0036000000QKv5T", want: "0036000000QKv5TAAT"},
		{name: "15 custom", in: "a0BA0000000L2ZC", want: "a0BA0000000L2ZCMA0"},
		{name: "15 digits in suffix", in: "AAaAAbbBBBCcCCC", want: "AAaAAbbBBBCcCCC123"},
		{name: "gist error corrected", in: "a0D30000001n7Pi", want: "a0D30000001n7PiEAI"},
		{name: "18 valid", in: "001R00000033I6AIAU", want: "001R00000033I6AIAU"},
		{name: "18 lower-case suffix", in: "001R00000033I6Aiau", want: "001R00000033I6AIAU"},
		{name: "18 wrong suffix", in: "001R00000033I6AIAA", wantErr: true},
		{name: "wrongly computed gist id", in: "a0D30000001n7PiEAC", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "16 chars", in: "001R00000033I6AI", wantErr: true},
		{name: "bad char", in: "001R00000033I6-", wantErr: true},
		{name: "unicode", in: "001R00000033I6é", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := salesforce.NormalizeID(tt.in)
			if tt.wantErr {
				if !errors.Is(err, salesforce.ErrInvalidID) {
					t.Fatalf("NormalizeID(%q) error = %v, want ErrInvalidID", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeID(%q) error = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeIDWithPrefix(t *testing.T) {
	if _, err := salesforce.NormalizeIDWithPrefix("00558000001N0Ke", salesforce.PrefixAccount); !errors.Is(err, salesforce.ErrInvalidID) {
		t.Errorf("user id accepted as account: err = %v", err)
	}
	if got, err := salesforce.NormalizeIDWithPrefix("001R00000033I6A", salesforce.PrefixAccount); err != nil || got != "001R00000033I6AIAU" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestSameID(t *testing.T) {
	if !salesforce.SameID("001R00000033I6A", "001R00000033I6AIAU") {
		t.Error("15 and 18 forms of one id differ")
	}
	if salesforce.SameID("001R00000033I6A", "001r00000033I6A") {
		t.Error("15-char ids differing in case are the same record")
	}
	if salesforce.SameID("x", "x") {
		t.Error("invalid ids compared equal")
	}
}

func FuzzNormalizeID(f *testing.F) {
	for _, s := range []string{"001R00000033I6A", "001R00000033I6AIAU", "", "AAaAAbbBBBCcCCC123", strings.Repeat("z", 18)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := salesforce.NormalizeID(s)
		if err != nil {
			if !errors.Is(err, salesforce.ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			return
		}
		if len(n) != 18 {
			t.Fatalf("NormalizeID(%q) = %q, not 18 characters", s, n)
		}
		// Idempotent, and the 15-character prefix round-trips.
		if again, err := salesforce.NormalizeID(n); err != nil || again != n {
			t.Fatalf("NormalizeID(%q) = %q, %v; want %q", n, again, err, n)
		}
		if from15, err := salesforce.NormalizeID(n[:15]); err != nil || from15 != n {
			t.Fatalf("NormalizeID(%q) = %q, %v; want %q", n[:15], from15, err, n)
		}
		// Upper- or lower-casing an 18-char id's suffix does not change validity.
		if _, err := salesforce.NormalizeID(n[:15] + strings.ToLower(n[15:])); err != nil {
			t.Fatalf("lower-case suffix of %q rejected: %v", n, err)
		}
	})
}
