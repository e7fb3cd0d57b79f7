package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HelmReleaseKind is the kind of the HelmRelease API.
const HelmReleaseKind = "HelmRelease"

// HelmVersion names the Helm major version a release is managed with. helmflux
// drives Helm v3 only; v2 stays in the enum so that the refusal can say why.
// +kubebuilder:validation:Enum=v2;v3
type HelmVersion string

const (
	// HelmV2 is refused: Tiller-based releases must be migrated first.
	HelmV2 HelmVersion = "v2"
	// HelmV3 is the only version helmflux manages.
	HelmV3 HelmVersion = "v3"
)

// HelmReleaseSpec is the desired state of a Helm release, in the Flux Helm
// Operator's v1 schema.
type HelmReleaseSpec struct {
	// HelmVersion is the Helm version the release is managed with. Unset means v3.
	// v2 (Tiller) releases are refused: migrate them with the helm-2to3 plugin and
	// set helmVersion: v3.
	// +kubebuilder:validation:XValidation:rule="self == 'v3'",message="helmVersion v2 is not supported: helmflux manages Helm v3 releases only; migrate the release with the helm-2to3 plugin, then set helmVersion: v3 or remove the field"
	// +optional
	HelmVersion HelmVersion `json:"helmVersion,omitempty"`

	// Chart says where the chart comes from: a Helm repository (repository, name,
	// version; an oci:// repository is an OCI registry) or a git repository
	// (git, ref, path).
	// +required
	Chart ChartSource `json:"chart"`

	// ReleaseName is the Helm release name. When empty it is
	// "<namespace>-<name>", or "<namespace>-<targetNamespace>-<name>" when
	// targetNamespace differs from the HelmRelease's namespace, as the Helm
	// Operator named it.
	// +kubebuilder:validation:MaxLength=53
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`

	// MaxHistory is the number of release revisions Helm keeps. Default 10;
	// 0 keeps every revision.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxHistory *int `json:"maxHistory,omitempty"`

	// ValueFileSecrets is deprecated: each entry is read as a secretKeyRef with
	// the key values.yaml, merged before valuesFrom.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	ValueFileSecrets []LocalObjectReference `json:"valueFileSecrets,omitempty"`

	// ValuesFrom lists values sources merged in order, later entries winning;
	// spec.values wins over all of them.
	// +kubebuilder:validation:MaxItems=128
	// +optional
	ValuesFrom []ValuesFromSource `json:"valuesFrom,omitempty"`

	// TargetNamespace is the namespace the release is installed into. Defaults
	// to the HelmRelease's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`

	// ServiceAccountName names a service account in the HelmRelease's
	// namespace that every Helm action (install, upgrade, test, rollback,
	// uninstall), Helm's release storage, the chart's lookup and drift
	// detection act as, by impersonation, so a tenant's release can do no
	// more than its service account may. Unset means the operator's
	// --default-service-account, or the operator itself when that is unset.
	// Reading valuesFrom and writing the status stay the operator's.
	// A helmflux addition.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Timeout is the time in seconds for each Kubernetes operation of an install
	// or upgrade, and for waiting. Default 300; at most 7200, as a pass holds
	// one of the controller's workers for that long.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7200
	// +optional
	Timeout *int64 `json:"timeout,omitempty"`

	// ResetValues resets the values to the chart's defaults on upgrade. Unset
	// means true; only an explicit false reuses the previous release's values.
	// +optional
	ResetValues *bool `json:"resetValues,omitempty"`

	// SkipCRDs skips installing the CRDs of the chart's crds/ directory.
	// +optional
	SkipCRDs bool `json:"skipCRDs,omitempty"`

	// Wait waits until all resources are ready before marking the release
	// successful, up to timeout. Unset means rollback.enable || test.enable.
	// +optional
	Wait *bool `json:"wait,omitempty"`

	// ForceUpgrade replaces resources that cannot be patched (helm upgrade --force).
	// +optional
	ForceUpgrade bool `json:"forceUpgrade,omitempty"`

	// Rollback configures rolling back a failed upgrade.
	// +optional
	Rollback Rollback `json:"rollback,omitempty"`

	// Test configures running the chart's Helm tests after an install or upgrade.
	// +optional
	Test Test `json:"test,omitempty"`

	// DriftDetection compares the release's live objects with its manifest on
	// every pass and, when enabled, corrects them. A helmflux addition.
	// +optional
	DriftDetection *DriftDetection `json:"driftDetection,omitempty"`

	// DisableOpenAPIValidation skips validating the rendered manifests against
	// the cluster's OpenAPI schema.
	// +optional
	DisableOpenAPIValidation bool `json:"disableOpenAPIValidation,omitempty"`

	// Values are the release's values; they override every valuesFrom source.
	// +optional
	Values *Values `json:"values,omitempty"`
}

// ChartSource holds the fields of both chart sources side by side, as the Helm
// Operator's schema did: set either repository (with name and version) or git
// (with path).
// +kubebuilder:validation:XValidation:rule="has(self.repository) != has(self.git)",message="chart must set exactly one source: repository (with name and version) or git (with path)"
// +kubebuilder:validation:XValidation:rule="!has(self.repository) || (has(self.name) && has(self.version))",message="a repository chart needs name and version"
// +kubebuilder:validation:XValidation:rule="!has(self.git) || has(self.path)",message="a git chart needs path, the chart's directory in the repository"
type ChartSource struct {
	// Git is the URL of the git repository holding the chart, e.g.
	// ssh://git@example.com/org/charts.git or git@example.com:org/charts.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Git string `json:"git,omitempty"`

	// Ref is the git branch or tag to take the chart from (a branch of that
	// name first, then a tag). Default master.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Ref string `json:"ref,omitempty"`

	// Path is the chart's directory relative to the git repository's root.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Path string `json:"path,omitempty"`

	// SecretRef names a Secret with the git credentials: username and password
	// for HTTPS. Namespace defaults to the HelmRelease's.
	// +optional
	SecretRef *ObjectReference `json:"secretRef,omitempty"`

	// SkipDepUpdate skips building the chart's dependencies of a git chart.
	// +optional
	SkipDepUpdate bool `json:"skipDepUpdate,omitempty"`

	// Repository is the URL of the Helm chart repository, e.g.
	// https://charts.example.com/ or oci://registry.example.com/charts.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Repository string `json:"repository,omitempty"`

	// Name is the chart's name in the repository.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`

	// Version is the chart version, or a semver range.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Version string `json:"version,omitempty"`

	// ChartPullSecret names a Secret with the repository's credentials
	// (username and password, or caFile/certFile/keyFile).
	// +optional
	ChartPullSecret *LocalObjectReference `json:"chartPullSecret,omitempty"`

	// AllowInsecureHTTP sends the chart's credentials (chart.secretRef for
	// chart.git, chartPullSecret or userinfo for chart.repository) over plain
	// HTTP: an http:// URL, or an OCI registry the operator reaches over
	// plain HTTP (--plain-http-registries), where anyone on the network path
	// can read them. Without it such a HelmRelease is refused (reason
	// InsecureCredentials) and nothing is sent. Plain HTTP without
	// credentials needs no opt-in. A helmflux addition.
	// +optional
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// IsGit tells whether the chart comes from a git repository.
func (in ChartSource) IsGit() bool { return in.Git != "" }

// LocalObjectReference names an object in the HelmRelease's namespace.
type LocalObjectReference struct {
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// ObjectReference names an object; namespace defaults to the HelmRelease's.
type ObjectReference struct {
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// Namespace of the referent. Defaults to the HelmRelease's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ValuesFromSource is one source of values; exactly one field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.configMapKeyRef), has(self.secretKeyRef), has(self.externalSourceRef), has(self.chartFileRef), has(self.gitFileRef)].filter(x, x).size() == 1",message="each valuesFrom entry sets exactly one of configMapKeyRef, secretKeyRef, externalSourceRef, chartFileRef or gitFileRef"
type ValuesFromSource struct {
	// ConfigMapKeyRef reads values from a key of a ConfigMap.
	// +optional
	ConfigMapKeyRef *OptionalKeySelector `json:"configMapKeyRef,omitempty"`

	// SecretKeyRef reads values from a key of a Secret.
	// +optional
	SecretKeyRef *OptionalKeySelector `json:"secretKeyRef,omitempty"`

	// ExternalSourceRef reads values from an http(s) URL.
	// +optional
	ExternalSourceRef *ExternalSourceSelector `json:"externalSourceRef,omitempty"`

	// ChartFileRef reads values from a file of a git chart, relative to chart.path.
	// +optional
	ChartFileRef *ChartFileSelector `json:"chartFileRef,omitempty"`

	// GitFileRef reads values from a file in the git repository that delivered
	// this HelmRelease, at the same revision. A helmflux addition.
	// +optional
	GitFileRef *GitFileSelector `json:"gitFileRef,omitempty"`
}

// OptionalKeySelector selects a key of a ConfigMap or Secret.
type OptionalKeySelector struct {
	// Name of the ConfigMap or Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// Namespace of the ConfigMap or Secret. Defaults to the HelmRelease's; another
	// namespace is refused unless the operator allows cross-namespace references.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key holding the values YAML. Default values.yaml.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`

	// Optional skips this source when the object or key is missing.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// ExternalSourceSelector selects values served at an https URL (at most 4 MiB).
type ExternalSourceSelector struct {
	// URL of the values YAML.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +required
	URL string `json:"url"`

	// Optional skips this source when it cannot be fetched.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// ChartFileSelector selects a values file inside the chart, whatever its source.
type ChartFileSelector struct {
	// Path of the file relative to the chart's directory.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +required
	Path string `json:"path"`

	// Optional skips this source when the file is missing.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// GitFileSelector selects a values file in the git repository of the GitSync
// that applied the HelmRelease, read at the revision that applied it.
type GitFileSelector struct {
	// Path of the file relative to the repository's root.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +required
	Path string `json:"path"`

	// Optional skips this source when the file is missing.
	// +optional
	Optional *bool `json:"optional,omitempty"`
}

// Rollback configures rolling back a failed upgrade.
type Rollback struct {
	// Enable rolls back to the last good revision when an upgrade fails.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// Retry retries the upgrade after a rollback, up to maxRetries times.
	// +optional
	Retry bool `json:"retry,omitempty"`

	// MaxRetries is the number of upgrade retries after rollbacks. Default 5;
	// 0 retries without limit.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetries *int64 `json:"maxRetries,omitempty"`

	// Force replaces resources that cannot be patched during the rollback.
	// +optional
	Force bool `json:"force,omitempty"`

	// Recreate restarts the pods of the release during the rollback.
	// +optional
	Recreate bool `json:"recreate,omitempty"`

	// DisableHooks skips the chart's hooks during the rollback.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// Timeout is the time in seconds for each operation of the rollback.
	// Default 300; at most 7200.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7200
	// +optional
	Timeout *int64 `json:"timeout,omitempty"`

	// Wait waits until the rolled-back resources are ready.
	// +optional
	Wait bool `json:"wait,omitempty"`
}

// Test configures the chart's Helm tests.
type Test struct {
	// Enable runs the chart's tests after every install and upgrade.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// IgnoreFailures keeps the release released when its tests fail. Default false.
	// +optional
	IgnoreFailures *bool `json:"ignoreFailures,omitempty"`

	// Timeout is the time in seconds the tests may take. Default 300; at
	// most 7200.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7200
	// +optional
	Timeout *int64 `json:"timeout,omitempty"`

	// Cleanup is kept for compatibility and has no effect: with Helm v3 the
	// chart's helm.sh/hook-delete-policy decides when test pods are deleted.
	// +optional
	Cleanup *bool `json:"cleanup,omitempty"`
}

// DriftDetectionMode says what to do when live objects differ from the release.
// +kubebuilder:validation:Enum=enabled;warn;disabled
type DriftDetectionMode string

const (
	// DriftDetectionEnabled reports drift and corrects it by applying the
	// release's manifest to the objects that drifted.
	DriftDetectionEnabled DriftDetectionMode = "enabled"
	// DriftDetectionWarn reports drift in the Drifted condition and an Event only.
	DriftDetectionWarn DriftDetectionMode = "warn"
	// DriftDetectionDisabled compares nothing; the default.
	DriftDetectionDisabled DriftDetectionMode = "disabled"
)

// DriftDetection configures the comparison of live objects with the release
// manifest, made with server-side dry-run applies.
type DriftDetection struct {
	// Mode is enabled, warn or disabled (the default).
	// +kubebuilder:default=disabled
	// +optional
	Mode DriftDetectionMode `json:"mode,omitempty"`
}

// HelmReleasePhase is the Helm Operator's one-word summary of the last action.
// +kubebuilder:validation:Enum=ChartFetched;ChartFetchFailed;Installing;Upgrading;Deployed;DeployFailed;Testing;TestFailed;Tested;Succeeded;Failed;RollingBack;RolledBack;RollbackFailed
type HelmReleasePhase string

// The phases of a HelmRelease, as the Helm Operator reported them.
const (
	PhaseChartFetched     HelmReleasePhase = "ChartFetched"
	PhaseChartFetchFailed HelmReleasePhase = "ChartFetchFailed"
	PhaseInstalling       HelmReleasePhase = "Installing"
	PhaseUpgrading        HelmReleasePhase = "Upgrading"
	PhaseDeployed         HelmReleasePhase = "Deployed"
	PhaseDeployFailed     HelmReleasePhase = "DeployFailed"
	PhaseTesting          HelmReleasePhase = "Testing"
	PhaseTestFailed       HelmReleasePhase = "TestFailed"
	PhaseTested           HelmReleasePhase = "Tested"
	PhaseSucceeded        HelmReleasePhase = "Succeeded"
	PhaseFailed           HelmReleasePhase = "Failed"
	PhaseRollingBack      HelmReleasePhase = "RollingBack"
	PhaseRolledBack       HelmReleasePhase = "RolledBack"
	PhaseRollbackFailed   HelmReleasePhase = "RollbackFailed"
)

// HelmReleaseStatus is the observed state of a HelmRelease.
type HelmReleaseStatus struct {
	// ObservedGeneration is the last generation reconciled successfully or
	// refused for good.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarises the last action in one word.
	// +optional
	Phase HelmReleasePhase `json:"phase,omitempty"`

	// ReleaseName is the name of the Helm release.
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`

	// ReleaseStatus is the Helm status of the release (deployed, failed, ...).
	// +optional
	ReleaseStatus string `json:"releaseStatus,omitempty"`

	// Revision is the chart version (repository charts) or git commit (git
	// charts) currently deployed.
	// +optional
	Revision string `json:"revision,omitempty"`

	// LastAttemptedRevision is the chart version or git commit of the last
	// attempt, successful or not.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// ChartDigest identifies the chart of the deployed release: the archive's
	// sha256 for repository charts, the manifest digest for OCI charts, a
	// digest of the chart directory for git charts.
	// +optional
	ChartDigest string `json:"chartDigest,omitempty"`

	// ValuesChecksum is the sha256 of the merged values of the deployed
	// release, as the Helm Operator wrote it. Values themselves never appear
	// in the status.
	// +optional
	ValuesChecksum string `json:"valuesChecksum,omitempty"`

	// LastAttemptedDigest identifies the chart and values of the last install
	// or upgrade attempt. A failed attempt is not repeated for the same digest
	// (no upgrade-rollback loop) unless rollback.retry allows it or a reconcile
	// is requested.
	// +optional
	LastAttemptedDigest string `json:"lastAttemptedDigest,omitempty"`

	// ReleaseRevision is the Helm release revision (helm history) deployed.
	// +optional
	ReleaseRevision int `json:"releaseRevision,omitempty"`

	// RollbackCount counts the failed upgrades (rolled back, or failed before
	// changing anything) since the last successful release; rollback.retry
	// retries while it is at most rollback.maxRetries.
	// +optional
	RollbackCount int64 `json:"rollbackCount,omitempty"`

	// LastHandledReconcileAt is the last reconcile.fluxcd.io/requestedAt value handled.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// Conditions hold the Helm Operator's ChartFetched, Released, RolledBack,
	// Deployed and Tested beside Ready, Reconciling and Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types written on a HelmRelease besides Ready, Reconciling and Stalled.
const (
	// ChartFetchedCondition tells whether the chart could be fetched.
	ChartFetchedCondition = "ChartFetched"
	// ReleasedCondition tells whether the last install or upgrade succeeded.
	ReleasedCondition = "Released"
	// DeployedCondition tells whether the release's resources were deployed.
	DeployedCondition = "Deployed"
	// RolledBackCondition tells whether a failed upgrade was rolled back.
	RolledBackCondition = "RolledBack"
	// TestedCondition tells whether the chart's tests passed.
	TestedCondition = "Tested"
	// DriftedCondition tells whether live objects differ from the release
	// manifest (only with driftDetection warn or enabled).
	DriftedCondition = "Drifted"
)

// Reasons of the HelmRelease conditions.
const (
	ChartFetchFailedReason     = "ChartFetchFailed"
	ChartFetchedReason         = "ChartFetched"
	ValuesFailedReason         = "ValuesFailed"
	InstallSucceededReason     = "InstallSucceeded"
	InstallFailedReason        = "InstallFailed"
	UpgradeSucceededReason     = "UpgradeSucceeded"
	UpgradeFailedReason        = "UpgradeFailed"
	RollbackSucceededReason    = "RollbackSucceeded"
	RollbackFailedReason       = "RollbackFailed"
	TestSucceededReason        = "TestSucceeded"
	TestFailedReason           = "TestFailed"
	UninstallFailedReason      = "UninstallFailed"
	UninstalledReason          = "Uninstalled"
	ReleaseNotOwnedReason      = "ReleaseNotOwned"
	ReleaseLockedReason        = "ReleaseLocked"
	ReleaseUnlockedReason      = "ReleaseUnlocked"
	InvalidSpecReason          = "InvalidSpec"
	ReconcileFailedReason      = "ReconcileFailed"
	DriftDetectionFailedReason = "DriftDetectionFailed"
	DriftDetectedReason        = "DriftDetected"
	DriftCorrectedReason       = "DriftCorrected"
	NoDriftReason              = "NoDrift"
	ReleaseUpToDateReason      = "ReleaseUpToDate"
	ProgressingReason          = "Progressing"
	// ForbiddenReason: the API server refused something the release needs
	// to the service account the HelmRelease acts as (spec.serviceAccountName
	// or the operator's default); the message names what and the account.
	ForbiddenReason = "Forbidden"
	// ExternalChangeReason: the release was rolled back, upgraded or
	// uninstalled outside helmflux, and is brought back to what git declares.
	ExternalChangeReason = "ReleaseChangedExternally"
)

// Annotations that link HelmReleases and their releases.
const (
	// AntecedentAnnotation marks every object of a release with the
	// HelmRelease that owns it, "<namespace>:helmrelease/<name>", as the Helm
	// Operator did. A release whose objects name another HelmRelease is not
	// taken over.
	AntecedentAnnotation = "helm.fluxcd.io/antecedent"
	// RevisionAnnotation holds the git revision ("main@sha1:…") at which a
	// GitSync applied a HelmRelease that reads values files from git
	// (valuesFrom[].gitFileRef): the files are read at that same revision.
	RevisionAnnotation = "helmflux.dev/revision"
)

// Antecedent returns the AntecedentAnnotation value naming this HelmRelease.
func (in *HelmRelease) Antecedent() string {
	return in.Namespace + ":helmrelease/" + in.Name
}

// GetDriftDetectionMode returns the drift detection mode, disabled by default.
func (in HelmReleaseSpec) GetDriftDetectionMode() DriftDetectionMode {
	if in.DriftDetection == nil || in.DriftDetection.Mode == "" {
		return DriftDetectionDisabled
	}
	return in.DriftDetection.Mode
}

// HelmRelease declares a Helm release: a chart, where to get it, and its values.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=hr;hrs,categories=helmflux
// +kubebuilder:printcolumn:name="Release",type=string,JSONPath=`.status.releaseName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.releaseStatus`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.revision`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HelmRelease struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec HelmReleaseSpec `json:"spec"`
	// +optional
	Status HelmReleaseStatus `json:"status,omitempty"`
}

// HelmReleaseList is a list of HelmReleases.
// +kubebuilder:object:root=true
type HelmReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmRelease `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &HelmRelease{}, &HelmReleaseList{})
}
