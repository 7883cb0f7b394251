package fakeorg

import (
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"orgsync/salesforce"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultClientID        = "demo"
	DefaultClientSecret    = "demo-secret"
	DefaultUsername        = "integration@example.com"
	DefaultPassword        = "demo-password"
	DefaultExternalIDField = "Source_Id__c"
	DefaultDailyAPILimit   = 100000
	DefaultPageSize        = 2000
)

// Config configures an Org. The zero value is usable: New fills in the
// defaults documented on each field.
type Config struct {
	// OrgID is the 15- or 18-character Organization ID (prefix 00D). Empty
	// means a random one. Record IDs embed the last three characters of its
	// 15-character form, so fakes whose org IDs differ there never mint the
	// same record IDs.
	OrgID string
	// ClientID and ClientSecret identify the connected app
	// (defaults "demo" and "demo-secret").
	ClientID, ClientSecret string
	// Username and Password are the integration user's credentials for the
	// password and JWT bearer flows (defaults "integration@example.com" and
	// "demo-password").
	Username, Password string
	// JWTPublicKey verifies jwt-bearer assertions (an *rsa.PublicKey; see
	// ParsePublicKey). Nil means the JWT bearer flow is refused with
	// invalid_grant.
	JWTPublicKey crypto.PublicKey
	// ExternalIDField is the custom external ID field on Account
	// (default "Source_Id__c"). It must end in "__c".
	ExternalIDField string
	// ExternalIDNotUnique makes the external ID field non-unique (describe
	// reports unique:false), so duplicates can exist and upsert can answer
	// 300 Multiple Choices. By default the field is unique.
	ExternalIDNotUnique bool

	// Latency is added to every REST and Apex REST call.
	Latency time.Duration
	// LatencyPerRecord is added to a call for each record it writes: one for
	// a single-record write or an Apex REST create, one per record of an
	// sObject Collections call (also inside a composite call). Bulk API jobs
	// have BulkProcessingDelay instead.
	LatencyPerRecord time.Duration
	// FailRate is the probability (0..1) that a REST or Apex REST call fails
	// as a whole with 503 SERVER_UNAVAILABLE, committing nothing.
	FailRate float64
	// LockRate is the probability (0..1) that writing one record fails with
	// UNABLE_TO_LOCK_ROW.
	LockRate float64
	// TokenTTL is the lifetime of access tokens; 0 means they never expire.
	TokenTTL time.Duration
	// BulkProcessingDelay is how long a closed Bulk API 2.0 ingest job stays
	// InProgress (measured on Now) before it answers JobComplete, so that
	// clients' polling can be exercised; 0 means it completes as soon as its
	// records are processed.
	BulkProcessingDelay time.Duration
	// DailyAPILimit is the daily API request allocation (default 100000).
	DailyAPILimit int
	// RejectName is a regular expression; an Account whose Name matches it
	// fails a validation rule (FIELD_CUSTOM_VALIDATION_EXCEPTION). Empty
	// means no rule.
	RejectName string
	// PageSize is the number of records in one query page (default and
	// maximum 2000).
	PageSize int
	// Seed seeds the fault injection's random source; 0 means a random seed.
	Seed int64
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Logger receives debug logs of requests; nil discards them. Secrets
	// (client secret, passwords, tokens) are never logged.
	Logger *slog.Logger

	// LoginHosts are Host header values treated as login.salesforce.com:
	// there the client credentials flow is refused with invalid_grant
	// "request not supported on this domain", as on the real login hosts.
	LoginHosts []string
	// RedirectHosts maps a Host header value (an "old" instance host) to the
	// base URL of the new one: every request to that host is answered
	// 302 Found with Location = new base URL + request URI.
	RedirectHosts map[string]string
}

// Org is an in-memory Salesforce org served over HTTP. It is safe for
// concurrent use.
type Org struct {
	schema *schema
	log    *slog.Logger
	now    func() time.Time
	orgID  string // 18 characters
	userID string // 18 characters

	// immutable credentials
	clientID, clientSecret, username, password string
	jwtKey                                     crypto.PublicKey
	loginHosts                                 map[string]bool

	mu       sync.Mutex
	live     liveConfig
	rnd      *mrand.Rand
	ids      *idMinter
	accounts map[string]*account // by 18-character ID, deleted ones included
	order    []string            // account IDs in creation order
	extIndex map[string][]string // lower-case external ID value → live account IDs
	tokens   map[string]*accessToken
	refresh  map[string]*refreshToken
	locators map[string]*locator
	locOrder []string
	jobs     map[string]*bulkJob // Bulk API 2.0 ingest jobs by 18-character ID
	jobOrder []string
	qjobs    map[string]*queryJob // Bulk API 2.0 query jobs by 18-character ID
	// logSince is when the delete log starts (New or the last Reset): Get
	// Deleted's earliestDateAvailable.
	logSince time.Time
	// bulkBatches counts internal Bulk batches (10,000 records each)
	// against DailyBulkApiBatches.
	bulkBatches int
	apiUsed     int
	apiCalls    int
	byRoute     map[string]int
	subRoutes   map[string]int // composite subrequests by route
	listeners   []func(Change) // OnChange (changes.go)
}

// liveConfig holds the settings PUT /_fake/config may change.
type liveConfig struct {
	latency       time.Duration
	perRecord     time.Duration
	failRate      float64
	lockRate      float64
	tokenTTL      time.Duration
	dailyLimit    int
	pageSize      int
	rejectName    string
	rejectRE      *regexp.Regexp
	redirectHosts map[string]string
	bulkDelay     time.Duration
}

var customFieldName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*__c$`)

// New returns an empty org configured by cfg.
func New(cfg Config) (*Org, error) {
	orgID := cfg.OrgID
	if orgID == "" {
		orgID = randomOrgID()
	} else {
		n, err := salesforce.NormalizeIDWithPrefix(orgID, salesforce.PrefixOrganization)
		if err != nil {
			return nil, fmt.Errorf("fakeorg: org id: %w", err)
		}
		orgID = n
	}
	ext := cmpOr(cfg.ExternalIDField, DefaultExternalIDField)
	if !customFieldName.MatchString(ext) || strings.Contains(ext, "___") {
		return nil, fmt.Errorf("fakeorg: external id field %q is not a custom field name like Source_Id__c", ext)
	}
	if _, clash := newSchema("X__c", true).lookup(ext); clash {
		return nil, fmt.Errorf("fakeorg: external id field %q clashes with a standard field", ext)
	}
	if cfg.JWTPublicKey != nil {
		if err := checkJWTKey(cfg.JWTPublicKey); err != nil {
			return nil, err
		}
	}
	o := &Org{
		schema:       newSchema(ext, !cfg.ExternalIDNotUnique),
		log:          cfg.Logger,
		now:          cfg.Now,
		orgID:        orgID,
		clientID:     cmpOr(cfg.ClientID, DefaultClientID),
		clientSecret: cmpOr(cfg.ClientSecret, DefaultClientSecret),
		username:     cmpOr(cfg.Username, DefaultUsername),
		password:     cmpOr(cfg.Password, DefaultPassword),
		jwtKey:       cfg.JWTPublicKey,
		loginHosts:   make(map[string]bool),
		ids:          newIDMinter(orgID),
		accounts:     make(map[string]*account),
		extIndex:     make(map[string][]string),
		tokens:       make(map[string]*accessToken),
		refresh:      make(map[string]*refreshToken),
		locators:     make(map[string]*locator),
		jobs:         make(map[string]*bulkJob),
		qjobs:        make(map[string]*queryJob),
		byRoute:      make(map[string]int),
		subRoutes:    make(map[string]int),
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.now == nil {
		o.now = time.Now
	}
	o.logSince = o.nowUTC()
	for _, h := range cfg.LoginHosts {
		o.loginHosts[strings.ToLower(h)] = true
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	o.rnd = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	o.userID = o.ids.next(salesforce.PrefixUser)

	o.live = liveConfig{dailyLimit: DefaultDailyAPILimit, pageSize: DefaultPageSize}
	if cfg.PageSize != 0 {
		if cfg.PageSize < 1 || cfg.PageSize > DefaultPageSize {
			return nil, fmt.Errorf("fakeorg: page size %d outside 1..%d", cfg.PageSize, DefaultPageSize)
		}
		o.live.pageSize = cfg.PageSize
	}
	patch := ConfigPatch{
		Latency: &cfg.Latency, LatencyPerRecord: &cfg.LatencyPerRecord, FailRate: &cfg.FailRate, LockRate: &cfg.LockRate,
		TokenTTL: &cfg.TokenTTL, RejectName: &cfg.RejectName, RedirectHosts: cfg.RedirectHosts,
		BulkProcessingDelay: &cfg.BulkProcessingDelay,
	}
	if cfg.DailyAPILimit != 0 {
		patch.DailyAPILimit = &cfg.DailyAPILimit
	}
	if err := o.Configure(patch); err != nil {
		return nil, err
	}
	return o, nil
}

// OrgID returns the org's 18-character Organization ID.
func (o *Org) OrgID() string { return o.orgID }

// UserID returns the 18-character ID of the integration user, which owns
// and creates every record.
func (o *Org) UserID() string { return o.userID }

// ExternalIDField returns the name of the org's external ID field.
func (o *Org) ExternalIDField() string { return o.schema.extID.Name }

// ServeHTTP dispatches a request to the OAuth, identity, REST, Apex REST or
// admin endpoints.
func (o *Org) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if o.redirect(w, r) {
		return
	}
	p := r.URL.Path
	o.log.Debug("request", "method", r.Method, "path", p)
	switch {
	case p == "/services/oauth2/token":
		o.handleToken(w, r)
	case p == "/services/oauth2/revoke":
		o.handleRevoke(w, r)
	case p == "/services/oauth2/userinfo":
		o.handleUserInfo(w, r)
	case strings.HasPrefix(p, "/id/"):
		o.handleIdentity(w, r)
	case p == "/services/data" || p == "/services/data/":
		o.handleVersions(w, r)
	case strings.HasPrefix(p, "/services/data/"):
		o.serveREST(w, r)
	case strings.HasPrefix(p, "/services/apexrest/"):
		o.serveApexREST(w, r)
	case strings.HasPrefix(p, "/services/Soap/"):
		o.serveSOAP(w, r)
	case strings.HasPrefix(p, "/_fake/"):
		o.serveAdmin(w, r)
	default:
		writeErrors(w, http.StatusNotFound, errNotFound())
	}
}

// redirect answers 302 for a request to a configured old host.
func (o *Org) redirect(w http.ResponseWriter, r *http.Request) bool {
	o.mu.Lock()
	target, ok := o.live.redirectHosts[strings.ToLower(r.Host)]
	o.mu.Unlock()
	if !ok {
		return false
	}
	w.Header().Set("Location", strings.TrimSuffix(target, "/")+r.URL.RequestURI())
	w.WriteHeader(http.StatusFound)
	return true
}

// baseURL is the org's URL as the client sees it: scheme + Host.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// nowUTC returns the clock's time in UTC, truncated to milliseconds
// (the precision of Salesforce datetimes).
func (o *Org) nowUTC() time.Time {
	return o.now().UTC().Truncate(time.Millisecond)
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
