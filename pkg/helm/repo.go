package helm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/helmflux/helmflux/pkg/git"
)

// userAgent is sent with every request, so repository owners can tell us
// apart.
const userAgent = "helmflux"

// maxURLLength bounds URLs from specs and indexes.
const maxURLLength = 4096

// repoURL is a parsed Helm repository URL with the credentials taken out.
type repoURL struct {
	// base has no userinfo and no trailing slash; its query is kept (some
	// repositories authenticate with a token there).
	base *url.URL
	// display is scheme://host/path: no userinfo, no query; safe for errors.
	display string
	// user and pass come from the URL's userinfo, if any.
	user, pass string
}

// parseRepoURL accepts an http(s):// repository URL.
func parseRepoURL(raw string) (*repoURL, error) {
	if len(raw) > maxURLLength {
		return nil, fmt.Errorf("%w: repository URL longer than %d bytes", ErrInvalidSource, maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: repository %s: want http(s)://host/path", ErrInvalidSource, RedactURL(raw))
	}
	r := &repoURL{}
	if u.User != nil {
		r.user = u.User.Username()
		r.pass, _ = u.User.Password()
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	r.base = u
	r.display = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
	return r, nil
}

// parseRepo is parseRepoURL, refusing a loopback repository when c refuses
// local URLs.
func (c *Charts) parseRepo(raw string) (*repoURL, error) {
	r, err := parseRepoURL(raw)
	if err != nil {
		return nil, err
	}
	if err := c.checkLocal(r.base.Host, "repository "+r.display); err != nil {
		return nil, err
	}
	return r, nil
}

// hasCredentials reports whether a holds basic auth (what a plain HTTP
// request would expose; a client certificate needs TLS anyway).
func hasCredentials(a *RepoAuth) bool {
	return a != nil && (a.Username != "" || a.Password != "")
}

// refuseInsecureCredentials refuses credentials a for a repository reached
// over plain HTTP (display names it) unless the source allows it.
func refuseInsecureCredentials(plainHTTP bool, a *RepoAuth, allowed bool, display string) error {
	if plainHTTP && hasCredentials(a) && !allowed {
		return fmt.Errorf("%w: %s is plain HTTP and would carry the credentials unencrypted; use https://, or allow it for this object (allowInsecureHTTP)",
			ErrInsecureCredentials, display)
	}
	return nil
}

// hostOf is the host[:port] of a URL that parsed before ("" if it does not).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// auth returns the credentials to use: a's, or else the URL's userinfo.
func (r *repoURL) auth(a *RepoAuth) *RepoAuth {
	if r.user == "" && r.pass == "" {
		return a
	}
	if a != nil && (a.Username != "" || a.Password != "") {
		return a
	}
	var cp RepoAuth
	if a != nil {
		cp = *a
	}
	cp.Username, cp.Password = r.user, r.pass
	return &cp
}

// RedactURL returns raw as it may be shown in an error, a status or an
// event: without userinfo, query and fragment (where tokens travel), and cut
// to a bounded length. An address without a scheme (an scp-like git address
// "user@host:path", or "user:password@host/path") loses everything up to
// its last "@" before the path. Text that does not parse as a URL is never
// echoed, since it may still hold a secret.
//
// Every URL a HelmRelease names goes through it (chart repositories, git
// sources, externalSourceRef values), so all are shown the same way.
func RedactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		head := raw
		if i := strings.IndexByte(raw, '/'); i >= 0 {
			head = raw[:i]
		}
		if at := strings.LastIndexByte(head, '@'); at >= 0 {
			raw = raw[at+1:]
		}
		return truncate(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return truncate(u.String())
}

// fingerprint identifies a set of credentials (for cache keys; it is a hash,
// never the secrets). Nil and empty credentials give "".
func fingerprint(a *RepoAuth) string {
	if a == nil || (a.Username == "" && a.Password == "" && len(a.CAFile) == 0 && len(a.CertFile) == 0 &&
		len(a.KeyFile) == 0 && !a.InsecureSkipTLSVerify) {
		return ""
	}
	return hashKey("repo-auth-v1", a.Username, a.Password, string(a.CAFile), string(a.CertFile), string(a.KeyFile),
		fmt.Sprint(a.InsecureSkipTLSVerify))
}

// scrubbedError carries a message with secrets removed; it unwraps only to
// the fixed-text sentinels the original matched.
type scrubbedError struct {
	msg   string
	kinds []error
}

func (e *scrubbedError) Error() string   { return e.msg }
func (e *scrubbedError) Unwrap() []error { return e.kinds }

// kindsToKeep are the sentinels a scrubbed error still matches.
var kindsToKeep = []error{
	ErrInvalidSource, ErrChartNotFound, ErrRepositoryNotFound, ErrAuthentication, ErrTooLarge,
	ErrDigestMismatch, ErrHostileChart, ErrInvalidChart, ErrUnverified, ErrLocalURL, ErrInsecureCredentials, git.ErrRefNotFound, git.ErrPathEscapes,
	git.ErrInvalidInput, git.ErrUnknownHostKey, git.ErrHostKeyMismatch, git.ErrUnsafeTree,
	context.Canceled, context.DeadlineExceeded, fs.ErrNotExist,
}

// userinfoRE matches the userinfo part of any URL in free text.
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)

// scrubError returns err unchanged unless its message holds one of src's
// secrets or URL userinfo; then it returns a scrubbed copy that still
// matches the package's sentinels. Our own messages never hold secrets: this
// guards against servers and libraries echoing them.
func scrubError(err error, src *ChartSource) error {
	if err == nil {
		return nil
	}
	var secrets []string
	addAuth := func(a *RepoAuth) {
		if a == nil {
			return
		}
		secrets = append(secrets, a.Password)
		if a.Password != "" {
			secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
		}
	}
	addAuth(src.RepoAuth)
	for _, a := range src.DependencyAuth {
		addAuth(a)
	}
	for _, raw := range []string{src.Repository, src.Git} {
		if u, perr := url.Parse(raw); perr == nil && u.User != nil {
			p, _ := u.User.Password()
			addAuth(&RepoAuth{Username: u.User.Username(), Password: p})
		}
	}
	if src.GitAuth != nil {
		secrets = append(secrets, src.GitAuth.Password, src.GitAuth.BearerToken)
	}
	msg := err.Error()
	clean := userinfoRE.ReplaceAllString(msg, "$1")
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			clean = strings.ReplaceAll(clean, v, "<redacted>")
		}
	}
	if clean == msg {
		return err
	}
	var kinds []error
	for _, k := range kindsToKeep {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	return &scrubbedError{msg: clean, kinds: kinds}
}

// stripURLError drops the URL net/http puts in its errors (it may carry a
// query token); callers name the URL themselves.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// canonicalHost is u's lower-case host with the scheme's default port made
// explicit, so "h" and "h:443" compare equal.
func canonicalHost(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		default:
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// originTransport sends credentials (basic auth, a client certificate,
// skipped verification) only to one origin: requests anywhere else (an
// absolute chart URL on a CDN, a redirect) go through other, with no
// credentials. The repository's CA bundle is trusted for both.
type originTransport struct {
	scheme     string // "" = any scheme (registries may be plain HTTP)
	host       string // canonicalHost
	user, pass string
	same       http.RoundTripper
	other      http.RoundTripper
}

func (t *originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if (t.scheme != "" && !strings.EqualFold(req.URL.Scheme, t.scheme)) || canonicalHost(req.URL) != t.host {
		return t.other.RoundTrip(req)
	}
	if t.user != "" || t.pass != "" {
		req = req.Clone(req.Context())
		req.SetBasicAuth(t.user, t.pass)
	}
	return t.same.RoundTrip(req)
}

// maxRedirects bounds redirect chains.
const maxRedirects = 10

func checkRedirect(_ *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// transports returns the round trippers for a's origin (CA, client
// certificate, verification setting) and for everywhere else (CA only).
func (c *Charts) transports(a *RepoAuth) (same, other http.RoundTripper, err error) {
	if a == nil || (len(a.CAFile) == 0 && len(a.CertFile) == 0 && len(a.KeyFile) == 0 && !a.InsecureSkipTLSVerify) {
		return c.base, c.base, nil
	}
	bt, ok := c.base.(*http.Transport)
	if !ok {
		return nil, nil, fmt.Errorf("%w: TLS settings need an *http.Transport as the base transport", ErrInvalidSource)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if bt.TLSClientConfig != nil {
		cfg = bt.TLSClientConfig.Clone()
	}
	if len(a.CAFile) > 0 {
		pool := cfg.RootCAs
		if pool == nil {
			if pool, err = x509.SystemCertPool(); err != nil {
				pool = x509.NewCertPool()
			}
		} else {
			pool = pool.Clone()
		}
		if !pool.AppendCertsFromPEM(a.CAFile) {
			return nil, nil, fmt.Errorf("%w: the CA file holds no PEM certificate", ErrInvalidSource)
		}
		cfg.RootCAs = pool
	}
	ot := bt.Clone()
	ot.TLSClientConfig = cfg.Clone()
	sameCfg := cfg.Clone()
	if len(a.CertFile) > 0 || len(a.KeyFile) > 0 {
		pair, err := tls.X509KeyPair(a.CertFile, a.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: client certificate: %s", ErrInvalidSource, err.Error())
		}
		sameCfg.Certificates = []tls.Certificate{pair}
	}
	// #nosec G402 -- opted into per repository by its owner, like helm's --insecure-skip-tls-verify; never applied to other hosts
	sameCfg.InsecureSkipVerify = a.InsecureSkipTLSVerify
	st := bt.Clone()
	st.TLSClientConfig = sameCfg
	return st, ot, nil
}

// clientFor returns the (cached) HTTP client for repository r with a.
func (c *Charts) clientFor(r *repoURL, a *RepoAuth) (*http.Client, error) {
	key := r.base.Scheme + "://" + canonicalHost(r.base) + "\n" + fingerprint(a)
	if hc, ok := c.clients.Get(key); ok {
		return hc, nil
	}
	same, other, err := c.transports(a)
	if err != nil {
		return nil, err
	}
	t := &originTransport{scheme: r.base.Scheme, host: canonicalHost(r.base), same: same, other: other}
	if a != nil {
		t.user, t.pass = a.Username, a.Password
	}
	hc := &http.Client{Transport: c.guardLocal(t), CheckRedirect: checkRedirect}
	c.clients.Add(key, hc)
	return hc, nil
}

// get sends a GET with the given extra headers.
func get(ctx context.Context, hc *http.Client, u string, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, stripURLError(err)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, stripURLError(err)
	}
	return resp, nil
}

// statusError maps an unexpected HTTP status to the package's sentinels.
func statusError(resp *http.Response, notFound error) error {
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrAuthentication, resp.Status)
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", notFound, resp.Status)
	}
	return fmt.Errorf("unexpected status %s", resp.Status)
}

// readBody reads at most maxSize bytes of resp's body.
func readBody(resp *http.Response, maxSize int64) ([]byte, error) {
	if resp.ContentLength > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, resp.ContentLength, maxSize)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > maxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	return b, nil
}

// drain lets the connection be reused, reading at most a little.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// chartIndex is the part of an index.yaml Resolve needs, compact so that
// dozens of large indexes fit in memory.
type chartIndex struct {
	entries map[string][]indexVersion // sorted highest version first
}

type indexVersion struct {
	version string
	sv      *semver.Version // nil if version is not SemVer
	digest  string          // "sha256:<hex>" or ""
	url     string          // as written in the index
}

// compactIndex keeps what Resolve needs of a parsed index.
func compactIndex(ix *repo.IndexFile) *chartIndex {
	out := &chartIndex{entries: make(map[string][]indexVersion, len(ix.Entries))}
	for name, cvs := range ix.Entries {
		vs := make([]indexVersion, 0, len(cvs))
		for _, cv := range cvs {
			if cv == nil || cv.Metadata == nil || cv.Removed {
				continue
			}
			// Copies: a decoder's strings may share one buffer of the
			// whole document, which keeping one of them would keep alive.
			v := indexVersion{version: strings.Clone(cv.Version), digest: strings.Clone(normaliseDigest(cv.Digest))}
			if len(cv.URLs) > 0 {
				v.url = strings.Clone(cv.URLs[0])
			}
			v.sv, _ = semver.NewVersion(v.version)
			vs = append(vs, v)
		}
		sort.SliceStable(vs, func(i, j int) bool {
			a, b := vs[i].sv, vs[j].sv
			switch {
			case a == nil:
				return false
			case b == nil:
				return true
			}
			return a.GreaterThan(b)
		})
		out.entries[strings.Clone(name)] = vs
	}
	return out
}

// normaliseDigest turns an index digest ("<hex>" or "sha256:<hex>") into
// "sha256:<hex>"; anything else counts as no digest.
func normaliseDigest(d string) string {
	d = "sha256:" + strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d)), "sha256:")
	if !digestRE.MatchString(d) {
		return ""
	}
	return d
}

// find picks name's version as Helm does: an exact string match first, then
// the highest version matching version as a SemVer range ("" = any stable).
func (x *chartIndex) find(name, version string) (*indexVersion, error) {
	vs, ok := x.entries[name]
	if !ok || len(vs) == 0 {
		return nil, fmt.Errorf("%w: no chart %q in the index", ErrChartNotFound, name)
	}
	if version != "" {
		for i := range vs {
			if vs[i].version == version {
				return &vs[i], nil
			}
		}
	}
	cons, err := constraint(version)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		if vs[i].sv != nil && cons.Check(vs[i].sv) {
			return &vs[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no version of %q matches %q", ErrChartNotFound, name, version)
}

// constraint parses a version or range; "" means any stable version.
func constraint(version string) (*semver.Constraints, error) {
	if version == "" {
		version = "*"
	}
	cons, err := semver.NewConstraint(version)
	if err != nil {
		return nil, fmt.Errorf("%w: version %q is neither a version nor a range", ErrInvalidSource, truncate(version))
	}
	return cons, nil
}

// indexEntry is what is known of one repository's index.
type indexEntry struct {
	meta    indexMeta
	checked time.Time   // last answer from the server
	next    time.Time   // the next refresh, with an index interval
	idx     *chartIndex // nil until parsed
	// failed is the error of the last refresh, given to every caller until
	// failedUntil instead of asking the server again.
	failed      error
	failedUntil time.Time
}

// indexFailureHold is how long a failed index refresh answers for the
// repository (per URL and credentials) before the server is asked again,
// at most the index interval or TTL: every HelmRelease of a repository that
// is down retries on its own backoff, and together they would otherwise
// send a request each.
const indexFailureHold = 10 * time.Second

// failureHold is the hold of a failed refresh; 0 when indexes are not
// cached at all.
func (c *Charts) failureHold() time.Duration {
	switch {
	case c.indexInterval > 0:
		return min(indexFailureHold, c.indexInterval)
	case c.indexTTL > 0:
		return min(indexFailureHold, c.indexTTL)
	}
	return 0
}

// heldFailure returns the error of a refresh that failed less than the
// hold ago, or nil.
func (c *Charts) heldFailure(key string) error {
	if e, ok := c.indexes.Get(key); ok && e.failed != nil && c.now().Before(e.failedUntil) {
		return e.failed
	}
	return nil
}

// holdFailure keeps err as the answer for key for the hold. What was known
// of the index (validators, the parsed copy) is kept for the next refresh.
func (c *Charts) holdFailure(key string, err error) {
	hold := c.failureHold()
	if hold <= 0 {
		return
	}
	e := &indexEntry{}
	if old, ok := c.indexes.Get(key); ok {
		cp := *old
		e = &cp
	} else if m := c.readIndexMeta(key); m != nil {
		e = m
	}
	e.failed, e.failedUntil = err, c.now().Add(hold)
	c.indexes.Add(key, e)
}

// indexMeta is kept on disk beside the index: the validators for the next
// conditional request and the checksum of the stored body.
type indexMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	SHA256       string `json:"sha256"`
}

// indexKey names a repository's index in the caches: the hex sha256 of its
// URL, and of the credentials' fingerprint too when there are credentials
// (one user's private index is never served to another).
func indexKey(r *repoURL, a *RepoAuth) string {
	if fp := fingerprint(a); fp != "" {
		return hashKey(r.base.String(), fp)
	}
	return hashKey(r.base.String())
}

func (c *Charts) indexFiles(key string) (yamlPath, metaPath string) {
	return filepath.Join(c.dir, indexDir, key+".yaml"), filepath.Join(c.dir, indexDir, key+".json")
}

// index returns repository r's parsed index, asking the server only when
// the index interval (or the TTL) says it is time. The cache is keyed by the
// URL and the credentials (indexKey), so an index is only ever served to
// callers holding the credentials it was fetched with. Concurrent callers
// share one request.
func (c *Charts) index(ctx context.Context, r *repoURL, a *RepoAuth) (*chartIndex, error) {
	key := indexKey(r, a)
	if e, ok := c.indexes.Get(key); ok && c.indexFresh(e) {
		return e.idx, nil
	}
	if err := c.heldFailure(key); err != nil {
		return nil, fmt.Errorf("fetch index %s: %w", r.display, err)
	}
	v, err := c.share(ctx, "index\n"+key, func(ctx context.Context) (any, error) {
		// A flight that ended just before this one may have refreshed it,
		// or failed.
		if e, ok := c.indexes.Get(key); ok && c.indexFresh(e) {
			return e.idx, nil
		}
		if err := c.heldFailure(key); err != nil {
			return nil, err
		}
		idx, err := c.refreshIndex(ctx, r, a, key)
		if err != nil && ctx.Err() == nil {
			c.holdFailure(key, err)
		}
		return idx, err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch index %s: %w", r.display, err)
	}
	idx, _ := v.(*chartIndex)
	return idx, nil
}

// refreshIndex asks the server for the index, conditionally when a copy is
// cached: a 304 reuses the parsed copy (parsing the disk copy only after a
// restart), a 200 whose body is unchanged reuses it too.
func (c *Charts) refreshIndex(ctx context.Context, r *repoURL, a *RepoAuth, key string) (*chartIndex, error) {
	hc, err := c.clientFor(r, a)
	if err != nil {
		return nil, err
	}
	e, ok := c.indexes.Get(key)
	if !ok {
		e = c.readIndexMeta(key)
	}
	idxURL := r.base.JoinPath("index.yaml").String()
	for attempt := 0; ; attempt++ {
		conditional := e != nil && attempt == 0 && (e.meta.ETag != "" || e.meta.LastModified != "")
		hdr := map[string]string{"Accept": "application/x-yaml, application/yaml, text/yaml, */*"}
		if conditional {
			hdr["If-None-Match"] = e.meta.ETag
			hdr["If-Modified-Since"] = e.meta.LastModified
		}
		c.indexRequests.Add(1)
		resp, err := get(ctx, hc, idxURL, hdr)
		if err != nil {
			return nil, err
		}
		idx, retry, err := c.indexResponse(resp, r, key, e, conditional)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection
		_ = resp.Body.Close()
		if retry && attempt == 0 {
			continue
		}
		return idx, err
	}
}

// indexResponse handles one index response (the caller closes its body);
// retry asks for an unconditional request (a 304 for a copy that turned out
// unreadable).
func (c *Charts) indexResponse(resp *http.Response, r *repoURL, key string, e *indexEntry, conditional bool) (idx *chartIndex, retry bool, err error) {
	now := c.now()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		idx = e.idx
		if idx == nil {
			if idx, err = c.parseCachedIndex(key, e.meta.SHA256); err != nil {
				return nil, true, err
			}
		}
		c.indexes.Add(key, &indexEntry{meta: e.meta, checked: now, next: c.nextRefresh(now), idx: idx})
		return idx, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, statusError(resp, ErrRepositoryNotFound)
	}
	body, err := readBody(resp, c.maxIndex)
	if err != nil {
		return nil, false, err
	}
	c.indexDownloads.Add(1)
	meta := indexMeta{
		URL:          r.display,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		SHA256:       sha256Digest(body),
	}
	if e != nil && e.idx != nil && e.meta.SHA256 == meta.SHA256 {
		// Same content (a server without validators): no parsing.
		if e.meta != meta {
			_ = c.writeIndexMeta(key, meta)
		}
		c.indexes.Add(key, &indexEntry{meta: meta, checked: now, next: c.nextRefresh(now), idx: e.idx})
		return e.idx, false, nil
	}
	if idx, err = c.storeIndex(key, body, meta); err != nil {
		return nil, false, err
	}
	c.indexes.Add(key, &indexEntry{meta: meta, checked: now, next: c.nextRefresh(now), idx: idx})
	return idx, false, nil
}

// storeIndex parses body with Helm's index loader and, if it parses, keeps
// it on disk with its validators.
func (c *Charts) storeIndex(key string, body []byte, meta indexMeta) (_ *chartIndex, retErr error) {
	yamlPath, _ := c.indexFiles(key)
	f, err := os.CreateTemp(filepath.Dir(yamlPath), ".tmp-"+key+"-*")
	if err != nil {
		return nil, fmt.Errorf("store index: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = os.Remove(f.Name())
		}
	}()
	_, werr := f.Write(body)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("store index: %w", werr)
	}
	c.indexParses.Add(1)
	ix, err := repo.LoadIndexFile(f.Name())
	if err != nil {
		return nil, fmt.Errorf("parse index: %s", strings.ReplaceAll(err.Error(), f.Name(), "index.yaml"))
	}
	if err := os.Rename(f.Name(), yamlPath); err != nil {
		return nil, fmt.Errorf("store index: %w", err)
	}
	if err := c.writeIndexMeta(key, meta); err != nil {
		return nil, fmt.Errorf("store index: %w", err)
	}
	return compactIndex(ix), nil
}

func (c *Charts) writeIndexMeta(key string, meta indexMeta) error {
	_, metaPath := c.indexFiles(key)
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	return writeFileAtomic(metaPath, b)
}

// readIndexMeta returns the validators of a copy cached by an earlier
// process, or nil.
func (c *Charts) readIndexMeta(key string) *indexEntry {
	_, metaPath := c.indexFiles(key)
	b, err := readFileMax(metaPath, 64<<10)
	if err != nil {
		return nil
	}
	var m indexMeta
	if json.Unmarshal(b, &m) != nil || m.SHA256 == "" {
		return nil
	}
	return &indexEntry{meta: m}
}

// parseCachedIndex parses the cached copy of an index if it is the one its
// validators were stored with.
func (c *Charts) parseCachedIndex(key, sum string) (*chartIndex, error) {
	yamlPath, _ := c.indexFiles(key)
	b, err := readFileMax(yamlPath, c.maxIndex)
	if err != nil {
		return nil, fmt.Errorf("read cached index: %w", err)
	}
	if sha256Digest(b) != sum {
		return nil, errors.New("cached index does not match its checksum")
	}
	c.indexParses.Add(1)
	ix, err := repo.LoadIndexFile(yamlPath)
	if err != nil {
		return nil, fmt.Errorf("parse cached index: %s", strings.ReplaceAll(err.Error(), yamlPath, "index.yaml"))
	}
	return compactIndex(ix), nil
}

// resolveRepo resolves a chart in an HTTP repository from its index.
func (c *Charts) resolveRepo(ctx context.Context, src ChartSource) (*ChartRef, error) {
	r, err := c.parseRepo(src.Repository)
	if err != nil {
		return nil, err
	}
	a := r.auth(src.RepoAuth)
	if err := refuseInsecureCredentials(r.base.Scheme == "http", a, src.AllowInsecureHTTP, r.display); err != nil {
		return nil, err
	}
	idx, err := c.index(ctx, r, a)
	if err != nil {
		return nil, err
	}
	v, err := idx.find(src.Name, src.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.display, err)
	}
	u, err := chartURL(r, v.url)
	if err == nil {
		err = c.checkLocal(hostOf(u), "the index entry's URL "+RedactURL(u))
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", src.Name, v.version, err)
	}
	d := v.digest
	if d == "" {
		d = c.knownDigest(repoOrigin(r), u, a)
	}
	return &ChartRef{Source: src, Name: src.Name, Version: v.version, Digest: d, Revision: v.version, URL: u, indexDigest: v.digest != ""}, nil
}

// chartURL resolves an index entry's URL against the repository URL (as
// Helm does) and accepts only http(s) results, without userinfo.
func chartURL(r *repoURL, ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: the index entry has no URL", ErrInvalidChart)
	}
	if len(ref) > maxURLLength {
		return "", fmt.Errorf("%w: the index entry's URL is longer than %d bytes", ErrInvalidChart, maxURLLength)
	}
	s, err := repo.ResolveReferenceURL(r.base.String(), ref)
	if err != nil {
		return "", fmt.Errorf("%w: the index entry's URL %s does not parse", ErrInvalidChart, RedactURL(ref))
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: the index entry's URL %s is not http(s)", ErrInvalidChart, RedactURL(ref))
	}
	u.User = nil
	return u.String(), nil
}

// knownDigest returns the digest an earlier Load computed for an archive
// URL whose index entry has none, or "".
func (c *Charts) knownDigest(origin, u string, a *RepoAuth) string {
	b, err := readFileMax(filepath.Join(c.dir, urlsDir, hashKey(origin, u, fingerprint(a))), 128)
	if err != nil || !digestRE.Match(bytes.TrimSpace(b)) {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// repoArchive returns ref's archive from the cache or the repository.
func (c *Charts) repoArchive(ctx context.Context, ref *ChartRef) ([]byte, bool, error) {
	r, err := c.parseRepo(ref.Source.Repository)
	if err != nil {
		return nil, false, err
	}
	if ref.URL == "" {
		return nil, false, fmt.Errorf("%w: the reference has no archive URL; resolve it first", ErrInvalidSource)
	}
	a := r.auth(ref.Source.RepoAuth)
	if err := refuseInsecureCredentials(r.base.Scheme == "http", a, ref.Source.AllowInsecureHTTP, r.display); err != nil {
		return nil, false, err
	}
	fp := fingerprint(a)
	key := "repo-archive\n" + ref.Digest + "\n" + ref.URL + "\n" + fp
	return c.archive(ctx, ref, repoOrigin(r), key, true, func(ctx context.Context) (*fetched, error) {
		return c.download(ctx, r, a, ref.URL, ref.Digest)
	})
}

// download fetches an archive, verifies it against want (if any) and the
// archive checks, and caches it under its digest.
func (c *Charts) download(ctx context.Context, r *repoURL, a *RepoAuth, u, want string) (*fetched, error) {
	hc, err := c.clientFor(r, a)
	if err != nil {
		return nil, err
	}
	c.chartDownloads.Add(1)
	resp, err := get(ctx, hc, u, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", RedactURL(u), err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %w", RedactURL(u), statusError(resp, ErrChartNotFound))
	}
	body, err := readBody(resp, c.maxArchive)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", RedactURL(u), err)
	}
	got := sha256Digest(body)
	if want != "" && got != want {
		return nil, fmt.Errorf("download %s: %w: the archive is %s, the index says %s", RedactURL(u), ErrDigestMismatch, got, want)
	}
	if err := checkArchive(bytes.NewReader(body), c.limits); err != nil {
		return nil, err
	}
	if err := c.storeArchive(repoOrigin(r), got, body); err != nil {
		return nil, fmt.Errorf("cache chart: %w", err)
	}
	if want == "" {
		_ = writeFileAtomic(filepath.Join(c.dir, urlsDir, hashKey(repoOrigin(r), u, fingerprint(a))), []byte(got))
	}
	return &fetched{data: body, digest: got}, nil
}
