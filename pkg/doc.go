// Package pkg is the root of helmflux's libraries: git, manifest, apply, helm,
// registry, policy, update and repopath. Each subpackage has one
// responsibility; none of them imports operator/ or cli/.
package pkg
