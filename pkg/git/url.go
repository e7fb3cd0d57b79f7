package git

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// maxURLLength bounds a URL from a spec before anything parses it.
const maxURLLength = 4096

// remote is a parsed, credential-free view of a remote URL.
type remote struct {
	// fetchURL is what go-git dials: the caller's URL without a password.
	fetchURL string
	// display is fetchURL without any userinfo, safe for errors.
	display string
	// key is the normalised form the cache is keyed on.
	key string
	// scheme is one of "file", "http", "https", "ssh".
	scheme string
	// user and password are the userinfo from the URL, if any.
	user, password string
	// host is the lower-case host name or address, without port or brackets.
	host string
}

// parseRemote accepts http(s)://, ssh://, scp-like user@host:path and
// file:// URLs (or absolute local paths) and returns their normalised form.
func parseRemote(raw string) (*remote, error) {
	if raw == "" {
		return nil, invalidf("empty url")
	}
	if len(raw) > maxURLLength {
		return nil, invalidf("url longer than %d bytes", maxURLLength)
	}
	if strings.ContainsAny(raw, "\x00\r\n\t ") {
		return nil, invalidf("url %q contains whitespace or control characters", scrubText(raw))
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, invalidf("parse url %s: %s", scrubText(raw), scrubText(err.Error()))
	}
	r := &remote{scheme: strings.ToLower(ep.Protocol), user: ep.User, password: ep.Password}
	switch r.scheme {
	case "http", "https", "ssh":
		if ep.Host == "" {
			return nil, invalidf("url %s has no host", scrubText(raw))
		}
	case "file":
		if !path.IsAbs(ep.Path) {
			return nil, invalidf("file url %s must be absolute", scrubText(raw))
		}
	default:
		return nil, invalidf("url %s: unsupported scheme %q (want https, http, ssh or file)", scrubText(raw), ep.Protocol)
	}

	// The URL go-git dials keeps the user (ssh needs it) but never a password:
	// passwords travel through the AuthMethod only.
	dial := *ep
	dial.Password = ""
	dial.Host = strings.ToLower(ep.Host)
	dial.Protocol = r.scheme
	r.host = dial.Host
	// Dial the path the cache is keyed on, so that two URLs sharing a cache
	// entry reach the same repository: a file path lexically cleaned (a
	// symlink before a ".." would otherwise lead elsewhere than the key
	// says), others without trailing slashes.
	keyPath := strings.TrimRight(ep.Path, "/")
	if r.scheme == "file" {
		keyPath = strings.TrimRight(path.Clean(ep.Path), "/")
	}
	if keyPath != "" || r.scheme == "file" {
		// Escaped, as go-git decodes the path of the URL it dials again.
		dial.Path = (&url.URL{Path: keyPath}).EscapedPath()
		if dial.Path == "" {
			dial.Path = "/"
		}
	}
	if isSCPLike(raw) {
		// Keep the scp-like spelling: its path is relative to the login
		// directory, which ssh://host/path cannot express.
		r.fetchURL = raw
		if ep.Password != "" {
			return nil, invalidf("scp-like url must not contain a password")
		}
	} else {
		r.fetchURL = dial.String()
	}
	anon := dial
	anon.User = ""
	r.display = anon.String()
	if isSCPLike(raw) {
		r.display = anon.Host + ":" + anon.Path
	}

	// The key: scheme, lower-case host, port only if not the default, the
	// ssh user (it selects the account), path without trailing slashes.
	port := ep.Port
	if (r.scheme == "https" && port == 443) || (r.scheme == "http" && port == 80) || (r.scheme == "ssh" && port == 22) {
		port = 0
	}
	p := keyPath
	user := ""
	if r.scheme == "ssh" {
		user = ep.User
	}
	r.key = fmt.Sprintf("%s://%s@%s:%d/%s", r.scheme, user, dial.Host, port, strings.TrimPrefix(p, "/"))
	if isSCPLike(raw) {
		r.key += "#scp" // relative to the login directory, unlike ssh://
	}
	return r, nil
}

// isSCPLike reports whether raw is of the form [user@]host:path.
func isSCPLike(raw string) bool {
	if strings.Contains(raw, "://") {
		return false
	}
	// git's rule: a colon before any slash, and not a Windows drive letter.
	colon := strings.Index(raw, ":")
	slash := strings.Index(raw, "/")
	if colon < 0 || (slash >= 0 && slash < colon) {
		return false
	}
	return colon > 1
}

// dirName is the cache directory name of a remote: the hex SHA-256 of its key.
func (r *remote) dirName() string { return dirNameOf(r.key) }

// dirNameOf is the cache directory name of a remote key.
func dirNameOf(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// hostPort is the address go-git dials for an ssh remote, as the SSH host
// key callback sees it.
func (r *remote) hostPort() string {
	ep, err := transport.NewEndpoint(r.fetchURL)
	if err != nil {
		return ""
	}
	port := ep.Port
	if port <= 0 {
		port = 22
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(port))
}

// IsSSH reports whether url reaches its remote over SSH (ssh:// or the
// scp-like user@host:path), where a deploy key is the credential.
func IsSSH(url string) bool {
	r, err := parseRemote(url)
	return err == nil && r.scheme == "ssh"
}

// SameRepository reports whether two URLs name one repository, for rules
// that a different spelling of the URL must not escape (a GitSync's
// verification covering the git charts of its repository). It errs towards
// "same": the host's case, a default port, credentials and the ssh user, a
// trailing slash or ".git", the protocol among http, https and ssh (a forge
// serves one repository over all three: a GitSync over https and a
// chart.git over ssh name one repository), and ssh:// against the
// scp-like user@host:path spelling do not count; nor, except for file://
// paths, does the case of the path (the forges ignore it). A URL that does
// not parse names no repository.
func SameRepository(a, b string) bool {
	ka, err := repositoryKey(a)
	if err != nil {
		return false
	}
	kb, err := repositoryKey(b)
	return err == nil && ka == kb
}

// repositoryKey is the loose identity SameRepository compares.
func repositoryKey(raw string) (string, error) {
	r, err := parseRemote(raw)
	if err != nil {
		return "", err
	}
	ep, err := transport.NewEndpoint(r.fetchURL)
	if err != nil {
		return "", invalidf("parse url %s", r.display)
	}
	scheme, port := r.scheme, ep.Port
	if scheme == "http" || scheme == "https" || scheme == "ssh" {
		scheme = "net"
		if port == 80 || port == 443 || port == 22 {
			port = 0
		}
	}
	p := ep.Path
	if scheme == "file" {
		p = path.Clean(p)
	} else {
		p = strings.ToLower(p)
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	p = strings.TrimRight(p, "/")
	return fmt.Sprintf("%s://%s:%d/%s", scheme, r.host, port, p), nil
}
