package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// FilterKind names the language of a tag filter. The names are the prefixes
// Flux v1 users already write in their annotations.
type FilterKind string

// The filter kinds ParseFilter understands.
const (
	// FilterGlob matches tags against a glob pattern (see ParseFilter).
	FilterGlob FilterKind = "glob"
	// FilterSemver matches tags that parse as semantic versions inside a
	// Masterminds/semver constraint such as "~1.2" or ">=1.0 <2".
	FilterSemver FilterKind = "semver"
	// FilterRegex matches tags against a Go (RE2) regular expression.
	FilterRegex FilterKind = "regex"
)

// Filter selects which tags of a repository a container may be updated to.
// Build one with ParseFilter: it compiles the pattern once. The zero Filter
// matches every tag, like "glob:*", so a zero ContainerPolicy means Flux v1's
// default.
type Filter struct {
	// Kind is the filter language.
	Kind FilterKind
	// Pattern is the text after the "kind:" prefix, trimmed of spaces.
	Pattern string

	c *compiledFilter
}

// compiledFilter remembers which Kind and Pattern it was compiled from, so a
// Filter whose exported fields were changed after parsing is recompiled
// rather than matched with a stale pattern.
type compiledFilter struct {
	kind    FilterKind
	pattern string
	glob    glob
	re      *regexp.Regexp
	semver  *semver.Constraints
}

// errEmptyFilter is returned for an empty filter: Flux v1 treated a missing
// pattern as "match anything" by accident; helmflux asks for glob:* instead.
var errEmptyFilter = errors.New("empty filter (use glob:* to allow every tag)")

// ParseFilter parses a tag filter as written in an annotation:
//
//	glob:<pattern>   * any run of characters, ? one character, [a-z] and [^a-z]
//	                 classes, \ escapes the next character
//	semver:<range>   a Masterminds/semver/v3 constraint, e.g. "~1.2", "^2", ">=1.0 <2"
//	regex:<re>       a Go RE2 regular expression, unanchored: use ^...$ to anchor
//	regexp:<re>      the same as regex:
//
// A value without one of these prefixes is a glob, as in Flux v1. A value
// starting with an unknown "word:" prefix (such as "Semver:~1" or
// "semvr:~1") is refused rather than read as a glob: tags never contain ':',
// so Flux v1 silently matched nothing for such typos.
//
// Globs use helmflux's own matcher instead of path.Match: '*' also matches
// '/', and matching takes at most len(pattern)*len(tag) steps for any
// input. A semver filter matches the tags semver.NewVersion accepts: an
// optional "v" prefix and short versions such as "1.2" (read as 1.2.0), the
// same tags Flux v1 accepted. As with Masterminds constraints in general,
// pre-releases match only a range that names a pre-release itself.
func ParseFilter(s string) (Filter, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Filter{}, errEmptyFilter
	}
	kind, pattern := FilterGlob, s
	switch {
	case strings.HasPrefix(s, "glob:"):
		pattern = s[len("glob:"):]
	case strings.HasPrefix(s, "semver:"):
		kind, pattern = FilterSemver, s[len("semver:"):]
	case strings.HasPrefix(s, "regex:"):
		kind, pattern = FilterRegex, s[len("regex:"):]
	case strings.HasPrefix(s, "regexp:"):
		kind, pattern = FilterRegex, s[len("regexp:"):]
	default:
		if word, _, ok := strings.Cut(s, ":"); ok && isWord(word) {
			return Filter{}, fmt.Errorf("unknown filter kind %q (want glob:, semver: or regex:)", word)
		}
	}
	pattern = strings.TrimSpace(pattern)
	if pattern == "" {
		return Filter{}, fmt.Errorf("%s filter: %w", kind, errEmptyFilter)
	}
	c, err := compileFilter(kind, pattern)
	if err != nil {
		return Filter{}, err
	}
	return Filter{Kind: kind, Pattern: pattern, c: c}, nil
}

func compileFilter(kind FilterKind, pattern string) (*compiledFilter, error) {
	c := &compiledFilter{kind: kind, pattern: pattern}
	var err error
	switch kind {
	case FilterGlob:
		c.glob, err = compileGlob(pattern)
	case FilterSemver:
		c.semver, err = semver.NewConstraint(pattern)
	case FilterRegex:
		c.re, err = regexp.Compile(pattern)
	default:
		return nil, fmt.Errorf("unknown filter kind %q (want glob, semver or regex)", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s filter %q: %w", kind, pattern, err)
	}
	return c, nil
}

// isWord reports whether s looks like a filter kind: a non-empty run of ASCII
// letters.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// compiled returns the compiled form of f, compiling it when f was built by
// hand or changed after parsing. The zero Filter compiles to glob:*.
func (f Filter) compiled() (*compiledFilter, error) {
	if f.Kind == "" && f.Pattern == "" {
		return compileFilter(FilterGlob, "*")
	}
	if f.c != nil && f.c.kind == f.Kind && f.c.pattern == f.Pattern {
		return f.c, nil
	}
	if f.Kind == "regexp" {
		return compileFilter(FilterRegex, f.Pattern)
	}
	return compileFilter(f.Kind, f.Pattern)
}

// Match reports whether tag passes the filter. An invalid hand-built Filter
// matches nothing, so a mistake can never widen what automation may deploy.
func (f Filter) Match(tag string) bool {
	c, err := f.compiled()
	if err != nil {
		return false
	}
	return c.match(tag)
}

func (c *compiledFilter) match(tag string) bool {
	switch c.kind {
	case FilterGlob:
		return c.glob.match(tag)
	case FilterSemver:
		v, err := semver.NewVersion(tag)
		return err == nil && c.semver.Check(v)
	case FilterRegex:
		return c.re.MatchString(tag)
	}
	return false
}

// String returns the canonical "kind:pattern" form, which ParseFilter reads
// back to the same filter; messages and decisions quote it so users see the
// filter that was applied, not the alias they typed.
func (f Filter) String() string {
	if f.Kind == "" && f.Pattern == "" {
		return "glob:*"
	}
	return string(f.Kind) + ":" + f.Pattern
}

// isGlobLatest reports whether f is exactly glob:latest, the one filter for
// which the "latest" tag is a candidate.
func (f Filter) isGlobLatest() bool {
	return f.Kind == FilterGlob && f.Pattern == latest
}
