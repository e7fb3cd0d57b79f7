package v1

// Reasons of the HelmRelease conditions for what a tenant may not reach.
const (
	// LocalURLRefusedReason: chart.git, chart.repository (or an archive URL
	// its index names, or a redirect) or an externalSourceRef names the
	// operator's machine (file://, a local path or a loopback host) and the
	// operator runs without --allow-local-urls.
	LocalURLRefusedReason = "LocalURLRefused"
	// InsecureCredentialsReason: chart.git or chart.repository is reached
	// over plain HTTP (an http:// URL, or an OCI registry the operator
	// reaches over plain HTTP) with credentials (chart.secretRef,
	// chartPullSecret or userinfo in the URL), without
	// chart.allowInsecureHTTP. Nothing was sent.
	InsecureCredentialsReason = "InsecureCredentials"
	// NotInInventoryReason: a gitFileRef was refused because the GitSync its
	// helmflux.dev/sync annotation names does not list the HelmRelease in
	// its inventory; gitFileRef reads only the repository that applied it.
	NotInInventoryReason = "NotInInventory"
	// InventoryPendingReason: the GitSync named by the HelmRelease's
	// helmflux.dev/sync annotation has not yet recorded the apply of the
	// annotated revision, so whether it applied the HelmRelease is not known
	// yet; no file is read until it lists the HelmRelease.
	InventoryPendingReason = "InventoryPending"
	// IdentityRefusedReason: chart.git over SSH names no secretRef, and the
	// operator's SSH deploy key serves only its own namespace
	// (--shared-git-identity=false).
	IdentityRefusedReason = "IdentityRefused"
	// CrossNamespaceRefReason: the HelmRelease names another namespace than
	// its own (targetNamespace, a valuesFrom ConfigMap or Secret, a
	// chart.secretRef) and the operator does not allow it
	// (--no-cross-namespace-refs, or no --allow-cross-namespace-refs for
	// references).
	CrossNamespaceRefReason = "CrossNamespaceRef"
	// ChartVerificationFailedReason: chart.git names the repository of a
	// GitSync with spec.verify (the GitSync that applied the HelmRelease, or
	// any GitSync in its namespace), and the chart's commit is not signed as
	// that GitSync demands (or its keys could not be read): the chart is
	// neither read nor installed until a signed commit comes.
	ChartVerificationFailedReason = "ChartVerificationFailed"
	// ValuesVerificationFailedReason: a valuesFrom gitFileRef reads the
	// repository of a GitSync with spec.verify at the revision the
	// HelmRelease's helmflux.dev/revision annotation names, and that revision
	// is neither the one the GitSync applied last nor signed as the GitSync
	// demands: the file is not read, the release stays as it was.
	ValuesVerificationFailedReason = "ValuesVerificationFailed"
	// ReleaseRecordRefusedReason: acting as the operator itself (no service
	// account), helmflux refused to create or delete a cluster-scoped object,
	// or one in a namespace other than the release's, that the release did
	// not create: a release record (Helm's storage Secret) that lists one is
	// taken for forged, and nothing of it is applied or deleted.
	ReleaseRecordRefusedReason = "ReleaseRecordRefused"
	// ReleaseLeftInPlaceReason: a deleted HelmRelease's release was not
	// uninstalled because its service account is gone or was refused the
	// uninstall (its rights went first, as when its namespace is deleted);
	// the finalizer was removed anyway, as the operator does not uninstall
	// with more rights than the tenant's.
	ReleaseLeftInPlaceReason = "ReleaseLeftInPlace"
)
