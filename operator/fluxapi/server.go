// Package fluxapi serves fluxd's HTTP API, the one fluxctl 1.25.4 speaks
// (../shared/fluxd-api.md), under /api/flux/ on the operator's --listen
// port: workloads and images answered from the cluster, the registry
// client's cache and status; image releases, policy changes and syncs run
// as jobs that write to git through the same edit → commit → push path as
// image automation, never to the cluster. helmflux's own additions live
// under a version prefix fluxd never used.
package fluxapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// Prefix is where the API is mounted, as fluxd mounted it.
const Prefix = "/api/flux"

// Request bounds.
const (
	// maxBody is the largest request body read.
	maxBody = 1 << 20
	// requestTimeout bounds one request's work (jobs run on after it).
	requestTimeout = 30 * time.Second
)

// Server is the API. Register mounts it on a mux.
type Server struct {
	// Token, when set, must come in every request as fluxctl sends it:
	// "Authorization: Scope-Probe token=<token>".
	Token []byte
	// Version is what /v11/version answers.
	Version string
	// Cluster answers the workload routes.
	Cluster *Cluster
	// Images answers the image routes.
	Images *Images
	// Jobs runs update-manifests and rollbacks.
	Jobs *Jobs
	// Writer reads the GitSyncs' repositories for sync and export.
	Writer *Writer
	// Identity answers /v9/git-repo-config.
	Identity *Identity
	// Notify wakes what a /v11/notify names; nil ignores notifications.
	Notify func(ctx context.Context, n NotifyChange) error
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Register mounts the API under Prefix.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle(Prefix+"/", http.StripPrefix(Prefix, s))
}

// routes maps "METHOD /path" to its handler.
func (s *Server) routes() map[string]handler {
	return map[string]handler{
		"GET /v11/ping":             s.ping,
		"GET /v11/version":          s.version,
		"POST /v11/notify":          s.notify,
		"GET /v6/services":          s.services,
		"GET /v11/services":         s.services,
		"GET /v6/images":            s.images,
		"GET /v10/images":           s.images,
		"POST /v9/update-manifests": s.updateManifests,
		"GET /v6/jobs":              s.job,
		"GET /v6/sync":              s.syncStatus,
		"GET /v6/export":            s.export,
		"HEAD /v6/export":           s.export,
		"POST /v9/git-repo-config":  s.gitRepoConfig,
		// helmflux's additions, under a version fluxd never used.
		"GET /v12/jobs":      s.jobSteps,
		"GET /v12/why":       s.why,
		"GET /v12/holds":     s.holds,
		"POST /v12/rollback": s.rollback,
	}
}

// ServeHTTP checks the token, bounds the request and dispatches it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(r) {
		// fluxctl prints its own help for a 401.
		writeJSON(w, http.StatusUnauthorized, &apiError{Type: errUser, Help: "missing or incorrect token", Err: "unauthorized"})
		return
	}
	path := r.URL.Path
	for v := 1; v <= 5; v++ {
		if strings.HasPrefix(path, "/v"+string(rune('0'+v))+"/") {
			writeJSON(w, http.StatusGone, &apiError{Type: errMissing,
				Help: "API version v" + string(rune('0'+v)) + " is no longer supported; upgrade fluxctl to 1.25.4", Err: "gone"})
			return
		}
	}
	h, ok := s.routes()[r.Method+" "+path]
	if !ok {
		writeError(w, missing("%s %s is not supported by this server", r.Method, path))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	if err := h(w, r.WithContext(ctx)); err != nil {
		writeError(w, err)
	}
}

// authorised checks the Scope-Probe token when one is configured.
func (s *Server) authorised(r *http.Request) bool {
	if len(s.Token) == 0 {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Scope-Probe token=")
	return ok && subtle.ConstantTimeCompare([]byte(got), s.Token) == 1
}

func (s *Server) ping(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, s.Version)
	return nil
}
