package integration

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
)

func TestCRDsAreEstablished(t *testing.T) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(c.Scheme()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		shortNames []string
		columns    []string
	}{
		{name: "helmreleases.helm.fluxcd.io", shortNames: []string{"hr", "hrs"},
			columns: []string{"Release", "Phase", "Status", "Revision", "Ready", "Message", "Age"}},
		{name: "gitsyncs.helmflux.dev", shortNames: []string{"gs"},
			columns: []string{"URL", "Revision", "Ready", "Status", "Age"}},
		{name: "alerts.helmflux.dev",
			columns: []string{"Type", "Severity", "Suspended", "Ready", "Status", "Age"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(context.Background(), client.ObjectKey{Name: tt.name}, crd); err != nil {
				t.Fatalf("get CRD: %v", err)
			}
			established := false
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			if !established {
				t.Errorf("CRD %s is not Established: %+v", tt.name, crd.Status.Conditions)
			}
			if !slices.Equal(crd.Spec.Names.ShortNames, tt.shortNames) {
				t.Errorf("short names = %v, want %v", crd.Spec.Names.ShortNames, tt.shortNames)
			}
			var cols []string
			for _, col := range crd.Spec.Versions[0].AdditionalPrinterColumns {
				cols = append(cols, col.Name)
			}
			if !slices.Equal(cols, tt.columns) {
				t.Errorf("printer columns = %v, want %v", cols, tt.columns)
			}
		})
	}
}

// The Flux Helm Operator's documented HelmReleases must apply unchanged.
func TestHelmOperatorExamplesAreAcceptedUnchanged(t *testing.T) {
	for _, path := range yamlFiles(t, filepath.Join("testdata", "helm-operator-examples")) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			for _, obj := range assertAcceptedUnchanged(t, path) {
				if obj.GetKind() != helmv1.HelmReleaseKind {
					continue
				}
				assertTypedRoundTrip(t, obj)
			}
		})
	}
}

// assertTypedRoundTrip reads a stored HelmRelease into the Go type and checks
// that writing it back out loses no field of its spec.
func assertTypedRoundTrip(t *testing.T, stored interface{ UnstructuredContent() map[string]any }) {
	t.Helper()
	raw, err := json.Marshal(stored.UnstructuredContent())
	if err != nil {
		t.Fatal(err)
	}
	var hr helmv1.HelmRelease
	if err := json.Unmarshal(raw, &hr); err != nil {
		t.Fatalf("decode into helmv1.HelmRelease: %v", err)
	}
	want := withoutZeroes(normalized(t, stored.UnstructuredContent()["spec"]))
	have := withoutZeroes(normalized(t, hr.Spec))
	if !reflect.DeepEqual(want, have) {
		t.Errorf("the Go type loses part of the spec\nstored: %v\ntyped:  %v", want, have)
	}
}

// withoutZeroes drops false, "" and empty objects outside spec.values: the Go
// types omit those, and the Helm Operator gave them their zero meaning too.
func withoutZeroes(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		if l, ok := v.([]any); ok {
			for i := range l {
				l[i] = withoutZeroes(l[i])
			}
		}
		return v
	}
	for k, val := range m {
		if k == "values" {
			continue
		}
		val = withoutZeroes(val)
		if val == false || val == "" {
			delete(m, k)
			continue
		}
		if mm, ok := val.(map[string]any); ok && len(mm) == 0 {
			delete(m, k)
			continue
		}
		m[k] = val
	}
	return m
}

func TestInvalidHelmReleasesAreRejectedReadably(t *testing.T) {
	for _, path := range yamlFiles(t, filepath.Join("testdata", "helm-operator-examples", "invalid")) {
		t.Run(filepath.Base(path), func(t *testing.T) { assertRejected(t, path) })
	}
}

func TestGitSyncSamplesAreAccepted(t *testing.T) {
	paths := append(yamlFiles(t, filepath.Join("testdata", "gitsync")),
		yamlFiles(t, filepath.Join(repoRoot, "config", "samples"))...)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) { assertAcceptedUnchanged(t, path) })
	}
}

func TestInvalidGitSyncsAreRejectedReadably(t *testing.T) {
	for _, path := range yamlFiles(t, filepath.Join("testdata", "gitsync", "invalid")) {
		t.Run(filepath.Base(path), func(t *testing.T) { assertRejected(t, path) })
	}
}
