package v1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the Helm Operator, which HelmReleases written for it rely on.
const (
	DefaultTimeoutSeconds    = 300
	DefaultMaxHistory        = 10
	DefaultRollbackRetries   = 5
	DefaultValuesKey         = "values.yaml"
	DefaultGitRef            = "master"
	DefaultReleaseNamespace  = "default"
	MaxReleaseNameLength     = 53
	defaultTestCleanup       = true
	defaultTestIgnoreFailure = false
)

// GetReleaseName returns the Helm release name: spec.releaseName, or the name the
// Helm Operator generated, "<namespace>-<name>", with the target namespace added
// when it differs ("<namespace>-<targetNamespace>-<name>"). The generated name is
// not cut to Helm's 53-character limit; the controller refuses one that is longer.
func (in *HelmRelease) GetReleaseName() string {
	if in.Spec.ReleaseName != "" {
		return in.Spec.ReleaseName
	}
	ns := in.Namespace
	if ns == "" {
		ns = DefaultReleaseNamespace
	}
	if t := in.Spec.TargetNamespace; t != "" && t != ns {
		return ns + "-" + t + "-" + in.Name
	}
	return ns + "-" + in.Name
}

// GetTargetNamespace returns the namespace the release is installed into.
func (in *HelmRelease) GetTargetNamespace() string {
	if in.Spec.TargetNamespace != "" {
		return in.Spec.TargetNamespace
	}
	if in.Namespace == "" {
		return DefaultReleaseNamespace
	}
	return in.Namespace
}

// GetTimeout returns the timeout of each install or upgrade operation.
func (in HelmReleaseSpec) GetTimeout() time.Duration {
	return seconds(in.Timeout, DefaultTimeoutSeconds)
}

// GetMaxHistory returns the number of revisions to keep; 0 keeps all.
func (in HelmReleaseSpec) GetMaxHistory() int {
	if in.MaxHistory == nil {
		return DefaultMaxHistory
	}
	return *in.MaxHistory
}

// GetReuseValues tells whether an upgrade reuses the previous release's values:
// only when resetValues is explicitly false.
func (in HelmReleaseSpec) GetReuseValues() bool {
	return in.ResetValues != nil && !*in.ResetValues
}

// GetWait tells whether to wait for the release's resources to become ready.
// Unset, it follows rollback.enable and test.enable, as in the Helm Operator.
func (in HelmReleaseSpec) GetWait() bool {
	if in.Wait != nil {
		return *in.Wait
	}
	return in.Rollback.Enable || in.Test.Enable
}

// GetValuesFrom returns the values sources in merge order: the deprecated
// valueFileSecrets first, as secretKeyRefs, then valuesFrom.
func (in HelmReleaseSpec) GetValuesFrom() []ValuesFromSource {
	if len(in.ValueFileSecrets) == 0 {
		return in.ValuesFrom
	}
	out := make([]ValuesFromSource, 0, len(in.ValueFileSecrets)+len(in.ValuesFrom))
	for _, s := range in.ValueFileSecrets {
		out = append(out, ValuesFromSource{SecretKeyRef: &OptionalKeySelector{Name: s.Name}})
	}
	return append(out, in.ValuesFrom...)
}

// GetKey returns the key holding the values, values.yaml by default.
func (in OptionalKeySelector) GetKey() string {
	if in.Key == "" {
		return DefaultValuesKey
	}
	return in.Key
}

// GetRef returns the git ref of a git chart, master by default.
func (in ChartSource) GetRef() string {
	if in.Ref == "" {
		return DefaultGitRef
	}
	return in.Ref
}

// GetMaxRetries returns the number of upgrade retries after rollbacks; 0 is unlimited.
func (in Rollback) GetMaxRetries() int64 {
	if in.MaxRetries == nil {
		return DefaultRollbackRetries
	}
	return *in.MaxRetries
}

// GetTimeout returns the timeout of each rollback operation.
func (in Rollback) GetTimeout() time.Duration {
	return seconds(in.Timeout, DefaultTimeoutSeconds)
}

// GetTimeout returns the time the tests may take.
func (in Test) GetTimeout() time.Duration {
	return seconds(in.Timeout, DefaultTimeoutSeconds)
}

// GetIgnoreFailures tells whether failed tests leave the release released.
func (in Test) GetIgnoreFailures() bool {
	if in.IgnoreFailures == nil {
		return defaultTestIgnoreFailure
	}
	return *in.IgnoreFailures
}

// GetCleanup tells whether test pods are removed after the run.
func (in Test) GetCleanup() bool {
	if in.Cleanup == nil {
		return defaultTestCleanup
	}
	return *in.Cleanup
}

// GetConditions returns the status conditions, for fluxcd/pkg condition helpers.
func (in *HelmRelease) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *HelmRelease) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// GetLastHandledReconcileRequest returns the last reconcile request handled.
func (in *HelmRelease) GetLastHandledReconcileRequest() string {
	return in.Status.LastHandledReconcileAt
}

func seconds(v *int64, def int64) time.Duration {
	if v == nil {
		return time.Duration(def) * time.Second
	}
	return time.Duration(*v) * time.Second
}
