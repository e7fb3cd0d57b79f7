package manifest

import (
	"errors"
	"fmt"
)

// Sentinel errors let the controller tell a policy refusal (the repository
// must change) from a passing fault; match them with errors.Is.
var (
	// ErrOutsideCheckout marks a path or symlink that resolves outside the
	// checkout root, or a path argument that is absolute or climbs with "..".
	ErrOutsideCheckout = errors.New("outside the checkout")
	// ErrSymlinkLoop marks a symlink cycle or a chain too long to resolve.
	ErrSymlinkLoop = errors.New("symlink loop")
	// ErrTooLarge marks a file over Options.MaxFileSize or a revision whose
	// files add up to more than Options.MaxTotalSize.
	ErrTooLarge = errors.New("size limit exceeded")
	// ErrTooManyObjects marks a revision with more than Options.MaxObjects
	// objects.
	ErrTooManyObjects = errors.New("object limit exceeded")
	// ErrRemoteReference marks a kustomization that refers to a remote base
	// or resource (a URL or git repository); only the checkout is read.
	ErrRemoteReference = errors.New("remote kustomize references are disabled")
	// ErrNotAllowed marks a kustomize feature helmflux refuses to run for
	// untrusted content (Helm chart inflation, writing files).
	ErrNotAllowed = errors.New("not allowed")
)

// FileError reports a problem with one file (or kustomization directory) of
// the checkout. The controller puts Path and Line on the GitSync status, so
// Path is always relative to the checkout root and slash-separated, never an
// absolute path of the operator's machine.
type FileError struct {
	// Path is the file or kustomization directory, relative to the checkout.
	Path string
	// Line is the 1-based line in Path, or 0 when no line applies.
	Line int
	// Err is the underlying problem.
	Err error
}

// Error formats the error the way compilers do: "path:line: problem".
func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

// Unwrap gives errors.Is and errors.As access to the underlying problem.
func (e *FileError) Unwrap() error { return e.Err }

func fileErr(path string, line int, err error) *FileError {
	return &FileError{Path: path, Line: line, Err: err}
}
