package v1alpha1

// Condition reasons of a GitSync for what a tenant may not reach.
const (
	// LocalURLRefusedReason: spec.url names a repository on the operator's
	// machine (file://, a local path or a loopback host) and the operator
	// runs without --allow-local-urls.
	LocalURLRefusedReason = "LocalURLRefused"
	// InsecureCredentialsReason: spec.url is plain http:// and the GitSync
	// has credentials for it, without spec.allowInsecureHTTP. Nothing was
	// sent.
	InsecureCredentialsReason = "InsecureCredentials"
)
