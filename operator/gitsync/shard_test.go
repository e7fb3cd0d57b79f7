package gitsync

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

func TestInheritShard(t *testing.T) {
	obj := func(apiVersion, kind string, labels map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetName("x")
		u.SetLabels(labels)
		return u
	}
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want string // the label's value afterwards; "-" for no label
	}{
		{"HelmRelease without a shard", obj("helm.fluxcd.io/v1", "HelmRelease", nil), "a"},
		{"HelmRelease with other labels", obj("helm.fluxcd.io/v1", "HelmRelease", map[string]string{"app": "web"}), "a"},
		{"HelmRelease of another shard", obj("helm.fluxcd.io/v1", "HelmRelease", map[string]string{helmfluxv1alpha1.ShardLabel: "b"}), "b"},
		{"HelmRelease with an empty shard", obj("helm.fluxcd.io/v1", "HelmRelease", map[string]string{helmfluxv1alpha1.ShardLabel: ""}), ""},
		{"GitSync", obj("helmflux.dev/v1alpha1", "GitSync", nil), "a"},
		{"Alert", obj("helmflux.dev/v1alpha1", "Alert", nil), "a"},
		{"ConfigMap", obj("v1", "ConfigMap", nil), "-"},
		{"Flux v2 HelmRelease", obj("helm.toolkit.fluxcd.io/v2", "HelmRelease", nil), "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inheritShard(tc.obj, "a")
			got, ok := tc.obj.GetLabels()[helmfluxv1alpha1.ShardLabel]
			if !ok {
				got = "-"
			}
			if got != tc.want {
				t.Errorf("shard label %q, want %q", got, tc.want)
			}
		})
	}
}
