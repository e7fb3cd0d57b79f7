// Package impersonation builds the Kubernetes clients through which the
// operator acts for a tenant. Each one authenticates as the operator and
// impersonates one ServiceAccount (client-go's rest.Config.Impersonate), so
// the API server's RBAC, not the operator's own rights, decides what a
// tenant's objects may do. The controllers share it; it knows nothing of
// their kinds.
package impersonation
