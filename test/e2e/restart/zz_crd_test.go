package restart

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// This test deletes the HelmRelease CRD, so it runs last in the package (Go
// runs tests in file order, and this file sorts last).
func TestDeletingTheCRDLeavesEveryReleaseInstalled(t *testing.T) {
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, slowChart("1.0.0"))
	testenv.StartOperator(t, env, "--charts-sync-interval=1s")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "crd-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		hr := &helmv1.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec:       helmv1.HelmReleaseSpec{Chart: helmv1.ChartSource{Repository: repo.URL(), Name: "slow", Version: "1.0.0"}},
		}
		if err := k8s.Create(context.Background(), hr); err != nil {
			t.Fatal(err)
		}
		deployedAt(t, ns.Name, name, "1.0.0", time.Minute)
	}

	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	crd.SetName("helmreleases.helm.fluxcd.io")
	if err := k8s.Delete(context.Background(), crd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the CRD to be gone", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKey{Name: crd.GetName()}, crd.DeepCopy())
		return err != nil, "still there"
	})
	for _, name := range []string{"one", "two"} {
		if s := releaseStatuses(t, ns.Name, ns.Name+"-"+name); len(s) != 1 || s[0] != "deployed" {
			t.Errorf("release %s after the CRD was deleted: %v", name, s)
		}
	}
}
