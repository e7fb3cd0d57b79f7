package controllers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// serverLimits bound what the --listen server gives one client and all of
// them together: receivers and the fluxd API answer anyone who reaches the
// port, so no client may hold a connection, a handler or memory for long.
type serverLimits struct {
	// inFlight is how many requests are handled at once; more are answered
	// 503 with Retry-After: 1 at once, without waiting.
	inFlight int
	// readHeader bounds reading the headers, read the whole request (the
	// largest body read is a 4 MiB webhook payload), write the handler and
	// its answer, idle a kept-alive connection between two requests.
	readHeader, read, write, idle time.Duration
	// maxHeaderBytes bounds the request line and headers.
	maxHeaderBytes int
}

// defaultServerLimits are the --listen server's. write is above the fluxd
// API's bound of one request (30s): its routes answer within it (jobs run
// on after the request and fluxctl polls them), none long-polls.
var defaultServerLimits = serverLimits{
	inFlight:       64,
	readHeader:     10 * time.Second,
	read:           30 * time.Second,
	write:          60 * time.Second,
	idle:           2 * time.Minute,
	maxHeaderBytes: 64 << 10,
}

// newServer returns the server of addr for h, with l's timeouts and h
// behind l's cap of requests in flight.
func newServer(addr string, h http.Handler, l serverLimits) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           limitInFlight(h, l.inFlight),
		ReadHeaderTimeout: l.readHeader,
		ReadTimeout:       l.read,
		WriteTimeout:      l.write,
		IdleTimeout:       l.idle,
		MaxHeaderBytes:    l.maxHeaderBytes,
	}
}

// limitInFlight lets at most n requests into h at once and answers the
// others 503 with Retry-After: 1 at once: a flood of notifications or API
// calls is shed, never queued behind slow handlers.
func limitInFlight(h http.Handler, n int) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests in flight, try again", http.StatusServiceUnavailable)
		}
	})
}

// httpServer runs the operator's HTTP endpoints for as long as the manager runs.
type httpServer struct {
	addr    string
	handler http.Handler
	// listening is set once the port is bound, for the readiness check.
	listening atomic.Bool
}

// Start serves until ctx ends, then shuts down gracefully.
func (s *httpServer) Start(ctx context.Context) error {
	srv := newServer(s.addr, s.handler, defaultServerLimits)
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("serve %s: %w", s.addr, err)
	}
	s.listening.Store(true)
	defer s.listening.Store(false)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.addr, err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

// NeedLeaderElection is false: every replica answers, the leader reconciles.
func (s *httpServer) NeedLeaderElection() bool { return false }

// Ready is the readiness check of the endpoints: a replica whose port is
// not bound yet gets no traffic from the Service.
func (s *httpServer) Ready(*http.Request) error {
	if !s.listening.Load() {
		return fmt.Errorf("not listening on %s yet", s.addr)
	}
	return nil
}

// CacheSynced is a readiness check: a replica whose informers have not
// synced would answer the fluxd API from an empty cache.
func CacheSynced(c cache.Cache) func(*http.Request) error {
	return func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return fmt.Errorf("the informer caches have not synced yet")
		}
		return nil
	}
}
