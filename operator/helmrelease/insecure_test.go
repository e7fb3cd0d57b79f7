package helmrelease_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// A chart.repository over plain http:// with a chartPullSecret, and a
// chart.git over plain http:// with a chart.secretRef, are refused
// (InsecureCredentials, Stalled, a Warning Event) and the servers see no
// request; with chart.allowInsecureHTTP the repository chart installs,
// sending the credentials.
func TestChartCredentialsOverPlainHTTPNeedAnOptIn(t *testing.T) {
	ns := newNamespace(t)
	const user, canary = "alice", "canary-PlainChart-8d4b"
	repo := helmtest.NewRepoServer(t, helmtest.WithBasicAuth(user, canary))
	repo.Add(t, appChart("1.0.0"))
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"},
		Data: map[string][]byte{"username": []byte(user), "password": []byte(canary)}})
	pulled := repoRelease(ns, "pulled", repo.URL(), "1.0.0", "")
	pulled.Spec.Chart.ChartPullSecret = &helmv1.LocalObjectReference{Name: "pull"}
	mustCreateHR(t, pulled)

	gitRepo := gittest.NewRepo(t, nil)
	gitRepo.CommitFiles("Add the app", chartFiles(t, appChart("0.1.0"), "charts/app"))
	backend, err := gittest.Backend(gitRepo.Root())
	if err != nil {
		t.Fatal(err)
	}
	var gitRequests atomic.Int32
	gitSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gitRequests.Add(1)
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(gitSrv.Close)
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git"},
		Data: map[string][]byte{"username": []byte("git"), "password": []byte(canary)}})
	mustCreateHR(t, &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gitchart"},
		Spec: helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Git: gitSrv.URL + "/" + gittest.RepoName, Ref: "main",
			Path: "charts/app", SecretRef: &helmv1.ObjectReference{Name: "git"}}}})

	for name, field := range map[string]string{"pulled": "chart.repository", "gitchart": "chart.git"} {
		hr := waitCondition(t, ns, name, meta.ReadyCondition, "False "+helmv1.InsecureCredentialsReason)
		if msg := condition(hr, meta.ReadyCondition); !strings.Contains(msg, field) || !strings.Contains(msg, "allowInsecureHTTP") {
			t.Errorf("%s: Ready is %q, want it to name %s and allowInsecureHTTP", name, msg, field)
		}
		if got := condition(hr, meta.StalledCondition); !strings.HasPrefix(got, "True "+helmv1.InsecureCredentialsReason) {
			t.Errorf("%s: Stalled is %q", name, got)
		}
		eventually(t, 30*time.Second, name+" Warning Event", func() (bool, string) {
			ev := events(t, ns, name)
			return containsAny(ev, helmv1.InsecureCredentialsReason+": "), strings.Join(ev, "; ")
		})
	}
	if n := repo.Requests("/index.yaml"); n != 0 {
		t.Errorf("the chart repository saw %d index requests (%d with credentials), want none", n, repo.AuthorizedRequests("/index.yaml"))
	}
	if n := gitRequests.Load(); n != 0 {
		t.Errorf("the git server saw %d requests, want none", n)
	}
	assertNoCanary(t, ns, canary)

	update(t, ns, "pulled", func(hr *helmv1.HelmRelease) { hr.Spec.Chart.AllowInsecureHTTP = true })
	waitReady(t, ns, "pulled")
	if repo.AuthorizedRequests("/index.yaml") == 0 {
		t.Error("the allowed HelmRelease sent no credentials: the test did not test")
	}
}
