// Package checkout reads the YAML files of a fresh checkout that image
// automation and the fluxd API edit: confined to the checkout (no symlink
// or ".." leads out), bounded like the manifests the GitSync controller
// reads, plus the values files HelmReleases name through gitFileRef.
package checkout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/helmflux/helmflux/pkg/manifest"
	"github.com/helmflux/helmflux/pkg/update"
)

var (
	// ErrTooMuch means the checkout holds more YAML than one pass reads.
	ErrTooMuch = errors.New("too much YAML")
	// ErrFileTooLarge means one file is larger than a pass reads.
	ErrFileTooLarge = errors.New("file too large")
)

// Reader reads YAML files of one checkout, confined to it (os.Root: no
// symlink or ".." leads out) and bounded like the manifests the GitSync
// controller reads.
type Reader struct {
	root      *os.Root
	maxFile   int64
	bytesLeft int64
	seen      map[string]bool
}

// Open reads the checkout at dir.
func Open(dir string) (*Reader, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open checkout: %w", err)
	}
	return &Reader{root: root, maxFile: manifest.DefaultMaxFileSize, bytesLeft: manifest.DefaultMaxTotalSize, seen: map[string]bool{}}, nil
}

// Close releases the checkout.
func (r *Reader) Close() error { return r.root.Close() }

// YAMLUnder reads every .yaml and .yml file under paths ("" or none: the
// whole checkout), skipping symlinks. Problems with single files are
// returned alongside the files that could be read.
func (r *Reader) YAMLUnder(paths []string) ([]update.File, []error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []update.File
	var errs []error
	for _, p := range paths {
		p = path.Clean(strings.TrimPrefix(p, "./"))
		err := fs.WalkDir(r.root.FS(), p, func(name string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && name != p && skipDir(r.root, name, d):
				return fs.SkipDir
			case d.Type()&fs.ModeSymlink != 0, d.IsDir():
				return nil
			case !d.Type().IsRegular() || !isYAML(name):
				return nil
			}
			f, err := r.read(name)
			if errors.Is(err, ErrTooMuch) {
				return err
			}
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if f != nil {
				files = append(files, *f)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", p, err))
		}
	}
	return files, errs
}

// read returns one file, nil when it was read before.
func (r *Reader) read(name string) (*update.File, error) {
	name = path.Clean(name)
	if r.seen[name] {
		return nil, nil
	}
	fi, err := r.root.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", name)
	}
	if fi.Size() > r.maxFile {
		return nil, fmt.Errorf("read %s: %w: larger than %d bytes", name, ErrFileTooLarge, r.maxFile)
	}
	if fi.Size() > r.bytesLeft {
		return nil, fmt.Errorf("read %s: %w (more than %d bytes in all)", name, ErrTooMuch, manifest.DefaultMaxTotalSize)
	}
	f, err := r.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, r.maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > r.maxFile {
		return nil, fmt.Errorf("read %s: %w: larger than %d bytes", name, ErrFileTooLarge, r.maxFile)
	}
	r.bytesLeft -= int64(len(data))
	r.seen[name] = true
	return &update.File{Path: name, Data: data}, nil
}

// WithValuesFiles adds the values files that HelmReleases in files name
// through valuesFrom[].gitFileRef; a missing one is the HelmRelease
// controller's business, not automation's.
func (r *Reader) WithValuesFiles(files []update.File) ([]update.File, []error) {
	paths, errs := update.ValuesFiles(files)
	sort.Strings(paths)
	for _, p := range paths {
		f, err := r.read(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		case f != nil:
			files = append(files, *f)
		}
	}
	return files, errs
}

// skipDir skips what the GitSync controller does not apply either: hidden
// directories and Helm chart directories (those holding Chart.yaml).
func skipDir(root *os.Root, name string, d fs.DirEntry) bool {
	if strings.HasPrefix(d.Name(), ".") {
		return true
	}
	fi, err := root.Lstat(path.Join(name, "Chart.yaml"))
	return err == nil && fi.Mode().IsRegular()
}

func isYAML(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}
