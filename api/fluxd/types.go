// Package fluxd holds the JSON shapes of fluxd's HTTP API as fluxctl 1.25.4
// decodes them (../shared/fluxd-api.md §3), and helmflux's additions under
// /v12: what the operator serves (operator/fluxapi) and the helmflux CLI
// reads (cli/). Field names are the JSON keys, as in fluxd's Go types,
// unless a tag says otherwise.
package fluxd

import (
	"encoding/json"
	"time"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// ImageInfo is fluxd's image.Info.
type ImageInfo struct {
	ID          string            `json:"ID"`
	Digest      string            `json:",omitempty"`
	ImageID     string            `json:",omitempty"`
	Labels      map[string]string `json:",omitempty"`
	CreatedAt   *time.Time        `json:",omitempty"`
	LastFetched *time.Time        `json:",omitempty"`
}

// Container is fluxd's v6.Container.
type Container struct {
	Name                    string      `json:",omitempty"`
	Current                 *ImageInfo  `json:",omitempty"`
	LatestFiltered          *ImageInfo  `json:",omitempty"`
	Available               []ImageInfo `json:",omitempty"`
	AvailableError          string      `json:",omitempty"`
	AvailableImagesCount    int         `json:",omitempty"`
	NewAvailableImagesCount int         `json:",omitempty"`
	FilteredImagesCount     int         `json:",omitempty"`
	NewFilteredImagesCount  int         `json:",omitempty"`
}

// Rollout is fluxd's cluster.RolloutStatus.
type Rollout struct {
	Desired   int32
	Updated   int32
	Ready     int32
	Available int32
	Outdated  int32
	Messages  []string
}

// Workload statuses (ControllerStatus.Status), as fluxd named them.
const (
	StatusReady    = "ready"
	StatusUpdating = "updating"
	StatusStarted  = "started"
	StatusError    = "error"
	StatusUnknown  = "unknown"
)

// ReadOnly reasons (ControllerStatus.ReadOnly).
const (
	ReadOnlyNotInRepo = "NotInRepo"
	ReadOnlyNotReady  = "NotReady"
	ReadOnlyMode      = "ReadOnlyMode"
)

// ControllerStatus is fluxd's v6.ControllerStatus: one workload.
type ControllerStatus struct {
	ID         string
	Containers []Container
	ReadOnly   string
	Status     string
	Rollout    Rollout
	SyncError  string
	Antecedent string
	Labels     map[string]string
	Automated  bool
	Locked     bool
	Ignore     bool
	Policies   map[string]string
}

// ImageStatus is fluxd's v6.ImageStatus.
type ImageStatus struct {
	ID         string
	Containers []Container
}

// Cause is who asked for an update and why.
type Cause struct {
	Message string
	User    string
}

// Update types (UpdateSpec.Type).
const (
	UpdateImages     = "image"
	UpdateContainers = "containers"
	UpdatePolicy     = "policy"
	UpdateSync       = "sync"
	// UpdateRollback is the UpdateSpec.Type of a job POST /v12/rollback
	// queued; POST /v9/update-manifests refuses it (fluxctl never sends
	// it).
	UpdateRollback = "rollback"
)

// UpdateSpec is fluxd's update.Spec: what POST /v9/update-manifests asks.
type UpdateSpec struct {
	Type  string          `json:"type"`
	Cause Cause           `json:"cause"`
	Spec  json.RawMessage `json:"spec"`
}

// Release kinds: plan computes, execute commits.
const (
	ReleaseKindPlan    = "plan"
	ReleaseKindExecute = "execute"
)

// The special specs of an image release.
const (
	AllWorkloads    = "<all>"
	AllLatestImages = "<all latest>"
)

// ImageReleaseSpec is fluxd's update.ReleaseImageSpec.
type ImageReleaseSpec struct {
	ServiceSpecs []string
	ImageSpec    string
	Kind         string
	Excludes     []string
	Force        bool
}

// ContainerUpdate is one container's release in a containers spec or a
// result.
type ContainerUpdate struct {
	Container string
	Current   string
	Target    string
}

// ContainersReleaseSpec is fluxd's update.ReleaseContainersSpec, sent by
// `release --interactive`.
type ContainersReleaseSpec struct {
	Kind           string
	ContainerSpecs map[string][]ContainerUpdate
	SkipMismatches bool
	Force          bool
}

// PolicyUpdate adds and removes policies on one workload.
type PolicyUpdate struct {
	Add    map[string]string `json:"add"`
	Remove map[string]string `json:"remove"`
}

// Per-workload result statuses (WorkloadResult.Status).
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
	ResultSkipped = "skipped"
	ResultIgnored = "ignored"
	ResultUnknown = "unknown"
)

// WorkloadResult is one workload's entry in a job's Result.
type WorkloadResult struct {
	Status       string
	Error        string            `json:",omitempty"`
	PerContainer []ContainerUpdate `json:",omitempty"`
}

// JobResult is fluxd's job.Result.
type JobResult struct {
	Revision string                    `json:"revision,omitempty"`
	Spec     *UpdateSpec               `json:"spec,omitempty"`
	Result   map[string]WorkloadResult `json:"result,omitempty"`
	// Patch is helmflux's addition (fluxctl ignores it): the unified diff,
	// a/ and b/ paths, of what a rollback job commits or, on a dry run,
	// would commit.
	Patch string `json:"patch,omitempty"`
	// Reverted is helmflux's addition: the commits a rollback undoes the
	// image changes of, newest first.
	Reverted []Commit `json:"reverted,omitempty"`
}

// RollbackSpec is the body of POST /v12/rollback: set a workload's images
// back to what a commit of its GitSync's branch gave them, as one new
// commit. Exactly one of To and Previous.
type RollbackSpec struct {
	// Workload is "<namespace>:<kind>/<name>", as fluxd IDs.
	Workload string `json:"workload"`
	// To is a commit (its full hash or a unique prefix of at least 7 hex
	// digits) whose images of the workload to restore.
	To string `json:"to,omitempty"`
	// Previous undoes the newest commit that changed the workload's images.
	Previous bool `json:"previous,omitempty"`
	// Lock also locks the workload (fluxcd.io/locked, with the cause's
	// message and user as fluxctl lock writes them) in the same commit.
	Lock bool `json:"lock,omitempty"`
	// DryRun computes and returns the patch and commits nothing.
	DryRun bool  `json:"dryRun,omitempty"`
	Cause  Cause `json:"cause"`
}

// Commit names one commit in a result.
type Commit struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
}

// Job states (JobStatus.StatusString).
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// JobStatus is fluxd's job.Status.
type JobStatus struct {
	Result       JobResult
	Err          string
	StatusString string
}

// GitRemote names the repository of GitConfig.
type GitRemote struct {
	URL    string `json:"url"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
}

// Fingerprint is one hash of a public key with its randomart picture.
type Fingerprint struct {
	Hash      string `json:"hash"`
	Randomart string `json:"randomart"`
}

// PublicKey is the deploy key's public half.
type PublicKey struct {
	Key          string                 `json:"key"`
	Fingerprints map[string]Fingerprint `json:"fingerprints"`
}

// Repository states (GitConfig.Status).
const (
	GitUnconfigured = "unconfigured"
	GitNew          = "new"
	GitCloned       = "cloned"
	GitReady        = "ready"
	GitUnreachable  = "unreachable"
)

// GitConfig is fluxd's v6.GitConfig.
type GitConfig struct {
	Remote       GitRemote `json:"remote"`
	PublicSSHKey PublicKey `json:"publicSSHKey"`
	Status       string    `json:"status"`
	Error        string    `json:"errors,omitempty"`
}

// NotifyChange is the body of POST /v11/notify.
type NotifyChange struct {
	Kind   string
	Source json.RawMessage
}

// JobProgress is a job's status with its step-by-step progress, what
// GET /v12/jobs?id= answers.
type JobProgress struct {
	Status JobStatus `json:"status"`
	Steps  []string  `json:"steps"`
}

// WorkloadImages is helmflux's answer to "why is this image not
// updating?" for one workload, from the status image automation wrote:
// per container the tag in git, the best candidate and the tags passed
// over with why, and the holds in force. What GET /v12/why answers.
type WorkloadImages struct {
	ID      string `json:"id"`
	GitSync string `json:"gitSync"`
	// Containers and Holds are status.imageAutomation's entries for the
	// workload.
	Containers []helmfluxv1alpha1.ContainerImage `json:"containers"`
	Holds      []helmfluxv1alpha1.ImageHold      `json:"holds"`
	// LastRun and Ready are when automation last changed the status and
	// its Ready message.
	LastRun string `json:"lastRun,omitempty"`
	Ready   string `json:"ready,omitempty"`
}

// Hold is one hold with the GitSync whose status holds it, what
// GET /v12/holds answers a list of.
type Hold struct {
	GitSync string `json:"gitSync"`
	helmfluxv1alpha1.ImageHold
}
