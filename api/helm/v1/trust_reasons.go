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
)
