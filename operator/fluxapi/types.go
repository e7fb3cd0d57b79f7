package fluxapi

import "github.com/helmflux/helmflux/api/fluxd"

// The wire types live in api/fluxd, shared with the helmflux CLI; these
// names keep this package's code as it reads against fluxd's own types.
type (
	ImageInfo             = fluxd.ImageInfo
	Container             = fluxd.Container
	Rollout               = fluxd.Rollout
	ControllerStatus      = fluxd.ControllerStatus
	ImageStatus           = fluxd.ImageStatus
	Cause                 = fluxd.Cause
	UpdateSpec            = fluxd.UpdateSpec
	ImageReleaseSpec      = fluxd.ImageReleaseSpec
	ContainerUpdate       = fluxd.ContainerUpdate
	ContainersReleaseSpec = fluxd.ContainersReleaseSpec
	PolicyUpdate          = fluxd.PolicyUpdate
	WorkloadResult        = fluxd.WorkloadResult
	JobResult             = fluxd.JobResult
	JobStatus             = fluxd.JobStatus
	GitRemote             = fluxd.GitRemote
	Fingerprint           = fluxd.Fingerprint
	PublicKey             = fluxd.PublicKey
	GitConfig             = fluxd.GitConfig
	NotifyChange          = fluxd.NotifyChange
	JobProgress           = fluxd.JobProgress
	WorkloadImages        = fluxd.WorkloadImages
	Hold                  = fluxd.Hold
	RollbackSpec          = fluxd.RollbackSpec
	Commit                = fluxd.Commit
)

const (
	StatusReady        = fluxd.StatusReady
	StatusUpdating     = fluxd.StatusUpdating
	StatusStarted      = fluxd.StatusStarted
	StatusError        = fluxd.StatusError
	StatusUnknown      = fluxd.StatusUnknown
	ReadOnlyNotInRepo  = fluxd.ReadOnlyNotInRepo
	ReadOnlyNotReady   = fluxd.ReadOnlyNotReady
	ReadOnlyMode       = fluxd.ReadOnlyMode
	UpdateImages       = fluxd.UpdateImages
	UpdateContainers   = fluxd.UpdateContainers
	UpdatePolicy       = fluxd.UpdatePolicy
	UpdateSync         = fluxd.UpdateSync
	UpdateRollback     = fluxd.UpdateRollback
	ReleaseKindPlan    = fluxd.ReleaseKindPlan
	ReleaseKindExecute = fluxd.ReleaseKindExecute
	AllWorkloads       = fluxd.AllWorkloads
	AllLatestImages    = fluxd.AllLatestImages
	ResultSuccess      = fluxd.ResultSuccess
	ResultFailed       = fluxd.ResultFailed
	ResultSkipped      = fluxd.ResultSkipped
	ResultIgnored      = fluxd.ResultIgnored
	ResultUnknown      = fluxd.ResultUnknown
	JobQueued          = fluxd.JobQueued
	JobRunning         = fluxd.JobRunning
	JobSucceeded       = fluxd.JobSucceeded
	JobFailed          = fluxd.JobFailed
	GitUnconfigured    = fluxd.GitUnconfigured
	GitNew             = fluxd.GitNew
	GitCloned          = fluxd.GitCloned
	GitReady           = fluxd.GitReady
	GitUnreachable     = fluxd.GitUnreachable
)
