package restart

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

const helmReleaseCRD = "helmreleases.helm.fluxcd.io"

// Deleting the HelmRelease CRD deletes every HelmRelease, and uninstalls
// none of their releases. The test puts the CRD back and shows the
// controller working again, so the tests after it are not affected.
func TestDeletingTheCRDLeavesEveryReleaseInstalled(t *testing.T) {
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, slowChart("1.0.0"))
	o := testenv.StartOperator(t, env, "--charts-sync-interval=1s")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "crd-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	release := func(name string) *helmv1.HelmRelease {
		return &helmv1.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Repository: repo.URL(), Name: "slow", Version: "1.0.0"}},
		}
	}
	for _, name := range []string{"one", "two"} {
		if err := k8s.Create(context.Background(), release(name)); err != nil {
			t.Fatal(err)
		}
		deployedAt(t, ns.Name, name, "1.0.0", time.Minute)
	}

	t.Cleanup(func() { restoreHelmReleaseCRD(t) }) // also when the test fails half-way
	if err := k8s.Delete(context.Background(), helmReleaseCRDObject()); err != nil {
		t.Fatal(err)
	}
	// The CRD goes once every HelmRelease is gone, and a HelmRelease once
	// the controller's deletion pass removed its finalizer: by now the
	// controller has decided about each release.
	waitFor(t, time.Minute, "the CRD to be gone", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKey{Name: helmReleaseCRD}, helmReleaseCRDObject())
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	for _, name := range []string{"one", "two"} {
		if s := releaseStatuses(t, ns.Name, ns.Name+"-"+name); len(s) != 1 || s[0] != "deployed" {
			t.Errorf("release %s after the CRD was deleted: %v", name, s)
		}
	}
	if n := strings.Count(o.Log(), "The HelmRelease CRD is being deleted; leaving the release installed"); n != 2 {
		t.Errorf("the operator logged %d releases left installed, want 2", n)
	}

	// Put back, the CRD serves HelmReleases again, and a restarted operator
	// installs one.
	restoreHelmReleaseCRD(t)
	o.Stop()
	o.Start()
	if err := k8s.Create(context.Background(), release("three")); err != nil {
		t.Fatal(err)
	}
	deployedAt(t, ns.Name, "three", "1.0.0", time.Minute)
}

// restoreHelmReleaseCRD installs the HelmRelease CRD again, when it is
// missing, and waits until the API server serves it.
func restoreHelmReleaseCRD(t *testing.T) {
	t.Helper()
	err := k8s.Get(context.Background(), client.ObjectKey{Name: helmReleaseCRD}, helmReleaseCRDObject())
	if err == nil {
		return
	}
	if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "config", "crd", "bases", "helm.fluxcd.io_helmreleases.yaml")
	// InstallCRDs waits until the API server serves the CRD's versions.
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{path}, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("restore the HelmRelease CRD: %v", err)
	}
}

// helmReleaseCRDObject is the HelmRelease CRD, unstructured: the client's
// scheme has no apiextensions types.
func helmReleaseCRDObject() *unstructured.Unstructured {
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	crd.SetName(helmReleaseCRD)
	return crd
}
