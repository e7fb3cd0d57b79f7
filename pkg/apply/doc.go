// Package apply makes the cluster match a set of objects rendered from git:
// server-side apply with one field manager, Namespaces and CRDs first, a
// server-side dry-run of the whole set before anything changes, per-object
// results, and pruning of exactly the objects that left the set.
//
// It writes only what differs: each object is dry-run applied and compared with
// the live one, so a pass over an unchanged set makes no writes at all.
package apply
