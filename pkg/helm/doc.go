// Package helm resolves charts and drives Helm v3 releases for the HelmRelease
// controller. It is the only package of helmflux that imports Helm's action
// package, so the rest of the operator never deals with Helm's configuration,
// storage drivers or client factories.
//
// Why it is shaped this way:
//
//   - Hundreds of releases are reconciled by a few workers, so everything a
//     release does not need to own is shared: one discovery cache, one REST
//     mapper, one clientset and the cluster's capabilities, computed once and
//     refreshed only when they may have changed. A Runner builds a cheap
//     action.Configuration per call on top of them.
//   - Client-side OpenAPI validation would download and parse the cluster's
//     schema for every release. The API server validates the same way when it
//     is asked to (fieldValidation=Strict), so a validating Runner asks it to
//     on every write instead.
//   - Ownership must survive a restart of the operator and a person's `helm`
//     commands, so it lives in the release itself: every rendered object
//     carries the Helm Operator's helm.fluxcd.io/antecedent annotation, and
//     the chart and values digests that produced a revision are labels of its
//     storage record.
//   - A release left pending by a killed process blocks every later action
//     ("another operation is in progress"). Unlock clears such a lock only
//     once it is older than the action's timeout, so a person's `helm upgrade`
//     in progress is never interrupted.
//   - Install and upgrade run with the caller's context: cancelling it (on
//     SIGTERM) ends the release failed, not pending.
package helm
