package v1alpha1

import (
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitSyncKind is the kind of the GitSync API.
const GitSyncKind = "GitSync"

// GitSyncSpec says which repository, revision and paths to keep the cluster in
// step with, and how to write image updates back.
type GitSyncSpec struct {
	// URL of the git repository: https://, http://, ssh://, file://, or the
	// scp-like user@host:path form.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(https?|ssh|file)://.+$') || self.matches('^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:[^/].*$')",message="url must be an https://, http://, ssh:// or file:// URL, or user@host:path"
	// +required
	URL string `json:"url"`

	// Ref is the branch, tag or semver tag range to follow. Unset follows the
	// remote's default branch (its HEAD).
	// +optional
	Ref *GitRef `json:"ref,omitempty"`

	// Paths are the directories or files, relative to the repository's root, whose
	// manifests are applied. Unset applies the whole repository.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.all(p, !p.startsWith('/') && !p.split('/').exists(s, s == '..'))",message="paths must be relative to the repository's root and must not contain '..'"
	// +optional
	Paths []string `json:"paths,omitempty"`

	// Interval between two fetches of the repository.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +kubebuilder:default="5m"
	// +optional
	Interval metav1.Duration `json:"interval,omitempty"`

	// Timeout of each git operation (fetch, push). Default 60s; at most 10m,
	// as a pass holds one of the controller's workers for that long (image
	// automation's pass gets four times it).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('10m')",message="timeout must be at most 10m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// SecretRef names a Secret with the git credentials: identity (an SSH
	// private key) and known_hosts for SSH; username and password, or
	// bearerToken, for HTTPS.
	// +optional
	SecretRef *meta.LocalObjectReference `json:"secretRef,omitempty"`

	// Prune deletes objects that were applied from an earlier revision and are
	// no longer in git.
	// +optional
	Prune bool `json:"prune,omitempty"`

	// MaxPrunePercent is the largest share of the inventory one prune may delete;
	// a larger prune, or one that would empty the inventory, is refused until the
	// reconcile.fluxcd.io/forceAt annotation is set. Default 50; 100 allows any
	// prune that leaves something.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxPrunePercent *int `json:"maxPrunePercent,omitempty"`

	// InsecureIgnoreHostKey accepts any SSH host key. Only for test setups: without
	// it an SSH host must be in the Secret's known_hosts.
	// +optional
	InsecureIgnoreHostKey bool `json:"insecureIgnoreHostKey,omitempty"`

	// AllowInsecureHTTP sends the secretRef's credentials (username and
	// password, or bearerToken; or a password in the url) over a plain
	// http:// URL, where anyone on the network path can read them. Without
	// it such a GitSync is refused (reason InsecureCredentials) and nothing
	// is sent. An http:// URL without credentials needs no opt-in.
	// +optional
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`

	// WebhookSecretRef names a Secret whose key "token" authenticates push
	// notifications sent to /hooks/<namespace>/<name> of the operator: a GitHub
	// HMAC signature, a GitLab token, or a bearer token.
	// +optional
	WebhookSecretRef *meta.LocalObjectReference `json:"webhookSecretRef,omitempty"`

	// ServiceAccountName names a ServiceAccount of the GitSync's namespace:
	// every dry-run, apply and prune of the GitSync's objects (and the reads of
	// the objects it prunes) runs as that account, through impersonation, so a
	// tenant's repository can do no more than the tenant may. Unset uses the
	// operator's --default-service-account; with neither, the operator's own
	// identity applies (single-tenant mode, as Flux v1 did).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Suspend stops syncing and write-back until it is set to false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// ReadOnly never writes to the repository: image updates are only reported.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`

	// Verify requires OpenPGP-signed commits before anything is applied.
	// +optional
	Verify *GitVerification `json:"verify,omitempty"`

	// WriteBack configures the commits helmflux makes for image updates.
	// +optional
	WriteBack *WriteBack `json:"writeBack,omitempty"`
}

// GitRef selects the revision to follow; at most one field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.branch), has(self.tag), has(self.semver)].filter(x, x).size() <= 1",message="ref sets at most one of branch, tag or semver"
type GitRef struct {
	// Branch to follow.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Branch string `json:"branch,omitempty"`

	// Tag to follow.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Tag string `json:"tag,omitempty"`

	// SemVer is a semver range; the highest matching tag is followed.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	SemVer string `json:"semver,omitempty"`
}

// VerificationMode says which commits must carry a valid signature.
// +kubebuilder:validation:Enum=none;head;all
type VerificationMode string

const (
	// VerifyNone checks no signature.
	VerifyNone VerificationMode = "none"
	// VerifyHead checks the signature of the commit to apply.
	VerifyHead VerificationMode = "head"
	// VerifyAll checks every first-parent commit since the last applied revision.
	VerifyAll VerificationMode = "all"
)

// GitVerification configures commit signature verification.
// +kubebuilder:validation:XValidation:rule="self.mode == 'none' || has(self.secretRef)",message="verify.secretRef is required unless verify.mode is none"
type GitVerification struct {
	// Mode says which commits must be signed. Default head.
	// +kubebuilder:default=head
	// +optional
	Mode VerificationMode `json:"mode,omitempty"`

	// SecretRef names a Secret whose values are armored OpenPGP public keys
	// trusted to sign commits.
	// +optional
	SecretRef *meta.LocalObjectReference `json:"secretRef,omitempty"`
}

// WriteBack configures the commits helmflux makes.
type WriteBack struct {
	// Author of the commits. Default helmflux <helmflux@users.noreply.helmflux.dev>.
	// +optional
	Author *CommitAuthor `json:"author,omitempty"`

	// SigningKey names a Secret with an armored OpenPGP private key
	// (key git.asc, optional passphrase) to sign commits with.
	// +optional
	SigningKey *meta.LocalObjectReference `json:"signingKey,omitempty"`

	// MessageTemplate is a Go text/template for the commit message's subject and
	// body; trailers naming every change are always appended.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	MessageTemplate string `json:"messageTemplate,omitempty"`

	// PushBranch is the branch commits are pushed to. Default the branch followed.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	PushBranch string `json:"pushBranch,omitempty"`

	// Quarantine, on unless set to false, makes automation commit the
	// previous tag back when a tag it wrote makes the release fail (a
	// HelmRelease upgrade that fails or is rolled back, a Deployment whose
	// rollout exceeds its progress deadline), with a Helmflux-Quarantine
	// trailer that keeps the tag from being written again.
	// +optional
	Quarantine *bool `json:"quarantine,omitempty"`
}

// QuarantineEnabled reports whether writeBack.quarantine is on (the default).
func (w *WriteBack) QuarantineEnabled() bool {
	return w == nil || w.Quarantine == nil || *w.Quarantine
}

// CommitAuthor names the author of commits.
type CommitAuthor struct {
	// Name of the author.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Name string `json:"name"`

	// Email of the author.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=256
	// +required
	Email string `json:"email"`
}

// GitSyncStatus is the observed state of a GitSync.
type GitSyncStatus struct {
	// ObservedGeneration is the last generation reconciled successfully or
	// refused for good.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling, Stalled and the domain conditions.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastFetchedRevision is the last revision fetched, as <ref>@sha1:<hash>.
	// +optional
	LastFetchedRevision string `json:"lastFetchedRevision,omitempty"`

	// LastAppliedRevision is the last revision applied in full.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`

	// Inventory lists the objects applied from LastAppliedRevision, the set
	// pruning works from.
	// +optional
	Inventory *Inventory `json:"inventory,omitempty"`

	// LastAttemptedRevision is the last revision an apply was attempted for.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// Failures lists the objects of the last attempt that could not be applied
	// (at most 50).
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Failures []ObjectFailure `json:"failures,omitempty"`

	// LastHandledReconcileAt is the last reconcile.fluxcd.io/requestedAt value handled.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// LastHandledForceAt is the last reconcile.fluxcd.io/forceAt value handled.
	// +optional
	LastHandledForceAt string `json:"lastHandledForceAt,omitempty"`
	// ImageAutomation reports the last image automation pass over the
	// repository. The image automation controller writes it, nothing else.
	// +optional
	ImageAutomation *ImageAutomationStatus `json:"imageAutomation,omitempty"`
}

// ImageAutomationStatus is what the last image automation pass saw and did.
type ImageAutomationStatus struct {
	// Conditions: Ready says whether the last pass could scan every automated
	// image and push (or, for readOnly, report) every update.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastRunTime is when the last pass that changed this status finished; a
	// pass that finds everything as before writes nothing.
	// +optional
	LastRunTime *metav1.Time `json:"lastRunTime,omitempty"`
	// LastRevision is the revision the last pass started from.
	// +optional
	LastRevision string `json:"lastRevision,omitempty"`
	// LastPushedCommit is the last commit image automation pushed, as
	// <branch>@sha1:<hash>.
	// +optional
	LastPushedCommit string `json:"lastPushedCommit,omitempty"`
	// LastPushTime is when LastPushedCommit was pushed.
	// +optional
	LastPushTime *metav1.Time `json:"lastPushTime,omitempty"`
	// AutomatedImages counts the automated containers the last pass considered.
	// +optional
	AutomatedImages int `json:"automatedImages,omitempty"`
	// Pending lists the updates a readOnly GitSync would commit (at most 50).
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Pending []ImageUpdate `json:"pending,omitempty"`
	// Failures lists the images the last pass could not scan or decide (at
	// most 50).
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Failures []ImageFailure `json:"failures,omitempty"`
	// Holds lists the automated containers automation keeps at the tag git
	// has, derived from the repository's history (at most 50): a person's
	// rollback below the last tag helmflux wrote, or a tag helmflux
	// quarantined after the release it was in failed.
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Holds []ImageHold `json:"holds,omitempty"`
	// Containers says, per automated container (at most 50), which tag git
	// has, the best candidate its policy allows and why better-ranked tags
	// were passed over: what "why is my image not updating?" reads.
	// +kubebuilder:validation:MaxItems=50
	// +optional
	Containers []ContainerImage `json:"containers,omitempty"`
}

// Hold reasons (ImageHold.Reason).
const (
	// HoldRollback: a commit not made by helmflux left the container below
	// the last tag helmflux wrote for it (git revert, a hand edit, a squash).
	HoldRollback = "Rollback"
	// HoldQuarantine: helmflux wrote the tag back after the release with
	// the held tag failed (Helmflux-Quarantine trailer).
	HoldQuarantine = "Quarantine"
)

// ImageHold keeps automation from writing, for one container, any tag that
// ranks at or below Tag. A tag that ranks above it ends the hold, and so
// does a commit that writes Tag itself again.
type ImageHold struct {
	// Workload is "<namespace>:<kind>/<name>".
	Workload string `json:"workload"`
	// Container is the container name.
	Container string `json:"container"`
	// Image is the repository, without tag.
	Image string `json:"image"`
	// Tag is the held tag: the last tag helmflux wrote (Rollback) or the
	// quarantined one (Quarantine).
	Tag string `json:"tag"`
	// Current is the tag git has for the container.
	Current string `json:"current"`
	// Reason is Rollback or Quarantine.
	Reason string `json:"reason"`
	// Commit is the commit that caused the hold: the person's commit that
	// left the container at Current, or helmflux's quarantine commit.
	// +optional
	Commit string `json:"commit,omitempty"`
	// Since is the commit time of Commit.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// Message says why, in a sentence (never values content).
	// +optional
	Message string `json:"message,omitempty"`
}

// Why a candidate tag ranking above the current one was not written
// (PassedOverTag.Reason).
const (
	PassedFilter         = "Filter"
	PassedHeld           = "Held"
	PassedLocked         = "Locked"
	PassedNotNewer       = "NotNewer"
	PassedNoCreationTime = "NoCreationTime"
	PassedIncompleteScan = "IncompleteScan"
	PassedRegistryError  = "RegistryError"
)

// ContainerImage is what the last pass decided for one automated container.
type ContainerImage struct {
	// Workload is "<namespace>:<kind>/<name>".
	Workload string `json:"workload"`
	// Container is the container name.
	Container string `json:"container"`
	// Image is the repository, without tag.
	Image string `json:"image"`
	// Tag is the tag git has, which the cluster runs once the GitSync
	// applied it.
	Tag string `json:"tag"`
	// Best is the best candidate the policy allows ("" when none, or when
	// the scan failed); equal to Tag when the container is up to date.
	// +optional
	Best string `json:"best,omitempty"`
	// PassedOver are the best-ranked tags not written, at most 3, with why.
	// +kubebuilder:validation:MaxItems=3
	// +optional
	PassedOver []PassedOverTag `json:"passedOver,omitempty"`
	// Message sums up the decision (a registry error names the host).
	// +optional
	Message string `json:"message,omitempty"`
}

// PassedOverTag is a tag ranking above the current one that was not
// written, or, with an empty Tag, what kept every candidate out.
type PassedOverTag struct {
	// Tag is the tag passed over; empty when the reason applies to all
	// candidates (a lock, an incomplete scan, a registry error).
	// +optional
	Tag string `json:"tag,omitempty"`
	// Reason is Filter, Held, Locked, NotNewer, NoCreationTime,
	// IncompleteScan or RegistryError.
	Reason string `json:"reason"`
	// Message says why in a sentence: the filter, the hold's commit, the
	// lock message, the registry host.
	// +optional
	Message string `json:"message,omitempty"`
}

// ImageUpdate is one tag change.
type ImageUpdate struct {
	// Workload is "<namespace>:<kind>/<name>", as fluxctl names workloads.
	Workload string `json:"workload"`
	// Container is the container name ("chart-image" for a chart's top-level image).
	Container string `json:"container"`
	// Image is the repository, without tag.
	Image string `json:"image"`
	// From is the tag in git; To is the tag the policy picked.
	From string `json:"from"`
	To   string `json:"to"`
	// File is the path of the file holding the tag.
	File string `json:"file"`
}

// ImageFailure says why one automated image was left alone.
type ImageFailure struct {
	// Workload is "<namespace>:<kind>/<name>"; empty for a file-level error.
	// +optional
	Workload string `json:"workload,omitempty"`
	// Container is the container name.
	// +optional
	Container string `json:"container,omitempty"`
	// Image is the repository, without tag.
	// +optional
	Image string `json:"image,omitempty"`
	// Message says what went wrong.
	Message string `json:"message"`
}

// ObjectFailure says why one object was not applied.
type ObjectFailure struct {
	// Object is "Kind/namespace/name".
	Object string `json:"object"`
	// Source is the object's path in the repository.
	// +optional
	Source string `json:"source,omitempty"`
	// Message is the API server's answer.
	Message string `json:"message"`
}

// Inventory records applied objects, in status while small, else in a ConfigMap.
type Inventory struct {
	// Count of objects in the inventory.
	Count int `json:"count"`

	// Entries of the inventory when they are kept in status.
	// +optional
	Entries []InventoryEntry `json:"entries,omitempty"`

	// ConfigMapRef names the ConfigMap holding the entries when they are too many
	// to keep in status.
	// +optional
	ConfigMapRef *meta.LocalObjectReference `json:"configMapRef,omitempty"`

	// Digest is the digest of the ConfigMap's entries, "sha256:<hex>". Anyone
	// who may write ConfigMaps in the namespace may write that ConfigMap, so
	// one that does not match the digest, or is gone, is not used: nothing is
	// pruned or taken as applied from it, and the next apply writes it again.
	// +optional
	Digest string `json:"digest,omitempty"`
}

// InventoryEntry names one applied object.
type InventoryEntry struct {
	// ID is <namespace>_<name>_<group>_<kind>; the namespace is empty for
	// cluster-scoped objects.
	ID string `json:"id"`

	// Version is the API version the object was applied with.
	Version string `json:"v"`
}

// GitSync keeps the cluster in step with the manifests and HelmReleases in a git
// repository, and writes image updates back to it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gs,categories=helmflux
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.lastAppliedRevision`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec GitSyncSpec `json:"spec"`
	// +optional
	Status GitSyncStatus `json:"status,omitempty"`
}

// GitSyncList is a list of GitSyncs.
// +kubebuilder:object:root=true
type GitSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitSync `json:"items"`
}

// Default values of GitSync fields.
const (
	DefaultInterval        = 5 * time.Minute
	DefaultTimeout         = 60 * time.Second
	DefaultMaxPrunePercent = 50
)

// GetMaxPrunePercent returns the largest share of the inventory a prune may delete.
func (in *GitSync) GetMaxPrunePercent() int {
	if in.Spec.MaxPrunePercent == nil {
		return DefaultMaxPrunePercent
	}
	return *in.Spec.MaxPrunePercent
}

// GetInterval returns the time between two fetches.
func (in *GitSync) GetInterval() time.Duration {
	if in.Spec.Interval.Duration <= 0 {
		return DefaultInterval
	}
	return in.Spec.Interval.Duration
}

// GetTimeout returns the timeout of each git operation.
func (in *GitSync) GetTimeout() time.Duration {
	if in.Spec.Timeout == nil || in.Spec.Timeout.Duration <= 0 {
		return DefaultTimeout
	}
	return in.Spec.Timeout.Duration
}

// GetConditions returns the status conditions, for fluxcd/pkg condition helpers.
func (in *GitSync) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *GitSync) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// GetLastHandledReconcileRequest returns the last reconcile request handled.
func (in *GitSync) GetLastHandledReconcileRequest() string {
	return in.Status.LastHandledReconcileAt
}

func init() {
	knownTypes = append(knownTypes, &GitSync{}, &GitSyncList{})
}

// Condition types of a GitSync besides Ready, Reconciling and Stalled.
const (
	// SourceVerifiedCondition tells whether the commit to apply passed signature verification.
	SourceVerifiedCondition = "SourceVerified"
	// FetchFailedCondition is present when the last fetch failed.
	FetchFailedCondition = "FetchFailed"
	// FluxV1ConfigIgnoredCondition is True when the paths applied hold (or
	// lie under) a Flux v1 .flux.yaml, whose manifest generators helmflux
	// does not run: the plain YAML beside it was applied instead.
	FluxV1ConfigIgnoredCondition = "FluxV1ConfigIgnored"
)

// FluxV1ConfigIgnoredReason is the reason of FluxV1ConfigIgnored, and of
// its Warning Event.
const FluxV1ConfigIgnoredReason = "ManifestGenerationUnsupported"

// Condition reasons of a GitSync.
const (
	FetchFailedReason        = "FetchFailed"
	CredentialsReason        = "CredentialsInvalid"
	VerificationFailedReason = "VerificationFailed"
	VerifiedReason           = "Verified"
	BuildFailedReason        = "BuildFailed"
	ValidationFailedReason   = "ValidationFailed"
	ApplyFailedReason        = "ApplyFailed"
	PartialApplyReason       = "PartiallyApplied"
	PruneFailedReason        = "PruneFailed"
	PruneRefusedReason       = "PruneRefused"
	// InventoryUntrustedReason is the reason of the Warning Event of an
	// inventory ConfigMap that is gone or does not match status.inventory.digest.
	InventoryUntrustedReason = "InventoryUntrusted"
	AppliedReason            = "Applied"
	ProgressingReason        = "Progressing"
	SuspendedReason          = "Suspended"
	// ForbiddenReason: the GitSync's service account may not read, write or
	// delete some of its objects; the others are applied.
	ForbiddenReason = "Forbidden"
)

// Condition reasons of status.imageAutomation.
const (
	// ImagesUpToDateReason: every automated image runs the tag its policy picks.
	ImagesUpToDateReason = "ImagesUpToDate"
	// ImagesUpdatedReason: the pass pushed a commit with new tags.
	ImagesUpdatedReason = "ImagesUpdated"
	// UpdatesPendingReason: a readOnly GitSync has updates it does not write.
	UpdatesPendingReason = "UpdatesPending"
	// ScanFailedReason: some automated images could not be scanned or decided.
	ScanFailedReason = "ScanFailed"
	// PushFailedReason: the commit could not be pushed.
	PushFailedReason = "PushFailed"
	// AutomationFailedReason: the pass failed before scanning (fetch, template, credentials).
	AutomationFailedReason = "AutomationFailed"
)

// Event reasons of holds.
const (
	// ImageHeldReason: a hold started (a rollback found, a tag quarantined).
	ImageHeldReason = "ImageHeld"
	// ImageHoldEndedReason: a hold ended (a newer tag, or the held tag written again).
	ImageHoldEndedReason = "ImageHoldEnded"
	// ImageQuarantinedReason: automation committed the previous tag back after a failed release.
	ImageQuarantinedReason = "ImageQuarantined"
)

// Annotations helmflux writes on every object it applies from git, so that
// image write-back and values files can find an object's origin.
const (
	// SyncAnnotation holds "<namespace>/<name>" of the GitSync that applied the object.
	SyncAnnotation = "helmflux.dev/sync"
	// SourceAnnotation holds the object's path in the repository.
	SourceAnnotation = "helmflux.dev/source"
)

// ShardLabel puts a GitSync, HelmRelease or Alert in a shard, Flux's
// convention: a shard's operator runs with --watch-label-selector
// "sharding.fluxcd.io/key in (<shard>)", the main instance with
// "!sharding.fluxcd.io/key". A GitSync gives its own value to the
// GitSyncs, HelmReleases and Alerts it applies that carry none, so that
// what it applies stays in its shard.
const ShardLabel = "sharding.fluxcd.io/key"
