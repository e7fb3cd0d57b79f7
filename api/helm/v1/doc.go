// Package v1 holds the helm.fluxcd.io/v1 HelmRelease API.
//
// It keeps the Flux Helm Operator's v1 schema field for field, with the same JSON
// names and types, so that HelmReleases written for the Helm Operator are accepted
// unchanged; helmflux's additions (oci:// chart repositories, gitFileRef values and
// the Ready/Reconciling/Stalled conditions) only add optional fields.
//
// +kubebuilder:object:generate=true
// +groupName=helm.fluxcd.io
package v1
