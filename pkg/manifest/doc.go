// Package manifest turns a git checkout into the Kubernetes objects the
// GitSync controller applies.
//
// The checkout's content is untrusted: anyone who can push to the repository
// controls it. So Load treats the checkout root as a jail. Path arguments may
// not climb out of it, symlinks are followed only while they resolve inside
// it, every file read is size-capped, the number of objects is capped, and
// kustomize runs with builtin plugins only, no Helm inflation, no remote
// bases or resources (refused before kustomize could fetch them, so no
// network access and no git process) and a file system that refuses any path
// outside the checkout.
//
// Load refuses a whole revision on its first error rather than returning the
// objects it could read: applying part of a revision (and pruning the rest)
// is worse than applying nothing. Errors that concern a file are *FileError
// values carrying the checkout-relative path and line, so the controller can
// point the user at them on the GitSync status.
package manifest
