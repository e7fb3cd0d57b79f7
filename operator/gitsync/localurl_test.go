package gitsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// Without --allow-local-urls, a GitSync whose url is a file:// repository
// on the operator's disk or one served on 127.0.0.1, and a HelmRelease whose
// chart.git is, are refused with reason LocalURLRefused and a Warning Event
// naming the flag, and nothing of the repositories is applied. It runs its
// own control plane: the package's operator allows local URLs, as every
// other test needs them.
func TestLocalURLsRefusedWithoutTheFlag(t *testing.T) {
	var own testenv.LogBuffer
	c := ownOperator(t, &own, controllers.Options{Concurrency: 2, CacheDir: t.TempDir()}) // AllowLocalURLs off, as the flag's default
	ctx := context.Background()
	ns := testenv.NewNamespace(t, c, "local-")
	repo := gittest.NewRepo(t, map[string]string{
		"cm.yaml":               configMap(ns, "from-the-operators-disk"),
		"chart/Chart.yaml":      "apiVersion: v2\nname: local\nversion: 0.1.0\n",
		"chart/templates/.keep": "",
	})
	srv := gittest.NewHTTPServer(t, repo.Root())
	httpURL := srv.URL(gittest.RepoName)
	if !strings.HasPrefix(httpURL, "http://127.0.0.1:") {
		t.Fatalf("the git server is at %s, want a loopback URL", httpURL)
	}
	urls := map[string]string{"file": repo.URL(), "loopback": httpURL}
	for name, url := range urls {
		gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: url, Interval: metav1.Duration{Duration: time.Hour}}}
		if err := c.Create(ctx, gs); err != nil {
			t.Fatal(err)
		}
	}
	hr := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gitchart"},
		Spec: helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Git: repo.BareDir(), Path: "chart"}}}
	if err := c.Create(ctx, hr); err != nil {
		t.Fatal(err)
	}

	for name := range urls {
		testenv.Eventually(t, time.Minute, "GitSync "+name+" refused", func() (bool, string) {
			gs := &helmfluxv1alpha1.GitSync{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
				return false, err.Error()
			}
			r := apimeta.FindStatusCondition(gs.Status.Conditions, meta.ReadyCondition)
			s := apimeta.FindStatusCondition(gs.Status.Conditions, meta.StalledCondition)
			return r != nil && r.Status == metav1.ConditionFalse && r.Reason == helmfluxv1alpha1.LocalURLRefusedReason &&
				strings.Contains(r.Message, "--allow-local-urls") && s != nil && s.Status == metav1.ConditionTrue, fmt.Sprint(r)
		})
		waitWarning(t, c, ns, name, helmfluxv1alpha1.LocalURLRefusedReason, "--allow-local-urls")
	}
	testenv.Eventually(t, time.Minute, "chart.git refused", func() (bool, string) {
		got := &helmv1.HelmRelease{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
			return false, err.Error()
		}
		r := apimeta.FindStatusCondition(got.Status.Conditions, meta.ReadyCondition)
		return r != nil && r.Status == metav1.ConditionFalse && r.Reason == helmv1.LocalURLRefusedReason &&
			strings.Contains(r.Message, "--allow-local-urls"), fmt.Sprint(r)
	})
	waitWarning(t, c, ns, "gitchart", helmv1.LocalURLRefusedReason, "--allow-local-urls")

	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the ConfigMap of a refused repository: got %v, want NotFound", err)
	}
	if n := len(srv.Requests()); n > 0 {
		t.Errorf("the loopback git server got %d requests, want none", n)
	}
}

// With --allow-local-urls (the package's operator), a GitSync of a
// repository served on 127.0.0.1 and one of a file:// repository apply.
func TestLocalURLsAcceptedWithTheFlag(t *testing.T) {
	ns := newNamespace(t)
	for name, value := range map[string]string{"file": "one", "loopback": "two"} {
		repo := gittest.NewRepo(t, map[string]string{"cm.yaml": strings.Replace(configMap(ns, value), "name: settings", "name: "+name, 1)})
		url := repo.URL()
		if name == "loopback" {
			url = gittest.NewHTTPServer(t, repo.Root()).URL(gittest.RepoName)
		}
		createGitSync(t, ns, name, helmfluxv1alpha1.GitSyncSpec{URL: url})
		waitApplied(t, ns, name, repo.Head())
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil || cm.Data["color"] != value {
			t.Errorf("ConfigMap %s: %v %v, want color %s", name, err, cm.Data, value)
		}
	}
}

// ownOperator starts a control plane and an in-process operator with opts
// for one test (the package's operator serves the others), logging into
// logs, and returns a client of that control plane. Both stop when the
// test ends.
func ownOperator(t *testing.T, logs *testenv.LogBuffer, opts controllers.Options) client.Client {
	t.Helper()
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := testenv.StartInProcess(ctx, cfg, zap.New(zap.WriteTo(logs), zap.UseDevMode(true)), opts)
	t.Cleanup(func() {
		cancel()
		if stopped != nil {
			<-stopped
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
