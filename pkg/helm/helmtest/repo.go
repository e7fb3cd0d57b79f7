package helmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// RepoServer is a Helm chart repository over HTTP(S): index.yaml with
// digests, an ETag and a Last-Modified that change with every Add (and
// conditional requests answered with 304), and packaged charts under
// charts/. It counts requests per path.
type RepoServer struct {
	srv      *httptest.Server
	user     string
	pass     string
	useTLS   bool
	absolute bool
	wrap     func(http.Handler) http.Handler
	ln       net.Listener

	mu       sync.Mutex
	entries  []Entry
	files    map[string][]byte // URL path -> content
	index    []byte
	etag     string
	modified time.Time
	requests map[string]*pathStats
}

// pathStats counts the requests to one path.
type pathStats struct {
	total      int
	authorised int // carrying an Authorization header
	byStatus   map[int]int
}

// RepoOption configures a RepoServer.
type RepoOption func(*RepoServer)

// WithBasicAuth requires HTTP basic auth with this user and password for
// every path.
func WithBasicAuth(user, pass string) RepoOption {
	return func(s *RepoServer) { s.user, s.pass = user, pass }
}

// WithTLS serves HTTPS with a self-signed certificate; Client and CAPEM
// give what a client needs to trust it.
func WithTLS() RepoOption { return func(s *RepoServer) { s.useTLS = true } }

// WithAbsoluteURLs writes absolute chart URLs (on this server) into the
// index instead of relative ones.
func WithAbsoluteURLs() RepoOption { return func(s *RepoServer) { s.absolute = true } }

// WithMiddleware wraps the repository's handler, for faults (500s, slow or
// held answers) in front of it. Requests the middleware answers itself are
// not counted.
func WithMiddleware(mw func(http.Handler) http.Handler) RepoOption {
	return func(s *RepoServer) { s.wrap = mw }
}

// WithListener serves on l instead of a loopback port: on an address of
// the machine's network interface, for an operator that refuses loopback
// URLs. The server closes l when the test ends.
func WithListener(l net.Listener) RepoOption { return func(s *RepoServer) { s.ln = l } }

// NewRepoServer starts an empty repository and stops it when the test ends.
func NewRepoServer(t testing.TB, opts ...RepoOption) *RepoServer {
	t.Helper()
	s := &RepoServer{
		files:    map[string][]byte{},
		modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		requests: map[string]*pathStats{},
	}
	for _, o := range opts {
		o(s)
	}
	var h http.Handler = http.HandlerFunc(s.serve)
	if s.wrap != nil {
		h = s.wrap(h)
	}
	s.srv = httptest.NewUnstartedServer(h)
	if s.ln != nil {
		_ = s.srv.Listener.Close()
		s.srv.Listener = s.ln
	}
	// Clients refusing the certificate are what TLS tests provoke.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if s.useTLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	s.mu.Lock()
	s.rebuildIndex(t)
	s.mu.Unlock()
	return s
}

// URL is the repository URL (what a HelmRelease's chart.repository holds).
func (s *RepoServer) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server's certificate.
func (s *RepoServer) Client() *http.Client { return s.srv.Client() }

// CAPEM returns the TLS server's certificate in PEM (nil without TLS), for a
// client's CA bundle.
func (s *RepoServer) CAPEM() []byte {
	if s.srv.TLS == nil || s.srv.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Entry is one chart version in the index, for tests that need control over
// what the index says.
type Entry struct {
	// Name and Version as the index lists them.
	Name, Version string
	// Metadata is the index entry's metadata; nil lists just Name, Version
	// and apiVersion v2.
	Metadata *chart.Metadata
	// Archive is served under URL (when URL is relative or empty).
	Archive []byte
	// URL is what the index says ("" = charts/<name>-<version>.tgz on this
	// server). An absolute URL elsewhere is listed as is and not served.
	URL string
	// Digest overrides the index digest ("" = the archive's sha256).
	Digest string
	// NoDigest leaves the digest out of the index.
	NoDigest bool
}

// Add packages c and adds it to the index (a new ETag and Last-Modified).
// It returns the archive.
func (s *RepoServer) Add(t testing.TB, c Chart) []byte {
	t.Helper()
	tgz, err := c.Package()
	if err != nil {
		t.Fatalf("helmtest: %v", err)
	}
	s.AddEntry(t, Entry{Name: c.Name, Version: c.Version, Metadata: c.Metadata(), Archive: tgz})
	return tgz
}

// AddArchive adds an archive as is (a hostile one, say) under name and
// version.
func (s *RepoServer) AddArchive(t testing.TB, name, version string, tgz []byte) {
	t.Helper()
	s.AddEntry(t, Entry{Name: name, Version: version, Archive: tgz})
}

// AddEntry adds (or replaces) an index entry.
func (s *RepoServer) AddEntry(t testing.TB, e Entry) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.entries[:0]
	for _, old := range s.entries {
		if old.Name != e.Name || old.Version != e.Version {
			kept = append(kept, old)
		}
	}
	s.entries = append(kept, e)
	s.rebuildIndex(t)
}

// Remove drops name's version from the index (its archive stays served).
func (s *RepoServer) Remove(t testing.TB, name, version string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.entries[:0]
	for _, old := range s.entries {
		if old.Name != name || old.Version != version {
			kept = append(kept, old)
		}
	}
	s.entries = kept
	s.rebuildIndex(t)
}

// rebuildIndex regenerates index.yaml and its validators. Callers hold mu.
func (s *RepoServer) rebuildIndex(t testing.TB) {
	t.Helper()
	s.modified = s.modified.Add(time.Second)
	idx := repo.NewIndexFile()
	idx.Generated = s.modified
	for _, e := range s.entries {
		u := e.URL
		if u == "" {
			u = "charts/" + e.Name + "-" + e.Version + ".tgz"
		}
		if parsed, err := url.Parse(u); err == nil && !parsed.IsAbs() && e.Archive != nil {
			s.files["/"+strings.TrimPrefix(parsed.Path, "/")] = e.Archive
			if s.absolute {
				u = s.srv.URL + "/" + strings.TrimPrefix(u, "/")
			}
		}
		md := e.Metadata
		if md == nil {
			md = &chart.Metadata{APIVersion: chart.APIVersionV2, Name: e.Name, Version: e.Version}
		}
		cv := &repo.ChartVersion{Metadata: md, URLs: []string{u}, Created: s.modified}
		switch {
		case e.NoDigest:
		case e.Digest != "":
			cv.Digest = e.Digest
		default:
			sum := sha256.Sum256(e.Archive)
			cv.Digest = hex.EncodeToString(sum[:])
		}
		idx.Entries[e.Name] = append(idx.Entries[e.Name], cv)
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatalf("helmtest: marshal index: %v", err)
	}
	sum := sha256.Sum256(b)
	s.index = b
	s.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *RepoServer) serve(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { s.record(r, rec.status) }()
	if s.user != "" || s.pass != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.user || p != s.pass {
			rec.Header().Set("WWW-Authenticate", `Basic realm="helmtest"`)
			http.Error(rec, "unauthorised", http.StatusUnauthorized)
			return
		}
	}
	s.mu.Lock()
	index, etag, modified := s.index, s.etag, s.modified
	file, ok := s.files[r.URL.Path]
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/index.yaml":
		rec.Header().Set("ETag", etag)
		rec.Header().Set("Content-Type", "application/x-yaml")
		// Handles If-None-Match (preferred) and If-Modified-Since.
		http.ServeContent(rec, r, "index.yaml", modified, bytes.NewReader(index))
	case ok:
		rec.Header().Set("Content-Type", "application/gzip")
		http.ServeContent(rec, r, "", time.Time{}, bytes.NewReader(file))
	default:
		http.NotFound(rec, r)
	}
}

func (s *RepoServer) record(r *http.Request, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.requests[r.URL.Path]
	if ps == nil {
		ps = &pathStats{byStatus: map[int]int{}}
		s.requests[r.URL.Path] = ps
	}
	ps.total++
	if r.Header.Get("Authorization") != "" {
		ps.authorised++
	}
	ps.byStatus[status]++
}

// Requests counts the requests to path ("/index.yaml",
// "/charts/app-1.0.0.tgz"), whatever their answer.
func (s *RepoServer) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.requests[path]; ps != nil {
		return ps.total
	}
	return 0
}

// Responses counts the requests to path answered with status.
func (s *RepoServer) Responses(path string, status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.requests[path]; ps != nil {
		return ps.byStatus[status]
	}
	return 0
}

// AuthorizedRequests counts the requests to path that carried an
// Authorization header (right or wrong).
func (s *RepoServer) AuthorizedRequests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.requests[path]; ps != nil {
		return ps.authorised
	}
	return 0
}

// ChartPath is the URL path under which Add serves name's version.
func ChartPath(name, version string) string {
	return "/charts/" + name + "-" + version + ".tgz"
}
