package registry

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

// fuzzPassword is the known password of the seed corpus.
const fuzzPassword = "fuzz-Canary-Passw0rd-42"

func FuzzParseDockerConfig(f *testing.F) {
	auth := base64.StdEncoding.EncodeToString([]byte("bot:" + fuzzPassword))
	for _, seed := range []string{
		`{"auths":{"ghcr.io":{"auth":"` + auth + `"}}}`,
		`{"auths":{"ghcr.io":{"username":"bot","password":"` + fuzzPassword + `"}}}`,
		`{"auths":{"https://index.docker.io/v1/":{"auth":"` + auth + `","email":"e"}}}`,
		`{"registry.example:5000":{"auth":"` + auth + `"}}`,
		`{"auths":{"` + fuzzPassword + `.example":{"auth":"%%","password":"` + fuzzPassword + `"}}}`,
		`{"auths":{"a.example":{"identitytoken":"` + fuzzPassword + `","registrytoken":7}}}`,
		`{"auths":{"ghcr.io":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(fuzzPassword)) + `"}}}`,
		`{"auths":`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseDockerConfig(data)
		if err == nil {
			for _, h := range c.Hosts() {
				if _, ok := c.forHost(h); !ok {
					t.Fatalf("host %q listed but has no login", h)
				}
			}
			return
		}
		msg := err.Error()
		for _, s := range passwordsIn(data) {
			if distinctive(s) && strings.Contains(msg, s) {
				t.Fatalf("error %q contains the password %q", msg, s)
			}
		}
		if strings.Contains(string(data), fuzzPassword) && strings.Contains(msg, fuzzPassword) {
			t.Fatalf("error %q contains the seeded password", msg)
		}
	})
}

// passwordsIn finds, independently of the parser, every secret a docker
// config may hold: password, identity and registry tokens, the raw auth
// field and the password decoded from it.
func passwordsIn(data []byte) []string {
	var top map[string]any
	if json.Unmarshal(data, &top) != nil {
		return nil
	}
	entries := top
	if a, ok := top["auths"].(map[string]any); ok {
		entries = a
	}
	var out []string
	for _, v := range entries {
		e, ok := v.(map[string]any)
		if !ok {
			continue
		}
		for k, fv := range e {
			s, ok := fv.(string)
			if !ok {
				continue
			}
			switch strings.ToLower(k) {
			case "password", "identitytoken", "registrytoken":
				out = append(out, s)
			case "auth":
				out = append(out, s)
				for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
					if b, err := enc.DecodeString(strings.TrimRight(s, "=")); err == nil {
						if _, pass, ok := strings.Cut(string(b), ":"); ok {
							out = append(out, pass)
						}
					}
					if b, err := enc.DecodeString(s); err == nil {
						if _, pass, ok := strings.Cut(string(b), ":"); ok {
							out = append(out, pass)
						}
					}
				}
			}
		}
	}
	return out
}

// distinctive reports whether s is unlike anything an error message says
// by itself: at least 8 characters mixing letters and digits.
func distinctive(s string) bool {
	var letter, digit bool
	for _, r := range s {
		letter = letter || unicode.IsLetter(r)
		digit = digit || unicode.IsDigit(r)
	}
	return len(s) >= 8 && letter && digit
}
