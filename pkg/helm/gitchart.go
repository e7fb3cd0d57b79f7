package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/ignore"

	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/repopath"
)

// Limits for git charts.
const (
	// maxChartMetaFile caps Chart.yaml, requirements.yaml and the lock files
	// read at Resolve.
	maxChartMetaFile int64 = 1 << 20
	// maxChartDirDepth bounds directory nesting in a chart directory, which
	// symlinks (followed within the repository) could otherwise make endless.
	maxChartDirDepth = 64
)

// utf8BOM is stripped from chart files, as Helm's loader does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// gitInfo is what Resolve reads of a chart directory at one commit.
type gitInfo struct {
	name, version string
	tree          string
	fileDeps      []fileDep          // file:// dependencies (none with SkipDepUpdate)
	repoDeps      []chart.Dependency // http(s)/oci dependencies, lock applied (none with SkipDepUpdate)
}

// fileDep is a file:// dependency inside the repository.
type fileDep struct {
	name, dir, tree string
}

// gitResolved is a git Resolve kept for the TTL.
type gitResolved struct {
	ref     *ChartRef
	checked time.Time
}

// confineChartPath cleans a chart directory path with repopath's rule for
// directories: "" is the repository root, absolute paths and any ".."
// element are refused.
func confineChartPath(p string) (string, error) {
	clean, err := repopath.CleanDir(p)
	switch {
	case errors.Is(err, repopath.ErrEscapes):
		return "", fmt.Errorf("%w: %w: %w", ErrInvalidSource, git.ErrPathEscapes, err)
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrInvalidSource, err)
	}
	return clean, nil
}

// depKind classifies a dependency's repository field.
func depKind(repository string) string {
	l := strings.ToLower(repository)
	switch {
	case repository == "":
		return "" // vendored in charts/
	case strings.HasPrefix(repository, "file://"):
		return "file"
	case strings.HasPrefix(l, "http://"), strings.HasPrefix(l, "https://"), strings.HasPrefix(l, "oci://"):
		return "repo"
	case strings.HasPrefix(repository, "@"), strings.HasPrefix(repository, "alias:"):
		return "alias"
	}
	return "unknown"
}

// fileDepDir resolves a file:// dependency against the chart directory and
// refuses one that leaves the repository.
func fileDepDir(chartPath string, d *chart.Dependency) (string, error) {
	p := strings.TrimPrefix(d.Repository, "file://")
	switch {
	case p == "", strings.ContainsAny(p, "\\\x00"):
		return "", fmt.Errorf("%w: dependency %s: bad file:// path %q", ErrInvalidChart, d.Name, truncate(p))
	case path.IsAbs(p):
		return "", fmt.Errorf("%w: %w: dependency %s: file:// path %q is absolute", ErrHostileChart, git.ErrPathEscapes, d.Name, truncate(p))
	}
	dir := path.Join(chartPath, p)
	if dir == ".." || strings.HasPrefix(dir, "../") {
		return "", fmt.Errorf("%w: %w: dependency %s: file:// path %q leaves the repository", ErrHostileChart, git.ErrPathEscapes, d.Name, truncate(p))
	}
	return dir, nil
}

// lockedVersion returns the version the lock file pins for d if it still
// satisfies d's range, else d's range: like `helm dependency build` while the
// lock is current, like `helm dependency update` once Chart.yaml moved on.
func lockedVersion(d *chart.Dependency, lock *chart.Lock) string {
	if lock == nil {
		return d.Version
	}
	for _, l := range lock.Dependencies {
		if l == nil || l.Name != d.Name || l.Repository != d.Repository {
			continue
		}
		v, err := semver.NewVersion(l.Version)
		if err != nil {
			continue
		}
		if d.Version == "" {
			return l.Version
		}
		if cons, err := semver.NewConstraint(d.Version); err == nil && cons.Check(v) {
			return l.Version
		}
	}
	return d.Version
}

// resolveGit fetches the ref and computes the chart's digest from tree
// hashes and resolved dependencies.
func (c *Charts) resolveGit(ctx context.Context, src ChartSource) (*ChartRef, error) {
	if c.git == nil {
		return nil, fmt.Errorf("%w: git charts need a git cache", ErrInvalidSource)
	}
	chartPath, err := confineChartPath(src.Path)
	if err != nil {
		return nil, err
	}
	key := "git\n" + gitSourceKey(&src, chartPath)
	if r, ok := c.gitRefs.Get(key); ok && c.fresh(r.checked) {
		ref := *r.ref
		ref.Source = src
		return &ref, nil
	}
	auth := src.GitAuth
	if src.AllowInsecureHTTP {
		a := git.Auth{}
		if auth != nil {
			a = *auth
		}
		a.AllowInsecureHTTP = true
		auth = &a
	}
	v, err := c.share(ctx, key, func(ctx context.Context) (any, error) {
		c.gitFetches.Add(1)
		rev, err := c.git.Fetch(ctx, src.Git, src.Ref, auth)
		if err != nil {
			return nil, err
		}
		if err := c.verifyGit(ctx, &src, rev); err != nil {
			return nil, err
		}
		ref, err := c.gitRef(ctx, src, rev, chartPath)
		if err != nil {
			return nil, err
		}
		c.gitRefs.Add(key, &gitResolved{ref: ref, checked: time.Now()})
		return ref, nil
	})
	if err != nil {
		return nil, err
	}
	shared, _ := v.(*ChartRef)
	ref := *shared
	ref.Source = src
	return &ref, nil
}

// gitSourceKey identifies what a git Resolve depends on, credentials
// included (as a hash).
func gitSourceKey(src *ChartSource, chartPath string) string {
	parts := []string{src.Git, src.Ref.Branch, src.Ref.Tag, src.Ref.SemVer, chartPath, fmt.Sprint(src.SkipDepUpdate), fmt.Sprint(src.AllowInsecureHTTP)}
	if a := src.GitAuth; a != nil {
		parts = append(parts, a.Username, a.Password, a.BearerToken, string(a.Identity), string(a.KnownHosts),
			string(a.Passphrase), string(a.CABundle), fmt.Sprint(a.InsecureIgnoreHostKey), fmt.Sprint(a.AllowInsecureHTTP))
	}
	parts = append(parts, verifyKey(src)...)
	repos := make([]string, 0, len(src.DependencyAuth))
	for r := range src.DependencyAuth {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		parts = append(parts, r, fingerprint(src.DependencyAuth[r]))
	}
	return hashKey(parts...)
}

// gitRef builds the reference of the chart at rev: the digest covers the
// tree of the chart directory, the trees of its file:// dependencies and the
// resolved versions (and digests) of its repository dependencies. A symlink
// in the chart directory that points elsewhere in the repository enters the
// digest as a link: a change to its target alone does not change the digest
// (pkg/git offers no tree walk to find such links without a checkout).
func (c *Charts) gitRef(ctx context.Context, src ChartSource, rev git.Revision, chartPath string) (*ChartRef, error) {
	info, err := c.gitInfo(ctx, src, rev, chartPath)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "helmflux git chart v1\ntree %s\nskipDepUpdate %t\n", info.tree, src.SkipDepUpdate)
	for _, fd := range info.fileDeps {
		_, _ = fmt.Fprintf(h, "file %q %q %s\n", fd.name, fd.dir, fd.tree)
	}
	deps := make([]*ChartRef, 0, len(info.repoDeps))
	for i := range info.repoDeps {
		d := &info.repoDeps[i]
		dref, err := c.Resolve(ctx, ChartSource{Repository: d.Repository, Name: d.Name, Version: d.Version,
			RepoAuth: src.DependencyAuth[d.Repository], AllowInsecureHTTP: src.AllowInsecureHTTP})
		if err != nil {
			return nil, fmt.Errorf("dependency %s: %w", d.Name, err)
		}
		content := dref.URL // an index without digests: the archive URL is all there is
		if dref.indexDigest || strings.HasPrefix(strings.ToLower(d.Repository), "oci://") {
			content = dref.Digest
		}
		_, _ = fmt.Fprintf(h, "dep %q %q %q %s\n", d.Name, d.Repository, dref.Version, content)
		deps = append(deps, dref)
	}
	return &ChartRef{
		Source:   src,
		Name:     info.name,
		Version:  info.version,
		Digest:   "sha256:" + hex.EncodeToString(h.Sum(nil)),
		Revision: rev.String(),
		deps:     deps,
	}, nil
}

// gitInfo reads the chart's metadata and dependency trees at rev from the
// git cache (no checkout), memoised per commit.
func (c *Charts) gitInfo(ctx context.Context, src ChartSource, rev git.Revision, chartPath string) (*gitInfo, error) {
	key := hashKey(src.Git, rev.Hash, chartPath, fmt.Sprint(src.SkipDepUpdate))
	if info, ok := c.gitInfos.Get(key); ok {
		return info, nil
	}
	tree, err := c.git.TreeHash(ctx, src.Git, rev, chartPath)
	if err != nil {
		return nil, fmt.Errorf("chart directory: %w", err)
	}
	var files []*loader.BufferedFile
	for _, n := range []string{"Chart.yaml", "requirements.yaml", "Chart.lock", "requirements.lock"} {
		b, err := c.git.ReadFile(ctx, src.Git, rev, path.Join(chartPath, n), maxChartMetaFile)
		if errors.Is(err, fs.ErrNotExist) && n != "Chart.yaml" {
			continue
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: no Chart.yaml in %q at %s", ErrInvalidChart, chartPath, rev)
			}
			return nil, err
		}
		files = append(files, &loader.BufferedFile{Name: n, Data: bytes.TrimPrefix(b, utf8BOM)})
	}
	meta, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("%w: %q at %s: %s", ErrInvalidChart, chartPath, rev, err.Error())
	}
	info := &gitInfo{name: meta.Metadata.Name, version: meta.Metadata.Version, tree: tree}
	if !src.SkipDepUpdate {
		for _, d := range meta.Metadata.Dependencies {
			if d == nil {
				continue
			}
			switch depKind(d.Repository) {
			case "":
			case "file":
				dir, err := fileDepDir(chartPath, d)
				if err != nil {
					return nil, err
				}
				t, err := c.git.TreeHash(ctx, src.Git, rev, dir)
				if err != nil {
					return nil, fmt.Errorf("dependency %s: %w", d.Name, err)
				}
				info.fileDeps = append(info.fileDeps, fileDep{name: d.Name, dir: dir, tree: t})
			case "repo":
				dep := *d
				dep.Version = lockedVersion(d, meta.Lock)
				info.repoDeps = append(info.repoDeps, dep)
			case "alias":
				return nil, fmt.Errorf("%w: dependency %s: repository alias %q needs a repositories.yaml; write the repository URL instead",
					ErrInvalidChart, d.Name, truncate(d.Repository))
			default:
				return nil, fmt.Errorf("%w: dependency %s: unsupported repository %s", ErrInvalidChart, d.Name, RedactURL(d.Repository))
			}
		}
	}
	c.gitInfos.Add(key, info)
	return info, nil
}

// gitArchive returns the packaged chart of ref from the cache, or checks it
// out, builds its dependencies and packages it.
func (c *Charts) gitArchive(ctx context.Context, ref *ChartRef) ([]byte, bool, error) {
	if c.git == nil {
		return nil, false, fmt.Errorf("%w: git charts need a git cache", ErrInvalidSource)
	}
	if ref.Digest == "" {
		return nil, false, fmt.Errorf("%w: the reference has no digest; resolve it first", ErrInvalidSource)
	}
	if len(ref.Source.Verify) > 0 {
		// The commit that is checked out, if the archive is not cached:
		// a reference need not come from Resolve.
		rev, err := git.ParseRevision(ref.Revision)
		if err != nil {
			return nil, false, fmt.Errorf("%w: revision: %w", ErrInvalidSource, err)
		}
		if err := c.verifyGit(ctx, &ref.Source, rev); err != nil {
			return nil, false, err
		}
	}
	return c.archive(ctx, ref, c.originOf(kindGit, ref.Source), "git-build\n"+ref.Digest, false, func(ctx context.Context) (*fetched, error) {
		return c.buildGit(ctx, ref)
	})
}

func (c *Charts) buildGit(ctx context.Context, ref *ChartRef) (*fetched, error) {
	src := ref.Source
	chartPath, err := confineChartPath(src.Path)
	if err != nil {
		return nil, err
	}
	rev, err := git.ParseRevision(ref.Revision)
	if err != nil {
		return nil, fmt.Errorf("%w: revision: %w", ErrInvalidSource, err)
	}
	deps := ref.deps
	if deps == nil {
		// A reference that did not come from this Resolve (copied, or
		// rebuilt from status): resolve its dependencies again, and
		// refuse if that no longer gives the same chart.
		again, err := c.gitRef(ctx, src, rev, chartPath)
		if err != nil {
			return nil, err
		}
		if again.Digest != ref.Digest {
			return nil, fmt.Errorf("%w: the chart's dependencies changed since it was resolved; resolve it again", ErrInvalidSource)
		}
		deps = again.deps
	}
	c.gitBuilds.Add(1)
	tmp, err := os.MkdirTemp(filepath.Join(c.dir, scratchDir), "git-")
	if err != nil {
		return nil, fmt.Errorf("build chart: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	checkout := filepath.Join(tmp, "repo")
	if err := c.git.Checkout(ctx, src.Git, rev, checkout); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(checkout)
	if err != nil {
		return nil, fmt.Errorf("build chart: %w", err)
	}
	defer func() { _ = root.Close() }()
	ch, err := loadDirConfined(root, chartPath, c.limits)
	if err != nil {
		return nil, err
	}
	if !src.SkipDepUpdate {
		if err := c.buildDependencies(ctx, root, chartPath, ch, deps); err != nil {
			return nil, err
		}
	}
	saved, err := chartutil.Save(ch, filepath.Join(tmp, "out"))
	if err != nil {
		return nil, fmt.Errorf("%w: package: %s", ErrInvalidChart, err.Error())
	}
	b, err := readFileMax(saved, c.maxArchive)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	if err := checkArchive(bytes.NewReader(b), c.limits); err != nil {
		return nil, err
	}
	if err := c.storeArchive(c.originOf(kindGit, src), ref.Digest, b); err != nil {
		return nil, fmt.Errorf("cache chart: %w", err)
	}
	return &fetched{data: b, digest: ref.Digest}, nil
}

// buildDependencies puts the dependencies Chart.yaml lists into ch, as
// `helm dependency build` would put them into charts/: file:// ones from
// the checkout (confined to it), repository ones through Load. A subchart
// of the same name already in charts/ is replaced; others stay.
func (c *Charts) buildDependencies(ctx context.Context, root *os.Root, chartPath string, ch *chart.Chart, deps []*ChartRef) error {
	replaced := map[string]bool{}
	added := map[string]bool{}
	var subs []*chart.Chart
	for _, d := range ch.Metadata.Dependencies {
		if d == nil {
			continue
		}
		var sub *chart.Chart
		switch depKind(d.Repository) {
		case "":
			continue
		case "file":
			dir, err := fileDepDir(chartPath, d)
			if err != nil {
				return err
			}
			if sub, err = loadDirConfined(root, dir, c.limits); err != nil {
				return fmt.Errorf("dependency %s: %w", d.Name, err)
			}
			if err := checkDepVersion(d, sub); err != nil {
				return err
			}
		case "repo":
			var dref *ChartRef
			for _, r := range deps {
				if r.Source.Name == d.Name && r.Source.Repository == d.Repository {
					dref = r
					break
				}
			}
			if dref == nil {
				return fmt.Errorf("%w: dependency %s was not resolved; resolve the chart again", ErrInvalidSource, d.Name)
			}
			cp := *dref // Load may fill in a digest; the reference is shared
			var err error
			if sub, err = c.Load(ctx, &cp); err != nil {
				return fmt.Errorf("dependency %s: %w", d.Name, err)
			}
		default:
			return fmt.Errorf("%w: dependency %s: unsupported repository %s", ErrInvalidChart, d.Name, RedactURL(d.Repository))
		}
		if sub.Name() != d.Name {
			return fmt.Errorf("%w: dependency %s: the chart there is called %q", ErrInvalidChart, d.Name, truncate(sub.Name()))
		}
		replaced[d.Name] = true
		if k := sub.Name() + "@" + sub.Metadata.Version; !added[k] {
			added[k] = true
			subs = append(subs, sub)
		}
	}
	var keep []*chart.Chart
	for _, s := range ch.Dependencies() {
		if !replaced[s.Name()] {
			keep = append(keep, s)
		}
	}
	ch.SetDependencies(append(keep, subs...)...)
	return nil
}

// checkDepVersion refuses a file:// dependency whose version does not
// satisfy the range Chart.yaml asks for, as helm does.
func checkDepVersion(d *chart.Dependency, sub *chart.Chart) error {
	if d.Version == "" {
		return nil
	}
	cons, err := semver.NewConstraint(d.Version)
	if err != nil {
		return fmt.Errorf("%w: dependency %s: version %q is not a range", ErrInvalidChart, d.Name, truncate(d.Version))
	}
	v, err := semver.NewVersion(sub.Metadata.Version)
	if err != nil || !cons.Check(v) {
		return fmt.Errorf("%w: dependency %s: version %q does not match %q", ErrInvalidChart, d.Name, truncate(sub.Metadata.Version), d.Version)
	}
	return nil
}

// loadDirConfined loads the chart in directory dir (slash path relative to
// root) the way Helm's loader.LoadDir does (.helmignore, symlinks followed),
// except that every file is read through root, so a symlink that leaves the
// repository fails instead of reading the host's files, and the archive
// limits apply.
func loadDirConfined(root *os.Root, dir string, lim ArchiveLimits) (*chart.Chart, error) {
	fi, err := root.Stat(dir)
	if err != nil {
		return nil, confinedError(root, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %q is not a directory", ErrInvalidSource, dir)
	}
	rules := ignore.Empty()
	if b, err := readConfined(root, path.Join(dir, ignore.HelmIgnore), lim.MaxFileSize); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("%w: %s: %s", ErrInvalidChart, ignore.HelmIgnore, err.Error())
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rules.AddDefaults()
	w := &dirLoader{root: root, dir: dir, lim: lim, rules: rules}
	if err := w.walk("", 0); err != nil {
		return nil, err
	}
	ch, err := loader.LoadFiles(w.files)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %s", ErrInvalidChart, dir, err.Error())
	}
	return ch, nil
}

// dirLoader collects a chart directory's files within limits.
type dirLoader struct {
	root  *os.Root
	dir   string
	lim   ArchiveLimits
	rules *ignore.Rules
	files []*loader.BufferedFile
	count int
	total int64
}

func (w *dirLoader) walk(rel string, depth int) error {
	if depth > maxChartDirDepth {
		return fmt.Errorf("%w: %q: nested deeper than %d (a symlink loop?)", ErrHostileChart, rel, maxChartDirDepth)
	}
	full := path.Join(w.dir, rel)
	f, err := w.root.Open(full)
	if err != nil {
		return confinedError(w.root, full, err)
	}
	ents, err := f.ReadDir(-1)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("read %q: %w", full, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		n := path.Join(rel, e.Name())
		p := path.Join(w.dir, n)
		fi, err := w.root.Stat(p) // follows symlinks, within the root only
		if err != nil {
			return confinedError(w.root, p, err)
		}
		if w.rules.Ignore(n, fi) {
			continue
		}
		if fi.IsDir() {
			if err := w.walk(n, depth+1); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: %q is not a regular file", ErrHostileChart, p)
		}
		w.count++
		if w.count > w.lim.MaxFiles {
			return fmt.Errorf("%w: %w: more than %d files", ErrHostileChart, ErrTooLarge, w.lim.MaxFiles)
		}
		data, err := readConfined(w.root, p, w.lim.MaxFileSize)
		if err != nil {
			return err
		}
		w.total += int64(len(data))
		if w.total > w.lim.MaxTotalSize {
			return fmt.Errorf("%w: %w: the chart is larger than %d bytes", ErrHostileChart, ErrTooLarge, w.lim.MaxTotalSize)
		}
		w.files = append(w.files, &loader.BufferedFile{Name: n, Data: bytes.TrimPrefix(data, utf8BOM)})
	}
	return nil
}

// readConfined reads a file through root, at most maxSize bytes.
func readConfined(root *os.Root, p string, maxSize int64) ([]byte, error) {
	f, err := root.Open(p)
	if err != nil {
		return nil, confinedError(root, p, err)
	}
	defer func() { _ = f.Close() }()
	b, err := readAllMax(f, maxSize)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", p, err)
	}
	return b, nil
}

// confinedError explains a failure to reach p through root: a symlink on
// the way that leaves the repository is hostile; a missing file is not.
func confinedError(root *os.Root, p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q does not exist in the repository: %w", ErrInvalidChart, p, fs.ErrNotExist)
	}
	// Walk p's components: the first symlink whose target cannot be
	// reached within the root is the culprit.
	parts := strings.Split(p, "/")
	for i := range parts {
		q := strings.Join(parts[:i+1], "/")
		li, lerr := root.Lstat(q)
		if lerr != nil || li.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if _, serr := root.Stat(q); serr != nil && !errors.Is(serr, fs.ErrNotExist) {
			target, _ := root.Readlink(q)
			return fmt.Errorf("%w: %w: symlink %q points to %q, outside the repository", ErrHostileChart, git.ErrPathEscapes, q, truncate(target))
		}
	}
	return fmt.Errorf("read %q: %w", p, err)
}
