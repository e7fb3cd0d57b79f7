package helmrelease

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExternalValuesStayOnHTTPSAndAreCapped(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("a: 1"))
	}))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/downgrade":
			http.Redirect(w, req, plain.URL, http.StatusFound)
		case "/huge":
			_, _ = w.Write([]byte(strings.Repeat("a", maxValuesSize+1)))
		default:
			_, _ = w.Write([]byte("a: 1"))
		}
	}))
	defer tls.Close()
	r := &Reconciler{HTTPClient: tls.Client()}
	ctx := context.Background()

	if b, err := r.external(ctx, tls.URL+"/ok"); err != nil || string(b) != "a: 1" {
		t.Errorf("https: %q, %v", b, err)
	}
	if _, err := r.external(ctx, plain.URL); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http: %v, want a refusal", err)
	}
	if _, err := r.external(ctx, tls.URL+"/downgrade"); err == nil || !strings.Contains(err.Error(), "non-https") {
		t.Errorf("redirect to http: %v, want a refusal", err)
	}
	if _, err := r.external(ctx, tls.URL+"/huge"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized: %v, want a refusal", err)
	}
}
