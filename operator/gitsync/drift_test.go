package gitsync_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// An edit or a delete of a synced object by someone else is corrected
// without waiting for the interval (an hour here): the operator watches the
// kinds it applied and the GitSync's pass re-applies what drifted. An
// object only labelled with another GitSync's sync annotation does not
// bring that GitSync round to touch it.
func TestDriftIsCorrectedWithoutWaitingForTheInterval(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{
		"settings.yaml": configMap(ns, "blue"),
		"web.yaml":      deployment(ns, 2),
	})
	createGitSync(t, ns, "watched", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true})
	waitApplied(t, ns, "watched", repo.Head())
	ctx := context.Background()

	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["color"] = "red"
	if err := k8s.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edited ConfigMap is put back", func() (bool, string) {
		v := getConfigMapValue(t, ns, "settings")
		return v == "blue", "color " + v
	})

	dep, err := getDeployment(t, ns)
	if err != nil {
		t.Fatal(err)
	}
	replicas := int32(5)
	dep.Spec.Replicas = &replicas
	if err := k8s.Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the scaled Deployment is put back", func() (bool, string) {
		d, err := getDeployment(t, ns)
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas == 2, fmt.Sprintf("replicas %d", *d.Spec.Replicas)
	})

	if err := k8s.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted ConfigMap is created again", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})
		return err == nil, fmt.Sprint(err)
	})

	// An object that names the GitSync without being applied by it is not
	// its business: it is neither changed nor deleted.
	stray := &corev1.ConfigMap{}
	stray.Namespace, stray.Name = ns, "stray"
	stray.Annotations = map[string]string{helmfluxv1alpha1.SyncAnnotation: ns + "/watched"}
	stray.Data = map[string]string{"color": "pink"}
	if err := k8s.Create(ctx, stray); err != nil {
		t.Fatal(err)
	}
	// A pass started after the stray object existed (a pass still running
	// from the re-create would not say that much).
	waitHandled(t, ns, "watched", requestReconcile(t, ns, "watched"))
	switch err := k8s.Get(ctx, client.ObjectKeyFromObject(stray), stray); {
	case apierrors.IsNotFound(err):
		t.Errorf("the stray ConfigMap was deleted")
	case err != nil || stray.Data["color"] != "pink":
		t.Errorf("the stray ConfigMap: %v, %v; want it left alone", stray.Data, err)
	}
}
