// Package v1alpha1 holds the helmflux.dev/v1alpha1 API: GitSync, which keeps a
// cluster in step with a git repository and writes image updates back to it.
//
// +kubebuilder:object:generate=true
// +groupName=helmflux.dev
package v1alpha1
