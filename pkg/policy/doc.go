// Package policy decides which image tag a container should run, from the
// Flux v1 automation annotations of its workload (or HelmRelease) and a scan
// of the image's registry repository.
//
// It exists so that the one decision helmflux makes on its own, writing a new
// tag into a user's git repository, lives in pure code: no I/O and no clock,
// only the values passed in, so every rule is covered by table tests and
// fuzzing. The registry client and the git writer around it stay dumb.
//
// Decide gives two guarantees:
//
//   - No downgrade. When the current tag passes the filter and ranks at least
//     as high as every candidate, it stays. For semver, numeric and
//     alphabetical order the current tag is ranked from its own string, so a
//     registry that lost (or hides) the newest tag cannot move a workload
//     back. For time order a current tag missing from the scan stays too:
//     its age is unknown.
//   - No decision from an incomplete scan. A scan that missed a page of the
//     tag list, or (for time order) lacks the creation time of a candidate,
//     yields ErrIncompleteScan rather than a tag that only looks newest.
//
// Annotations ("<c>" is a container name, or "chart-image" for the image of a
// HelmRelease; the current fluxcd.io/ prefix wins over flux.weave.works/):
//
//	fluxcd.io/automated: "true"           automation may write new tags to git
//	fluxcd.io/locked: "true"              no release at all, automated or manual
//	fluxcd.io/locked_msg, locked_user     why and by whom, shown to the user
//	fluxcd.io/ignore: "true"              automation skips the object
//	filter.fluxcd.io/<c>: <filter>        tag filter of container c (wins)
//	fluxcd.io/tag.<c>: <filter>           tag filter, Flux v1 spelling
//	flux.weave.works/tag.<c>: <filter>    tag filter, legacy spelling
//	order.helmflux.dev/<c>: <order>       semver, time, numeric[:asc|:desc],
//	                                      alphabetical[:asc|:desc]
//	extract.helmflux.dev/<c>: <template>  ordering key from a regex filter's
//	                                      submatches, e.g. "$ts" or "${1}"
//
// Keys starting with fluxcd.io/ are also read with flux.weave.works/ in
// its place. Boolean annotations are true only for the exact
// string "true", as in Flux v1. A filter is "glob:<pattern>",
// "semver:<range>", "regex:<re>" or "regexp:<re>", or a bare glob; without
// one a container follows glob:*. Without an order, semver filters rank by
// version and all others by image creation time, as in Flux v1. The tag
// "latest" is never chosen unless the filter is exactly glob:latest.
//
// The package does not look at Automated, Locked or Ignored itself: whether
// to act on a Decision is the caller's call.
package policy
