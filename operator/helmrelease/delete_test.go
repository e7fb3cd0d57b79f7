package helmrelease_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
// as the operator, and a Warning Event says so.
func TestADeletedHelmReleaseWhoseServiceAccountLostItsRightsIsLetGo(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	for _, sa := range []string{"unbound", "gone"} {
		tenant(t, ns, sa)
		mustCreateHR(t, asTenant(repoRelease(ns, sa, repo.URL(), "1.0.0", ""), sa))
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
