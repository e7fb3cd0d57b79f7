package v1alpha1

// Condition reasons of a GitSync for what a tenant may not reach.
const (
	// LocalURLRefusedReason: spec.url names a repository on the operator's
	// machine (file://, a local path or a loopback host) and the operator
	// runs without --allow-local-urls.
	LocalURLRefusedReason = "LocalURLRefused"
	// IdentityRefusedReason: the GitSync names no secretRef for an SSH url,
	// and the operator's SSH deploy key serves only its own namespace
	// (--shared-git-identity=false).
	IdentityRefusedReason = "IdentityRefused"
	// CrossNamespaceRefReason: the GitSync's workloads live in, or read
	// image pull Secrets of, another namespace than the GitSync's, and the
	// operator runs with --no-cross-namespace-refs.
	CrossNamespaceRefReason = "CrossNamespaceRef"
	// InsecureCredentialsReason: spec.url is plain http:// and the GitSync
	// has credentials for it, without spec.allowInsecureHTTP. Nothing was
	// sent.
	InsecureCredentialsReason = "InsecureCredentials"
)
