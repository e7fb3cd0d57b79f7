package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Sentinel errors let the controller map failures to conditions with
// errors.Is, because the messages themselves are scrubbed and not meant to be
// parsed.
var (
	// ErrAuthentication means the remote refused the credentials (or asked
	// for some and none were given): fixing the Secret is the only remedy.
	ErrAuthentication = errors.New("authentication failed")
	// ErrRepositoryNotFound means the remote has no repository at that URL
	// (or hides it from these credentials).
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrRefNotFound means the branch or tag does not exist on the remote, or
	// no tag matches the SemVer range.
	ErrRefNotFound = errors.New("reference not found")
	// ErrUnknownHostKey means the SSH server presented a key that known_hosts
	// does not list for that host.
	ErrUnknownHostKey = errors.New("unknown ssh host key")
	// ErrHostKeyMismatch means known_hosts lists other keys for that host (or
	// revokes the presented one): possibly an attack, never retried silently.
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	// ErrInvalidInput marks a bad URL, ref, path, revision or Auth: only a
	// spec or Secret change helps.
	ErrInvalidInput = errors.New("invalid input")
	// ErrPathEscapes means a path (or a symlink on the way) points outside
	// the repository tree.
	ErrPathEscapes = errors.New("path escapes the repository")
	// ErrTooLarge means a file or checkout is bigger than the caller allows.
	ErrTooLarge = errors.New("too large")
	// ErrNotAncestor means the `since` commit is not on the first-parent
	// history of the revision (typically after a force-push), so "every
	// commit since" is undefined.
	ErrNotAncestor = errors.New("not a first-parent ancestor")
	// ErrUnsafeTree means the commit's tree holds an entry no checkout may
	// write: a name such as "..", ".git" or one containing "/".
	ErrUnsafeTree = errors.New("unsafe tree entry")
	// ErrLocalURL means a Cache made WithoutLocalURLs was asked to reach a
	// repository on the operator's own machine (see IsLocalURL).
	ErrLocalURL = errors.New("local url refused")
	// ErrInsecureCredentials means credentials (basic auth, a bearer token)
	// would have gone to a plain http:// remote without the object's
	// opt-in (Auth.AllowInsecureHTTP); nothing was sent.
	ErrInsecureCredentials = errors.New("credentials over plain http refused")
)

// UnverifiedCommitError names the first commit whose OpenPGP signature could
// not be verified, so the controller can report it and stop the sync at the
// last verified revision instead of applying it.
type UnverifiedCommitError struct {
	// Hash is the full hex hash of the commit that failed verification.
	Hash string
	// Reason says why: unsigned, signed by an unknown key, bad signature.
	Reason string
}

// Error implements error.
func (e *UnverifiedCommitError) Error() string {
	return fmt.Sprintf("commit %s is not verified: %s", e.Hash, e.Reason)
}

// scrubbedError carries a message with every secret removed. It unwraps only
// to fixed-text sentinels (never to the original error chain, whose messages
// may still hold credentials), so errors.Is keeps working.
type scrubbedError struct {
	msg   string
	kinds []error
}

func (e *scrubbedError) Error() string   { return e.msg }
func (e *scrubbedError) Unwrap() []error { return e.kinds }

// kindsToKeep are the fixed-text errors a scrubbed error still matches.
var kindsToKeep = []error{
	ErrAuthentication, ErrRepositoryNotFound, ErrRefNotFound, ErrUnknownHostKey,
	ErrHostKeyMismatch, ErrInvalidInput, ErrPathEscapes, ErrTooLarge, ErrNotAncestor,
	ErrUnsafeTree, ErrPushRejected, ErrLocalURL, ErrInsecureCredentials, context.Canceled, context.DeadlineExceeded, fs.ErrNotExist,
}

// userinfoRE matches the userinfo part of any URL in free text.
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)

// scrub returns err with URL userinfo and every given secret removed from its
// message, classified into the package's sentinels. nil stays nil.
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var uerr *UnverifiedCommitError
	if errors.As(err, &uerr) {
		return err // built here from hashes and fixed reasons only
	}
	msg := scrubText(err.Error(), secrets...)
	var kinds []error
	for _, k := range kindsToKeep {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	if !errors.Is(err, ErrAuthentication) && isAuthFailure(err) {
		kinds = append(kinds, ErrAuthentication)
		msg += " (" + ErrAuthentication.Error() + ")"
	}
	if !errors.Is(err, ErrRepositoryNotFound) && errors.Is(err, transport.ErrRepositoryNotFound) {
		kinds = append(kinds, ErrRepositoryNotFound)
	}
	return &scrubbedError{msg: msg, kinds: kinds}
}

// scrubText removes URL userinfo and the secrets (raw and URL-escaped) from s.
func scrubText(s string, secrets ...string) string {
	s = strings.Join(strings.Fields(userinfoRE.ReplaceAllString(s, "$1")), " ")
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for _, v := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec), url.UserPassword("", sec).String()} {
			v = strings.TrimPrefix(v, ":")
			v = strings.TrimSuffix(v, "@")
			if v != "" {
				s = strings.ReplaceAll(s, v, "<redacted>")
			}
		}
	}
	return s
}

// isAuthFailure recognises the ways go-git and x/crypto/ssh report refused
// credentials.
func isAuthFailure(err error) bool {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
		return true
	}
	return strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// isRemoteFailure reports whether err came from talking to the remote (or
// from the caller giving up), as opposed to the local repository being
// broken. Only the latter justifies throwing the cache entry away.
func isRemoteFailure(err error) bool {
	for _, k := range []error{
		context.Canceled, context.DeadlineExceeded, ErrAuthentication, ErrRepositoryNotFound,
		ErrInsecureCredentials, ErrLocalURL, ErrRefNotFound, ErrUnknownHostKey, ErrHostKeyMismatch, ErrInvalidInput,
		transport.ErrAuthenticationRequired, transport.ErrAuthorizationFailed,
		transport.ErrRepositoryNotFound, transport.ErrEmptyRemoteRepository,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	return isAuthFailure(err)
}

// invalidf returns an ErrInvalidInput with a message.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}
