// Chart sources for the HelmRelease controller: Helm repositories over HTTP,
// OCI registries and chart directories in git repositories.
//
// Why they are shaped this way:
//
//   - Every HelmRelease resolves its chart on every pass, and hundreds of
//     releases often share one chart. Resolve therefore never downloads a
//     chart: it answers from index.yaml (kept on disk and parsed in memory
//     in a compact form, shared by every caller with the same repository URL
//     and credentials, refreshed at most once per WithIndexInterval with a
//     conditional request so an unchanged repository costs one 304 and no
//     parsing), from an OCI tag (one HEAD) or from a git tree
//     hash (one ref advertisement). Concurrent Resolves of one source share
//     one request.
//   - The controller compares ChartRef.Digest with what it installed last
//     time, so Digest identifies content, not names: the archive's sha256,
//     the OCI manifest digest, or a digest over the git tree of the chart
//     directory and its dependencies. A commit that does not touch the chart
//     does not change it.
//   - Load downloads a digest once; the archive is kept on disk under its
//     digest and survives restarts. Helm's actions mutate charts, so each
//     Load returns a fresh *chart.Chart.
//   - Everything downloaded is untrusted. Archives are inspected before
//     Helm's loader sees them (archive.go), sizes are capped, a repository's
//     credentials go to that repository's host only, and no error carries a
//     credential.

package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/helmflux/helmflux/pkg/git"
)

// Sentinel errors let the controller map failures to conditions with
// errors.Is; messages are for people.
var (
	// ErrInvalidSource means the ChartSource itself is wrong (both or
	// neither of Repository and Git, a bad URL, name, version range or
	// path): only a spec change helps.
	ErrInvalidSource = errors.New("invalid chart source")
	// ErrChartNotFound means the repository or registry has no chart of that
	// name, or no version matching the requested one: a spec problem.
	ErrChartNotFound = errors.New("chart not found")
	// ErrRepositoryNotFound means the repository's index (or the git
	// repository) does not exist. It is git.ErrRepositoryNotFound, so one
	// errors.Is covers every kind of source.
	ErrRepositoryNotFound = git.ErrRepositoryNotFound
	// ErrAuthentication means the repository or registry refused the
	// credentials (or wanted some). It is git.ErrAuthentication.
	ErrAuthentication = git.ErrAuthentication
	// ErrTooLarge means an index, archive or checkout is over a size cap. It
	// is git.ErrTooLarge.
	ErrTooLarge = git.ErrTooLarge
	// ErrDigestMismatch means the downloaded archive is not the one the
	// index's digest names: a tampered or inconsistent repository.
	ErrDigestMismatch = errors.New("chart digest mismatch")
	// ErrHostileChart means an archive was refused before Helm's loader saw
	// it: path traversal, links, devices, a decompression bomb. The message
	// names the entry.
	ErrHostileChart = errors.New("hostile chart archive refused")
	// ErrInsecureCredentials means credentials would have gone over plain
	// HTTP without the source's AllowInsecureHTTP; nothing was sent. It is
	// git.ErrInsecureCredentials.
	ErrInsecureCredentials = git.ErrInsecureCredentials
	// ErrInvalidChart means the archive is safe but not a valid Helm chart
	// (or not the chart the index promised).
	ErrInvalidChart = errors.New("invalid chart")
)

// ChartSource says where a chart comes from: exactly one of Repository and
// Git. It mirrors the HelmRelease's spec.chart.
type ChartSource struct {
	// Repository is an http(s):// Helm repository, or oci://host/path (the
	// chart is <path>/<Name>).
	Repository string
	// Name is the chart's name in the repository.
	Name string
	// Version is an exact version or a SemVer range ("6.x", ">=1.0 <2");
	// ranges pick the highest match, "" the highest stable version.
	Version string
	// RepoAuth holds the repository's credentials (nil = anonymous).
	RepoAuth *RepoAuth

	// Git is the git URL of a repository holding the chart directory.
	Git string
	// Ref picks the revision (pkg/git's Ref).
	Ref git.Ref
	// Path is the chart directory in the repository (slash path, confined;
	// "" is the root).
	Path string
	// SkipDepUpdate uses charts/ as committed instead of building the
	// dependencies Chart.yaml lists.
	SkipDepUpdate bool
	// GitAuth holds the git credentials (nil = anonymous).
	GitAuth *git.Auth
	// AllowInsecureHTTP lets the credentials (RepoAuth or the repository
	// URL's userinfo, GitAuth) go to a plain http:// repository, an OCI
	// registry reached over plain HTTP or an http:// git remote, where
	// anyone on the path can read them. Without it such a source with
	// credentials is refused before any request (ErrInsecureCredentials).
	// It applies to a git chart's repository dependencies too.
	AllowInsecureHTTP bool
	// DependencyAuth holds credentials for the repositories a git chart's
	// dependencies come from, keyed by the repository URL exactly as
	// Chart.yaml (or requirements.yaml) spells it. Missing = anonymous.
	DependencyAuth map[string]*RepoAuth
	// Verify lists the signature checks a git chart's commit must pass
	// (each of them) before anything of it is read; none checks nothing.
	Verify []GitVerification
}

// RepoAuth holds credentials for a chart repository (from the Helm
// Operator's chartPullSecret / repositories.yaml). Never logged, never in
// errors.
type RepoAuth struct {
	// Username and Password are HTTP basic auth, sent only to the
	// repository's own scheme and host.
	Username, Password string
	// CAFile is extra PEM CA certificates trusted on top of the system
	// pool; CertFile and KeyFile are a PEM client certificate presented to
	// the repository's host.
	CAFile, CertFile, KeyFile []byte
	// InsecureSkipTLSVerify turns off certificate verification for the
	// repository's host.
	InsecureSkipTLSVerify bool
}

// ChartRef is a resolved chart: what would be installed, found without
// downloading the chart. It holds the source's credentials: do not log it.
type ChartRef struct {
	// Source is what was resolved.
	Source ChartSource
	// Name and Version are the chart's (from the index, the OCI tag or the
	// git checkout's Chart.yaml).
	Name, Version string
	// Digest identifies the chart content: "sha256:<hex>" of the archive for
	// repositories (index.yaml's digest; if the index has none, empty until
	// the first Load computes it, and remembered from then on), the manifest
	// digest for OCI, and for git a digest over the tree hash of Path, the
	// trees of file:// dependencies and the resolved versions and digests of
	// repository dependencies (symlinks to elsewhere in the repository count
	// as links, not as their targets' content).
	Digest string
	// Revision is what status.revision shows: the chart version for
	// repositories and OCI, the git revision ("main@sha1:…") for git.
	Revision string
	// URL is the archive URL for repositories (resolved against the repo
	// URL; it may carry the repository URL's query), the oci reference for
	// OCI, "" for git.
	URL string

	// deps are the resolved repository dependencies of a git chart.
	deps []*ChartRef
	// indexDigest says Digest came from the repository's index (not from
	// an earlier download).
	indexDigest bool
}

// ChartStats are counters for benchmarks and tests.
type ChartStats struct {
	// IndexRequests counts index.yaml requests sent; IndexDownloads those
	// answered with a body (200); IndexParses the indexes parsed (a 200
	// with new content, or the disk copy after a restart).
	IndexRequests, IndexDownloads, IndexParses int64
	// ChartDownloads counts archives downloaded (repository or OCI).
	ChartDownloads int64
	// RegistryRequests counts OCI tag resolutions sent (a HEAD or a tag
	// list, each with whatever auth round trips the registry needs).
	RegistryRequests int64
	// GitFetches counts git ref resolutions (pkg/git Fetch calls).
	GitFetches int64
	// GitBuilds counts git charts checked out and packaged.
	GitBuilds int64
}

// Defaults for Charts.
const (
	// DefaultMaxArchiveSize caps a downloaded or packaged chart archive.
	DefaultMaxArchiveSize int64 = 10 << 20
	// DefaultMaxIndexSize caps an index.yaml (and any registry response).
	DefaultMaxIndexSize int64 = 64 << 20
	// DefaultTimeout bounds each network step (an index, a tag, a download,
	// a git fetch).
	DefaultTimeout = 2 * time.Minute
	// indexCacheSize is how many parsed indexes stay in memory.
	indexCacheSize = 32
	// clientCacheSize is how many per-credential HTTP clients and registry
	// pullers are kept (connection reuse across Resolves).
	clientCacheSize = 64
	// memoCacheSize bounds the small per-source memos (OCI tags, git infos).
	memoCacheSize = 256
)

// Charts resolves and loads charts, with caches on disk (under the cache
// dir) and in memory. Safe for concurrent use; one Charts per cache dir.
type Charts struct {
	dir        string
	git        *git.Cache
	base       http.RoundTripper
	maxArchive int64
	maxIndex   int64
	limits     ArchiveLimits
	indexTTL   time.Duration
	// indexInterval, when set, is how long an HTTP repository's parsed
	// index is used without asking the server (jittered, indexJitter).
	indexInterval time.Duration
	timeout       time.Duration
	plainHTTP     map[string]bool
	// refuseLocal refuses loopback hosts (WithoutLocalURLs).
	refuseLocal bool

	flights singleflight.Group

	// Memory caches, each safe for concurrent use on its own: nothing reads
	// two of them as one.
	indexes  *lru.Cache[string, *indexEntry]
	clients  *lru.Cache[string, *http.Client]
	pullers  *lru.Cache[string, *ociPuller]
	ociTags  *lru.Cache[string, *ociTag]
	gitInfos *lru.Cache[string, *gitInfo]
	gitRefs  *lru.Cache[string, *gitResolved]

	indexRequests, indexDownloads, indexParses, chartDownloads, registryRequests, gitFetches, gitBuilds atomic.Int64

	// now is the clock of index refreshes (tests move it).
	now func() time.Time

	// joined, if set, is called once a caller has joined (or started) the
	// shared request for key: tests use it to line up concurrent callers.
	joined func(key string)
}

// ChartsOption tunes a Charts.
type ChartsOption func(*Charts)

// WithHTTPClient sets the base transport for repositories and registries
// (its Transport; nil means http.DefaultTransport). Per-repository TLS
// settings are applied to a clone of it when it is an *http.Transport.
// Tests pass an httptest TLS client.
func WithHTTPClient(hc *http.Client) ChartsOption {
	return func(c *Charts) {
		if hc != nil && hc.Transport != nil {
			c.base = hc.Transport
		}
	}
}

// WithMaxArchiveSize caps a chart archive (default DefaultMaxArchiveSize).
func WithMaxArchiveSize(n int64) ChartsOption { return func(c *Charts) { c.maxArchive = n } }

// WithMaxIndexSize caps an index.yaml and any registry response (default
// DefaultMaxIndexSize).
func WithMaxIndexSize(n int64) ChartsOption { return func(c *Charts) { c.maxIndex = n } }

// WithArchiveLimits bounds what an archive may decompress to (default
// DefaultArchiveLimits()).
func WithArchiveLimits(l ArchiveLimits) ChartsOption { return func(c *Charts) { c.limits = l } }

// WithIndexTTL sets how long a resolution is reused without asking the
// remote at all: a parsed index, an OCI tag's digest, a git ref's commit.
// The default, 0, sends a (conditional) request on every Resolve; concurrent
// Resolves of one source still share one request.
func WithIndexTTL(d time.Duration) ChartsOption { return func(c *Charts) { c.indexTTL = d } }

// WithIndexInterval makes an HTTP repository's index a shared cache: it is
// refreshed (one conditional request, a 304 costing no parsing) at most once
// per d for each repository URL and set of credentials, and every Resolve in
// between answers from the parsed copy without a request. Each refresh
// schedules the next one d ± indexJitter (10%) later, so that repositories
// first fetched together do not all refresh at the same moment. It replaces
// WithIndexTTL for HTTP repositories (OCI tags and git refs keep the TTL);
// 0, the default, leaves them to the TTL.
func WithIndexInterval(d time.Duration) ChartsOption { return func(c *Charts) { c.indexInterval = d } }

// indexJitter is the fraction of the index interval by which each refresh
// is moved earlier or later at random (Flux's --interval-jitter-percentage).
const indexJitter = 0.1

// WithTimeout bounds each network step (default DefaultTimeout).
func WithTimeout(d time.Duration) ChartsOption { return func(c *Charts) { c.timeout = d } }

// WithPlainHTTPRegistries lets OCI registries on these hosts ("host:port" as
// in the oci:// URL, or a bare host for every port of it) be reached over
// plain HTTP. Every other registry is HTTPS only, loopback and private
// addresses included.
func WithPlainHTTPRegistries(hosts ...string) ChartsOption {
	return func(c *Charts) {
		for _, h := range hosts {
			c.plainHTTP[strings.ToLower(h)] = true
		}
	}
}

// Subdirectories of the cache dir.
const (
	indexDir   = "index"  // <key>.yaml and <key>.json (validators)
	chartsDir  = "charts" // <hash of the origin>-<digest>.tgz
	urlsDir    = "urls"   // <sha256(origin, url, credentials)>: the digest of an archive whose index entry has none
	scratchDir = ".tmp"   // git checkouts and builds, emptied at start
)

// NewCharts returns a Charts caching under cacheDir (created 0700: it may
// hold private charts). gitCache serves git sources; nil refuses them.
func NewCharts(cacheDir string, gitCache *git.Cache, opts ...ChartsOption) (*Charts, error) {
	if cacheDir == "" {
		return nil, fmt.Errorf("new charts: %w: empty cache dir", ErrInvalidSource)
	}
	abs, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("new charts %s: %w", cacheDir, err)
	}
	if err := os.RemoveAll(filepath.Join(abs, scratchDir)); err != nil {
		return nil, fmt.Errorf("new charts %s: %w", cacheDir, err)
	}
	for _, d := range []string{indexDir, chartsDir, urlsDir, scratchDir} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("new charts %s: %w", cacheDir, err)
		}
	}
	// Archives cached by digest alone (before they were keyed by origin
	// too) are never read again.
	if old, err := filepath.Glob(filepath.Join(abs, chartsDir, "sha256:*.tgz")); err == nil {
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	c := &Charts{
		dir:        abs,
		git:        gitCache,
		base:       http.DefaultTransport,
		maxArchive: DefaultMaxArchiveSize,
		maxIndex:   DefaultMaxIndexSize,
		limits:     DefaultArchiveLimits(),
		timeout:    DefaultTimeout,
		plainHTTP:  map[string]bool{},
		indexes:    newLRU[string, *indexEntry](indexCacheSize),
		clients:    newLRU[string, *http.Client](clientCacheSize),
		pullers:    newLRU[string, *ociPuller](clientCacheSize),
		ociTags:    newLRU[string, *ociTag](memoCacheSize),
		gitInfos:   newLRU[string, *gitInfo](memoCacheSize),
		gitRefs:    newLRU[string, *gitResolved](memoCacheSize),
		now:        time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.maxArchive <= 0 || c.maxIndex <= 0 || c.timeout <= 0 || c.limits.MaxFiles <= 0 ||
		c.limits.MaxFileSize <= 0 || c.limits.MaxTotalSize <= 0 || c.indexTTL < 0 || c.indexInterval < 0 {
		return nil, fmt.Errorf("new charts: %w: limits and timeouts must be positive", ErrInvalidSource)
	}
	return c, nil
}

// Stats returns the counters so far.
func (c *Charts) Stats() ChartStats {
	return ChartStats{
		IndexRequests:    c.indexRequests.Load(),
		IndexDownloads:   c.indexDownloads.Load(),
		IndexParses:      c.indexParses.Load(),
		ChartDownloads:   c.chartDownloads.Load(),
		RegistryRequests: c.registryRequests.Load(),
		GitFetches:       c.gitFetches.Load(),
		GitBuilds:        c.gitBuilds.Load(),
	}
}

// sourceKind is which of the three sources a ChartSource names.
type sourceKind int

const (
	kindRepo sourceKind = iota
	kindOCI
	kindGit
)

// kind validates the fields every source needs and says which one it is.
func (s *ChartSource) kind() (sourceKind, error) {
	switch {
	case s.Repository != "" && s.Git != "":
		return 0, fmt.Errorf("%w: set either a repository or a git URL, not both", ErrInvalidSource)
	case s.Git != "":
		return kindGit, nil
	case s.Repository == "":
		return 0, fmt.Errorf("%w: set a repository or a git URL", ErrInvalidSource)
	}
	if err := checkChartName(s.Name); err != nil {
		return 0, err
	}
	scheme, _, _ := strings.Cut(s.Repository, "://")
	switch strings.ToLower(scheme) {
	case "oci":
		return kindOCI, nil
	case "http", "https":
		return kindRepo, nil
	}
	return 0, fmt.Errorf("%w: repository %s: want an http(s):// or oci:// URL", ErrInvalidSource, RedactURL(s.Repository))
}

// chartNameRE is what a chart name may look like: it becomes a path
// segment (OCI) and part of file names.
var chartNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,249}$`)

func checkChartName(n string) error {
	if !chartNameRE.MatchString(n) || strings.Contains(n, "..") {
		return fmt.Errorf("%w: chart name %q: want letters, digits, '.', '_' and '-'", ErrInvalidSource, truncate(n))
	}
	return nil
}

// describe names a source for errors, without credentials.
func (s *ChartSource) describe() string {
	if s.Git != "" {
		return fmt.Sprintf("%q in %s", s.Path, RedactURL(s.Git))
	}
	return fmt.Sprintf("%s from %s", s.Name, RedactURL(s.Repository))
}

// Resolve finds the chart version and digest without downloading the chart
// archive. HTTP repositories read index.yaml (cached per repository URL and
// credentials on disk and in memory, refreshed with a conditional request;
// a 304 costs no parsing), OCI resolves the tag (or the highest tag matching
// a range) to a manifest digest, git fetches the ref with pkg/git's Cache
// (one ref advertisement if unchanged) and hashes the tree of Path and its
// dependencies. Concurrent Resolves of one source share one request.
func (c *Charts) Resolve(ctx context.Context, src ChartSource) (*ChartRef, error) {
	k, err := src.kind()
	if err != nil {
		return nil, fmt.Errorf("resolve chart %s: %w", src.describe(), err)
	}
	var ref *ChartRef
	switch k {
	case kindRepo:
		ref, err = c.resolveRepo(ctx, src)
	case kindOCI:
		ref, err = c.resolveOCI(ctx, src)
	case kindGit:
		ref, err = c.resolveGit(ctx, src)
	}
	if err != nil {
		return nil, scrubError(fmt.Errorf("resolve chart %s: %w", src.describe(), err), &src)
	}
	return ref, nil
}

// Load returns the chart ref names, downloading (or, for git, checking out
// and building) it only if its digest is not cached on disk. Each call
// returns a fresh *chart.Chart, since Helm's actions mutate charts. For a
// repository whose index has no digests, the first Load computes the
// archive's digest and sets ref.Digest.
func (c *Charts) Load(ctx context.Context, ref *ChartRef) (*chart.Chart, error) {
	if ref == nil {
		return nil, fmt.Errorf("load chart: %w: nil reference", ErrInvalidSource)
	}
	k, err := ref.Source.kind()
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", ref.Source.describe(), err)
	}
	if ref.Digest != "" && !digestRE.MatchString(ref.Digest) {
		return nil, fmt.Errorf("load chart %s: %w: digest %q is not sha256:<64 hex digits>", ref.Source.describe(), ErrInvalidSource, truncate(ref.Digest))
	}
	ch, err := c.load(ctx, k, ref)
	if err != nil {
		return nil, scrubError(fmt.Errorf("load chart %s %s from %s: %w", ref.Name, ref.Version, ref.Source.describe(), err), &ref.Source)
	}
	return ch, nil
}

func (c *Charts) load(ctx context.Context, k sourceKind, ref *ChartRef) (*chart.Chart, error) {
	for attempt := 0; ; attempt++ {
		var (
			tgz    []byte
			cached bool
			err    error
		)
		switch k {
		case kindRepo:
			tgz, cached, err = c.repoArchive(ctx, ref)
		case kindOCI:
			tgz, cached, err = c.ociArchive(ctx, ref)
		case kindGit:
			tgz, cached, err = c.gitArchive(ctx, ref)
		}
		if err != nil {
			return nil, err
		}
		ch, err := loadArchive(tgz, c.limits)
		if err != nil && cached && attempt == 0 {
			// The disk copy went bad (it was checked before it was
			// stored): drop it and fetch again.
			_ = os.Remove(c.chartFile(c.originOf(k, ref.Source), ref.Digest))
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := checkIdentity(ch, ref); err != nil {
			return nil, err
		}
		return ch, nil
	}
}

// checkIdentity refuses an archive that is not the chart the reference
// promised (an index pointing at another chart's archive).
func checkIdentity(ch *chart.Chart, ref *ChartRef) error {
	if ch.Metadata == nil {
		return fmt.Errorf("%w: no Chart.yaml", ErrInvalidChart)
	}
	if ch.Metadata.Name != ref.Name {
		return fmt.Errorf("%w: the archive holds chart %q, want %q", ErrInvalidChart, truncate(ch.Metadata.Name), ref.Name)
	}
	if ch.Metadata.Version == ref.Version {
		return nil
	}
	got, gerr := semver.NewVersion(ch.Metadata.Version)
	want, werr := semver.NewVersion(ref.Version)
	if gerr != nil || werr != nil || !got.Equal(want) {
		return fmt.Errorf("%w: the archive holds version %q, want %q", ErrInvalidChart, truncate(ch.Metadata.Version), ref.Version)
	}
	return nil
}

// digestRE is the only digest form used in file names.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// sha256Digest returns "sha256:<hex>" of b.
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// hashKey returns the hex sha256 of parts joined unambiguously.
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// originOf names where src's archives come from, for the archive cache:
// the normalised repository URL (without credentials or query), the OCI
// repository, the git URL. A digest is only what that origin's index, tag
// or tree claims, so an archive is reused only for the origin it came from:
// repository B's index claiming the digest of a chart cached from A must not
// get A's archive. "" if the source does not parse (its fetch fails anyway).
func (c *Charts) originOf(k sourceKind, src ChartSource) string {
	switch k {
	case kindRepo:
		r, err := parseRepoURL(src.Repository)
		if err != nil {
			return ""
		}
		return repoOrigin(r)
	case kindOCI:
		o, err := c.parseOCI(src)
		if err != nil {
			return ""
		}
		return ociOrigin(o)
	}
	return "git " + src.Git
}

// repoOrigin is the origin of an HTTP repository's archives.
func repoOrigin(r *repoURL) string {
	return "repo " + r.base.Scheme + "://" + canonicalHost(r.base) + r.base.EscapedPath()
}

// ociOrigin is the origin of an OCI repository's archives.
func ociOrigin(o *ociSource) string { return "oci " + o.repo.Name() }

// chartFile is where the archive with digest d from origin is cached.
func (c *Charts) chartFile(origin, d string) string {
	return filepath.Join(c.dir, chartsDir, hashKey(origin)[:32]+"-"+d+".tgz")
}

// cachedArchive returns the cached archive of digest d from origin, if any.
// An unreadable or oversized file is removed so that it is fetched again.
func (c *Charts) cachedArchive(origin, d string, verify bool) ([]byte, bool) {
	if !digestRE.MatchString(d) {
		return nil, false
	}
	p := c.chartFile(origin, d)
	b, err := readFileMax(p, c.maxArchive)
	if err == nil && verify && sha256Digest(b) != d {
		err = errors.New("checksum mismatch")
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(p)
		}
		return nil, false
	}
	return b, true
}

// storeArchive caches an archive from origin under digest d.
func (c *Charts) storeArchive(origin, d string, b []byte) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("store chart: bad digest %q", d)
	}
	return writeFileAtomic(c.chartFile(origin, d), b)
}

// archive returns the archive of ref from origin: from the disk cache when
// that origin's archive of ref's digest is there, else from fetch, which runs once for concurrent callers of the
// same key and must verify, check and store what it returns.
// verify, if set, checks a cached copy against the digest (repository
// digests are the archive's own sha256). cached reports a disk hit.
func (c *Charts) archive(ctx context.Context, ref *ChartRef, origin, key string, verify bool, fetch func(context.Context) (*fetched, error)) (data []byte, cached bool, err error) {
	if ref.Digest != "" {
		if b, ok := c.cachedArchive(origin, ref.Digest, verify); ok {
			return b, true, nil
		}
	}
	v, err := c.share(ctx, key+"\n"+origin, func(ctx context.Context) (any, error) {
		if ref.Digest != "" {
			// A flight that ended just before this one may have stored it.
			if b, ok := c.cachedArchive(origin, ref.Digest, verify); ok {
				return &fetched{data: b, digest: ref.Digest}, nil
			}
		}
		return fetch(ctx)
	})
	if err != nil {
		return nil, false, err
	}
	f, _ := v.(*fetched)
	if ref.Digest == "" {
		ref.Digest = f.digest
	}
	return f.data, false, nil
}

// fetched is an archive and its digest.
type fetched struct {
	data   []byte
	digest string
}

// share runs fn once for concurrent callers with the same key. fn runs with
// a context that no single caller can cancel, bounded by the step timeout;
// each caller stops waiting when its own ctx ends.
func (c *Charts) share(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := c.flights.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		return fn(fctx)
	})
	if c.joined != nil {
		c.joined(key)
	}
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fresh reports whether something checked at t may be reused without asking.
func (c *Charts) fresh(t time.Time) bool {
	return c.indexTTL > 0 && time.Since(t) < c.indexTTL
}

// indexFresh reports whether a parsed index may be used without asking the
// server: before its next refresh with an index interval, else within the TTL.
func (c *Charts) indexFresh(e *indexEntry) bool {
	if e.idx == nil {
		return false
	}
	if c.indexInterval > 0 {
		return c.now().Before(e.next)
	}
	return c.fresh(e.checked)
}

// nextRefresh is when an index checked at t is next asked for: the index
// interval later, moved by up to indexJitter of it either way.
func (c *Charts) nextRefresh(t time.Time) time.Time {
	d := float64(c.indexInterval) * (1 + indexJitter*(2*rand.Float64()-1)) //nolint:gosec // jitter, not cryptography
	return t.Add(time.Duration(d))
}

// readFileMax reads a file of at most max bytes.
func readFileMax(p string, maxSize int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := readAllMax(f, maxSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
	}
	return b, nil
}

// readAllMax reads r to its end, refusing more than maxSize bytes.
func readAllMax(r io.Reader, maxSize int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	return b, nil
}

// writeFileAtomic writes b to p through a synced temporary file in the same
// directory and a rename, so readers see the old file or the whole new one.
func writeFileAtomic(p string, b []byte) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// newLRU returns a thread-safe LRU map of n entries. n is one of the
// constants above, and a positive size is all lru.New checks.
func newLRU[K comparable, V any](n int) *lru.Cache[K, V] {
	l, err := lru.New[K, V](n)
	if err != nil {
		panic(fmt.Sprintf("helm: LRU of %d entries: %v", n, err))
	}
	return l
}

// allowsPlainHTTP tells whether a registry host ("host:port") may be reached
// over plain HTTP.
func allowsPlainHTTP(allowed map[string]bool, hostPort string) bool {
	hostPort = strings.ToLower(hostPort)
	if allowed[hostPort] {
		return true
	}
	host, _, err := net.SplitHostPort(hostPort)
	return err == nil && allowed[host]
}
