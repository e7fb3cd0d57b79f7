// Package sweep evicts the entries of on-disk caches by age and total size,
// least recently used first, so that the operator's caches (git
// repositories, chart indexes and archives, registry tag lists) cannot fill
// the disk over months of use. An entry is one top-level file or directory
// of a cache directory; its modification time is its last use, which the
// cache that owns it refreshes when it uses it (or at least when it writes
// it).
package sweep
