package git

import (
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Ref picks the revision a GitSync follows: at most one of Branch, Tag and
// SemVer; all empty means the remote's HEAD (its default branch), so a spec
// without a ref keeps working when the default branch is renamed.
type Ref struct {
	// Branch follows the tip of a branch, force-pushes included.
	Branch string
	// Tag pins one tag (lightweight or annotated).
	Tag string
	// SemVer follows the highest tag matching a Masterminds range such as
	// ">=1.2.0 <2.0.0"; tags may carry a "v" prefix, others are ignored.
	SemVer string
}

// validate checks that at most one field is set and that names are valid
// git ref names, before anything goes over the network.
func (r Ref) validate() error {
	n := 0
	for _, v := range []string{r.Branch, r.Tag, r.SemVer} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return invalidf("ref: set at most one of branch, tag and semver")
	}
	if r.Branch != "" {
		if err := plumbing.NewBranchReferenceName(r.Branch).Validate(); err != nil || strings.HasPrefix(r.Branch, "refs/") {
			return invalidf("branch %q is not a valid branch name", r.Branch)
		}
	}
	if r.Tag != "" {
		if err := plumbing.NewTagReferenceName(r.Tag).Validate(); err != nil || strings.HasPrefix(r.Tag, "refs/") {
			return invalidf("tag %q is not a valid tag name", r.Tag)
		}
	}
	return nil
}

// Revision is a resolved commit and the name it was reached by, so status
// can say "main@sha1:…" the way Flux v2 does.
type Revision struct {
	// Ref is the branch or tag name ("main", "v1.2.0"); for Ref{} it is the
	// branch the remote's HEAD names. Empty for a bare commit.
	Ref string
	// Hash is the commit's full lower-case hex SHA-1.
	Hash string
}

// String formats the revision as Flux v2 does: "main@sha1:<hash>", or
// "sha1:<hash>" without a ref.
func (r Revision) String() string {
	if r.Ref == "" {
		return "sha1:" + r.Hash
	}
	return r.Ref + "@sha1:" + r.Hash
}

// ParseRevision reads back what Revision.String wrote (for example from a
// status field), accepting "<ref>@sha1:<hash>", "sha1:<hash>" and a bare hash.
func ParseRevision(s string) (Revision, error) {
	ref, h := "", strings.TrimPrefix(s, "sha1:")
	if i := strings.LastIndex(s, "@sha1:"); i >= 0 {
		ref, h = s[:i], s[i+len("@sha1:"):]
	}
	if !isHash(h) {
		return Revision{}, invalidf("revision %q: want <ref>@sha1:<40 hex digits>", s)
	}
	return Revision{Ref: ref, Hash: strings.ToLower(h)}, nil
}

// isHash reports whether s is a full hex SHA-1.
func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// hashOf validates and converts a revision's hash.
func (r Revision) hashOf() (plumbing.Hash, error) {
	if !isHash(r.Hash) {
		return plumbing.ZeroHash, invalidf("revision hash %q is not 40 hex digits", r.Hash)
	}
	return plumbing.NewHash(strings.ToLower(r.Hash)), nil
}
