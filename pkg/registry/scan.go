package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/helmflux/helmflux/pkg/policy"
)

const (
	// CreatedLabel is the image label read first for a tag's creation time.
	CreatedLabel = "org.opencontainers.image.created"
	// digestRecheck is the age past which a tag's digest is confirmed again
	// (one HEAD) when the tag list is listed anew.
	digestRecheck = 24 * time.Hour
	// maxConfigSize caps an image config blob.
	maxConfigSize = 4 << 20
	// timeWorkers is how many tags' times one scan reads at once.
	timeWorkers = 4
	// maxRedirects bounds the redirects one request follows.
	maxRedirects = 5
)

// manifestAccept lists the manifest types a scan understands.
var manifestAccept = strings.Join([]string{
	string(types.OCIManifestSchema1), string(types.DockerManifestSchema2),
	string(types.OCIImageIndex), string(types.DockerManifestList),
}, ", ")

// ScanOptions tune one Scan.
type ScanOptions struct {
	// Credentials are the logins available; only the one for the image's
	// own registry host is used.
	Credentials Credentials
	// Created, when non-nil, says which tags need a creation time (for
	// policies that order by time); only those tags' manifests and configs
	// are read.
	Created func(tag string) bool
	// Force ignores TagTTL and lists the tags now (a registry webhook asked
	// for a rescan).
	Force bool
}

// Result is the outcome of one scan.
type Result struct {
	// Repository is the normalised repository, e.g.
	// "index.docker.io/library/nginx" or "127.0.0.1:5000/app".
	Repository string
	// Tags is sorted by name. Digest and Created are set only for tags
	// that ScanOptions.Created asked for.
	Tags []Tag
	// Complete says every page was listed and every tag Created asked for
	// has a time. A Result that is not Complete comes with an error.
	Complete bool
	// ScannedAt is when the tag list was last listed from the registry.
	ScannedAt time.Time
	// FromCache says no request was made for the tag list (the creation
	// times of new tags may still have been read).
	FromCache bool
}

// Tag is one tag of a repository.
type Tag struct {
	Name string
	// Digest is the manifest digest the tag pointed at when checked; for a
	// multi-arch image it is the index's digest.
	Digest string
	// Created is the image's creation time: its
	// org.opencontainers.image.created label (RFC 3339) if valid, else its
	// config's created field. For a multi-arch index, that of the first
	// image it lists.
	Created time.Time
}

// Scan lists the tags of image, a repository as written in a manifest,
// without tag ("nginx", "ghcr.io/o/a", "127.0.0.1:5000/app"), and reads the
// creation times of the tags opts.Created asks for.
//
// A complete tag list younger than TagTTL is served from the cache without
// a request. Otherwise the list is read page by page; a failure, or more
// than MaxTags tags, returns an error and a Result with no tags. Creation
// times are cached by digest; a tag new to the cache costs one manifest
// and one config request (two manifests for an index), and a cached tag's
// digest is confirmed with one HEAD once it is a day old and the list is
// listed again. When some times cannot be read, the Result has every tag
// (those times zero), Complete is false and the error names the first
// failure. A Result is never Complete with an error.
func (c *Client) Scan(ctx context.Context, image string, opts ScanOptions) (Result, error) {
	repo, err := parseRepository(image, c.isInsecure)
	if err != nil {
		return Result{}, fmt.Errorf("scan: %w", err)
	}
	key := repo.Name()
	res := Result{Repository: key}
	if !c.allowed(key) {
		return res, fmt.Errorf("scan %s: %w", key, ErrNotAllowed)
	}
	if c.opts.RefuseLocal {
		if err := refuseLocalHost(repo.RegistryStr()); err != nil {
			return res, fmt.Errorf("scan %s: %w", key, err)
		}
	}
	unlock, err := c.locks.lock(ctx, key)
	if err != nil {
		return res, fmt.Errorf("scan %s: %w", key, err)
	}
	defer unlock()

	sc := &scan{c: c, repo: repo, creds: opts.Credentials, scheme: "https"}
	if c.isInsecure(repo.RegistryStr()) {
		sc.scheme = "http"
	}
	gen := c.cache.generation(key)
	login := c.loginID(repo, opts.Credentials)
	cached := c.cache.get(key, login)
	now := c.now()

	var e *entry
	changed := false
	if cached != nil && !opts.Force && c.fresh(cached, now) {
		e = cached.clone()
		res.FromCache = true
	} else {
		tags, err := sc.list(ctx)
		if err != nil {
			return res, sc.redact(fmt.Errorf("list tags of %s: %w", key, err))
		}
		if cached != nil {
			e = cached.clone()
		} else {
			e = &entry{Repository: key, Login: login, Digests: map[string]tagDigest{}, Created: map[string]time.Time{}}
		}
		e.Complete, e.ScannedAt, e.Tags = true, now, tags
		e.prune()
		changed = true
	}
	res.ScannedAt = e.ScannedAt

	var wanted []string
	if opts.Created != nil {
		for _, t := range e.Tags {
			if opts.Created(t) {
				wanted = append(wanted, t)
			}
		}
	}
	learned, timeErr := sc.times(ctx, e, wanted, !res.FromCache)
	if changed || learned {
		c.cache.put(e, gen)
	}

	res.Tags = make([]Tag, len(e.Tags))
	for i, t := range e.Tags {
		res.Tags[i] = Tag{Name: t}
	}
	for _, t := range wanted {
		i, _ := slices.BinarySearch(e.Tags, t)
		if d, ok := e.Digests[t]; ok {
			res.Tags[i].Digest = d.Digest
			res.Tags[i].Created = e.Created[d.Digest]
		}
	}
	res.Complete = timeErr == nil
	c.log.V(1).Info("Scanned image repository", "repository", key, "tags", len(e.Tags),
		"fromCache", res.FromCache, "timesWanted", len(wanted), "timesRead", sc.read, "complete", res.Complete)
	if timeErr != nil {
		return res, sc.redact(fmt.Errorf("read creation times of %s: %w", key, timeErr))
	}
	return res, nil
}

// Cached returns what the cache knows of image without asking the
// registry, however old: every tag of the last complete listing made with
// the login creds has for its host (sorted by name), with the digest and
// creation time of those whose time was read.
// ok is false when no listing is cached (or image does not parse).
func (c *Client) Cached(image string, creds Credentials) (Result, bool) {
	repo, err := parseRepository(image, c.isInsecure)
	if err != nil {
		return Result{}, false
	}
	key := repo.Name()
	e := c.cache.get(key, c.loginID(repo, creds))
	if e == nil || !e.Complete {
		return Result{Repository: key}, false
	}
	res := Result{Repository: key, Complete: true, ScannedAt: e.ScannedAt, FromCache: true, Tags: make([]Tag, len(e.Tags))}
	for i, t := range e.Tags {
		res.Tags[i] = Tag{Name: t}
		if d, ok := e.Digests[t]; ok {
			res.Tags[i].Digest, res.Tags[i].Created = d.Digest, e.Created[d.Digest]
		}
	}
	return res, true
}

// fresh reports whether a cached listing may be served without a request.
func (c *Client) fresh(e *entry, now time.Time) bool {
	age := now.Sub(e.ScannedAt)
	return e.Complete && !e.ScannedAt.IsZero() && c.opts.TagTTL > 0 && age >= 0 && age < c.opts.TagTTL
}

// scan is the state of one Scan: the repository, its login and the
// authenticated HTTP client, made on first need.
type scan struct {
	c      *Client
	repo   name.Repository
	creds  Credentials
	scheme string

	once    sync.Once
	client  *http.Client
	secrets []string
	err     error

	mu   sync.Mutex
	read int // tags whose time cost requests
}

// http returns the scan's authenticated client: a request-free step when
// the host's session is warm, a ping (and a token exchange for bearer
// registries) when not.
func (sc *scan) http(ctx context.Context) (*http.Client, error) {
	sc.once.Do(func() {
		host := hostKey(sc.scheme, sc.repo.RegistryStr())
		if err := sc.c.guard.blocked(host); err != nil {
			sc.err = err // fail fast, before any request
			return
		}
		var s *session
		s, sc.secrets = sc.c.session(sc.repo, sc.creds)
		rt, err := s.transport(ctx, sc.repo)
		if err != nil {
			sc.err = err
			return
		}
		sc.client = &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	})
	return sc.client, sc.err
}

func (sc *scan) redact(err error) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return redact(err, sc.secrets)
}

// url returns the URL of a repository resource ("tags/list", "manifests/x").
func (sc *scan) url(resource string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s", sc.scheme, sc.repo.RegistryStr(), sc.repo.RepositoryStr(), resource)
}

// do sends one request and returns the response if its status is 200.
func (sc *scan) do(ctx context.Context, method, u, accept string) (*http.Response, error) {
	client, err := sc.http(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// What a hostile or broken registry gets from list and tagTime instead of
// a partial answer; sentinels, so tests can tell which bound held.
var (
	errEndlessPages   = errors.New("registry keeps returning pages")
	errLastIgnored    = errors.New("registry ignores the last parameter of tag list pagination; cannot list completely")
	errStalePage      = errors.New("registry sent a page of no new tags with a link to another")
	errForeignLink    = errors.New("next-page link points away from the registry")
	errConfigTooLarge = fmt.Errorf("image config is more than %d bytes", maxConfigSize)
)

// list reads the whole tag list, following Link headers, and for a
// registry that sends none (go-containerregistry's own, among others)
// asking for the page after the last tag while pages come back full. The
// result is sorted and free of duplicates; tags that are not valid tag
// names are skipped.
func (sc *scan) list(ctx context.Context) ([]string, error) {
	pageSize := sc.c.opts.PageSize
	maxTags := sc.c.opts.MaxTags
	first := sc.url("tags/list") + "?n=" + strconv.Itoa(pageSize)
	seen := map[string]bool{}
	var tags []string
	u, after := first, ""
	for pages := 1; u != ""; pages++ {
		if pages > maxTags+1 {
			return nil, errEndlessPages
		}
		page, next, err := sc.listPage(ctx, u)
		if err != nil {
			return nil, err
		}
		if after != "" && len(page) > 0 && page[0] <= after {
			return nil, errLastIgnored
		}
		added := 0
		for _, t := range page {
			if !policy.ValidTag(t) {
				sc.c.log.V(1).Info("Skipping invalid tag name", "repository", sc.repo.Name())
				continue
			}
			if !seen[t] {
				seen[t] = true
				tags = append(tags, t)
				added++
			}
		}
		if len(tags) > maxTags {
			return nil, fmt.Errorf("more than %d tags: %w", maxTags, ErrTooManyTags)
		}
		switch {
		case next != "":
			if added == 0 {
				return nil, errStalePage
			}
			u, after = next, ""
		case len(page) >= pageSize:
			// A full page without a Link: maybe the end, maybe a registry
			// that truncates silently. One more request tells.
			after = page[len(page)-1]
			u = first + "&last=" + url.QueryEscape(after)
		default:
			u = ""
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// listPage reads one page of a tag list and the URL of the next, if a Link
// header names one on the same registry.
func (sc *scan) listPage(ctx context.Context, u string) (tags []string, next string, err error) {
	resp, err := sc.do(ctx, http.MethodGet, u, "application/json")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var page struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("decode tag list: %w", err)
	}
	link := nextLink(resp.Header.Values("Link"))
	if link == "" {
		return page.Tags, "", nil
	}
	ref, err := url.Parse(link)
	if err != nil {
		return nil, "", errors.New("invalid Link header")
	}
	nu := resp.Request.URL.ResolveReference(ref)
	if nu.Scheme != sc.scheme || !strings.EqualFold(nu.Host, sc.repo.RegistryStr()) {
		return nil, "", errForeignLink
	}
	return page.Tags, nu.String(), nil
}

// nextLink returns the target of the rel="next" link among Link header
// values (or of the only link, when it has no rel).
func nextLink(values []string) string {
	var links []string
	for _, v := range values {
		links = append(links, strings.Split(v, ",")...)
	}
	for _, l := range links {
		l = strings.TrimSpace(l)
		start, end := strings.IndexByte(l, '<'), strings.IndexByte(l, '>')
		if start != 0 || end < 0 {
			continue
		}
		params := strings.ToLower(l[end+1:])
		if strings.Contains(params, `rel="next"`) || strings.Contains(params, "rel=next") ||
			(len(links) == 1 && !strings.Contains(params, "rel=")) {
			return l[1:end]
		}
	}
	return ""
}

// checkRedirect follows at most maxRedirects redirects, and never from a
// registry on a public address to a private, link-local or unspecified one
// (the cloud metadata address, in-cluster services): a registry a tenant
// names must not turn the operator into a proxy into its network.
// Loopback hosts are the transport's to judge (Options.RefuseLocal refuses
// them on every request, redirects included). Authorization is dropped
// across hosts by the transports, which add it per host.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if internalAddress(req.URL.Hostname()) && !internalAddress(via[0].URL.Hostname()) {
		return fmt.Errorf("refusing redirect from %s to internal address %s", via[0].URL.Host, req.URL.Host)
	}
	return nil
}

// internalAddress reports whether host is an address of a private,
// link-local or unspecified network. Loopback is git.IsLoopbackHost's.
func internalAddress(host string) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
}

// tagOutcome is what reading one tag's time found.
type tagOutcome struct {
	tag       string
	digest    string
	checkedAt time.Time // when the registry confirmed digest; zero if cached
	created   time.Time
	newTime   bool // created was read, not cached
	err       error
}

// times fills e with the digests and creation times of the wanted tags,
// reading what the cache lacks. It reports whether e changed and the first
// failure.
func (sc *scan) times(ctx context.Context, e *entry, wanted []string, relisted bool) (bool, error) {
	out := make([]tagOutcome, len(wanted))
	sem := make(chan struct{}, timeWorkers)
	var wg sync.WaitGroup
	for i, tag := range wanted {
		cached, ok := e.Digests[tag]
		if ok {
			if t, known := e.Created[cached.Digest]; known && (!relisted || sc.recent(cached.CheckedAt)) {
				out[i] = tagOutcome{tag: tag, digest: cached.Digest, created: t}
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				out[i] = tagOutcome{tag: tag, err: ctx.Err()}
				return
			}
			out[i] = sc.tagTime(ctx, e, tag, cached, ok, relisted)
		}()
	}
	wg.Wait()

	changed := false
	var firstErr error
	failed := 0
	for _, o := range out {
		if o.err == nil && o.digest != "" {
			if !o.checkedAt.IsZero() {
				e.Digests[o.tag] = tagDigest{Digest: o.digest, CheckedAt: o.checkedAt}
				changed = true
			}
			if o.newTime {
				e.Created[o.digest] = o.created
				changed = true
			}
			if o.created.IsZero() {
				o.err = errors.New("image has no creation time")
			}
		}
		if o.err != nil {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("tag %s: %w", o.tag, o.err)
			}
		}
	}
	if changed {
		e.prune()
	}
	if firstErr != nil {
		return changed, fmt.Errorf("%d of %d tags failed, first: %w", failed, len(wanted), firstErr)
	}
	return changed, nil
}

func (sc *scan) recent(checkedAt time.Time) bool {
	age := sc.c.now().Sub(checkedAt)
	return age >= 0 && age < digestRecheck
}

// tagTime finds tag's digest and that digest's creation time. e is only
// read (its maps are not written while workers run).
func (sc *scan) tagTime(ctx context.Context, e *entry, tag string, cached tagDigest, haveCached, relisted bool) tagOutcome {
	sc.mu.Lock()
	sc.read++
	sc.mu.Unlock()
	o := tagOutcome{tag: tag}
	known := func(d string) (time.Time, bool) { t, ok := e.Created[d]; return t, ok }

	if haveCached && (!relisted || sc.recent(cached.CheckedAt)) {
		// Digest still trusted; only its time is missing.
		o.digest = cached.Digest
		o.created, o.err = sc.imageTime(ctx, cached.Digest)
		o.newTime = o.err == nil
		return o
	}
	if haveCached {
		// Confirm the digest with a HEAD, which Docker Hub does not count
		// as a pull.
		d, err := sc.headDigest(ctx, tag)
		if err != nil {
			o.err = err
			return o
		}
		if d != "" {
			o.digest, o.checkedAt = d, sc.c.now()
			if t, ok := known(d); ok {
				o.created = t
				return o
			}
			o.created, o.err = sc.imageTime(ctx, d)
			o.newTime = o.err == nil
			return o
		}
		// No digest header: read the manifest instead.
	}
	checked := sc.c.now()
	digest, body, mediaType, err := sc.manifest(ctx, tag)
	if err != nil {
		o.err = err
		return o
	}
	o.digest, o.checkedAt = digest, checked
	if t, ok := known(digest); ok {
		o.created = t
		return o
	}
	o.created, o.err = sc.timeFromManifest(ctx, body, mediaType)
	o.newTime = o.err == nil
	return o
}

// headDigest returns the digest a HEAD of tag's manifest reports, or "" if
// the registry sends no usable Docker-Content-Digest.
func (sc *scan) headDigest(ctx context.Context, tag string) (string, error) {
	resp, err := sc.do(ctx, http.MethodHead, sc.url("manifests/"+tag), manifestAccept)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if !digestPattern.MatchString(d) {
		return "", nil
	}
	return d, nil
}

// manifest reads a manifest by tag or digest and returns its digest (the
// SHA-256 of its bytes; checked against a requested digest), bytes and
// media type.
func (sc *scan) manifest(ctx context.Context, ref string) (digest string, body []byte, mediaType types.MediaType, err error) {
	resp, err := sc.do(ctx, http.MethodGet, sc.url("manifests/"+ref), manifestAccept)
	if err != nil {
		return "", nil, "", err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, "", fmt.Errorf("read manifest: %w", err)
	}
	sum := sha256.Sum256(body)
	digest = "sha256:" + hex.EncodeToString(sum[:])
	if strings.HasPrefix(ref, "sha256:") && digest != ref {
		return "", nil, "", fmt.Errorf("manifest %s has digest %s", ref, digest)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mediaType = types.MediaType(ct)
	if !mediaType.IsImage() && !mediaType.IsIndex() {
		var probe struct {
			MediaType types.MediaType `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
			Config    json.RawMessage `json:"config"`
		}
		_ = json.Unmarshal(body, &probe)
		switch {
		case probe.MediaType.IsImage() || probe.MediaType.IsIndex():
			mediaType = probe.MediaType
		case probe.Manifests != nil:
			mediaType = types.OCIImageIndex
		case probe.Config != nil:
			mediaType = types.OCIManifestSchema1
		}
	}
	return digest, body, mediaType, nil
}

// imageTime reads the creation time of the image (or index) at digest.
func (sc *scan) imageTime(ctx context.Context, digest string) (time.Time, error) {
	_, body, mt, err := sc.manifest(ctx, digest)
	if err != nil {
		return time.Time{}, err
	}
	return sc.timeFromManifest(ctx, body, mt)
}

// timeFromManifest reads the creation time an image manifest's config
// records; for an index, that of its first image.
func (sc *scan) timeFromManifest(ctx context.Context, body []byte, mt types.MediaType) (time.Time, error) {
	if mt.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(body))
		if err != nil {
			return time.Time{}, fmt.Errorf("parse index: %w", err)
		}
		if len(idx.Manifests) == 0 {
			return time.Time{}, errors.New("index lists no images")
		}
		child := idx.Manifests[0].Digest.String()
		if !digestPattern.MatchString(child) {
			return time.Time{}, errors.New("index lists an unsupported digest")
		}
		if _, body, mt, err = sc.manifest(ctx, child); err != nil {
			return time.Time{}, err
		}
		if !mt.IsImage() {
			return time.Time{}, fmt.Errorf("first manifest of index is %q, not an image", mt)
		}
	}
	if !mt.IsImage() {
		return time.Time{}, fmt.Errorf("unsupported manifest type %q", mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(body))
	if err != nil {
		return time.Time{}, fmt.Errorf("parse manifest: %w", err)
	}
	cfgDigest := m.Config.Digest.String()
	if !digestPattern.MatchString(cfgDigest) {
		return time.Time{}, errors.New("manifest has an unsupported config digest")
	}
	if m.Config.Size > maxConfigSize {
		return time.Time{}, fmt.Errorf("%w: the manifest says %d bytes", errConfigTooLarge, m.Config.Size)
	}
	resp, err := sc.do(ctx, http.MethodGet, sc.url("blobs/"+cfgDigest), "")
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigSize+1))
	if err != nil {
		return time.Time{}, fmt.Errorf("read image config: %w", err)
	}
	if len(raw) > maxConfigSize {
		return time.Time{}, errConfigTooLarge
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != cfgDigest {
		return time.Time{}, errors.New("image config does not match its digest")
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return time.Time{}, fmt.Errorf("parse image config: %w", err)
	}
	if v := cfg.Config.Labels[CreatedLabel]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t.UTC(), nil
		}
	}
	return cfg.Created.UTC(), nil
}
