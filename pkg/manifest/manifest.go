package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// Defaults for the zero values of Options. They are far above what a real
// repository needs and far below what would hurt the operator.
const (
	DefaultMaxFileSize  int64 = 5 << 20
	DefaultMaxTotalSize int64 = 64 << 20
	DefaultMaxObjects         = 20000
)

// maxDirEntries bounds how many directory entries one Load lists, so a
// repository of millions of empty files or directories cannot keep the
// controller busy; no size or object limit would catch it.
const maxDirEntries = 1 << 20

// Options bound what Load reads. Zero values mean the defaults.
//
// Files kustomize reads count against MaxFileSize and MaxTotalSize each time
// they are read; objects count against MaxObjects before the ignore
// annotation is looked at, since they cost the same to decode.
type Options struct {
	MaxFileSize  int64 // per file, default 5 MiB
	MaxTotalSize int64 // all files read, default 64 MiB
	MaxObjects   int   // default 20000
}

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxTotalSize <= 0 {
		o.MaxTotalSize = DefaultMaxTotalSize
	}
	if o.MaxObjects <= 0 {
		o.MaxObjects = DefaultMaxObjects
	}
	return o
}

// Object is one manifest and where it came from.
type Object struct {
	Object *unstructured.Unstructured
	Source string // slash-separated path relative to the checkout root: the file, or the kustomization directory for kustomize output
	Line   int    // 1-based line where the document starts in Source (0 for kustomize output)
}

// FluxV1Config is the name of Flux v1's manifest generation file: with
// --manifest-generation, fluxd ran the commands it names for the directory
// it is in and those below, instead of reading their YAML.
const FluxV1Config = ".flux.yaml"

// Report is what a load met besides objects.
type Report struct {
	// FluxV1Configs are the .flux.yaml files (slash-separated, relative to
	// the checkout root) of the directories loaded or above them. Load runs
	// no generator: it reads the directory's manifests as they are, which
	// is not what Flux v1 applied there.
	FluxV1Configs []string
}

// Load reads every object under paths (relative to root; empty means ".") of the checkout at root.
//
// Directories are walked in lexical order, reading *.yaml, *.yml and *.json
// and skipping hidden entries and Helm chart directories (those holding
// Chart.yaml); a directory holding a kustomization file is built with
// kustomize instead of being walked (this wins over Chart.yaml), except that
// a kustomize Component met during a walk is passed by, since it cannot be
// built on its own. Symlinks are followed while they resolve inside the
// checkout; any other symlink met is an error, whatever its name. Each file
// and directory is read once even when several paths or links reach it.
// Objects annotated fluxcd.io/ignore "true" are left out. The first problem
// stops Load; problems with a file are *FileError values, and policy
// refusals match the Err* sentinels with errors.Is.
func Load(ctx context.Context, root string, paths []string, opts Options) ([]Object, error) {
	objs, _, err := LoadReport(ctx, root, paths, opts)
	return objs, err
}

// LoadReport is Load, also reporting what it met besides objects: Flux v1
// manifest generation files it did not run.
func LoadReport(ctx context.Context, root string, paths []string, opts Options) ([]Object, Report, error) {
	realRoot, err := resolveRoot(root)
	if err != nil {
		return nil, Report{}, err
	}
	dir, err := os.OpenRoot(realRoot)
	if err != nil {
		return nil, Report{}, fmt.Errorf("open checkout: %w", err)
	}
	defer func() { _ = dir.Close() }()

	l := &loader{
		ctx:       ctx,
		opts:      opts.withDefaults(),
		root:      realRoot,
		dir:       dir,
		seenFiles: map[string]bool{},
		seenDirs:  map[string]bool{},
		fluxV1:    map[string]bool{},
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, p := range paths {
		rel, err := cleanArg(p)
		if err != nil {
			return nil, Report{}, fileErr(p, 0, err)
		}
		l.fluxV1Above(rel)
		if err := l.loadPath(rel); err != nil {
			return nil, Report{}, err
		}
	}
	rep := Report{FluxV1Configs: make([]string, 0, len(l.fluxV1))}
	for f := range l.fluxV1 {
		rep.FluxV1Configs = append(rep.FluxV1Configs, f)
	}
	sort.Strings(rep.FluxV1Configs)
	return l.objects, rep, nil
}

// fluxV1Above records the .flux.yaml files of the directories that contain
// the path argument rel, up to the checkout root: Flux v1 looked upwards
// from each path for the file that governs it.
func (l *loader) fluxV1Above(rel string) {
	for dir := path.Dir(rel); ; dir = path.Dir(dir) {
		if dir == "." || dir == "/" {
			l.noteFluxV1(FluxV1Config)
			return
		}
		l.noteFluxV1(path.Join(dir, FluxV1Config))
	}
}

// noteFluxV1 records rel when it is a regular file of the checkout.
func (l *loader) noteFluxV1(rel string) {
	if fi, err := l.dir.Lstat(filepath.FromSlash(rel)); err == nil && fi.Mode().IsRegular() {
		l.fluxV1[rel] = true
	}
}

// resolveRoot makes the checkout root absolute and free of symlinks, so that
// "inside the checkout" can be decided by comparing resolved paths.
func resolveRoot(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve checkout root: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolve checkout root: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("resolve checkout root: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("resolve checkout root %s: not a directory", root)
	}
	return real, nil
}

// cleanArg checks a path argument and makes it a clean slash-separated path.
// Arguments come from the GitSync spec, so they are refused rather than
// cleaned when they try to leave the checkout.
func cleanArg(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains a NUL byte")
	}
	s := filepath.ToSlash(p)
	if filepath.IsAbs(p) || path.IsAbs(s) {
		return "", fmt.Errorf("absolute path is %w", ErrOutsideCheckout)
	}
	for _, el := range strings.Split(s, "/") {
		if el == ".." {
			return "", fmt.Errorf("path with \"..\" may lead %w", ErrOutsideCheckout)
		}
	}
	return path.Clean(s), nil
}

// loader holds the state of one Load: the limits, what was read, and the
// objects found so far.
type loader struct {
	ctx  context.Context
	opts Options
	root string   // absolute, symlink-free checkout root
	dir  *os.Root // the checkout, for opening files without escaping it

	total   int64 // bytes read
	count   int   // objects decoded, ignored ones included
	entries int   // directory entries listed
	objects []Object

	seenFiles map[string]bool // real paths of files read
	seenDirs  map[string]bool // real paths of directories walked or built
	fluxV1    map[string]bool // .flux.yaml files met (see Report)
}

// within tells whether the resolved path p is the checkout root or inside it.
func (l *loader) within(p string) bool {
	return isWithin(l.root, p)
}

func isWithin(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// rel gives the slash-separated checkout-relative form of an absolute path,
// for messages; paths outside keep their "../" so the reader sees the escape.
func (l *loader) rel(p string) string {
	r, err := filepath.Rel(l.root, p)
	if err != nil {
		return filepath.Base(p)
	}
	return filepath.ToSlash(r)
}

// loadPath loads one path argument: a file, a directory to walk, or a
// kustomization directory.
func (l *loader) loadPath(rel string) error {
	real, err := l.resolve(rel)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fileErr(rel, 0, plainErr(err))
	}
	switch {
	case fi.IsDir():
		return l.walkDir(rel, real, true)
	case fi.Mode().IsRegular():
		return l.loadFile(rel, real)
	default:
		return fileErr(rel, 0, errors.New("not a regular file or directory"))
	}
}

// resolve follows rel from the checkout root one element at a time, so that
// a symlink leading outside is reported by its own name.
func (l *loader) resolve(rel string) (string, error) {
	cur := l.root
	if rel == "." {
		return cur, nil
	}
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", fileErr(strings.Join(parts[:i+1], "/"), 0, plainErr(err))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			next, err = l.followLink(strings.Join(parts[:i+1], "/"), next)
			if err != nil {
				return "", err
			}
		}
		cur = next
	}
	return cur, nil
}

// errDangling marks a symlink whose target does not exist.
var errDangling = errors.New("symlink target does not exist")

// followLink resolves the symlink at abs (named rel in messages) and refuses
// it unless the whole chain ends inside the checkout.
func (l *loader) followLink(rel, abs string) (string, error) {
	target, err := filepath.EvalSymlinks(abs)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fileErr(rel, 0, errDangling)
		case strings.Contains(err.Error(), "too many links"):
			return "", fileErr(rel, 0, fmt.Errorf("resolve symlink: %w", ErrSymlinkLoop))
		default:
			return "", fileErr(rel, 0, fmt.Errorf("resolve symlink: %w", plainErr(err)))
		}
	}
	if !l.within(target) {
		return "", fileErr(rel, 0, fmt.Errorf("symlink resolves %w", ErrOutsideCheckout))
	}
	return target, nil
}

// walkDir loads a directory: built with kustomize when it holds a
// kustomization file, skipped when it is a Helm chart, walked otherwise.
// explicit is true for a directory named by a path argument.
func (l *loader) walkDir(rel, real string, explicit bool) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if l.seenDirs[real] {
		return nil
	}
	l.seenDirs[real] = true
	if kfile := kustomizationFile(real); kfile != "" {
		// A kustomize Component cannot be built on its own; it only means
		// something to the kustomizations that list it, so a walk passes it
		// by (as it passes the files of a base) instead of failing on it.
		if !explicit && l.isComponent(path.Join(rel, kfile), filepath.Join(real, kfile)) {
			return nil
		}
		return l.build(rel, real)
	}
	if isFile(filepath.Join(real, "Chart.yaml")) {
		return nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return fileErr(rel, 0, fmt.Errorf("read directory: %w", plainErr(err)))
	}
	l.entries += len(entries)
	if l.entries > maxDirEntries {
		return fileErr(rel, 0, fmt.Errorf("more than %d directory entries: %w", maxDirEntries, ErrTooLarge))
	}
	for _, e := range entries {
		name := e.Name()
		if name == FluxV1Config && e.Type().IsRegular() {
			l.fluxV1[path.Join(rel, name)] = true
		}
		if strings.HasPrefix(name, ".") {
			continue
		}
		crel := path.Join(rel, name)
		creal := filepath.Join(real, name)
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			target, err := l.followLink(crel, creal)
			if errors.Is(err, errDangling) && !isManifestName(name) {
				continue // a broken link we would not read anyway
			}
			if err != nil {
				return err
			}
			fi, err := os.Stat(target)
			if err != nil {
				return fileErr(crel, 0, plainErr(err))
			}
			if fi.IsDir() && isWithin(target, real) {
				return fileErr(crel, 0, fmt.Errorf("symlink points to a directory that contains it: %w", ErrSymlinkLoop))
			}
			creal, mode = target, fi.Mode().Type()
		}
		switch {
		case mode.IsDir():
			if err := l.walkDir(crel, creal, false); err != nil {
				return err
			}
		case mode.IsRegular() && isManifestName(name):
			if err := l.loadFile(crel, creal); err != nil {
				return err
			}
		}
	}
	return nil
}

func isManifestName(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// kustomizationFile gives the name of the kustomization file in dir, or ""
// when dir holds none of the names kustomize recognises.
func kustomizationFile(dir string) string {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if isFile(filepath.Join(dir, n)) {
			return n
		}
	}
	return ""
}

// isComponent tells whether the kustomization file at real declares a
// kustomize Component. Unreadable or malformed files are not components:
// the build that follows reports them properly.
func (l *loader) isComponent(rel, real string) bool {
	resolved, err := filepath.EvalSymlinks(real)
	if err != nil || !l.within(resolved) {
		return false
	}
	data, err := l.readFile(rel, resolved)
	if err != nil {
		return false
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return false
	}
	return head.Kind == types.ComponentKind
}

// isFile tells whether p exists and is not a directory; a symlink counts
// without being followed (following it is the reader's business).
func isFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && !fi.IsDir()
}

// loadFile reads and decodes one manifest file.
func (l *loader) loadFile(rel, real string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if l.seenFiles[real] {
		return nil
	}
	l.seenFiles[real] = true
	data, err := l.readFile(rel, real)
	if err != nil {
		return err
	}
	var objs []decoded
	if path.Ext(rel) == ".json" {
		objs, err = decodeJSON(data)
	} else {
		objs, err = decodeYAML(data)
	}
	if err != nil {
		var le *lineError
		if errors.As(err, &le) {
			return fileErr(rel, le.line, le.err)
		}
		return fileErr(rel, 0, err)
	}
	for _, d := range objs {
		if err := l.add(rel, d.line, d.obj); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads the file at the resolved path real through the os.Root of
// the checkout (so a symlink swapped in after the checks still cannot lead
// outside), within the size limits.
func (l *loader) readFile(rel, real string) ([]byte, error) {
	inside, err := filepath.Rel(l.root, real)
	if err != nil {
		return nil, fileErr(rel, 0, fmt.Errorf("open: %w", ErrOutsideCheckout))
	}
	f, err := l.dir.Open(inside)
	if err != nil {
		return nil, fileErr(rel, 0, fmt.Errorf("open: %w", plainErr(err)))
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileErr(rel, 0, fmt.Errorf("stat: %w", plainErr(err)))
	}
	if !fi.Mode().IsRegular() {
		return nil, fileErr(rel, 0, errors.New("not a regular file"))
	}
	if err := l.checkSize(rel, fi.Size()); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, l.opts.MaxFileSize+1))
	if err != nil {
		return nil, fileErr(rel, 0, fmt.Errorf("read: %w", plainErr(err)))
	}
	if err := l.checkSize(rel, int64(len(data))); err != nil {
		return nil, err
	}
	l.total += int64(len(data))
	return data, nil
}

// checkSize refuses a file of size bytes that is over the per-file limit or
// would take the revision over the total limit.
func (l *loader) checkSize(rel string, size int64) error {
	if size > l.opts.MaxFileSize {
		return fileErr(rel, 0, fmt.Errorf("file is %d bytes, over the limit of %d: %w", size, l.opts.MaxFileSize, ErrTooLarge))
	}
	if l.total+size > l.opts.MaxTotalSize {
		return fileErr(rel, 0, fmt.Errorf("reading this file (%d bytes) takes the files read past the limit of %d bytes: %w",
			size, l.opts.MaxTotalSize, ErrTooLarge))
	}
	return nil
}

// add counts an object against the limit and keeps it unless it is ignored.
func (l *loader) add(src string, line int, obj *unstructured.Unstructured) error {
	l.count++
	if l.count > l.opts.MaxObjects {
		return fileErr(src, line, fmt.Errorf("more than %d objects: %w", l.opts.MaxObjects, ErrTooManyObjects))
	}
	if IsIgnored(obj) {
		return nil
	}
	l.objects = append(l.objects, Object{Object: obj, Source: src, Line: line})
	return nil
}

// plainErr drops the absolute path from a *fs.PathError or *os.LinkError:
// messages go on the GitSync status, where the operator's file system layout
// is noise at best. The caller names the checkout-relative path instead.
func plainErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
