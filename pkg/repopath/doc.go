// Package repopath owns one rule: what a slash path taken from a user, a
// manifest or a tree may be to name something inside a repository (or a
// chart) without reaching outside it.
//
// The rule used to be written out wherever such a path arrived (the git
// reader, the git chart source, the HelmRelease values files, the
// automation's view of them), and the copies drifted: one accepted "." as a
// values file, another refused it. Keeping it here means a values file that
// the HelmRelease controller reads is exactly the one automation edits, and
// a fix to the rule reaches every reader.
//
// The package is pure (no file system, no I/O): it judges and cleans the
// text of a path, lexically. Symlinks met on the way are the reader's to
// confine; a reader that follows one cleans the joined path here again.
package repopath
