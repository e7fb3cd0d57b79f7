package git

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// wantTreeHash reads the tree hash of dir at commit straight from the bare
// remote with go-git, independently of the cache.
func wantTreeHash(t *testing.T, repo *gittest.Repo, commit, dir string) string {
	t.Helper()
	bare, err := gogit.PlainOpen(repo.BareDir())
	if err != nil {
		t.Fatal(err)
	}
	cm, err := bare.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := cm.Tree()
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		return tree.Hash.String()
	}
	sub, err := tree.Tree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sub.Hash.String()
}

func TestTreeHash(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{
		"README.md":                 "hello\n",
		"charts/app/Chart.yaml":     "name: app\n",
		"charts/app/values.yaml":    "a: 1\n",
		"charts/other/Chart.yaml":   "name: other\n",
		"charts/app/templates/x.md": "x",
	})
	repo.Symlink("app", "charts/app")
	repo.Symlink("top", ".")
	repo.Symlink("charts/up", "..")
	repo.Symlink("escape", "../outside")
	repo.Symlink("abs", "/etc")
	repo.Commit("links")
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	tests := []struct {
		dir     string
		want    string // dir to compare with, as go-git names it
		wantErr error
	}{
		{dir: "", want: ""},
		{dir: ".", want: ""},
		{dir: "charts/app", want: "charts/app"},
		{dir: "charts/app/", want: "charts/app"},
		{dir: "charts//app/templates", want: "charts/app/templates"},
		{dir: "app", want: "charts/app"},
		{dir: "app/templates", want: "charts/app/templates"},
		{dir: "top", want: ""},
		{dir: "charts/up/charts/other", want: "charts/other"},
		{dir: "../outside", wantErr: ErrPathEscapes},
		{dir: "charts/../../x", wantErr: ErrPathEscapes},
		{dir: "./charts/..", wantErr: ErrPathEscapes}, // a directory path has no ".." at all
		{dir: `charts\app`, wantErr: ErrInvalidInput},
		{dir: "/charts/app", wantErr: ErrPathEscapes},
		{dir: "escape", wantErr: ErrPathEscapes},
		{dir: "abs", wantErr: ErrPathEscapes},
		{dir: "missing", wantErr: fs.ErrNotExist},
		{dir: "charts/app/missing", wantErr: fs.ErrNotExist},
		{dir: "README.md", wantErr: ErrInvalidInput},
		{dir: "README.md/x", wantErr: ErrInvalidInput},
		{dir: "a\x00b", wantErr: ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got, err := c.TreeHash(testCtx(t), repo.URL(), rev, tt.dir)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := wantTreeHash(t, repo, rev.Hash, tt.want); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestTreeHashFollowsChanges(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{
		"charts/app/Chart.yaml": "name: app\n",
		"deploy/a.yaml":         "a: 1\n",
	})
	c := newTestCache(t)
	hash := func() string {
		t.Helper()
		rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
		h, err := c.TreeHash(testCtx(t), repo.URL(), rev, "charts/app")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := hash()
	repo.CommitFiles("elsewhere", map[string]string{"deploy/a.yaml": "a: 2\n"})
	if got := hash(); got != first {
		t.Errorf("a commit outside the dir changed its tree hash: %s -> %s", first, got)
	}
	repo.CommitFiles("inside", map[string]string{"charts/app/values.yaml": "x: 1\n"})
	if got := hash(); got == first {
		t.Error("a commit inside the dir kept its tree hash")
	}
}

func TestTreeHashErrors(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: 1\n"})
	repo.RawCommit("main", "with submodule", []gittest.RawEntry{
		{Name: "a.yaml", Mode: filemode.Regular, Content: "a"},
		{Name: "vendor", Mode: filemode.Submodule, Hash: strings.Repeat("12", 20)},
	})
	c := newTestCache(t)

	_, err := c.TreeHash(testCtx(t), repo.URL(), Revision{Hash: strings.Repeat("ab", 20)}, "")
	if err == nil {
		t.Fatal("tree hash of a never-fetched remote succeeded")
	}
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	if _, err := c.TreeHash(testCtx(t), repo.URL(), Revision{Hash: strings.Repeat("ab", 20)}, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unknown commit: got %v, want fs.ErrNotExist", err)
	}
	if _, err := c.TreeHash(testCtx(t), repo.URL(), Revision{Hash: "nothex"}, ""); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad hash: got %v, want ErrInvalidInput", err)
	}
	if _, err := c.TreeHash(testCtx(t), repo.URL(), rev, "vendor"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("submodule: got %v, want ErrInvalidInput", err)
	}
	if _, err := c.TreeHash(testCtx(t), "ftp://example.com/x", rev, ""); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad url: got %v, want ErrInvalidInput", err)
	}
}
