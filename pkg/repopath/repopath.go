package repopath

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// The two classes of refusal, for errors.Is: callers map them to their own
// sentinels (a git reader's "invalid input" and "path escapes", a chart
// source's "invalid source"), and only ErrEscapes hints at an attack.
var (
	// ErrInvalid marks a path that cannot name what is asked for: empty, "."
	// where a file is needed, or holding a NUL byte or a backslash.
	ErrInvalid = errors.New("invalid path")
	// ErrEscapes marks a path that is absolute or climbs out of its root.
	ErrEscapes = errors.New("path leaves its root")
)

// maxQuoted bounds the part of a refused path quoted in its error: paths
// come from users and remote trees, and an error ends up in a status.
const maxQuoted = 200

// refusal is a refused path. Its message names the path and the reason;
// errors.Is matches its class, ErrInvalid or ErrEscapes.
type refusal struct {
	path   string
	reason string
	class  error
}

func (e *refusal) Error() string {
	p := e.path
	if len(p) > maxQuoted {
		p = p[:maxQuoted] + "..."
	}
	return fmt.Sprintf("path %q %s", p, e.reason)
}

func (e *refusal) Unwrap() error { return e.class }

// Clean returns p, the slash path of a file relative to a root, cleaned
// ("a/./b/../c.yaml" is "a/c.yaml"). It refuses a path that is empty,
// holds a NUL byte or a backslash (a separator on Windows, so never a name
// to trust), is absolute, climbs out of the root once cleaned, or names the
// root itself ("." and "a/.."), which is no file.
//
// A ".." that stays inside is cleaned away rather than refused: values file
// paths have always been allowed that, and a reader of git objects resolves
// the cleaned path, so it cannot mean anything else.
func Clean(p string) (string, error) {
	if p == "" {
		return "", &refusal{path: p, reason: "is empty", class: ErrInvalid}
	}
	if err := check(p); err != nil {
		return "", err
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &refusal{path: p, reason: "leaves its root", class: ErrEscapes}
	}
	if c == "." {
		return "", &refusal{path: p, reason: "names no file", class: ErrInvalid}
	}
	return c, nil
}

// CleanDir returns p, the slash path of a directory relative to a root,
// cleaned; "" and "." name the root and give ".". It refuses what Clean
// refuses, except the root, and also any ".." element at all, even one that
// would stay inside: directory paths (a chart's path, a GitSync's paths) are
// documented without "..", and a directory may be walked on disk, where
// "link/.." is not where the cleaned text points.
func CleanDir(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if err := check(p); err != nil {
		return "", err
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", &refusal{path: p, reason: `has a ".." element`, class: ErrEscapes}
		}
	}
	return path.Clean(p), nil
}

// check refuses what no path may hold, whatever it names.
func check(p string) error {
	switch {
	case strings.IndexByte(p, 0) >= 0:
		return &refusal{path: p, reason: "contains a NUL byte", class: ErrInvalid}
	case strings.IndexByte(p, '\\') >= 0:
		return &refusal{path: p, reason: `contains a backslash (the separator is "/")`, class: ErrInvalid}
	case path.IsAbs(p):
		return &refusal{path: p, reason: "is absolute", class: ErrEscapes}
	}
	return nil
}
