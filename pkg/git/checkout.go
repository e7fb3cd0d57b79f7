package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/helmflux/helmflux/pkg/repopath"
)

// Limits on single tree entries.
const (
	// maxSymlinkTarget is PATH_MAX: a longer symlink blob is not a symlink.
	maxSymlinkTarget = 4096
	// maxTreeDepth bounds directory nesting (and recursion).
	maxTreeDepth = 256
	// maxSymlinkHops bounds symlink chains in ReadFile, as the kernel does.
	maxSymlinkHops = 40
)

// Checkout writes the tree of rev's commit into dir, which must not exist or
// be empty (its parent must exist). rev must have been fetched into the cache.
//
// It writes the tree itself through an os.Root rather than with a go-git
// worktree: the root makes escaping dir impossible even for a hand-crafted
// tree (names like "../x" or ".git" are refused outright, and a path through
// a symlink that leaves dir fails), and there is no index to share between
// concurrent checkouts. Symlinks are written as symlinks (their targets are
// not checked here: readers of the checkout confine them), the executable bit
// is kept, submodules are skipped. The tree is written to a temporary
// directory next to dir and renamed into place, so dir is either complete or
// untouched; the temporary directory is removed on every error.
func (c *Cache) Checkout(ctx context.Context, url string, rev Revision, dir string) error {
	r, err := parseRemote(url)
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	if err := c.checkout(ctx, r, rev, dir); err != nil {
		c.noteDamage(r, err)
		return fmt.Errorf("checkout %s of %s: %w", rev, r.display, err)
	}
	return nil
}

func (c *Cache) checkout(ctx context.Context, r *remote, rev Revision, dir string) (retErr error) {
	h, err := rev.hashOf()
	if err != nil {
		return err
	}
	if dir == "" {
		return invalidf("empty checkout dir")
	}
	dir = filepath.Clean(dir)
	existed, err := emptyOrMissing(dir)
	if err != nil {
		return err
	}

	unlock, err := c.lock(ctx, r, false)
	if err != nil {
		return err
	}
	defer unlock()
	repo, err := c.openRepo(r)
	if err != nil {
		return err
	}
	commit, err := readCommit(repo, h)
	if err != nil {
		return err
	}
	tree, err := commit.Tree()
	if err != nil {
		return damaged(fmt.Errorf("read tree: %w", err))
	}

	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".checkout-")
	if err != nil {
		return fmt.Errorf("create temporary dir: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("open temporary dir: %w", err)
	}
	w := &treeWriter{ctx: ctx, repo: repo, root: root, bytesLeft: c.maxCheckoutSize, filesLeft: c.maxCheckoutFiles}
	err = w.writeTree(tree, ".", 0)
	if cerr := root.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close temporary dir: %w", cerr)
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { //nolint:gosec // a checkout is read by other tools, as git would leave it
		return fmt.Errorf("chmod checkout: %w", err)
	}
	if existed {
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("replace empty %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move checkout into place: %w", err)
	}
	return nil
}

// emptyOrMissing checks that dir is absent or an empty directory and says
// which.
func emptyOrMissing(dir string) (existed bool, err error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, invalidf("checkout dir %s exists and is not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		if err != nil {
			return false, err
		}
		return false, invalidf("checkout dir %s is not empty", dir)
	}
	return true, nil
}

// treeWriter writes a tree below an os.Root within budgets.
type treeWriter struct {
	ctx       context.Context //nolint:containedctx // lives for one Checkout call only
	repo      *gogit.Repository
	root      *os.Root
	bytesLeft int64
	filesLeft int
}

func (w *treeWriter) writeTree(t *object.Tree, dir string, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("%w: %s: nested deeper than %d", ErrUnsafeTree, dir, maxTreeDepth)
	}
	seen := make(map[string]bool, len(t.Entries))
	for _, e := range t.Entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := checkEntryName(e.Name); err != nil {
			return fmt.Errorf("%w: %q in %s: %s", ErrUnsafeTree, e.Name, dir, err.Error())
		}
		if seen[e.Name] {
			return fmt.Errorf("%w: %q appears twice in %s", ErrUnsafeTree, e.Name, dir)
		}
		seen[e.Name] = true
		if e.Mode == filemode.Submodule {
			continue
		}
		w.filesLeft--
		if w.filesLeft < 0 {
			return fmt.Errorf("%w: more than the allowed number of files", ErrTooLarge)
		}
		p := path.Join(dir, e.Name)
		if err := w.writeEntry(e, p, depth); err != nil {
			return err
		}
	}
	return nil
}

func (w *treeWriter) writeEntry(e object.TreeEntry, p string, depth int) error {
	switch e.Mode {
	case filemode.Dir:
		if err := w.root.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		sub, err := object.GetTree(w.repo.Storer, e.Hash)
		if err != nil {
			return damaged(fmt.Errorf("read tree %s: %w", p, err))
		}
		return w.writeTree(sub, p, depth+1)
	case filemode.Regular, filemode.Deprecated, filemode.Executable:
		perm := os.FileMode(0o644)
		if e.Mode == filemode.Executable {
			perm = 0o755
		}
		return w.writeFile(e.Hash, p, perm)
	case filemode.Symlink:
		target, err := readSymlink(w.repo, e.Hash)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := w.root.Symlink(target, p); err != nil {
			return fmt.Errorf("create symlink %s: %w", p, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: %s has unsupported mode %s", ErrUnsafeTree, p, e.Mode)
	}
}

func (w *treeWriter) writeFile(h plumbing.Hash, p string, perm os.FileMode) (retErr error) {
	blob, err := object.GetBlob(w.repo.Storer, h)
	if err != nil {
		return damaged(fmt.Errorf("read blob %s: %w", p, err))
	}
	if blob.Size > w.bytesLeft {
		return fmt.Errorf("%w: checkout exceeds the size limit at %s", ErrTooLarge, p)
	}
	w.bytesLeft -= blob.Size
	rd, err := blob.Reader()
	if err != nil {
		return damaged(fmt.Errorf("read blob %s: %w", p, err))
	}
	defer func() { _ = rd.Close() }()
	f, err := w.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	defer func() {
		if err := f.Close(); retErr == nil && err != nil {
			retErr = fmt.Errorf("write %s: %w", p, err)
		}
	}()
	n, err := io.Copy(f, io.LimitReader(rd, blob.Size+1))
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if n != blob.Size {
		return fmt.Errorf("write %s: blob has %d bytes, header said %d", p, n, blob.Size)
	}
	// The umask may have narrowed perm; a checkout keeps git's modes.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	return nil
}

// checkEntryName refuses names that could not come from a sane tree or that
// would write outside the entry's directory or into git metadata.
func checkEntryName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return errors.New("reserved name")
	case strings.ContainsAny(name, "/\x00"):
		return errors.New("contains '/' or NUL")
	case strings.EqualFold(name, ".git"):
		return errors.New("git metadata name")
	}
	return nil
}

// readSymlink returns a symlink blob's target, bounded.
func readSymlink(repo *gogit.Repository, h plumbing.Hash) (string, error) {
	blob, err := object.GetBlob(repo.Storer, h)
	if err != nil {
		return "", damaged(fmt.Errorf("read symlink: %w", err))
	}
	if blob.Size == 0 || blob.Size > maxSymlinkTarget {
		return "", fmt.Errorf("%w: symlink target of %d bytes", ErrUnsafeTree, blob.Size)
	}
	rd, err := blob.Reader()
	if err != nil {
		return "", damaged(fmt.Errorf("read symlink: %w", err))
	}
	defer func() { _ = rd.Close() }()
	b, err := io.ReadAll(io.LimitReader(rd, maxSymlinkTarget))
	if err != nil {
		return "", damaged(fmt.Errorf("read symlink: %w", err))
	}
	if strings.IndexByte(string(b), 0) >= 0 {
		return "", fmt.Errorf("%w: symlink target contains NUL", ErrUnsafeTree)
	}
	return string(b), nil
}

// ReadFile returns one file of rev's tree without a checkout, for values
// files and the like. name is slash-separated and relative to the repository
// root; it must stay inside the repository ("../x" and absolute paths are
// refused), and so must every symlink followed on the way (symlinks are
// resolved within the tree, at most 40 hops). Files over maxSize bytes are
// refused with ErrTooLarge; a missing file matches fs.ErrNotExist.
func (c *Cache) ReadFile(ctx context.Context, url string, rev Revision, name string, maxSize int64) ([]byte, error) {
	r, err := parseRemote(url)
	if err != nil {
		return nil, fmt.Errorf("read file: %w", err)
	}
	b, err := c.readFile(ctx, r, rev, name, maxSize)
	if err != nil {
		c.noteDamage(r, err)
		return nil, fmt.Errorf("read %s at %s of %s: %w", name, rev, r.display, err)
	}
	return b, nil
}

func (c *Cache) readFile(ctx context.Context, r *remote, rev Revision, name string, maxSize int64) ([]byte, error) {
	h, err := rev.hashOf()
	if err != nil {
		return nil, err
	}
	if maxSize <= 0 {
		return nil, invalidf("maxSize must be positive")
	}
	parts, err := confine(name)
	if err != nil {
		return nil, err
	}
	unlock, err := c.lock(ctx, r, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	repo, err := c.openRepo(r)
	if err != nil {
		return nil, err
	}
	commit, err := readCommit(repo, h)
	if err != nil {
		return nil, err
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, damaged(fmt.Errorf("read tree: %w", err))
	}
	e, err := resolveInTree(repo, tree, parts)
	if err != nil {
		return nil, err
	}
	blob, err := object.GetBlob(repo.Storer, e.Hash)
	if err != nil {
		return nil, damaged(fmt.Errorf("read blob: %w", err))
	}
	if blob.Size > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, blob.Size, maxSize)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, damaged(fmt.Errorf("read blob: %w", err))
	}
	defer func() { _ = rd.Close() }()
	b, err := io.ReadAll(io.LimitReader(rd, maxSize+1))
	if err != nil {
		return nil, damaged(fmt.Errorf("read blob: %w", err))
	}
	if int64(len(b)) > maxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	return b, nil
}

// confine cleans a slash-separated repository path of a file and splits
// it, refusing anything that leaves the root (repopath's rule, in this
// package's error classes).
func confine(name string) ([]string, error) {
	clean, err := repopath.Clean(name)
	if err != nil {
		return nil, pathError(err)
	}
	return strings.Split(clean, "/"), nil
}

// pathError gives a repopath refusal the sentinel callers match: a path that
// leaves the root is ErrPathEscapes, any other refusal ErrInvalidInput.
func pathError(err error) error {
	if errors.Is(err, repopath.ErrEscapes) {
		return fmt.Errorf("%w: %w", ErrPathEscapes, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalidInput, err)
}

// resolveInTree walks parts from root, following symlinks inside the tree.
func resolveInTree(repo *gogit.Repository, root *object.Tree, parts []string) (*object.TreeEntry, error) {
	for hops := 0; ; hops++ {
		if hops > maxSymlinkHops {
			return nil, fmt.Errorf("%w: more than %d symlinks", ErrPathEscapes, maxSymlinkHops)
		}
		e, next, err := walkTree(repo, root, parts)
		if err != nil || next == nil {
			return e, err
		}
		parts = next
	}
}

// walkTree walks parts from root. It returns the file's entry, or, at the
// first symlink, the path it redirects to (confined to the tree).
func walkTree(repo *gogit.Repository, root *object.Tree, parts []string) (*object.TreeEntry, []string, error) {
	dir := root
	for i, part := range parts {
		here := strings.Join(parts[:i+1], "/")
		e := findEntry(dir, part)
		if e == nil {
			return nil, nil, fmt.Errorf("%s: %w", here, fs.ErrNotExist)
		}
		last := i == len(parts)-1
		switch e.Mode {
		case filemode.Dir:
			if last {
				return nil, nil, invalidf("%s is a directory", here)
			}
			sub, err := object.GetTree(repo.Storer, e.Hash)
			if err != nil {
				return nil, nil, damaged(fmt.Errorf("read tree: %w", err))
			}
			dir = sub
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			if !last {
				return nil, nil, fmt.Errorf("%s is a file, not a directory: %w", here, fs.ErrNotExist)
			}
			return e, nil, nil
		case filemode.Symlink:
			target, err := readSymlink(repo, e.Hash)
			if err != nil {
				return nil, nil, err
			}
			if path.IsAbs(target) {
				return nil, nil, fmt.Errorf("%w: symlink %s points to absolute %q", ErrPathEscapes, here, target)
			}
			elems := append([]string{path.Join(parts[:i]...), target}, parts[i+1:]...)
			next, err := confine(path.Join(elems...))
			if err != nil {
				return nil, nil, fmt.Errorf("symlink %s: %w", here, err)
			}
			return nil, next, nil
		default:
			return nil, nil, fmt.Errorf("%s: %w", here, fs.ErrNotExist)
		}
	}
	return nil, nil, fmt.Errorf("%s: %w", strings.Join(parts, "/"), fs.ErrNotExist)
}

// findEntry returns the entry called name in t, or nil.
func findEntry(t *object.Tree, name string) *object.TreeEntry {
	for i := range t.Entries {
		if t.Entries[i].Name == name {
			return &t.Entries[i]
		}
	}
	return nil
}
