package helmrelease_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// leakyChart quotes .Values.password in Helm's errors: with fail set, a
// template's fail; otherwise as a ConfigMap's name, which the API server
// refuses quoting it.
func leakyChart() helmtest.Chart {
	return helmtest.Chart{
		Name: "leaky", Version: "1.0.0", Values: "fail: false\npassword: none\n",
		Templates: map[string]string{
			"leak.yaml": `{{- if .Values.fail }}{{ fail .Values.password }}{{ end -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.password }}
data:
  a: b
`,
		},
	}
}

// Values from Secrets are masked in Helm's error text before it reaches
// the status, Events or logs: a template's fail quoting a secretKeyRef's
// value, and the API server's refusal quoting a valueFileSecrets value.
func TestHelmErrorsAreMaskedOfSecretValues(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, leakyChart())
	const failCanary, refusedCanary = "Fail-Canary-q8Z-value", "Refused_Canary_w3X"
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pw"},
		Data: map[string][]byte{"values.yaml": []byte("password: " + failCanary + "\n")}})
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
		Data: map[string][]byte{"values.yaml": []byte("password: " + refusedCanary + "\n")}})

	failing := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fails"},
		Spec: helmv1.HelmReleaseSpec{
			Chart:      helmv1.ChartSource{Repository: repo.URL(), Name: "leaky", Version: "1.0.0"},
			Values:     mustValues("fail: true"),
			ValuesFrom: []helmv1.ValuesFromSource{{SecretKeyRef: &helmv1.OptionalKeySelector{Name: "pw"}}},
		},
	}
	refused := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "refused"},
		Spec: helmv1.HelmReleaseSpec{
			Chart:            helmv1.ChartSource{Repository: repo.URL(), Name: "leaky", Version: "1.0.0"},
			ValueFileSecrets: []helmv1.LocalObjectReference{{Name: "legacy"}},
		},
	}
	mustCreateHR(t, failing)
	mustCreateHR(t, refused)
	for name, want := range map[string]string{"fails": "execution error", "refused": "is invalid"} {
		hr := waitCondition(t, ns, name, meta.ReadyCondition, "False "+helmv1.InstallFailedReason)
		c := condition(hr, meta.ReadyCondition)
		if !strings.Contains(c, want) || !strings.Contains(c, outcome.Masked) {
			t.Errorf("%s: Ready does not show Helm's masked error (%q, %q): %s", name, want, outcome.Masked, c)
		}
		waitEvent(t, ns, name, helmv1.InstallFailedReason, outcome.Masked)
	}
	waitPasses(t, ns, "fails", 2)
	assertNoCanary(t, ns, failCanary)
	assertNoCanary(t, ns, refusedCanary)
}
