package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of Options. DefaultRPS and DefaultBurst are also the operator's
// --registry-rps and --registry-burst defaults and the chart's registry.rps
// and registry.burst (hack/chartlint checks the chart), so that a test, a
// benchmark and an install scan at the same rate.
const (
	DefaultRPS        = 200
	DefaultBurst      = 125
	DefaultMaxTags    = 10000
	DefaultPageSize   = 1000
	DefaultMaxEntries = 10000
	DefaultTagTTL     = 5 * time.Minute
)

const (
	// sessionTTL is how long a host's ping (its auth challenge) is reused
	// before the next scan pings again.
	sessionTTL = time.Hour
	// maxSessions bounds the (host, login) pairs kept authenticated.
	maxSessions = 256
	// maxTokens bounds the repository-scoped bearer tokens kept per session.
	maxTokens = 1024
	// defaultTokenLifetime is the token lifetime the Docker token spec
	// implies when a token service does not say.
	defaultTokenLifetime = 60 * time.Second
	// userAgent names the scanner to registries.
	userAgent = "helmflux-registry-scanner"
)

// Sentinel errors of Scan, for callers that map failures to conditions.
var (
	// ErrNotAllowed is returned for an image that Include/Exclude rule out:
	// only a configuration change helps.
	ErrNotAllowed = errors.New("image repository is not allowed by the scan include/exclude rules")
	// ErrTooManyTags is returned when a repository lists more than
	// Options.MaxTags tags: the scan is incomplete, not truncated.
	ErrTooManyTags = errors.New("repository has more tags than the scan limit")
)

// Options configure a Client. The zero value of every field means its
// default.
type Options struct {
	// RPS is the steady request rate allowed to each registry host
	// (token services and blob storage count as hosts of their own);
	// default DefaultRPS.
	RPS float64
	// Burst is the token bucket size per host; default DefaultBurst.
	Burst int
	// MaxTags caps the tags listed per repository; default 10000. A longer
	// list fails the scan with ErrTooManyTags rather than being truncated.
	MaxTags int
	// PageSize is the number of tags asked for per list request (?n=);
	// default 1000.
	PageSize int
	// CacheDir, when set, is a directory (created 0700) for the file cache
	// that survives restarts; "" keeps the cache in memory only.
	CacheDir string
	// MaxEntries bounds the repositories cached in memory; default 10000.
	// The least recently used are evicted from memory; their files stay.
	MaxEntries int
	// TagTTL is how long a complete tag list is served from the cache
	// without asking the registry; default 5m. Negative means always list
	// (the zero value is the default).
	TagTTL time.Duration
	// Insecure lists registry hosts reached over plain HTTP: "host:port"
	// is that port only, "host" is every port of host. Every other host is
	// reached over HTTPS only.
	Insecure []string
	// Include and Exclude are globs over normalised repositories
	// ("index.docker.io/library/nginx"), matched with path.Match, so "*"
	// stays within one path segment. A pattern ending in "/**" also
	// matches every repository below its prefix, at any depth
	// ("ghcr.io/org/**"); "**" alone matches everything. A pattern's host
	// is normalised like an image's (docker.io means index.docker.io), but
	// there is no Docker Hub shorthand: write "docker.io/library/*", not
	// "library/*". Exclude wins over Include; an empty Include allows all.
	Include, Exclude []string
	// Transport is the base RoundTripper (tests pass one trusting an
	// httptest certificate); nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock for cache ages and Retry-After expiry; nil is
	// time.Now. Rate-limit waits use real time.
	Now func() time.Time
	// RefuseLocal refuses every request to a loopback host (by the rule of
	// git.IsLoopbackHost): an image's registry ("127.0.0.1:5000/app",
	// "localhost:5000/app"), a token service its challenge names, and every
	// redirect. In a shared cluster the images scanned are the tenants', and
	// a tenant must not make the operator reach services that listen only on
	// its loopback interface. Errors match ErrLocalURL.
	RefuseLocal bool
	// Log receives rate-limit events and, at V(1), what each scan did. It
	// never receives a credential.
	Log logr.Logger
	// Observer, when set, is told of every request and rate-limit event,
	// for metrics.
	Observer Observer
}

// Observer is told what a Client's requests did, by request host (the
// host[:port] of Options' rate limits: never a path, a user or a tag). Its
// methods must be quick and safe for concurrent use.
type Observer interface {
	// Request: a request to host was answered with code, or got no answer
	// at all (code 0: a network error or a timeout).
	Request(host string, code int)
	// RateLimited: a request to host was held back by the client: it
	// waited for a token of the host's rate limit, or was refused without
	// being sent because the host asked for a pause.
	RateLimited(host string)
	// Throttled: host answered 429, or an error saying TOOMANYREQUESTS.
	Throttled(host string)
}

// Client scans image repositories for their tags. It is safe for
// concurrent use; an operator has one, so its cache, rate limits and
// authenticated sessions are shared by every scan.
type Client struct {
	opts     Options
	now      func() time.Time
	log      logr.Logger
	insecure map[string]bool
	include  []glob
	exclude  []glob

	guard *hostGuard
	base  http.RoundTripper // user agent → retry → guard → Transport
	cache *cache
	locks keyedMutex

	mu       sync.Mutex
	sessions *simplelru.LRU[string, *session]
}

// New returns a Client, or an error for options that cannot work (a bad
// glob, an unusable cache directory).
func New(opts Options) (*Client, error) {
	if opts.RPS <= 0 {
		opts.RPS = DefaultRPS
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.MaxTags <= 0 {
		opts.MaxTags = DefaultMaxTags
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	switch {
	case opts.TagTTL == 0:
		opts.TagTTL = DefaultTagTTL
	case opts.TagTTL < 0:
		opts.TagTTL = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	if opts.Transport == nil {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			opts.Transport = t.Clone()
		} else {
			opts.Transport = http.DefaultTransport
		}
	}

	c := &Client{
		opts:     opts,
		now:      opts.Now,
		log:      opts.Log,
		insecure: map[string]bool{},
		sessions: newLRU[*session](maxSessions),
	}
	for _, h := range opts.Insecure {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
			return nil, fmt.Errorf("insecure registry %q: not a host or host:port", h)
		}
		c.insecure[h] = true
	}
	var err error
	if c.include, err = compileGlobs(opts.Include); err != nil {
		return nil, fmt.Errorf("include: %w", err)
	}
	if c.exclude, err = compileGlobs(opts.Exclude); err != nil {
		return nil, fmt.Errorf("exclude: %w", err)
	}
	if c.cache, err = newCache(opts.CacheDir, opts.MaxEntries, opts.MaxTags, opts.Log); err != nil {
		return nil, err
	}

	c.guard = newHostGuard(opts.RPS, opts.Burst, opts.Now, opts.Log)
	next := opts.Transport
	if opts.RefuseLocal {
		next = &localGuard{next: next}
	}
	guarded := &guardTransport{guard: c.guard, insecure: c.isInsecure, next: next, observe: opts.Observer}
	// go-containerregistry's retry layer, for network blips and 5xx only:
	// 429 is not in the list, and the guard turns every rate-limit answer
	// into an error this layer does not retry, so nothing repeats a
	// rate-limited request before its Retry-After.
	retried := transport.NewRetry(guarded,
		transport.WithRetryBackoff(transport.Backoff{Duration: 500 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}),
		transport.WithRetryStatusCodes(http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	)
	c.base = transport.NewUserAgent(retried, userAgent)
	return c, nil
}

// isInsecure reports whether host ("host" or "host:port", as requested) is
// reached over plain HTTP.
func (c *Client) isInsecure(host string) bool {
	host = strings.ToLower(host)
	if c.insecure[host] {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return c.insecure[strings.ToLower(h)] || c.insecure["["+h+"]"]
	}
	return false
}

// Normalize returns the normalised repository name of image — the name
// scans, caches and Include/Exclude globs use — or an error for an invalid
// reference. Docker Hub images get their implicit host and "library/"
// ("nginx" → "index.docker.io/library/nginx"); image must not carry a tag
// or digest.
func Normalize(image string) (string, error) {
	repo, err := parseRepository(image, nil)
	if err != nil {
		return "", err
	}
	return repo.Name(), nil
}

// pathComponent is one component of a repository path, per the OCI
// distribution spec.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// parseRepository parses image, folding Docker Hub aliases into
// index.docker.io and marking hosts that insecure accepts.
func parseRepository(image string, insecure func(string) bool) (name.Repository, error) {
	image = strings.TrimSpace(image)
	repo, err := name.NewRepository(image)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid image repository %q: %w", image, err)
	}
	host := strings.ToLower(repo.RegistryStr())
	rest := repo.RepositoryStr()
	if hubAliases[host] {
		host = dockerHub
		if !strings.Contains(rest, "/") {
			rest = "library/" + rest
		}
	}
	for _, part := range strings.Split(rest, "/") {
		if !pathComponent.MatchString(part) {
			return name.Repository{}, fmt.Errorf("invalid image repository %q: path component %q is not lower-case alphanumerics with single separators", image, part)
		}
	}
	var opts []name.Option
	if insecure != nil && insecure(host) {
		opts = append(opts, name.Insecure)
	}
	repo, err = name.NewRepository(host+"/"+rest, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid image repository %q: %w", image, err)
	}
	return repo, nil
}

// Allowed reports whether the include/exclude rules allow scanning image;
// an invalid image is not allowed.
func (c *Client) Allowed(image string) bool {
	repo, err := parseRepository(image, nil)
	if err != nil {
		return false
	}
	return c.allowed(repo.Name())
}

func (c *Client) allowed(repo string) bool {
	for _, g := range c.exclude {
		if g.match(repo) {
			return false
		}
	}
	if len(c.include) == 0 {
		return true
	}
	for _, g := range c.include {
		if g.match(repo) {
			return true
		}
	}
	return false
}

// Forget drops the cached tag list of image so the next Scan lists again,
// for a registry webhook announcing a push. Digests and creation times are
// kept: they cannot change. A scan already listing when Forget is called
// stores its listing as already expired.
func (c *Client) Forget(image string) {
	repo, err := parseRepository(image, nil)
	if err != nil {
		return
	}
	c.cache.forget(repo.Name())
}

// glob is one Include/Exclude pattern.
type glob struct {
	pattern string // path.Match pattern
	subtree bool   // pattern ended in "/**": match below it at any depth
}

func compileGlobs(patterns []string) ([]glob, error) {
	var out []glob
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		g := glob{pattern: p}
		switch {
		case p == "**":
			g = glob{pattern: "", subtree: true}
		case strings.HasSuffix(p, "/**"):
			g = glob{pattern: strings.TrimSuffix(p, "/**"), subtree: true}
		}
		if strings.Contains(g.pattern, "**") {
			return nil, fmt.Errorf("pattern %q: ** is allowed only as the last path segment", p)
		}
		if g.pattern != "" {
			host, rest, _ := strings.Cut(g.pattern, "/")
			if hubAliases[strings.ToLower(host)] {
				host = dockerHub
			}
			hasRest := strings.Contains(g.pattern, "/")
			g.pattern = strings.ToLower(host)
			if hasRest {
				g.pattern += "/" + rest
			}
		}
		if _, err := path.Match(g.pattern, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func (g glob) match(repo string) bool {
	if !g.subtree {
		ok, _ := path.Match(g.pattern, repo)
		return ok
	}
	if g.pattern == "" {
		return true
	}
	n := strings.Count(g.pattern, "/") + 1
	parts := strings.Split(repo, "/")
	if len(parts) <= n {
		return false
	}
	ok, _ := path.Match(g.pattern, strings.Join(parts[:n], "/"))
	return ok
}

// keyedMutex serialises work per key (a repository), so concurrent scans of
// one repository make one listing and the rest read the cache.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

// lock waits for key within ctx and returns the unlock function.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// session is one authenticated conversation with a registry host for one
// login. go-containerregistry pings /v2/ for every new repository unless it
// is handed a ready *transport.Wrapper; a session pings once per host and
// login and hands out such wrappers: one for all repositories when the
// registry wants basic auth or none, one per repository (a scoped token
// exchange, no ping) when it wants bearer tokens.
type session struct {
	reg  name.Registry
	auth authn.Authenticator
	base http.RoundTripper
	now  func() time.Time

	mu        sync.Mutex // held across the ping
	challenge *transport.Challenge
	pingedAt  time.Time
	shared    http.RoundTripper // non-bearer registries

	tmu    sync.Mutex
	tokens *simplelru.LRU[string, scopedTransport] // bearer: by repository
}

type scopedTransport struct {
	rt      http.RoundTripper
	expires time.Time
}

// session returns the session for repo's host and the login creds has for
// it.
func (c *Client) session(repo name.Repository, creds Credentials) (*session, []string) {
	host := repo.RegistryStr()
	auth := authn.Anonymous
	var secrets []string
	if cfg, ok := creds.forHost(host); ok {
		auth = authn.FromConfig(cfg)
		secrets = secretsOf(cfg)
	}
	key := host + "\x00" + c.loginID(repo, creds)
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions.Get(key)
	if !ok {
		s = &session{reg: repo.Registry, auth: auth, base: c.base, now: c.now, tokens: newLRU[scopedTransport](maxTokens)}
		c.sessions.Add(key, s)
	}
	return s, secrets
}

// loginID names the login creds has for repo's host (anonymousLogin for
// none) without revealing it: cached listings and sessions are keyed by it.
func (c *Client) loginID(repo name.Repository, creds Credentials) string {
	cfg, ok := creds.forHost(repo.RegistryStr())
	if !ok {
		return anonymousLogin
	}
	return c.cache.loginID(cfg)
}

// transport returns an authenticated RoundTripper for repo, pinging the
// host only when the session has no fresh challenge.
func (s *session) transport(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	s.mu.Lock()
	now := s.now()
	if s.challenge == nil || now.Sub(s.pingedAt) > sessionTTL || now.Before(s.pingedAt) {
		ch, err := transport.Ping(ctx, s.reg, s.base)
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("ping %s: %w", s.reg.RegistryStr(), err)
		}
		s.challenge, s.pingedAt, s.shared = ch, now, nil
		s.tmu.Lock()
		s.tokens = newLRU[scopedTransport](maxTokens)
		s.tmu.Unlock()
	}
	ch := s.challenge
	if !strings.EqualFold(ch.Scheme, "bearer") {
		defer s.mu.Unlock()
		if s.shared == nil {
			// Not bearer: FromToken builds go-containerregistry's basic
			// transport, which sends the login to this host only.
			rt, err := transport.FromToken(s.reg, s.auth, s.base, ch, &transport.Token{})
			if err != nil {
				return nil, fmt.Errorf("authenticate to %s: %w", s.reg.RegistryStr(), err)
			}
			s.shared = rt
		}
		return s.shared, nil
	}
	s.mu.Unlock()

	key := repo.RepositoryStr()
	s.tmu.Lock()
	st, ok := s.tokens.Get(key)
	s.tmu.Unlock()
	if ok && now.Before(st.expires) {
		return st.rt, nil
	}
	tok, err := transport.Exchange(ctx, s.reg, s.auth, s.base, []string{repo.Scope(transport.PullScope)}, ch)
	if err != nil {
		return nil, fmt.Errorf("get token for %s: %w", repo.Name(), err)
	}
	if tok.Token == "" {
		tok.Token = tok.AccessToken // FromToken reads only Token
	}
	rt, err := transport.FromToken(s.reg, s.auth, s.base, ch, tok)
	if err != nil {
		return nil, fmt.Errorf("authenticate to %s: %w", s.reg.RegistryStr(), err)
	}
	life := defaultTokenLifetime
	if tok.ExpiresIn > 0 {
		life = time.Duration(tok.ExpiresIn) * time.Second
	}
	// Renew a little early; an expired token would cost a 401 round trip
	// (the bearer transport then refreshes by itself).
	s.tmu.Lock()
	s.tokens.Add(key, scopedTransport{rt: rt, expires: now.Add(life * 9 / 10)})
	s.tmu.Unlock()
	return rt, nil
}
