// Package v1alpha1 holds the helmflux.dev/v1alpha1 API: GitSync, which keeps a
// cluster in step with a git repository and writes image updates back to it,
// and Alert, which sends the events of a namespace's GitSyncs and
// HelmReleases to a webhook.
//
// +kubebuilder:object:generate=true
// +groupName=helmflux.dev
package v1alpha1
