package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestGitSyncDurationsDefault(t *testing.T) {
	tests := []struct {
		name     string
		spec     GitSyncSpec
		interval time.Duration
		timeout  time.Duration
	}{
		{name: "unset", interval: 5 * time.Minute, timeout: time.Minute},
		{name: "set", spec: GitSyncSpec{Interval: metav1.Duration{Duration: time.Minute}, Timeout: &metav1.Duration{Duration: 20 * time.Second}},
			interval: time.Minute, timeout: 20 * time.Second},
		{name: "zero timeout", spec: GitSyncSpec{Timeout: &metav1.Duration{}}, interval: 5 * time.Minute, timeout: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs := &GitSync{Spec: tt.spec}
			if got := gs.GetInterval(); got != tt.interval {
				t.Errorf("GetInterval() = %v, want %v", got, tt.interval)
			}
			if got := gs.GetTimeout(); got != tt.timeout {
				t.Errorf("GetTimeout() = %v, want %v", got, tt.timeout)
			}
		})
	}
}

func TestAddToSchemeRegistersGitSync(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"GitSync", "GitSyncList"} {
		if !s.Recognizes(GroupVersion.WithKind(kind)) {
			t.Errorf("scheme does not recognise %s", kind)
		}
	}
}
