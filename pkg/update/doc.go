// Package update finds the image references that automation may change in
// the YAML files of a git checkout, and rewrites a reference's tag, or an
// object's policy annotations, in place.
//
// Automation writes new tags back into git as ordinary commits, and people
// read those commits. So a change must be the tag and nothing else: the diff
// of an automated commit shows one token per image, and the comments, key
// order, quoting, indentation, line endings (LF or CRLF) and byte order mark
// of the rest of the file stay byte-identical. Re-encoding the file with a
// YAML library cannot promise that (yaml.v3 re-indents, re-quotes and moves
// comments), so the splicer is hand-written: yaml.v3 parses the file only to
// find the tag's node and its line and column; the splicer turns that
// position into a byte offset (yaml.v3 counts columns in characters, not
// bytes), measures the scalar's text in the original bytes and replaces just
// those bytes. The result is parsed again and must hold the new value at the
// same path, or the edit is refused: an error is always preferred to a wrong
// edit. Anything that cannot be changed in place that way (block scalars,
// multi-line scalars, explicit tags, aliases and anchored nodes) is refused.
// Applying a change twice gives what applying it once did.
//
// The package is pure: it reads and writes byte slices, never the file system
// or the network. The caller reads the checkout, size-caps the files, commits
// and pushes.
//
// # What Find understands
//
// Workloads of any apiVersion: Deployment, StatefulSet, DaemonSet,
// ReplicaSet and Job (spec.template.spec), CronJob
// (spec.jobTemplate.spec.template.spec) and Pod (spec), also as items of a
// kind: List. Every image: of containers and initContainers, named by the
// container's name:.
//
// HelmReleases of apiVersion helm.fluxcd.io/v1, as the Flux Helm Operator
// read them. Images are looked for in the values merged from the
// spec.valuesFrom[].gitFileRef values files (in order) and spec.values (last,
// highest precedence), in five shapes, each either at the values root
// (container "chart-image") or in the mapping under a top-level key K
// (container K):
//
//	image: repo:tag
//	image: repo                 + tag: tag
//	registry: reg + image: repo + tag: tag
//	image: {repository: repo, tag: tag}
//	image: {registry: reg, repository: repo, tag: tag}
//
// An image: {repository: repo} with no tag is left alone: the chart joins
// repository and tag itself, so there is no tag node to edit.
//
// Images are also found where the annotations repository.fluxcd.io/<c>,
// tag.fluxcd.io/<c> and registry.fluxcd.io/<c> map container c to dot paths
// in the values (without a tag path, the repository value holds "repo:tag").
// A mapped container is never reported a second time by the shape
// detection; a mapping that does not resolve is an error for its container.
//
// The tag is edited in the source that wins the merge for it: spec.values if
// it writes the tag, else the last values file that does. The repository may
// come from another source. Values from other valuesFrom sources (ConfigMaps,
// Secrets, URLs, chart files) are not in git and are not seen.
//
// # Policy annotations
//
// ApplyPolicies writes what fluxctl's automate, deautomate, lock, unlock
// and policy commands ask for, as fluxd did: it edits only the annotations
// of the object named (a workload or a helm.fluxcd.io/v1 HelmRelease, found
// as Find finds it). Policy names map to annotation keys with the
// fluxcd.io/ prefix (automated -> fluxcd.io/automated, tag.<c> ->
// fluxcd.io/tag.<c>); a policy already written under another spelling that
// pkg/policy reads (flux.weave.works/<name>, filter.fluxcd.io/<c>) is
// edited there rather than duplicated, and a removed policy loses every
// spelling. tag_all stands for the tag policy of every container of the
// object and is never written itself; with glob:* it removes them. New
// values are always double-quoted, so "true" stays a string; a value that
// is rewritten keeps its quoting where SetScalar can. A new annotations
// block goes after the last metadata entry, indented like metadata's own
// entries, in block or flow style as metadata is written; the annotations
// key goes when its last entry does, as it did in fluxd. Comments on the
// lines of a removed entry go with it; all other comments stay.
//
// Adding or removing an entry needs its whole extent, which yaml.v3 does
// not report: in block style it is taken to be the key's line and the lines
// indented deeper, in flow style the "key: value" and its comma. As with
// tags, the result is parsed again, and it must read exactly as before
// outside the object's annotations, which must hold exactly the planned
// string values; otherwise the change is refused.
//
// # Image references
//
// A reference is split, not parsed: the tag is the part after the last ':'
// that follows the last '/', so "localhost:5000/app" has no tag. A reference
// pinned by digest ("app@sha256:..." or "app:1.0@sha256:...") is skipped. The
// repository is reported as written.
package update
