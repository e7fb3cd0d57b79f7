// Package git gives the GitSync controller what it needs from a git remote —
// a resolved revision, the tree at that revision, single files from it and
// OpenPGP verification of its history — without knowing anything of
// Kubernetes or CRDs.
//
// Why it is shaped this way:
//
//   - A reconcile runs every interval for every GitSync, so cloning each time
//     would cost minutes and bandwidth. A Cache keeps one bare repository per
//     remote URL on disk and fetches only the one ref a reconcile asks for; an
//     unchanged remote costs a single ref advertisement.
//   - Several reconciles may share a URL. A per-URL lock (exclusive for Fetch,
//     shared for reads) keeps the on-disk repository consistent; different
//     URLs proceed in parallel. A corrupted cache entry is removed and cloned
//     again instead of failing forever.
//   - Everything it reads is untrusted: remote trees may contain "../" names,
//     symlinks pointing anywhere and huge blobs. Checkout writes through an
//     os.Root so nothing can land outside the target directory, and both
//     Checkout and ReadFile are size-capped.
//   - Credentials come from Secrets and must never surface in a status or a
//     log, so every error that may carry remote text is scrubbed of URL
//     userinfo and of the secret values themselves.
//   - Holds (a person's rollback, a quarantined tag) are derived from the
//     history of the branch automation writes to, every pass. Log and
//     PathChanges walk it within bounds (commits, age) and keep the parsed
//     commits — parents, time, author, subject, trailers — in a bounded LRU
//     shared by all walks: commits never change, so a pass reads only what is
//     new since the last one. Messages are untrusted and read only in part.
//   - It is pure go-git: the operator image has no git binary. To that end
//     the package replaces go-git's file:// transport (which execs
//     git-upload-pack) with go-git's in-process server when it is loaded.
package git
