package update

import (
	"strings"

	"github.com/helmflux/helmflux/pkg/policy"
)

// SplitRef splits an image reference as written into its name (everything
// before the tag: registry, port and path as the user wrote them) and its tag.
//
// The tag is the part after the last ':' that comes after the last '/', so
// "localhost:5000/app" has no tag and "localhost:5000/app:1.0" has tag "1.0".
// A reference with a digest ("app@sha256:...", also "app:1.0@sha256:...") is
// pinned and not automatable: ok is false. So is anything that cannot be an
// image reference at all (empty, whitespace, an empty name, a malformed tag).
//
// This is deliberately a splitter, not a parser: the name is returned as
// written (no "docker.io/library/" is added), because the caller writes it
// back into the user's file, and the registry layer parses it properly when
// it lists tags.
func SplitRef(s string) (name, tag string, ok bool) {
	if s == "" || strings.ContainsAny(s, "@ \t\r\n\"'") || strings.ContainsFunc(s, isControl) {
		return "", "", false
	}
	slash := strings.LastIndexByte(s, '/')
	colon := strings.LastIndexByte(s, ':')
	name = s
	if colon > slash {
		name, tag = s[:colon], s[colon+1:]
		if !policy.ValidTag(tag) {
			return "", "", false
		}
	}
	if name == "" || strings.HasSuffix(name, "/") {
		return "", "", false
	}
	return name, tag, true
}

// joinRepository joins a separately written registry and repository the way
// a chart template would ("{{ .registry }}/{{ .repository }}").
func joinRepository(registry, repository string) string {
	if registry == "" {
		return repository
	}
	return strings.TrimSuffix(registry, "/") + "/" + repository
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
