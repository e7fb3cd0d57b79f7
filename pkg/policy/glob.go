package policy

import (
	"errors"
	"unicode/utf8"
)

// glob is a compiled glob pattern. helmflux does not use path.Match: there
// '*' stops at '/' (Flux v1's globs did not), and a malformed pattern is only
// reported while matching, so a bad annotation would look like "no tag
// matches". Compiling up front reports it once, from ParseFilter. The matcher
// is the iterative "last star" algorithm: it never backtracks further than
// the most recent '*', so matching takes O(len(pattern)*len(tag)) steps for
// any input.
type glob []globToken

type globTokenKind uint8

const (
	globLiteral globTokenKind = iota
	globAny                   // ?
	globStar                  // *
	globClass                 // [...]
)

type globToken struct {
	kind   globTokenKind
	r      rune        // globLiteral
	negate bool        // globClass: [^...]
	ranges []runeRange // globClass
}

type runeRange struct{ lo, hi rune }

var (
	errGlobEscape = errors.New("trailing backslash")
	errGlobClass  = errors.New("malformed character class")
)

func compileGlob(pattern string) (glob, error) {
	var g glob
	for i := 0; i < len(pattern); {
		r, n := utf8.DecodeRuneInString(pattern[i:])
		i += n
		switch r {
		case '*':
			if len(g) == 0 || g[len(g)-1].kind != globStar {
				g = append(g, globToken{kind: globStar})
			}
		case '?':
			g = append(g, globToken{kind: globAny})
		case '[':
			t, rest, err := compileClass(pattern[i:])
			if err != nil {
				return nil, err
			}
			g = append(g, t)
			i = len(pattern) - len(rest)
		case '\\':
			if i >= len(pattern) {
				return nil, errGlobEscape
			}
			r, n = utf8.DecodeRuneInString(pattern[i:])
			i += n
			g = append(g, globToken{kind: globLiteral, r: r})
		default:
			g = append(g, globToken{kind: globLiteral, r: r})
		}
	}
	return g, nil
}

// compileClass reads a character class after its '['. As in path.Match, '^'
// first negates, '-' between two characters forms a range, and '\' escapes
// the next character; '-' and ']' must be escaped to stand for themselves.
func compileClass(s string) (globToken, string, error) {
	t := globToken{kind: globClass}
	if len(s) > 0 && s[0] == '^' {
		t.negate = true
		s = s[1:]
	}
	for {
		if s == "" {
			return t, "", errGlobClass
		}
		if s[0] == ']' && len(t.ranges) > 0 {
			return t, s[1:], nil
		}
		lo, rest, err := classChar(s)
		if err != nil {
			return t, "", err
		}
		hi := lo
		if len(rest) > 0 && rest[0] == '-' {
			if hi, rest, err = classChar(rest[1:]); err != nil {
				return t, "", err
			}
			if hi < lo {
				return t, "", errGlobClass
			}
		}
		t.ranges = append(t.ranges, runeRange{lo, hi})
		s = rest
	}
}

func classChar(s string) (rune, string, error) {
	if s == "" || s[0] == '-' || s[0] == ']' {
		return 0, "", errGlobClass
	}
	if s[0] == '\\' {
		s = s[1:]
		if s == "" {
			return 0, "", errGlobEscape
		}
	}
	r, n := utf8.DecodeRuneInString(s)
	return r, s[n:], nil
}

func (t *globToken) matches(r rune) bool {
	switch t.kind {
	case globAny:
		return true
	case globLiteral:
		return r == t.r
	case globClass:
		in := false
		for _, rg := range t.ranges {
			if rg.lo <= r && r <= rg.hi {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

func (g glob) match(tag string) bool {
	s := []rune(tag)
	pi, si := 0, 0
	star, starS := -1, 0 // last '*' seen and where in s it started matching
	for si < len(s) {
		switch {
		case pi < len(g) && g[pi].kind == globStar:
			star, starS = pi, si
			pi++
		case pi < len(g) && g[pi].matches(s[si]):
			pi++
			si++
		case star >= 0:
			// Let the last '*' swallow one more character and retry.
			starS++
			pi, si = star+1, starS
		default:
			return false
		}
	}
	for pi < len(g) && g[pi].kind == globStar {
		pi++
	}
	return pi == len(g)
}
