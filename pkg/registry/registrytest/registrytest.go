// Package registrytest runs go-containerregistry's in-process registry behind
// an httptest server for tests that scan image repositories. A fault hook
// answers chosen requests with errors (429s, redirects, broken bodies) and a
// request log records what a client sent, so a test can count requests and
// check their timing and headers without a real registry.
//
// Two deviations from the bare in-process registry make it behave like the
// registries users run: tag lists honour ?n= and ?last= with a Link header
// to the next page (the bare registry truncates silently and its ?last= is
// off by one at the end of the list), and WithBasicAuth guards every route.
package registrytest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// CreatedLabel is the OCI annotation, set as an image label, that Push
// writes the creation time to.
const CreatedLabel = "org.opencontainers.image.created"

// Server is an in-process registry over httptest (TLS unless WithPlainHTTP)
// with a fault hook and a request log. It is closed by t.Cleanup.
type Server struct {
	srv      *httptest.Server
	registry http.Handler // the bare registry; Push writes here directly

	user, pass string
	plain      bool
	noLink     bool

	mu   sync.Mutex
	n    int
	fail func(r *http.Request, n int) (status int, header http.Header, body string, ok bool)
	reqs []Recorded
}

// Recorded is one request the server received, as a test may assert on it.
// It never holds a credential: Authorization only says whether one was sent.
type Recorded struct {
	Method        string
	Path          string
	Query         string
	Time          time.Time
	Authorization bool
}

// ServerOption configures NewServer.
type ServerOption func(*Server)

// WithBasicAuth makes every route, /v2/ included, require HTTP basic auth
// with user and pass, answering 401 with a Basic challenge otherwise.
func WithBasicAuth(user, pass string) ServerOption {
	return func(s *Server) { s.user, s.pass = user, pass }
}

// WithPlainHTTP serves plain HTTP instead of TLS, for a registry a client
// must list as insecure.
func WithPlainHTTP() ServerOption {
	return func(s *Server) { s.plain = true }
}

// WithoutLinkHeader serves tag lists as the bare in-process registry does:
// ?n= truncates the list and no Link header says that more tags exist. It
// models registries a client must page through with ?last= on its own.
func WithoutLinkHeader() ServerOption {
	return func(s *Server) { s.noLink = true }
}

// NewServer starts a registry; t.Cleanup closes it.
func NewServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	s := &Server{
		registry: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))),
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Refused handshakes (plain HTTP to TLS, closed connections) are what
	// tests provoke; keep them out of the test output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if s.plain {
		s.srv.Start()
	} else {
		s.srv.StartTLS()
	}
	t.Cleanup(s.srv.Close)
	return s
}

// Host returns the registry's "127.0.0.1:port", the host part of its images.
func (s *Server) Host() string { return s.srv.Listener.Addr().String() }

// URL returns the server's base URL ("https://127.0.0.1:port").
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server's TLS certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Transport returns the RoundTripper of Client, for a scanner's options.
// Every httptest TLS server shares one certificate, so it also trusts other
// Servers of the same test.
func (s *Server) Transport() http.RoundTripper { return s.srv.Client().Transport }

// Fail installs the fault hook (nil removes it). It is called for every
// request before authentication with the request and its 1-based number
// since the last Reset; when it returns ok, the server answers with status,
// header and body instead of the registry.
func (s *Server) Fail(f func(r *http.Request, n int) (status int, header http.Header, body string, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.reqs...)
}

// Reset clears the request log and restarts request numbering at 1.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
	s.n = 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.reqs = append(s.reqs, Recorded{
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.RawQuery,
		Time:          time.Now(),
		Authorization: r.Header.Get("Authorization") != "",
	})
	fail := s.fail
	s.mu.Unlock()

	if fail != nil {
		if status, header, body, ok := fail(r, n); ok {
			for k, vs := range header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	if s.user != "" || s.pass != "" {
		user, pass, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
	}
	if !s.noLink && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/tags/list") {
		s.serveTags(w, r)
		return
	}
	s.registry.ServeHTTP(w, r)
}

// serveTags answers a tag list the way distribution does: tags after ?last=,
// at most ?n= of them, and a Link header when more follow.
func (s *Server) serveTags(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	inner := r.Clone(r.Context())
	inner.URL.RawQuery = "" // the whole list; paged below
	rec := httptest.NewRecorder()
	s.registry.ServeHTTP(rec, inner)
	if rec.Code != http.StatusOK {
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tags := list.Tags
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(tags) && tags[i] <= last {
			i++
		}
		tags = tags[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			http.Error(w, `{"errors":[{"code":"PAGINATION_NUMBER_INVALID","message":"bad n"}]}`, http.StatusBadRequest)
			return
		}
		if n < len(tags) {
			tags = tags[:n]
			next := url.Values{"n": {ns}, "last": {tags[len(tags)-1]}}
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
		}
	}
	if tags == nil {
		tags = []string{}
	}
	body, _ := json.Marshal(map[string]any{"name": list.Name, "tags": tags})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// Push pushes a small random image as repo:tag whose config says it was
// created at created, both as config.created and as the
// org.opencontainers.image.created label, and returns its digest. It writes
// straight to the registry: no fault, no log entry, no authentication.
func (s *Server) Push(t testing.TB, repo, tag string, created time.Time) string {
	t.Helper()
	return s.PushImage(t, repo, tag, Image(t, created))
}

// PushImage pushes img as repo:tag and returns its digest, bypassing the
// fault hook, the log and authentication like Push.
func (s *Server) PushImage(t testing.TB, repo, tag string, img v1.Image) string {
	t.Helper()
	return s.put(t, repo, []string{tag}, img)
}

// PushIndex pushes idx (and its images) as repo:tag and returns its
// digest, bypassing the fault hook, the log and authentication like Push.
func (s *Server) PushIndex(t testing.TB, repo, tag string, idx v1.ImageIndex) string {
	t.Helper()
	return s.put(t, repo, []string{tag}, idx)
}

// PushTags pushes one small random image under every tag of tags, fast: the
// image is uploaded once and each tag costs one manifest PUT.
func (s *Server) PushTags(t testing.TB, repo string, tags ...string) {
	t.Helper()
	if len(tags) == 0 {
		return
	}
	s.put(t, repo, tags, Image(t, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)))
}

func (s *Server) put(t testing.TB, repo string, tags []string, obj remote.Taggable) string {
	t.Helper()
	ctx := context.Background()
	p, err := remote.NewPusher(remote.WithTransport(handlerTransport{s.registry}), remote.WithAuth(authn.Anonymous))
	if err != nil {
		t.Fatalf("registrytest: pusher: %v", err)
	}
	for _, tag := range tags {
		ref, err := name.NewTag(s.Host()+"/"+repo+":"+tag, name.Insecure)
		if err != nil {
			t.Fatalf("registrytest: tag %s:%s: %v", repo, tag, err)
		}
		if err := p.Push(ctx, ref, obj); err != nil {
			t.Fatalf("registrytest: push %s: %v", ref, err)
		}
	}
	d, err := obj.(interface{ Digest() (v1.Hash, error) }).Digest()
	if err != nil {
		t.Fatalf("registrytest: digest: %v", err)
	}
	return d.String()
}

// Image returns a small random image whose config says it was created at
// created (config.created and the org.opencontainers.image.created label).
func Image(t testing.TB, created time.Time) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatalf("registrytest: random image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("registrytest: config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels[CreatedLabel] = created.UTC().Format(time.RFC3339)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("registrytest: mutate config: %v", err)
	}
	return img
}

// handlerTransport serves requests with an http.Handler in-process, so
// pushes bypass the listener and with it the fault hook and the log.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	var b []byte
	if r.Body != nil {
		var err error
		b, err = io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	// A server request always has a body; the registry relies on it.
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	ht.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
