package helmrelease_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// A deleted HelmRelease whose service account lost its rights (its
// RoleBinding went first, as when the namespace is deleted) or is gone does
// not hang on its finalizer: the release is left in place, not uninstalled
// as the operator, and a Warning Event says so. Lost rights are retried
// for the HelmRelease's timeout first (see the next test); a gone account
// is let go at once.
func TestADeletedHelmReleaseWhoseServiceAccountLostItsRightsIsLetGo(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	for _, sa := range []string{"unbound", "gone"} {
		tenant(t, ns, sa)
		hr := asTenant(repoRelease(ns, sa, repo.URL(), "1.0.0", ""), sa)
		hr.Spec.Timeout = ptrTo(int64(3)) // how long a refused uninstall is retried
		mustCreateHR(t, hr)
	}
	for _, sa := range []string{"unbound", "gone"} {
		waitReady(t, ns, sa)
	}
	ctx := context.Background()

	// "unbound" loses its RoleBinding; wait until the API server refuses it.
	if err := k8s.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unbound"}}); err != nil {
		t.Fatal(err)
	}
	imp := rest.CopyConfig(cfg)
	imp.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":unbound"}
	asUnbound, err := client.New(imp, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the service account refused", func() (bool, string) {
		err := asUnbound.List(ctx, &corev1.SecretList{}, client.InNamespace(ns))
		return apierrors.IsForbidden(err), fmt.Sprint(err)
	})
	// "gone" loses the account itself.
	if err := k8s.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone"}}); err != nil {
		t.Fatal(err)
	}

	for _, sa := range []string{"unbound", "gone"} {
		if err := k8s.Delete(ctx, getHR(t, ns, sa)); err != nil {
			t.Fatal(err)
		}
	}
	for _, sa := range []string{"unbound", "gone"} {
		eventually(t, time.Minute, "HelmRelease "+sa+" gone", func() (bool, string) {
			err := k8s.Get(ctx, clientKey(ns, sa), &helmv1.HelmRelease{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
		waitEvent(t, ns, sa, helmv1.ReleaseLeftInPlaceReason, "Left release "+ns+"-"+sa+" in namespace "+ns+" in place")
		if h := history(t, ns, ns+"-"+sa); len(h) != 1 {
			t.Errorf("%s: history %v, want the release left in place", sa, h)
		}
		deployment(t, ns, ns+"-"+sa) // still there
	}
}

// waitRefused waits until the API server refuses it the release's records (its RoleBinding
// was deleted).
func waitRefused(t *testing.T, ns, sa string) {
	t.Helper()
	imp := rest.CopyConfig(cfg)
	imp.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}
	as, err := client.New(imp, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the service account refused", func() (bool, string) {
		err := as.List(context.Background(), &corev1.SecretList{}, client.InNamespace(ns))
		return apierrors.IsForbidden(err), fmt.Sprint(err)
	})
}

// A brief gap in a service account's rights while its HelmRelease is
// deleted does not leak the release: the refused uninstall is retried
// (Ready says so, reason Forbidden) within the HelmRelease's timeout, and
// once the RoleBinding is back the release is uninstalled and the
// HelmRelease goes.
func TestABriefRBACGapDoesNotLeakTheRelease(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	tenant(t, ns, "gap")
	hr := asTenant(repoRelease(ns, "gap", repo.URL(), "1.0.0", ""), "gap")
	hr.Spec.Timeout = ptrTo(int64(600)) // far longer than the gap
	mustCreateHR(t, hr)
	waitReady(t, ns, "gap")

	binding := &rbacv1.RoleBinding{}
	if err := k8s.Get(ctx, clientKey(ns, "gap"), binding); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, ns, "gap")
	if err := k8s.Delete(ctx, getHR(t, ns, "gap")); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "gap", meta.ReadyCondition, "False "+helmv1.ForbiddenReason)
	if c := condition(got, meta.ReadyCondition); !strings.Contains(c, "retrying until") {
		t.Errorf("Ready while refused: %s", c)
	}
	for _, e := range events(t, ns, "gap") {
		if strings.HasPrefix(e, helmv1.ReleaseLeftInPlaceReason) {
			t.Errorf("let go during the gap: %s", e)
		}
	}

	binding = &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gap"}, RoleRef: binding.RoleRef, Subjects: binding.Subjects}
	mustCreate(t, binding)
	eventually(t, time.Minute, "HelmRelease gone", func() (bool, string) {
		err := k8s.Get(ctx, clientKey(ns, "gap"), &helmv1.HelmRelease{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if h := history(t, ns, ns+"-gap"); len(h) != 0 {
		t.Errorf("history after the uninstall: %v, want none", h)
	}
	if err := k8s.Get(ctx, clientKey(ns, ns+"-gap"), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the release's Deployment: %v, want uninstalled", err)
	}
	for _, e := range events(t, ns, "gap") {
		if strings.HasPrefix(e, helmv1.ReleaseLeftInPlaceReason) {
			t.Errorf("let go: %s", e)
		}
	}
}
