package gitsync_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// authRecorder serves the repositories under root over smart HTTP without
// auth of its own, counting the requests and those that carried an
// Authorization header.
type authRecorder struct {
	url                 string
	requests, withCreds atomic.Int32
}

func newAuthRecorder(t *testing.T, root string) *authRecorder {
	t.Helper()
	backend, err := gittest.Backend(root)
	if err != nil {
		t.Fatal(err)
	}
	rec := &authRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			rec.withCreds.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL + "/" + gittest.RepoName
	return rec
}

// A GitSync of a plain http:// URL whose secretRef holds a password or a
// bearer token is refused (InsecureCredentials, Stalled, a Warning Event)
// and the server sees no request at all, let alone credentials; with
// spec.allowInsecureHTTP the same GitSync applies, sending them.
func TestCredentialsOverPlainHTTPNeedAnOptIn(t *testing.T) {
	ns := newNamespace(t)
	const canary = "canary-PlainHTTP-5c2e"
	repo := gittest.NewRepo(t, map[string]string{"cm.yaml": configMap(ns, "blue")})
	srv := newAuthRecorder(t, repo.Root())
	createSecret(t, ns, "basic", map[string][]byte{"username": []byte("git"), "password": []byte(canary)})
	createSecret(t, ns, "token", map[string][]byte{"bearerToken": []byte(canary)})
	for _, name := range []string{"basic", "token"} {
		createGitSync(t, ns, name, helmfluxv1alpha1.GitSyncSpec{URL: srv.url, SecretRef: &meta.LocalObjectReference{Name: name}})
	}
	for _, name := range []string{"basic", "token"} {
		eventually(t, "GitSync "+name+" refused", func() (bool, string) {
			gs := getGitSync(t, ns, name)
			s := apimeta.FindStatusCondition(gs.Status.Conditions, meta.StalledCondition)
			return strings.HasPrefix(ready(gs), "False "+helmfluxv1alpha1.InsecureCredentialsReason+": ") &&
				strings.Contains(ready(gs), "allowInsecureHTTP") && s != nil && s.Status == "True", ready(gs)
		})
		waitWarning(t, k8s, ns, name, helmfluxv1alpha1.InsecureCredentialsReason, "allowInsecureHTTP")
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("the server saw %d requests (%d with credentials), want none", n, srv.withCreds.Load())
	}
	assertNoCanary(t, ns, canary)

	gs := getGitSync(t, ns, "basic")
	gs.Spec.AllowInsecureHTTP = true
	if err := k8s.Update(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, ns, "basic", repo.Head())
	if srv.withCreds.Load() == 0 {
		t.Error("the allowed GitSync sent no credentials: the test did not test")
	}
}
