package git

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// listTree returns every path under dir with a one-letter kind and the
// permission bits: "f644", "f755", "d755", "l->target".
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = "l->" + target
		case fi.IsDir():
			got[filepath.ToSlash(rel)] = "d" + fi.Mode().Perm().String()
		default:
			got[filepath.ToSlash(rel)] = "f" + fi.Mode().Perm().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCheckout(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{
		"README.md":          "hello\n",
		"deploy/app.yaml":    "kind: Deployment\n",
		"scripts/run.sh":     "#!/bin/sh\necho hi\n",
		"deploy/nested/x.md": "x",
	})
	repo.Chmod("scripts/run.sh", 0o755)
	repo.Symlink("deploy/link.yaml", "app.yaml")
	repo.Symlink("escape", "../../etc/passwd") // written as is: readers confine
	repo.Commit("modes and links")
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	tests := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "out") }},
		{"empty dir", func(t *testing.T) string { return t.TempDir() }},
	}
	want := map[string]string{
		"README.md":          "f-rw-r--r--",
		"deploy":             "d-rwxr-xr-x",
		"deploy/app.yaml":    "f-rw-r--r--",
		"deploy/link.yaml":   "l->app.yaml",
		"deploy/nested":      "d-rwxr-xr-x",
		"deploy/nested/x.md": "f-rw-r--r--",
		"escape":             "l->../../etc/passwd",
		"scripts":            "d-rwxr-xr-x",
		"scripts/run.sh":     "f-rwxr-xr-x",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			if err := c.Checkout(testCtx(t), repo.URL(), rev, dir); err != nil {
				t.Fatal(err)
			}
			got := listTree(t, dir)
			if len(got) != len(want) {
				t.Errorf("got %d entries, want %d: %v", len(got), len(want), got)
			}
			for p, w := range want {
				if got[p] != w {
					t.Errorf("%s: got %q, want %q", p, got[p], w)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, "scripts", "run.sh"))
			if err != nil || string(b) != "#!/bin/sh\necho hi\n" {
				t.Errorf("run.sh = %q, %v", b, err)
			}
		})
	}

	t.Run("non-empty dir refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := c.Checkout(testCtx(t), repo.URL(), rev, dir)
		if !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("got %v, want ErrInvalidInput", err)
		}
	})
	t.Run("unknown revision", func(t *testing.T) {
		parent := t.TempDir()
		err := c.Checkout(testCtx(t), repo.URL(), Revision{Hash: strings.Repeat("ab", 20)}, filepath.Join(parent, "out"))
		if err == nil {
			t.Fatal("checkout of an unknown commit succeeded")
		}
		assertDirEntries(t, parent)
	})
}

// assertDirEntries fails unless dir holds exactly names (nothing left over
// by a failed checkout).
func assertDirEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	sort.Strings(names)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestCheckoutSkipsSubmodules(t *testing.T) {
	repo := gittest.NewRepo(t, nil)
	repo.RawCommit("main", "with submodule", []gittest.RawEntry{
		{Name: "a.yaml", Mode: filemode.Regular, Content: "a"},
		{Name: "vendor", Mode: filemode.Submodule, Hash: strings.Repeat("12", 20)},
	})
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	dir := filepath.Join(t.TempDir(), "out")
	if err := c.Checkout(testCtx(t), repo.URL(), rev, dir); err != nil {
		t.Fatal(err)
	}
	assertDirEntries(t, dir, "a.yaml")
}

func TestCheckoutRefusesUnsafeTrees(t *testing.T) {
	tests := []struct {
		name    string
		entries []gittest.RawEntry
	}{
		{"dot-dot entry", []gittest.RawEntry{{Name: "..", Mode: filemode.Dir, Entries: []gittest.RawEntry{
			{Name: "evil", Mode: filemode.Regular, Content: "pwned"},
		}}}},
		{"name with slash", []gittest.RawEntry{{Name: "../evil", Mode: filemode.Regular, Content: "pwned"}}},
		{"git dir", []gittest.RawEntry{{Name: ".GIT", Mode: filemode.Dir, Entries: []gittest.RawEntry{
			{Name: "config", Mode: filemode.Regular, Content: "pwned"},
		}}}},
		{"symlink then dir of the same name", []gittest.RawEntry{
			{Name: "a", Mode: filemode.Symlink, Content: "../.."},
			{Name: "a", Mode: filemode.Dir, Entries: []gittest.RawEntry{{Name: "evil", Mode: filemode.Regular, Content: "pwned"}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := gittest.NewRepo(t, nil)
			repo.RawCommit("main", "unsafe", tt.entries)
			c := newTestCache(t)
			rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

			parent := filepath.Join(t.TempDir(), "a", "b")
			if err := os.MkdirAll(parent, 0o755); err != nil {
				t.Fatal(err)
			}
			err := c.Checkout(testCtx(t), repo.URL(), rev, filepath.Join(parent, "out"))
			if !errors.Is(err, ErrUnsafeTree) {
				t.Fatalf("got %v, want ErrUnsafeTree", err)
			}
			assertDirEntries(t, parent) // temp dir removed, nothing written
			assertDirEntries(t, filepath.Dir(parent), "b")
		})
	}
}

func TestCheckoutLimits(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": strings.Repeat("x", 600), "b": strings.Repeat("y", 600)})
	tests := []struct {
		name string
		opt  Option
	}{
		{"bytes", WithMaxCheckoutSize(1000)},
		{"files", WithMaxCheckoutFiles(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, tt.opt)
			rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
			parent := t.TempDir()
			err := c.Checkout(testCtx(t), repo.URL(), rev, filepath.Join(parent, "out"))
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			assertDirEntries(t, parent)
		})
	}
}

func TestReadFile(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{
		"values.yaml":          "replicas: 2\n",
		"big.yaml":             strings.Repeat("x", 2048),
		"charts/app/vals.yaml": "image: nginx\n",
	})
	repo.Symlink("charts/current", "app")
	repo.Symlink("shared.yaml", "charts/current/vals.yaml")
	repo.Symlink("charts/out", "../../outside.yaml")
	repo.Symlink("abs.yaml", "/etc/passwd")
	repo.Symlink("loop", "loop")
	repo.Commit("links")
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	tests := []struct {
		name    string
		path    string
		max     int64
		want    string
		wantErr error
	}{
		{name: "file", path: "values.yaml", max: 100, want: "replicas: 2\n"},
		{name: "nested", path: "charts/app/vals.yaml", max: 100, want: "image: nginx\n"},
		{name: "cleaned inside", path: "charts/../values.yaml", max: 100, want: "replicas: 2\n"},
		{name: "through symlinks", path: "shared.yaml", max: 100, want: "image: nginx\n"},
		{name: "dir symlink", path: "charts/current/vals.yaml", max: 100, want: "image: nginx\n"},
		{name: "exactly max", path: "big.yaml", max: 2048, want: strings.Repeat("x", 2048)},
		{name: "parent", path: "../x", max: 100, wantErr: ErrPathEscapes},
		{name: "absolute", path: "/etc/passwd", max: 100, wantErr: ErrPathEscapes},
		{name: "symlink escapes", path: "charts/out", max: 100, wantErr: ErrPathEscapes},
		{name: "absolute symlink", path: "abs.yaml", max: 100, wantErr: ErrPathEscapes},
		{name: "symlink loop", path: "loop", max: 100, wantErr: ErrPathEscapes},
		{name: "too large", path: "big.yaml", max: 2047, wantErr: ErrTooLarge},
		{name: "missing", path: "nope.yaml", max: 100, wantErr: fs.ErrNotExist},
		{name: "directory", path: "charts", max: 100, wantErr: ErrInvalidInput},
		{name: "zero max", path: "values.yaml", max: 0, wantErr: ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ReadFile(testCtx(t), repo.URL(), rev, tt.path, tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
