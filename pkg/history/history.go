// Package history reads what helmflux's own commits say about the images
// they wrote: the trailers that name every change (Helmflux-Image,
// Helmflux-Workload) and the quarantine of a failed tag
// (Helmflux-Quarantine). Image automation derives holds from it — a
// person's rollback, a quarantined tag — so they survive restarts and
// failovers without any state in the operator. Pure: it reads entries of a
// history walk (pkg/git's Log) and knows nothing of the cluster.
package history

import (
	"strings"

	"github.com/helmflux/helmflux/pkg/git"
)

// Trailer keys of helmflux's commits.
const (
	// ImageTrailer names one tag change: "<repository> <old> -> <new>",
	// "<none>" for an image that had no tag.
	ImageTrailer = "Helmflux-Image"
	// WorkloadTrailer names one workload changed: "<namespace>:<kind>/<name>".
	WorkloadTrailer = "Helmflux-Workload"
	// QuarantineTrailer marks a commit in which helmflux wrote a
	// container's previous tag back after the release with the named tag
	// failed: "<repository> <tag>".
	QuarantineTrailer = "Helmflux-Quarantine"
)

// NoTag is how ImageTrailer writes the absence of a tag.
const NoTag = "<none>"

// Key names an automated container the way the trailers can: by its
// workload and its image repository (as written in the file).
type Key struct{ Workload, Repository string }

// Written is the newest helmflux commit's account of one Key: the tag it
// wrote, or the tag it quarantined.
type Written struct {
	// Tag is the tag written (an automation commit) or quarantined.
	Tag string
	// From is the tag before Tag in an automation commit ("" when unknown
	// or when the image had none).
	From string
	// Quarantine is true when the commit quarantined Tag.
	Quarantine bool
	// Commit is the helmflux commit.
	Commit git.LogEntry
}

// commitTrailers is what one commit's trailers say.
type commitTrailers struct {
	workloads   map[string]bool
	images      map[string][][2]string // repository -> [from, to] pairs
	quarantines map[string]string      // repository -> quarantined tag
}

// IsHelmflux reports whether a commit carries helmflux's trailers (a
// Helmflux-Workload line that parses).
func IsHelmflux(e git.LogEntry) bool { return len(parse(e.Trailers).workloads) > 0 }

// parse reads helmflux's trailers from a commit. Lines that do not parse
// are ignored: a malformed trailer must not make a hold up.
func parse(ts []git.Trailer) commitTrailers {
	out := commitTrailers{workloads: map[string]bool{}, images: map[string][][2]string{}, quarantines: map[string]string{}}
	for _, t := range ts {
		f := strings.Fields(t.Value)
		switch {
		case strings.EqualFold(t.Key, WorkloadTrailer) && len(f) == 1:
			out.workloads[f[0]] = true
		case strings.EqualFold(t.Key, ImageTrailer) && len(f) == 4 && f[2] == "->":
			from := f[1]
			if from == NoTag {
				from = ""
			}
			out.images[f[0]] = append(out.images[f[0]], [2]string{from, f[3]})
		case strings.EqualFold(t.Key, QuarantineTrailer) && len(f) == 2:
			out.quarantines[f[0]] = f[1]
		}
	}
	return out
}

// LastWritten walks entries newest first (as git.Cache.Log returns them)
// and returns, for each key, what the newest helmflux commit naming it
// says: its workload in a Helmflux-Workload trailer and its repository in
// a Helmflux-Image or Helmflux-Quarantine trailer. A key whose newest
// commit is ambiguous (different new tags for the repository among the
// commit's workloads) gets nothing: no hold is known rather than a wrong
// one. Keys no commit names get nothing either.
func LastWritten(entries []git.LogEntry, keys []Key) map[Key]Written {
	out := map[Key]Written{}
	left := map[Key]bool{}
	for _, k := range keys {
		left[k] = true
	}
	for _, e := range entries {
		if len(left) == 0 {
			break
		}
		if len(e.Trailers) == 0 {
			continue
		}
		t := parse(e.Trailers)
		if len(t.workloads) == 0 {
			continue
		}
		for k := range left {
			if !t.workloads[k.Workload] {
				continue
			}
			if q, ok := t.quarantines[k.Repository]; ok {
				out[k] = Written{Tag: q, Quarantine: true, Commit: e}
				delete(left, k)
				continue
			}
			pairs, ok := t.images[k.Repository]
			if !ok {
				continue
			}
			delete(left, k)
			if to, from, ok := oneTarget(pairs); ok {
				out[k] = Written{Tag: to, From: from, Commit: e}
			}
		}
	}
	return out
}

// oneTarget returns the new tag all pairs agree on, and the old tag when
// they agree on that too.
func oneTarget(pairs [][2]string) (to, from string, ok bool) {
	to, from = pairs[0][1], pairs[0][0]
	for _, p := range pairs[1:] {
		if p[1] != to {
			return "", "", false
		}
		if p[0] != from {
			from = ""
		}
	}
	return to, from, true
}

// Short is the 7-character form of a commit hash.
func Short(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}
