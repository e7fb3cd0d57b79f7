package helm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/git"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newCharts returns a Charts caching in a fresh temp dir, without git.
func newCharts(t testing.TB, opts ...ChartsOption) *Charts {
	t.Helper()
	return newChartsIn(t, filepath.Join(t.TempDir(), "charts"), nil, opts...)
}

func newChartsIn(t testing.TB, dir string, gc *git.Cache, opts ...ChartsOption) *Charts {
	t.Helper()
	c, err := NewCharts(dir, gc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustResolve(t testing.TB, c *Charts, src ChartSource) *ChartRef {
	t.Helper()
	ref, err := c.Resolve(testCtx(t), src)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", src.describe(), err)
	}
	return ref
}

// assertNoSecret fails if err's message holds any of the secrets.
func assertNoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func TestSourceValidation(t *testing.T) {
	c := newCharts(t)
	tests := []struct {
		name string
		src  ChartSource
	}{
		{"neither", ChartSource{Name: "app"}},
		{"both", ChartSource{Repository: "https://example.com", Git: "https://example.com/x.git", Name: "app"}},
		{"no name", ChartSource{Repository: "https://example.com"}},
		{"name with slash", ChartSource{Repository: "https://example.com", Name: "a/b"}},
		{"name with dots", ChartSource{Repository: "https://example.com", Name: "a..b"}},
		{"ftp", ChartSource{Repository: "ftp://example.com", Name: "app"}},
		{"no scheme", ChartSource{Repository: "example.com/charts", Name: "app"}},
		{"bad range", ChartSource{Repository: "oci://example.com/charts", Name: "app", Version: "~~1"}},
		{"oci with credentials", ChartSource{Repository: "oci://user:hunter2@example.com/charts", Name: "app", Version: "1.0.0"}},
		{"git without cache", ChartSource{Git: "https://example.com/x.git", Path: "chart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Resolve(testCtx(t), tt.src)
			if !errors.Is(err, ErrInvalidSource) {
				t.Fatalf("got %v, want ErrInvalidSource", err)
			}
			assertNoSecret(t, err, "hunter2")
		})
	}
	if _, err := c.Load(testCtx(t), nil); !errors.Is(err, ErrInvalidSource) {
		t.Errorf("Load(nil): got %v, want ErrInvalidSource", err)
	}
	bad := &ChartRef{Source: ChartSource{Repository: "https://example.com", Name: "app"}, Name: "app", Digest: "sha256:../../etc"}
	if _, err := c.Load(testCtx(t), bad); !errors.Is(err, ErrInvalidSource) {
		t.Errorf("Load with a bad digest: got %v, want ErrInvalidSource", err)
	}
}

func TestNewChartsRefusesBadOptions(t *testing.T) {
	for _, o := range []ChartsOption{WithMaxArchiveSize(0), WithTimeout(-1), WithIndexTTL(-time.Second), WithArchiveLimits(ArchiveLimits{})} {
		if _, err := NewCharts(t.TempDir(), nil, o); !errors.Is(err, ErrInvalidSource) {
			t.Errorf("got %v, want ErrInvalidSource", err)
		}
	}
	if _, err := NewCharts("", nil); err == nil {
		t.Error("an empty cache dir was accepted")
	}
}

func TestScrubError(t *testing.T) {
	src := &ChartSource{
		Repository: "https://bob:url-pass@example.com/charts",
		RepoAuth:   &RepoAuth{Username: "alice", Password: "p@ss word"},
		GitAuth:    &git.Auth{BearerToken: "tok-123"},
	}
	tests := []struct {
		err       error
		want      string
		unchanged bool
	}{
		{err: fmt.Errorf("fetch: %w", ErrAuthentication), unchanged: true},
		{err: fmt.Errorf("server said p@ss word: %w", ErrAuthentication), want: "server said <redacted>: authentication failed"},
		{err: errors.New("echo p%40ss+word"), want: "echo <redacted>"},
		{err: errors.New("GET https://x:y@example.com/index.yaml"), want: "GET https://example.com/index.yaml"},
		{err: errors.New("basic YWxpY2U6cEBzcyB3b3Jk"), want: "basic <redacted>"},
		{err: errors.New("token tok-123 and url-pass"), want: "token <redacted> and <redacted>"},
	}
	for _, tt := range tests {
		got := scrubError(tt.err, src)
		if tt.unchanged {
			if got != tt.err {
				t.Errorf("%v was rewritten to %v", tt.err, got)
			}
			continue
		}
		if got.Error() != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
		if errors.Is(tt.err, ErrAuthentication) != errors.Is(got, ErrAuthentication) {
			t.Errorf("%v lost its sentinel", got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 300)
	for raw, want := range map[string]string{
		"https://u:p@example.com/charts?token=abc#x": "https://example.com/charts",
		"https://token@example.com/values.yaml":      "https://example.com/values.yaml",
		"https://example.com/values.yaml?":           "https://example.com/values.yaml",
		"https://example.com/v.yaml#a%2Fb":           "https://example.com/v.yaml",
		"oci://example.com/charts":                   "oci://example.com/charts",
		"ssh://git@example.com:2222/org/repo.git":    "ssh://example.com:2222/org/repo.git",
		"git@github.com:org/repo.git":                "github.com:org/repo.git",
		"user:secret@example.com/repo.git":           "example.com/repo.git",
		"/srv/git/repo.git":                          "/srv/git/repo.git",
		"/srv/git/a@b.git":                           "/srv/git/a@b.git",
		"https://u:p@exa mple.com/%zz":               "<unparsable URL>",
		"https://u:secret@example.com:port/":         "<unparsable URL>",
		long:                                         long[:maxEntryNameInError] + "...",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
