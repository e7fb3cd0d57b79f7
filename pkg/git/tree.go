package git

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/helmflux/helmflux/pkg/repopath"
)

// TreeHash returns the git tree hash of dir (a slash path confined to the
// repository, "" or "." = root) at rev, from the cache (no network). rev must
// have been fetched.
//
// A tree hash changes exactly when something below dir changes, so callers
// that build artefacts from one directory (a Helm chart in a monorepo) can key
// their caches on it and skip commits that touch other paths. Symlinks on the
// way to dir are followed within the tree like ReadFile does; symlinks below
// dir are part of the tree as links (their targets are not hashed). A missing
// dir matches fs.ErrNotExist, one that leaves the repository ErrPathEscapes,
// a file ErrInvalidInput.
func (c *Cache) TreeHash(ctx context.Context, url string, rev Revision, dir string) (string, error) {
	r, err := parseRemote(url)
	if err != nil {
		return "", fmt.Errorf("tree hash: %w", err)
	}
	h, err := c.treeHash(ctx, r, rev, dir)
	if err != nil {
		c.noteDamage(r, err)
		return "", fmt.Errorf("tree hash of %q at %s of %s: %w", dir, rev, r.display, err)
	}
	return h, nil
}

func (c *Cache) treeHash(ctx context.Context, r *remote, rev Revision, dir string) (string, error) {
	h, err := rev.hashOf()
	if err != nil {
		return "", err
	}
	parts, err := confineDir(dir)
	if err != nil {
		return "", err
	}
	unlock, err := c.lock(ctx, r, false)
	if err != nil {
		return "", err
	}
	defer unlock()
	repo, err := c.openRepo(r)
	if err != nil {
		return "", err
	}
	commit, err := readCommit(repo, h)
	if err != nil {
		return "", err
	}
	root, err := commit.Tree()
	if err != nil {
		return "", damaged(fmt.Errorf("read tree: %w", err))
	}
	t, err := resolveDirInTree(ctx, repo, root, parts)
	if err != nil {
		return "", err
	}
	return t.Hash.String(), nil
}

// confineDir is confine for directories (repopath.CleanDir's rule): "" and
// "." name the root, which has no parts.
func confineDir(dir string) ([]string, error) {
	clean, err := repopath.CleanDir(dir)
	if err != nil {
		return nil, pathError(err)
	}
	if clean == "." {
		return nil, nil
	}
	return strings.Split(clean, "/"), nil
}

// resolveDirInTree walks parts from root to a directory, following symlinks
// inside the tree (at most maxSymlinkHops).
func resolveDirInTree(ctx context.Context, repo *gogit.Repository, root *object.Tree, parts []string) (*object.Tree, error) {
	for hops := 0; ; hops++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if hops > maxSymlinkHops {
			return nil, fmt.Errorf("%w: more than %d symlinks", ErrPathEscapes, maxSymlinkHops)
		}
		t, next, err := walkTreeToDir(repo, root, parts)
		if err != nil || t != nil {
			return t, err
		}
		parts = next
	}
}

// walkTreeToDir walks parts from root. It returns the directory's tree, or,
// at the first symlink, the path it redirects to (confined to the tree; nil
// parts for the root itself).
func walkTreeToDir(repo *gogit.Repository, root *object.Tree, parts []string) (*object.Tree, []string, error) {
	dir := root
	for i, part := range parts {
		here := strings.Join(parts[:i+1], "/")
		e := findEntry(dir, part)
		if e == nil {
			return nil, nil, fmt.Errorf("%s: %w", here, fs.ErrNotExist)
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := object.GetTree(repo.Storer, e.Hash)
			if err != nil {
				return nil, nil, damaged(fmt.Errorf("read tree %s: %w", here, err))
			}
			dir = sub
		case filemode.Symlink:
			target, err := readSymlink(repo, e.Hash)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", here, err)
			}
			if path.IsAbs(target) {
				return nil, nil, fmt.Errorf("%w: symlink %s points to absolute %q", ErrPathEscapes, here, target)
			}
			elems := append([]string{path.Join(parts[:i]...), target}, parts[i+1:]...)
			next, err := confineDir(path.Join(elems...))
			if err != nil {
				return nil, nil, fmt.Errorf("symlink %s: %w", here, err)
			}
			return nil, next, nil
		case filemode.Submodule:
			return nil, nil, invalidf("%s is a submodule, whose tree is not in this repository", here)
		default:
			return nil, nil, invalidf("%s is a file, not a directory", here)
		}
	}
	return dir, nil, nil
}
