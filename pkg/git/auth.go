package git

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Auth holds the credentials for one remote, built from a Secret's data by
// AuthFromSecret. Only the fields the URL's scheme uses are consulted.
type Auth struct {
	// Username and Password are HTTPS basic auth. Username is also the SSH
	// user when the URL names none.
	Username, Password string
	// BearerToken is sent as "Authorization: Bearer" over HTTPS.
	BearerToken string
	// Identity is a PEM (or OpenSSH) private key for SSH.
	Identity []byte
	// KnownHosts is known_hosts content; SSH refuses any host key not in it.
	KnownHosts []byte
	// Passphrase decrypts Identity when it is encrypted.
	Passphrase []byte
	// InsecureIgnoreHostKey accepts any SSH host key. It comes from the
	// spec, never from a Secret, so that turning checks off is visible.
	InsecureIgnoreHostKey bool
	// AllowInsecureHTTP lets basic auth or a bearer token go to a plain
	// http:// remote, where anyone on the path can read them. Like
	// InsecureIgnoreHostKey it comes from the spec, never from a Secret.
	// Without it such a remote is refused before anything is sent
	// (ErrInsecureCredentials).
	AllowInsecureHTTP bool
	// CABundle is extra PEM CA certificates trusted for HTTPS, for servers
	// behind a private CA.
	CABundle []byte
}

// Secret data keys AuthFromSecret understands; the names are Flux's so that
// existing Secrets work unchanged.
const (
	SecretKeyUsername    = "username"
	SecretKeyPassword    = "password"
	SecretKeyBearerToken = "bearerToken"
	SecretKeyIdentity    = "identity"
	SecretKeyIdentityPub = "identity.pub"
	SecretKeyKnownHosts  = "known_hosts"
	SecretKeyPassphrase  = "passphrase"
	SecretKeyCAFile      = "caFile"
	SecretKeyCACert      = "ca.crt"
)

// maxSecretValue bounds each Secret value we parse (Kubernetes caps a whole
// Secret at 1 MiB, this is a second line of defence).
const maxSecretValue = 1 << 20

// AuthFromSecret builds an Auth from a Secret's data and validates what it
// can without a remote: the identity parses (with its passphrase if
// encrypted) and known_hosts lines are well-formed. identity.pub is ignored.
// Errors never contain secret values.
func AuthFromSecret(data map[string][]byte) (*Auth, error) {
	for k, v := range data {
		if len(v) > maxSecretValue {
			return nil, invalidf("secret key %q is larger than %d bytes", k, maxSecretValue)
		}
	}
	a := &Auth{
		Username:    string(data[SecretKeyUsername]),
		Password:    string(data[SecretKeyPassword]),
		BearerToken: string(data[SecretKeyBearerToken]),
		Identity:    data[SecretKeyIdentity],
		KnownHosts:  data[SecretKeyKnownHosts],
		Passphrase:  data[SecretKeyPassphrase],
		CABundle:    data[SecretKeyCAFile],
	}
	if len(a.CABundle) == 0 {
		a.CABundle = data[SecretKeyCACert]
	}
	if a.BearerToken != "" && a.Password != "" {
		return nil, invalidf("secret has both %s and %s; keep one", SecretKeyBearerToken, SecretKeyPassword)
	}
	if len(a.Identity) > 0 {
		if _, err := a.signer(); err != nil {
			return nil, err
		}
	}
	if len(a.KnownHosts) > 0 {
		if err := checkKnownHosts(a.KnownHosts); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// secrets lists the values that must never appear in an error.
func (a *Auth) secrets(r *remote) []string {
	var s []string
	if r != nil {
		s = append(s, r.password)
	}
	if a != nil {
		s = append(s, a.Password, a.BearerToken, string(a.Passphrase))
	}
	return s
}

// signer parses Identity, decrypting it with Passphrase when needed.
func (a *Auth) signer() (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(a.Identity)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if len(a.Passphrase) == 0 {
			return nil, invalidf("identity is encrypted and the secret has no %s", SecretKeyPassphrase)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(a.Identity, a.Passphrase)
		if err != nil {
			// x/crypto's messages carry no key material; keep only the
			// common cause readable.
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, invalidf("identity: wrong %s", SecretKeyPassphrase)
			}
			return nil, invalidf("identity: %s", scrubText(err.Error(), string(a.Passphrase)))
		}
		return s, nil
	}
	if err != nil {
		return nil, invalidf("identity: %s", scrubText(err.Error(), string(a.Passphrase)))
	}
	return s, nil
}

// checkKnownHosts validates every non-empty, non-comment line.
func checkKnownHosts(b []byte) error {
	rest := b
	for line := 1; len(rest) > 0; line++ {
		_, _, _, _, next, err := ssh.ParseKnownHosts(rest)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalidf("%s: %s", SecretKeyKnownHosts, err.Error())
		}
		rest = next
	}
	return nil
}

// transportAuth turns Auth into go-git's AuthMethod for the remote's scheme.
// tmpDir receives the short-lived known_hosts file (see hostKeyCallback).
func transportAuth(ctx context.Context, r *remote, a *Auth, tmpDir string) (transport.AuthMethod, error) {
	switch r.scheme {
	case "file":
		return nil, nil
	case "http", "https":
		return httpAuth(r, a)
	case "ssh":
		return sshAuth(ctx, r, a, tmpDir)
	}
	return nil, invalidf("unsupported scheme %q", r.scheme)
}

func httpAuth(r *remote, a *Auth) (transport.AuthMethod, error) {
	m := httpAuthMethod(r, a)
	if m != nil && r.scheme == "http" && (a == nil || !a.AllowInsecureHTTP) {
		return nil, fmt.Errorf("%w: %s is plain http:// and would carry the credentials unencrypted; use https://, or allow it for this object (allowInsecureHTTP)",
			ErrInsecureCredentials, r.display)
	}
	return m, nil
}

// httpAuthMethod is what an http(s) remote is sent: a bearer token, basic
// auth from a, or else the URL's userinfo; nil for none.
func httpAuthMethod(r *remote, a *Auth) transport.AuthMethod {
	switch {
	case a != nil && a.BearerToken != "":
		return &githttp.TokenAuth{Token: a.BearerToken}
	case a != nil && (a.Username != "" || a.Password != ""):
		return &githttp.BasicAuth{Username: a.Username, Password: a.Password}
	case r.user != "" || r.password != "":
		return &githttp.BasicAuth{Username: r.user, Password: r.password}
	}
	return nil
}

// defaultSSHDialTimeout bounds the SSH dial and handshake when ctx has no
// deadline (go-git dials SSH without a context).
const defaultSSHDialTimeout = 60 * time.Second

// sshPublicKeys is go-git's PublicKeys with a dial timeout taken from ctx.
type sshPublicKeys struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

// ClientConfig implements gitssh.AuthMethod.
func (k *sshPublicKeys) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := k.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = k.timeout
	return cfg, nil
}

func sshAuth(ctx context.Context, r *remote, a *Auth, tmpDir string) (transport.AuthMethod, error) {
	if a == nil || len(a.Identity) == 0 {
		return nil, invalidf("ssh url %s needs an %s in the secret", r.display, SecretKeyIdentity)
	}
	signer, err := a.signer()
	if err != nil {
		return nil, err
	}
	user := r.user
	if user == "" {
		user = a.Username
	}
	if user == "" {
		user = "git"
	}
	pk := &gitssh.PublicKeys{User: user, Signer: signer}
	switch {
	case a.InsecureIgnoreHostKey:
		pk.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec // the spec asked for it explicitly
	case len(a.KnownHosts) == 0:
		return nil, invalidf("ssh url %s needs %s in the secret (or insecureIgnoreHostKey)", r.display, SecretKeyKnownHosts)
	default:
		cb, algos, err := hostKeyCallback(a.KnownHosts, tmpDir, r.hostPort())
		if err != nil {
			return nil, err
		}
		pk.HostKeyCallback = cb
		pk.HostKeyAlgorithms = algos
	}
	timeout := defaultSSHDialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	return &sshPublicKeys{PublicKeys: pk, timeout: timeout}, nil
}

// hostKeyCallback builds a strict callback from known_hosts bytes.
//
// x/crypto's knownhosts only reads files, and re-implementing its matcher
// (hashed |1| hosts, wildcards and negations, [host]:port, @revoked,
// @cert-authority) from ssh.ParseKnownHosts lines would duplicate
// security-sensitive code. So the bytes go to a 0600 file in a private temp
// dir that is removed before this returns: knownhosts.New reads it fully at
// construction. known_hosts is public data, so the file is no secret either.
//
// It also returns the host key algorithms known_hosts allows for hostPort, so
// the server is asked for a key type we can check rather than one it prefers.
func hostKeyCallback(knownHosts []byte, tmpDir, hostPort string) (ssh.HostKeyCallback, []string, error) {
	dir, err := os.MkdirTemp(tmpDir, "known-hosts-")
	if err != nil {
		return nil, nil, fmt.Errorf("write known_hosts: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	file := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(file, knownHosts, 0o600); err != nil {
		return nil, nil, fmt.Errorf("write known_hosts: %w", err)
	}
	db, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, invalidf("%s: %s", SecretKeyKnownHosts, err.Error())
	}
	return strictCallback(db), knownAlgorithms(db, hostPort), nil
}

// strictCallback turns knownhosts' errors into ones that name the host and
// the presented key's fingerprint.
func strictCallback(db ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(host string, remoteAddr net.Addr, key ssh.PublicKey) error {
		err := db(host, remoteAddr, key)
		if err == nil {
			return nil
		}
		fp := ssh.FingerprintSHA256(key)
		var kerr *knownhosts.KeyError
		var rerr *knownhosts.RevokedError
		switch {
		case errors.As(err, &rerr):
			return fmt.Errorf("%w: host %s presented %s key %s, which known_hosts revokes", ErrHostKeyMismatch, host, key.Type(), fp)
		case errors.As(err, &kerr) && len(kerr.Want) == 0:
			return fmt.Errorf("%w: host %s presented %s key %s, which is not in known_hosts", ErrUnknownHostKey, host, key.Type(), fp)
		case errors.As(err, &kerr):
			return fmt.Errorf("%w: host %s presented %s key %s, but known_hosts lists other keys for it", ErrHostKeyMismatch, host, key.Type(), fp)
		}
		return fmt.Errorf("check host key of %s: %w", host, err)
	}
}

// probeKey is a public key no known_hosts line can hold; checking it makes
// knownhosts list the keys it does hold for a host.
type probeKey struct{}

func (probeKey) Type() string                        { return "helmflux-probe" }
func (probeKey) Marshal() []byte                     { return []byte("helmflux-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key verifies nothing") }
func (a probeAddr) Network() string                  { return "tcp" }
func (a probeAddr) String() string                   { return string(a) }

// probeAddr is the net.Addr knownhosts needs for the probe.
type probeAddr string

// knownAlgorithms lists the host key algorithms for the key types known_hosts
// has for hostPort; nil (no preference) if it has none, e.g. only a CA line.
func knownAlgorithms(db ssh.HostKeyCallback, hostPort string) []string {
	var kerr *knownhosts.KeyError
	if err := db(hostPort, probeAddr(hostPort), probeKey{}); !errors.As(err, &kerr) {
		return nil
	}
	seen := map[string]bool{}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range kerr.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}
