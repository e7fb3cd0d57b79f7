package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// confinedFS is the file system kustomize builds see: the checkout and
// nothing else, read-only, with every read bounded and checked for remote
// references.
//
// It is hand-written. kustomize's own on-disk file system has no notion of a
// root, and its LoadRestrictionsRootOnly only confines plain files to each
// kustomization's own directory, not bases. fluxcd/pkg/kustomize/filesys
// confines paths the same way (resolve symlinks, compare with the root), but
// it is a separate module pinned to its own kustomize and Kubernetes
// versions, it does not bound reads, and it cannot stop remote bases: those
// are fetched (git is executed, HTTP requested) before any path of theirs
// reaches the file system. Here every kustomization file and builtin plugin
// configuration is checked for remote references as it is read, before
// kustomize acts on it (see checkKustomizeInput).
//
// Reads go through the loader's os.Root, so a path that passed the checks
// cannot be turned into an escape by a symlink swapped in afterwards.
type confinedFS struct {
	l *loader
	// docs counts the YAML documents read, against the object limit.
	docs int
	// refusal is the first policy refusal. The build fails with it even when
	// kustomize would have carried on (it ignores some failed reads).
	refusal error
}

// refuse records a policy refusal and returns it.
func (c *confinedFS) refuse(err error) error {
	if c.refusal == nil {
		c.refusal = err
	}
	return err
}

// confine resolves p and checks it stays inside the checkout. For a path
// that does not exist it returns the lexically cleaned path and an error
// wrapping fs.ErrNotExist, after checking the lexical path is inside.
func (c *confinedFS) confine(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	if !c.l.within(abs) {
		return "", fmt.Errorf("%s is %w", c.l.rel(abs), ErrOutsideCheckout)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return abs, fmt.Errorf("%s: %w", c.l.rel(abs), fs.ErrNotExist)
		case strings.Contains(err.Error(), "too many links"):
			return "", fmt.Errorf("resolve %s: %w", c.l.rel(abs), ErrSymlinkLoop)
		default:
			return "", fmt.Errorf("resolve %s: %w", c.l.rel(abs), plainErr(err))
		}
	}
	if !c.l.within(real) {
		return "", fmt.Errorf("%s resolves %w", c.l.rel(abs), ErrOutsideCheckout)
	}
	return real, nil
}

// confineStrict is confine for calls that act on the path: every error that
// is a policy refusal is recorded.
func (c *confinedFS) confineStrict(p string) (string, error) {
	real, err := c.confine(p)
	if err != nil && isRefusal(err) {
		return "", c.refuse(err)
	}
	return real, err
}

// Create refuses: builds do not write.
func (c *confinedFS) Create(string) (filesys.File, error) { return nil, c.refuse(errWrite) }

// Mkdir refuses: builds do not write.
func (c *confinedFS) Mkdir(string) error { return c.refuse(errWrite) }

// MkdirAll refuses: builds do not write.
func (c *confinedFS) MkdirAll(string) error { return c.refuse(errWrite) }

// RemoveAll refuses: builds do not write.
func (c *confinedFS) RemoveAll(string) error { return c.refuse(errWrite) }

// WriteFile refuses: builds do not write.
func (c *confinedFS) WriteFile(string, []byte) error { return c.refuse(errWrite) }

// Open opens a file inside the checkout.
func (c *confinedFS) Open(p string) (filesys.File, error) {
	real, err := c.confineStrict(p)
	if err != nil {
		return nil, err
	}
	inside, err := filepath.Rel(c.l.root, real)
	if err != nil {
		return nil, c.refuse(fmt.Errorf("%s is %w", p, ErrOutsideCheckout))
	}
	f, err := c.l.dir.Open(inside)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", c.l.rel(real), plainErr(err))
	}
	return f, nil
}

// IsDir tells whether p is a directory inside the checkout; anything
// outside is reported as no directory.
func (c *confinedFS) IsDir(p string) bool {
	real, err := c.confine(p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(real)
	return err == nil && fi.IsDir()
}

// ReadDir lists a directory inside the checkout.
func (c *confinedFS) ReadDir(p string) ([]string, error) {
	real, err := c.confineStrict(p)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", c.l.rel(real), plainErr(err))
	}
	c.l.entries += len(entries)
	if c.l.entries > maxDirEntries {
		return nil, c.refuse(fmt.Errorf("more than %d directory entries: %w", maxDirEntries, ErrTooLarge))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// CleanedAbs resolves p like kustomize's on-disk file system does (the
// directory, and the file name when p is a file), refusing results outside
// the checkout. Kustomize's load restrictor and its base loader both decide
// containment from this, so it is where ../../outside is stopped.
func (c *confinedFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	real, err := c.confineStrict(p)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", "", fmt.Errorf("stat %s: %w", c.l.rel(real), plainErr(err))
	}
	if fi.IsDir() {
		return filesys.ConfirmedDir(real), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(real)), filepath.Base(real), nil
}

// Exists tells whether p exists inside the checkout; anything outside is
// reported as missing.
func (c *confinedFS) Exists(p string) bool {
	real, err := c.confine(p)
	if err != nil {
		return false
	}
	_, err = os.Stat(real)
	return err == nil
}

// Glob matches pattern and keeps the matches inside the checkout.
func (c *confinedFS) Glob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("glob: %w", err)
	}
	var out []string
	for _, m := range matches {
		if _, err := c.confine(m); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// ReadFile reads a file inside the checkout within the loader's size limits,
// and refuses kustomization files and builtin plugin configurations that
// refer to anything remote, before kustomize can act on them.
func (c *confinedFS) ReadFile(p string) ([]byte, error) {
	real, err := c.confineStrict(p)
	if err != nil {
		return nil, err
	}
	rel := c.l.rel(real)
	data, err := c.l.readFile(rel, real)
	if err != nil {
		if isRefusal(err) {
			return nil, c.refuse(err)
		}
		return nil, err
	}
	if err := checkKustomizeInput(filepath.Base(real), data); err != nil {
		return nil, c.refuse(fileErr(rel, 0, err))
	}
	// A kustomization may include the same base many times over (a diamond
	// of overlays with different name prefixes doubles the output at each
	// level), so the output can grow exponentially while every file read
	// stays small. Each output object comes from a document kustomize read,
	// so counting documents as they are read stops such a build early,
	// before kustomize holds millions of objects in memory.
	c.docs += len(splitYAML(data))
	if limit := 2*c.l.opts.MaxObjects + 100; c.docs > limit {
		return nil, c.refuse(fileErr(rel, 0, fmt.Errorf("kustomize read more than %d YAML documents: %w", limit, ErrTooManyObjects)))
	}
	return data, nil
}

// Walk walks a directory inside the checkout; it does not follow symlinks,
// and any path outside is refused.
func (c *confinedFS) Walk(p string, walkFn filepath.WalkFunc) error {
	real, err := c.confineStrict(p)
	if err != nil {
		return err
	}
	return filepath.Walk(real, func(q string, info os.FileInfo, err error) error {
		if !c.l.within(q) {
			return c.refuse(fmt.Errorf("%s is %w", c.l.rel(q), ErrOutsideCheckout))
		}
		return walkFn(q, info, err)
	})
}
