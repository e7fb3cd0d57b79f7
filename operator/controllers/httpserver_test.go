package controllers

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// serve starts l's server for h on a free port and returns its URL.
func serve(t *testing.T, h http.Handler, l serverLimits) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newServer("", h, l)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// With the cap of requests in flight reached, the next request is answered
// 503 with Retry-After: 1 at once; once one finished, requests are served.
func TestRequestsInFlightAreCapped(t *testing.T) {
	const n = 3
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	l := defaultServerLimits
	l.inFlight = n
	url := serve(t, h, l)

	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url + "/block")
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range n {
		<-entered
	}
	resp, err := http.Get(url + "/next")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("request %d: %d, Retry-After %q; want 503, 1", n+1, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a held request answered %d", c)
		}
	}
	if resp, err := http.Get(url + "/next"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("after the held requests finished: %v, %v; want 200", resp, err)
	} else {
		_ = resp.Body.Close()
	}
}

// closedByServer reports whether the server closed conn: a read ends with
// EOF or a reset (a response to a half-sent request is read and skipped),
// not with the test's own deadline.
func closedByServer(t *testing.T, conn net.Conn) {
	t.Helper()
	// The deadline only keeps a broken server from hanging the test.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server kept the connection open")
	}
}

// A client that sends its headers, or its body, too slowly is cut off.
func TestSlowClientsAreCutOff(t *testing.T) {
	l := defaultServerLimits
	l.readHeader, l.read = 200*time.Millisecond, 200*time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
		}
	})
	addr := strings.TrimPrefix(serve(t, h, l), "http://")
	for name, req := range map[string]string{
		"headers never end": "POST /hooks/a/b HTTP/1.1\r\nHost: x\r\n",
		"body never ends":   "POST /hooks/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			closedByServer(t, conn)
		})
	}
}

// Headers beyond maxHeaderBytes are refused.
func TestHeadersAreBounded(t *testing.T) {
	l := defaultServerLimits
	l.maxHeaderBytes = 1 << 10
	addr := strings.TrimPrefix(serve(t, http.NotFoundHandler(), l), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// net/http allows 4 KiB of slack above MaxHeaderBytes.
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB of headers: %d, want 431", resp.StatusCode)
	}
}

// The operator's server sets every timeout and bound.
func TestDefaultServerLimitsAreSet(t *testing.T) {
	srv := newServer(":0", http.NotFoundHandler(), defaultServerLimits)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("a limit is unset: %+v", defaultServerLimits)
	}
	if srv.WriteTimeout <= 30*time.Second {
		t.Errorf("WriteTimeout %s is not above the fluxd API's 30s bound of a request", srv.WriteTimeout)
	}
}

// A replica is ready for the Service only once its port is bound, and not
// any more once the server stopped.
func TestServerIsReadyOnceListening(t *testing.T) {
	addr := freeAddr(t)
	srv := &httpServer{addr: addr, handler: http.NotFoundHandler()}
	if err := srv.Ready(nil); err == nil {
		t.Fatal("ready before it started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Ready(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", srv.Ready(nil))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Ready means the port answers.
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("ready, but: %v", err)
	}
	_ = resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := srv.Ready(nil); err == nil {
		t.Error("still ready after it stopped")
	}
}

// A port another process holds is an error of Start, never readiness.
func TestServerOnATakenPortIsNeverReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	srv := &httpServer{addr: ln.Addr().String(), handler: http.NotFoundHandler()}
	if err := srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start = %v, want the port refused", err)
	}
	if srv.Ready(nil) == nil {
		t.Error("ready without a port")
	}
}

// Caches that never started are not ready, and the check answers (after
// its second) rather than hanging the probe: the request has no deadline.
func TestUnsyncedCachesAreNotReady(t *testing.T) {
	c, err := cache.New(&rest.Config{Host: "http://127.0.0.1:1"}, cache.Options{Mapper: meta.NewDefaultRESTMapper(nil)})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	if err := CacheSynced(c)(req); err == nil {
		t.Fatal("ready without synced caches")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
