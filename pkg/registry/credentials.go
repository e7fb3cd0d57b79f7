package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// maxDockerConfigSize caps ParseDockerConfig's input: a Secret holds at most
// 1 MiB, so anything larger did not come from one.
const maxDockerConfigSize = 1 << 20

// dockerHub is the canonical host of Docker Hub, the one go-containerregistry
// sends requests to.
const dockerHub = name.DefaultRegistry // "index.docker.io"

// hubAliases are the names Docker Hub is written as in image references and
// docker config files.
var hubAliases = map[string]bool{
	"index.docker.io":         true,
	"docker.io":               true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// Credentials are registry logins by host, as found in image pull secrets.
// The zero value is anonymous everywhere. A scan uses only the login of its
// image's own registry host, so a secret for one registry never reaches
// another.
type Credentials struct {
	auths map[string]authn.AuthConfig
}

// dockerAuth is one entry of a docker config file.
type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// ParseDockerConfig reads the payload of a kubernetes.io/dockerconfigjson
// Secret (.dockerconfigjson: {"auths":{host:{...}}}) or of a legacy
// kubernetes.io/dockercfg one (.dockercfg: {host:{...}}), so the operator
// can scan with the pull secrets users already have.
//
// Keys may be "host", "host:port", "https://host/v1/" or "http://host"; the
// scheme and path are dropped. Docker Hub's aliases (docker.io,
// index.docker.io, registry-1.docker.io, registry.hub.docker.com and
// https://index.docker.io/v1/) are one host; when several keys name the
// same host, the first in byte order wins. An entry may give "auth"
// (base64 "user:pass", which wins over username/password), username and
// password, an identitytoken (OAuth refresh token) or a registrytoken
// (bearer token). Entries without any credential are skipped.
//
// Errors never quote a credential: they name an entry by its host only
// when that host is well-formed and contains no secret of the file, and
// otherwise by its position.
func ParseDockerConfig(data []byte) (Credentials, error) {
	if len(data) > maxDockerConfigSize {
		return Credentials{}, fmt.Errorf("parse docker config: larger than %d bytes", maxDockerConfigSize)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Credentials{}, fmt.Errorf("parse docker config: %s", jsonProblem(err))
	}
	entries := top
	if raw, ok := top["auths"]; ok {
		var auths map[string]json.RawMessage
		if err := json.Unmarshal(raw, &auths); err != nil || auths == nil {
			return Credentials{}, errors.New(`parse docker config: "auths" is not an object`)
		}
		entries = auths
	}

	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	// Decode every entry before judging any, so an error can avoid naming a
	// host that contains some entry's secret.
	decoded := make([]dockerAuth, len(keys))
	decodeErr := make([]bool, len(keys))
	var secrets []string
	for i, k := range keys {
		decodeErr[i] = decodeEntry(entries[k], &decoded[i]) != nil
		d := decoded[i]
		secrets = append(secrets, d.Auth, d.Password, d.IdentityToken, d.RegistryToken)
		if user, pass, ok := decodeAuthField(d.Auth); ok {
			secrets = append(secrets, user+":"+pass, pass)
		}
	}
	label := func(i int) string {
		h, err := normalizeHost(keys[i])
		if err == nil && !containsAny(keys[i], secrets) {
			return fmt.Sprintf("entry %q", h)
		}
		return fmt.Sprintf("entry %d (in key order)", i+1)
	}

	c := Credentials{auths: map[string]authn.AuthConfig{}}
	for i, k := range keys {
		if decodeErr[i] {
			return Credentials{}, fmt.Errorf("parse docker config: %s: not an object of strings", label(i))
		}
		d := decoded[i]
		host, err := normalizeHost(k)
		if err != nil {
			return Credentials{}, fmt.Errorf("parse docker config: %s: key is not a registry host", label(i))
		}
		cfg := authn.AuthConfig{
			Username:      d.Username,
			Password:      d.Password,
			IdentityToken: d.IdentityToken,
			RegistryToken: d.RegistryToken,
		}
		if d.Auth != "" {
			user, pass, ok := decodeAuthField(d.Auth)
			if !ok {
				return Credentials{}, fmt.Errorf(`parse docker config: %s: "auth" is not base64 of "user:password"`, label(i))
			}
			cfg.Username, cfg.Password = user, pass
		}
		if cfg.Username == "" && cfg.Password == "" && cfg.IdentityToken == "" && cfg.RegistryToken == "" {
			continue
		}
		if _, dup := c.auths[host]; dup {
			continue
		}
		c.auths[host] = cfg
	}
	return c, nil
}

// decodeEntry decodes one entry strictly enough that a wrong type is an
// error, without letting encoding/json quote the input in it.
func decodeEntry(raw json.RawMessage, d *dockerAuth) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return errors.New("not an object")
	}
	var bad bool
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names) // deterministic when keys differ only in case
	for _, k := range names {
		v := fields[k]
		var dst *string
		switch strings.ToLower(k) {
		case "auth":
			dst = &d.Auth
		case "username":
			dst = &d.Username
		case "password":
			dst = &d.Password
		case "identitytoken":
			dst = &d.IdentityToken
		case "registrytoken":
			dst = &d.RegistryToken
		default:
			continue // email, serveraddress and the like
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			bad = true // keep decoding: the caller needs every secret
		}
	}
	if bad {
		return errors.New("field is not a string")
	}
	return nil
}

// decodeAuthField decodes docker's "auth": base64 (padded or not) of
// "user:password".
func decodeAuthField(s string) (user, pass string, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return "", "", false
		}
	}
	user, pass, ok = strings.Cut(string(b), ":")
	return user, pass, ok
}

// jsonProblem describes a JSON error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	}
	return "not a JSON object"
}

// normalizeHost turns a docker config key or an image's registry into the
// host credentials are looked up by: scheme and path dropped, lower case,
// Docker Hub's aliases folded into index.docker.io.
func normalizeHost(key string) (string, error) {
	h := strings.TrimSpace(key)
	if i := strings.Index(h, "://"); i >= 0 {
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return "", errors.New("invalid registry URL")
		}
		h = u.Host
	} else if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	h = strings.ToLower(h)
	if h == "" {
		return "", errors.New("empty registry host")
	}
	if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
		return "", errors.New("invalid registry host")
	}
	if hubAliases[h] {
		h = dockerHub
	}
	return h, nil
}

// Merge returns c with the hosts of other added where c has none, so a
// workload's own pull secret wins over an operator-wide default.
func (c Credentials) Merge(other Credentials) Credentials {
	out := Credentials{auths: make(map[string]authn.AuthConfig, len(c.auths)+len(other.auths))}
	for h, a := range other.auths {
		out.auths[h] = a
	}
	for h, a := range c.auths {
		out.auths[h] = a
	}
	return out
}

// Hosts lists the hosts with credentials, sorted, for tests and debugging;
// never the secrets.
func (c Credentials) Hosts() []string {
	hosts := make([]string, 0, len(c.auths))
	for h := range c.auths {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return hosts
}

// forHost returns the login for a registry host, if there is one.
func (c Credentials) forHost(host string) (authn.AuthConfig, bool) {
	h, err := normalizeHost(host)
	if err != nil {
		return authn.AuthConfig{}, false
	}
	a, ok := c.auths[h]
	return a, ok
}

// secretsOf lists the strings of a login that must never appear in an error
// or a log: every secret field and the encodings a registry could echo back.
func secretsOf(a authn.AuthConfig) []string {
	var s []string
	if a.Password != "" {
		s = append(s, a.Password, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	}
	s = append(s, a.Auth, a.IdentityToken, a.RegistryToken)
	return slices.DeleteFunc(s, func(v string) bool { return v == "" })
}

// containsAny reports whether s contains one of the non-empty needles.
func containsAny(s string, needles []string) bool {
	for _, n := range needles {
		if n != "" && strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// minRedactLen is the shortest secret scrubbed from error text: shorter ones
// would mangle every message they happen to occur in.
const minRedactLen = 4

// redactedError hides secrets in an error's text while keeping the chain,
// so errors.As still finds a *RetryAfterError.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact scrubs the secrets of a login from err's text.
func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) >= minRedactLen {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}
