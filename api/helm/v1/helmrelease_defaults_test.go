package v1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func TestGetReleaseName(t *testing.T) {
	tests := []struct {
		name      string
		namespace string
		spec      HelmReleaseSpec
		want      string
	}{
		{name: "podinfo", namespace: "apps", want: "apps-podinfo"},
		{name: "podinfo", namespace: "", want: "default-podinfo"},
		{name: "podinfo", namespace: "apps", spec: HelmReleaseSpec{ReleaseName: "web"}, want: "web"},
		{name: "podinfo", namespace: "apps", spec: HelmReleaseSpec{TargetNamespace: "apps"}, want: "apps-podinfo"},
		{name: "mq", namespace: "default", spec: HelmReleaseSpec{TargetNamespace: "rabbit"}, want: "default-rabbit-mq"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			hr := &HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: tt.name, Namespace: tt.namespace}, Spec: tt.spec}
			if got := hr.GetReleaseName(); got != tt.want {
				t.Errorf("GetReleaseName() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGetTargetNamespace(t *testing.T) {
	hr := &HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "apps"}}
	if got := hr.GetTargetNamespace(); got != "apps" {
		t.Errorf("GetTargetNamespace() = %q, want apps", got)
	}
	hr.Spec.TargetNamespace = "web"
	if got := hr.GetTargetNamespace(); got != "web" {
		t.Errorf("GetTargetNamespace() = %q, want web", got)
	}
	if got := (&HelmRelease{}).GetTargetNamespace(); got != "default" {
		t.Errorf("GetTargetNamespace() of no namespace = %q, want default", got)
	}
}

func TestSpecDefaults(t *testing.T) {
	tests := []struct {
		name        string
		spec        HelmReleaseSpec
		timeout     time.Duration
		maxHistory  int
		reuseValues bool
		wait        bool
	}{
		{name: "empty", timeout: 300 * time.Second, maxHistory: 10},
		{name: "explicit", spec: HelmReleaseSpec{Timeout: ptr[int64](42), MaxHistory: ptr(0), ResetValues: ptr(false), Wait: ptr(true)},
			timeout: 42 * time.Second, maxHistory: 0, reuseValues: true, wait: true},
		{name: "resetValues true", spec: HelmReleaseSpec{ResetValues: ptr(true)}, timeout: 300 * time.Second, maxHistory: 10},
		{name: "rollback implies wait", spec: HelmReleaseSpec{Rollback: Rollback{Enable: true}}, timeout: 300 * time.Second, maxHistory: 10, wait: true},
		{name: "test implies wait", spec: HelmReleaseSpec{Test: Test{Enable: true}}, timeout: 300 * time.Second, maxHistory: 10, wait: true},
		{name: "explicit no wait wins", spec: HelmReleaseSpec{Wait: ptr(false), Rollback: Rollback{Enable: true}}, timeout: 300 * time.Second, maxHistory: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.GetTimeout(); got != tt.timeout {
				t.Errorf("GetTimeout() = %v, want %v", got, tt.timeout)
			}
			if got := tt.spec.GetMaxHistory(); got != tt.maxHistory {
				t.Errorf("GetMaxHistory() = %d, want %d", got, tt.maxHistory)
			}
			if got := tt.spec.GetReuseValues(); got != tt.reuseValues {
				t.Errorf("GetReuseValues() = %v, want %v", got, tt.reuseValues)
			}
			if got := tt.spec.GetWait(); got != tt.wait {
				t.Errorf("GetWait() = %v, want %v", got, tt.wait)
			}
		})
	}
}

func TestRollbackAndTestDefaults(t *testing.T) {
	var rb Rollback
	if rb.GetMaxRetries() != 5 || rb.GetTimeout() != 300*time.Second {
		t.Errorf("Rollback defaults = %d retries, %v; want 5, 300s", rb.GetMaxRetries(), rb.GetTimeout())
	}
	rb = Rollback{MaxRetries: ptr[int64](0), Timeout: ptr[int64](10)}
	if rb.GetMaxRetries() != 0 || rb.GetTimeout() != 10*time.Second {
		t.Errorf("Rollback explicit = %d retries, %v; want 0, 10s", rb.GetMaxRetries(), rb.GetTimeout())
	}
	var ts Test
	if ts.GetIgnoreFailures() || !ts.GetCleanup() || ts.GetTimeout() != 300*time.Second {
		t.Errorf("Test defaults = ignore %v, cleanup %v, %v; want false, true, 300s", ts.GetIgnoreFailures(), ts.GetCleanup(), ts.GetTimeout())
	}
}

func TestGetValuesFromPutsValueFileSecretsFirst(t *testing.T) {
	spec := HelmReleaseSpec{
		ValueFileSecrets: []LocalObjectReference{{Name: "old"}},
		ValuesFrom:       []ValuesFromSource{{ConfigMapKeyRef: &OptionalKeySelector{Name: "cm", Key: "v.yaml"}}},
	}
	got := spec.GetValuesFrom()
	if len(got) != 2 {
		t.Fatalf("GetValuesFrom() has %d entries, want 2", len(got))
	}
	if got[0].SecretKeyRef == nil || got[0].SecretKeyRef.Name != "old" || got[0].SecretKeyRef.GetKey() != "values.yaml" {
		t.Errorf("first entry = %+v, want secretKeyRef old with key values.yaml", got[0])
	}
	if got[1].ConfigMapKeyRef == nil || got[1].ConfigMapKeyRef.GetKey() != "v.yaml" {
		t.Errorf("second entry = %+v, want configMapKeyRef cm with key v.yaml", got[1])
	}
	if spec.Chart.GetRef() != "master" {
		t.Errorf("default git ref = %q, want master", spec.Chart.GetRef())
	}
}
