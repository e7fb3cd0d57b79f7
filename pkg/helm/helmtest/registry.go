package helmtest

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v3/pkg/chart"
	helmregistry "helm.sh/helm/v3/pkg/registry"
)

// Registry is an OCI registry (go-containerregistry's pkg/registry over
// plain HTTP on loopback) holding Helm charts. It counts requests.
type Registry struct {
	srv        *httptest.Server
	user, pass string

	mu       sync.Mutex
	requests []string // "METHOD path"
}

// RegistryOption configures a Registry.
type RegistryOption func(*Registry)

// WithRegistryBasicAuth requires HTTP basic auth with this user and
// password for every request (the registry answers 401 with a Basic
// challenge, as simple private registries do).
func WithRegistryBasicAuth(user, pass string) RegistryOption {
	return func(r *Registry) { r.user, r.pass = user, pass }
}

// NewRegistry starts an empty registry and stops it when the test ends.
func NewRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	r := &Registry{}
	for _, o := range opts {
		o(r)
	}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if r.user != "" || r.pass != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="helmtest"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, req)
	}))
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// Host is host:port, for oci://<host>/<repo> URLs. Clients must allow plain
// HTTP to it.
func (r *Registry) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// URL returns oci://<host>/<repo>, the chart.repository of charts pushed
// to repo.
func (r *Registry) URL(repo string) string {
	return "oci://" + r.Host() + "/" + strings.Trim(repo, "/")
}

// Push packages c and pushes it as a Helm OCI artifact to <repo>/<c.Name>,
// tagged with its version ("+" spelled "_"), and returns the manifest digest.
func (r *Registry) Push(t testing.TB, repo string, c Chart) string {
	t.Helper()
	tgz, err := c.Package()
	if err != nil {
		t.Fatalf("helmtest: %v", err)
	}
	return r.push(t, repo, c.Metadata(), tgz)
}

// PushArchive pushes an archive as is (a hostile one, say) as chart name's
// version, and returns the manifest digest.
func (r *Registry) PushArchive(t testing.TB, repo, chartName, version string, tgz []byte) string {
	t.Helper()
	return r.push(t, repo, &chart.Metadata{APIVersion: chart.APIVersionV2, Name: chartName, Version: version}, tgz)
}

// rawManifest is a manifest pushed as is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

func (r *Registry) push(t testing.TB, repo string, md *chart.Metadata, tgz []byte) string {
	t.Helper()
	ref := r.Host() + "/" + strings.Trim(repo, "/") + "/" + md.Name + ":" + strings.ReplaceAll(md.Version, "+", "_")
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatalf("helmtest: %v", err)
	}
	opts := []remote.Option{remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: r.user, Password: r.pass}))}
	if r.user == "" && r.pass == "" {
		opts = []remote.Option{remote.WithAuth(authn.Anonymous)}
	}
	cfg, err := json.Marshal(md)
	if err != nil {
		t.Fatalf("helmtest: %v", err)
	}
	layers := []v1.Layer{
		static.NewLayer(cfg, helmregistry.ConfigMediaType),
		static.NewLayer(tgz, helmregistry.ChartLayerMediaType),
	}
	var descs []v1.Descriptor
	for _, l := range layers {
		if err := remote.WriteLayer(tag.Context(), l, opts...); err != nil {
			t.Fatalf("helmtest: push blob: %v", err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, v1.Descriptor{MediaType: mt, Size: size, Digest: d})
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descs[0],
		Layers:        descs[1:],
		Annotations: map[string]string{
			"org.opencontainers.image.title":   md.Name,
			"org.opencontainers.image.version": md.Version,
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawManifest{raw: raw, mt: types.OCIManifestSchema1}, opts...); err != nil {
		t.Fatalf("helmtest: push manifest: %v", err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// Requests counts the requests whose method is method ("" = any) and whose
// path contains pathPart.
func (r *Registry) Requests(method, pathPart string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, req := range r.requests {
		m, p, _ := strings.Cut(req, " ")
		if (method == "" || m == method) && strings.Contains(p, pathPart) {
			n++
		}
	}
	return n
}

// BlobDownloads counts blob GETs (chart layers and configs).
func (r *Registry) BlobDownloads() int { return r.Requests(http.MethodGet, "/blobs/") }
