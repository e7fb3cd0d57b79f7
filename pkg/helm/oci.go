package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"helm.sh/helm/v3/pkg/registry"
)

// ociSource is a parsed oci:// chart location.
type ociSource struct {
	repo name.Repository // <host>/<path>/<chart name>
	host string          // lower-case host[:port]
}

// parseOCI turns oci://host/path and a chart name into a registry
// repository. Credentials belong in RepoAuth, so userinfo is refused.
func (c *Charts) parseOCI(src ChartSource) (*ociSource, error) {
	if len(src.Repository) > maxURLLength {
		return nil, fmt.Errorf("%w: repository URL longer than %d bytes", ErrInvalidSource, maxURLLength)
	}
	u, err := url.Parse(src.Repository)
	if err != nil || !strings.EqualFold(u.Scheme, "oci") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: repository %s: want oci://host/path", ErrInvalidSource, RedactURL(src.Repository))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: repository %s: an oci:// URL takes no credentials, query or fragment (credentials go in the pull secret)",
			ErrInvalidSource, RedactURL(src.Repository))
	}
	host := strings.ToLower(u.Host)
	if err := c.checkLocal(host, "registry oci://"+host); err != nil {
		return nil, err
	}
	ref := host + "/" + src.Name
	if p := strings.Trim(u.Path, "/"); p != "" {
		ref = host + "/" + p + "/" + src.Name
	}
	var opts []name.Option
	if allowsPlainHTTP(c.plainHTTP, host) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSource, err.Error())
	}
	return &ociSource{repo: repo, host: host}, nil
}

// ociPuller is a go-containerregistry Puller for one registry and set of
// credentials: it keeps the authenticated transport between Resolves.
type ociPuller struct {
	p *remote.Puller
}

// puller returns the (cached) puller for host with a.
func (c *Charts) puller(host string, a *RepoAuth) (*ociPuller, error) {
	key := host + "\n" + fingerprint(a)
	if p, ok := c.pullers.Get(key); ok {
		return p, nil
	}
	same, other, err := c.transports(a)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = &originTransport{host: canonicalHost(&url.URL{Scheme: "https", Host: host}), same: same, other: other}
	rt = &registryGuard{inner: c.guardLocal(rt), plainHTTP: c.plainHTTP, maxBody: c.maxIndex}
	auth := authn.Anonymous
	if a != nil && (a.Username != "" || a.Password != "") {
		// go-containerregistry sends these to this registry (and to the
		// token service it names) only.
		auth = authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password})
	}
	p, err := remote.NewPuller(remote.WithTransport(rt), remote.WithAuth(auth), remote.WithUserAgent(userAgent))
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	op := &ociPuller{p: p}
	c.pullers.Add(key, op)
	return op, nil
}

// registryGuard refuses plain HTTP to registries not explicitly allowed
// (go-containerregistry would otherwise fall back to HTTP for loopback and
// private addresses) and bounds every response body.
type registryGuard struct {
	inner     http.RoundTripper
	plainHTTP map[string]bool
	maxBody   int64
}

func (g *registryGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.URL.Scheme, "http") && !allowsPlainHTTP(g.plainHTTP, req.URL.Host) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("plain HTTP to %s is not allowed", req.URL.Host)
	}
	resp, err := g.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: g.maxBody}
	return resp, nil
}

// limitedBody fails a response body that goes on past its budget.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("%w: registry response over the size limit", ErrTooLarge)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// ociError maps go-containerregistry's errors to the package's sentinels.
func ociError(err error, notFound error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", notFound, err)
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return fmt.Errorf("%w: %w", ErrAuthentication, err)
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return fmt.Errorf("%w: %w", notFound, err)
		}
	}
	return err
}

// ociTag is a resolved tag.
type ociTag struct {
	tag, version, digest string
	checked              time.Time
}

// resolveOCI resolves a chart version to a manifest digest: one HEAD for an
// exact version, a tag list and a HEAD for a range.
func (c *Charts) resolveOCI(ctx context.Context, src ChartSource) (*ChartRef, error) {
	o, err := c.parseOCI(src)
	if err != nil {
		return nil, err
	}
	if err := refuseInsecureCredentials(allowsPlainHTTP(c.plainHTTP, o.host), src.RepoAuth, src.AllowInsecureHTTP, "registry oci://"+o.host); err != nil {
		return nil, err
	}
	key := "oci\n" + o.repo.Name() + "\n" + src.Version + "\n" + fingerprint(src.RepoAuth)
	t, ok := c.ociTags.Get(key)
	if !ok || !c.fresh(t.checked) {
		v, err := c.share(ctx, key, func(ctx context.Context) (any, error) {
			return c.resolveTag(ctx, o, src)
		})
		if err != nil {
			return nil, err
		}
		t, _ = v.(*ociTag)
		c.ociTags.Add(key, t)
	}
	return &ChartRef{
		Source: src, Name: src.Name, Version: t.version, Digest: t.digest, Revision: t.version,
		URL: "oci://" + o.repo.Name() + ":" + t.tag,
	}, nil
}

func (c *Charts) resolveTag(ctx context.Context, o *ociSource, src ChartSource) (*ociTag, error) {
	p, err := c.puller(o.host, src.RepoAuth)
	if err != nil {
		return nil, err
	}
	tag, version, err := c.pickTag(ctx, p, o, src.Version)
	if err != nil {
		return nil, err
	}
	c.registryRequests.Add(1)
	desc, err := p.p.Head(ctx, o.repo.Tag(tag))
	if err != nil {
		return nil, fmt.Errorf("resolve tag %s: %w", tag, ociError(err, ErrChartNotFound))
	}
	d := desc.Digest.String()
	if !digestRE.MatchString(d) {
		return nil, fmt.Errorf("%w: tag %s: unsupported digest %q", ErrInvalidChart, tag, truncate(d))
	}
	return &ociTag{tag: tag, version: version, digest: d, checked: time.Now()}, nil
}

// pickTag returns the tag (and chart version) for version: itself if it is
// an exact SemVer version (OCI tags spell "+" as "_"), else the highest tag
// matching it as a range, an exact string match first, as Helm does.
func (c *Charts) pickTag(ctx context.Context, p *ociPuller, o *ociSource, version string) (tag, chartVersion string, err error) {
	if version != "" {
		if _, err := semver.StrictNewVersion(version); err == nil {
			return strings.ReplaceAll(version, "+", "_"), version, nil
		}
	}
	cons, err := constraint(version)
	if err != nil {
		return "", "", err
	}
	c.registryRequests.Add(1)
	tags, err := p.p.List(ctx, o.repo)
	if err != nil {
		return "", "", fmt.Errorf("list tags: %w", ociError(err, ErrChartNotFound))
	}
	var best *semver.Version
	for _, t := range tags {
		v := strings.ReplaceAll(t, "_", "+")
		if version != "" && v == version {
			return t, v, nil
		}
		sv, err := semver.NewVersion(v)
		if err != nil || !cons.Check(sv) {
			continue
		}
		if best == nil || sv.GreaterThan(best) {
			best, tag, chartVersion = sv, t, v
		}
	}
	if best == nil {
		return "", "", fmt.Errorf("%w: no tag of %s matches %q", ErrChartNotFound, o.repo.Name(), version)
	}
	return tag, chartVersion, nil
}

// ociArchive returns ref's chart layer from the cache or the registry.
func (c *Charts) ociArchive(ctx context.Context, ref *ChartRef) ([]byte, bool, error) {
	o, err := c.parseOCI(ref.Source)
	if err != nil {
		return nil, false, err
	}
	if ref.Digest == "" {
		return nil, false, fmt.Errorf("%w: the reference has no digest; resolve it first", ErrInvalidSource)
	}
	if err := refuseInsecureCredentials(allowsPlainHTTP(c.plainHTTP, o.host), ref.Source.RepoAuth, ref.Source.AllowInsecureHTTP, "registry oci://"+o.host); err != nil {
		return nil, false, err
	}
	key := "oci-archive\n" + o.repo.Name() + "\n" + ref.Digest + "\n" + fingerprint(ref.Source.RepoAuth)
	return c.archive(ctx, ref, ociOrigin(o), key, false, func(ctx context.Context) (*fetched, error) {
		return c.pull(ctx, o, ref.Source.RepoAuth, ref.Digest)
	})
}

// pull fetches the manifest by digest, checks that it is a Helm chart,
// downloads its chart layer (verified against the layer digest) and caches
// it under the manifest digest.
func (c *Charts) pull(ctx context.Context, o *ociSource, a *RepoAuth, digest string) (*fetched, error) {
	p, err := c.puller(o.host, a)
	if err != nil {
		return nil, err
	}
	desc, err := p.p.Get(ctx, o.repo.Digest(digest))
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s: %w", digest, ociError(err, ErrChartNotFound))
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %s", ErrInvalidChart, digest, err.Error())
	}
	if m.Config.MediaType != registry.ConfigMediaType {
		return nil, fmt.Errorf("%w: %s is not a Helm chart (config media type %q)", ErrInvalidChart, digest, truncate(string(m.Config.MediaType)))
	}
	var layer *v1.Descriptor
	for i := range m.Layers {
		switch m.Layers[i].MediaType {
		case registry.ChartLayerMediaType, registry.LegacyChartLayerMediaType:
			if layer != nil {
				return nil, fmt.Errorf("%w: %s has more than one chart layer", ErrInvalidChart, digest)
			}
			layer = &m.Layers[i]
		}
	}
	if layer == nil {
		return nil, fmt.Errorf("%w: %s has no chart layer", ErrInvalidChart, digest)
	}
	if layer.Size > c.maxArchive {
		return nil, fmt.Errorf("%w: chart layer of %d bytes, limit %d", ErrTooLarge, layer.Size, c.maxArchive)
	}
	l, err := p.p.Layer(ctx, o.repo.Digest(layer.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("fetch chart layer: %w", ociError(err, ErrChartNotFound))
	}
	c.chartDownloads.Add(1)
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch chart layer: %w", ociError(err, ErrChartNotFound))
	}
	body, err := io.ReadAll(io.LimitReader(rc, c.maxArchive+1))
	_ = rc.Close()
	if err != nil {
		return nil, fmt.Errorf("fetch chart layer: %w", ociError(err, ErrChartNotFound))
	}
	if int64(len(body)) > c.maxArchive {
		return nil, fmt.Errorf("%w: chart layer over %d bytes", ErrTooLarge, c.maxArchive)
	}
	if got := sha256Digest(body); got != layer.Digest.String() {
		return nil, fmt.Errorf("%w: chart layer is %s, the manifest says %s", ErrDigestMismatch, got, layer.Digest)
	}
	if err := checkArchive(bytes.NewReader(body), c.limits); err != nil {
		return nil, err
	}
	if err := c.storeArchive(ociOrigin(o), digest, body); err != nil {
		return nil, fmt.Errorf("cache chart: %w", err)
	}
	return &fetched{data: body, digest: digest}, nil
}
