package fakeorg

import (
	"net/http"
	"testing"
)

func TestChangeOriginHeader(t *testing.T) {
	for _, tt := range []struct{ header, want string }{
		{"", "com/salesforce/api/rest/61.0"},
		{"client=orgsync", "com/salesforce/api/rest/61.0;client=orgsync"},
		{" client = orgsync ", "com/salesforce/api/rest/61.0;client=orgsync"},
		{"client=caseSensitiveToken; defaultNamespace=battle", "com/salesforce/api/rest/61.0;client=caseSensitiveToken"},
		{"defaultNamespace=battle,client=ETL", "com/salesforce/api/rest/61.0;client=ETL"},
		{"defaultNamespace=battle", "com/salesforce/api/rest/61.0"},
		{"client=", "com/salesforce/api/rest/61.0"},
		{"Client=orgsync", "com/salesforce/api/rest/61.0"}, // the fake matches the option name exactly (unverified against Salesforce)
	} {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Sforce-Call-Options", tt.header)
		}
		if got := changeOrigin(apiREST, "61.0", h); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.header, got, tt.want)
		}
	}
}
