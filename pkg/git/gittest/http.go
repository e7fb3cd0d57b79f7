package gittest

import (
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi" //nolint:gosec // httpoxy (G504) affects Go < 1.6.3 only; this runs git http-backend for tests
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// maxRecordedBody bounds what the server keeps of each request body.
const maxRecordedBody = 1 << 20

// Request is what HTTPServer recorded of one authorised request.
type Request struct {
	// Method and Path as received; Query is the raw query string.
	Method, Path, Query string
	// Body is the (gunzipped) request body, at most 1 MiB: for
	// git-upload-pack POSTs it holds the client's want/have lines.
	Body []byte
}

// HTTPServer serves the bare repositories under a root over git's smart
// HTTP protocol by running `git http-backend` as a CGI, on loopback.
type HTTPServer struct {
	srv   *httptest.Server
	user  string
	pass  string
	token string
	ln    net.Listener

	mu       sync.Mutex
	requests []Request
}

// HTTPOption configures an HTTPServer.
type HTTPOption func(*HTTPServer)

// WithBasicAuth requires HTTP basic auth with this user and password.
func WithBasicAuth(user, pass string) HTTPOption {
	return func(s *HTTPServer) { s.user, s.pass = user, pass }
}

// WithBearerToken requires "Authorization: Bearer <token>". With
// WithBasicAuth as well, either credential is accepted.
func WithBearerToken(token string) HTTPOption {
	return func(s *HTTPServer) { s.token = token }
}

// WithListener serves on l instead of a loopback port: on an address of
// the machine's network interface, for an operator that refuses loopback
// URLs. The server closes l when the test ends.
func WithListener(l net.Listener) HTTPOption {
	return func(s *HTTPServer) { s.ln = l }
}

// NewHTTPServer starts a smart-HTTP server for the bare repositories under
// root (push enabled) and stops it when the test ends. Repositories are at
// URL(name).
func NewHTTPServer(t testing.TB, root string, opts ...HTTPOption) *HTTPServer {
	t.Helper()
	return newHTTPServer(t, root, false, opts)
}

// NewHTTPSServer is NewHTTPServer over TLS with a self-signed certificate;
// CACert returns it for the client's CA bundle.
func NewHTTPSServer(t testing.TB, root string, opts ...HTTPOption) *HTTPServer {
	t.Helper()
	return newHTTPServer(t, root, true, opts)
}

// Backend returns a handler serving the bare repositories under root over
// git's smart HTTP protocol, pushes included, by running `git http-backend`
// as a CGI. It has no auth of its own: wrap it.
func Backend(root string) (http.Handler, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("the smart HTTP backend needs the git binary: %w", err)
	}
	return &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Dir:  root,
		Env: append([]string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"HOME=" + root,
		}, gitConfigEnv(map[string]string{
			"http.receivepack": "true",
			"safe.directory":   "*",
		})...),
	}, nil
}

func newHTTPServer(t testing.TB, root string, useTLS bool, opts []HTTPOption) *HTTPServer {
	t.Helper()
	backend, err := Backend(root)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	s := &HTTPServer{}
	for _, o := range opts {
		o(s)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorised(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		s.record(r)
		backend.ServeHTTP(w, r)
	})
	s.srv = httptest.NewUnstartedServer(h)
	if s.ln != nil {
		_ = s.srv.Listener.Close()
		s.srv.Listener = s.ln
	}
	// A client refusing the certificate is what TLS tests provoke.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

// gitConfigEnv passes config to git through GIT_CONFIG_COUNT, so the
// server needs no config file.
func gitConfigEnv(kv map[string]string) []string {
	env := []string{"GIT_CONFIG_NOSYSTEM=1"}
	i := 0
	for k, v := range kv {
		env = append(env, "GIT_CONFIG_KEY_"+strconv.Itoa(i)+"="+k, "GIT_CONFIG_VALUE_"+strconv.Itoa(i)+"="+v)
		i++
	}
	return append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(i))
}

func (s *HTTPServer) authorised(r *http.Request) bool {
	if s.user == "" && s.pass == "" && s.token == "" {
		return true
	}
	if s.token != "" && r.Header.Get("Authorization") == "Bearer "+s.token {
		return true
	}
	if s.user != "" || s.pass != "" {
		u, p, ok := r.BasicAuth()
		return ok && u == s.user && p == s.pass
	}
	return false
}

func (s *HTTPServer) record(r *http.Request) {
	var body []byte
	if r.Body != nil {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(raw))
		body = raw
		if r.Header.Get("Content-Encoding") == "gzip" {
			if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
				body, _ = io.ReadAll(io.LimitReader(zr, maxRecordedBody))
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body})
}

// URL returns the URL of the repository called name under the root.
func (s *HTTPServer) URL(name string) string { return s.srv.URL + "/" + name }

// CACert returns the PEM certificate of a TLS server (nil without TLS).
func (s *HTTPServer) CACert() []byte {
	if s.srv.TLS == nil || s.srv.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Requests returns the authorised requests served so far, oldest first.
func (s *HTTPServer) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests forgets the recorded requests.
func (s *HTTPServer) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}
