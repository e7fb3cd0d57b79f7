package update

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/helmflux/helmflux/pkg/policy"
	"github.com/helmflux/helmflux/pkg/repopath"
)

const (
	helmReleaseAPIVersion = "helm.fluxcd.io/v1"

	// chartImage is the container name of an image written at the root of
	// a HelmRelease's values, as the Flux Helm Operator named it.
	chartImage = "chart-image"

	registryPrefix   = "registry.fluxcd.io/"
	repositoryPrefix = "repository.fluxcd.io/"
	tagPrefix        = "tag.fluxcd.io/"

	// maxValuesDepth bounds the deep merge of values: nesting is in the
	// hands of whoever can push to the repository.
	maxValuesDepth = 64
)

// valuesSource is one layer of a HelmRelease's values: a gitFileRef values
// file, or the inline spec.values. Sources are kept lowest precedence first.
type valuesSource struct {
	pf   *parsedFile
	doc  int
	base []string // node path of the values root in its document
	root *yaml.Node
}

// mnode is one node of the merged view of a HelmRelease's values: a
// mapping merged key by key across sources, or the winning value of a key
// (the one from the highest-precedence source that writes it) together with
// where that value is written.
type mnode struct {
	keys []string // mapping keys in order of first appearance; nil for a leaf
	kids map[string]*mnode

	leaf *yaml.Node // the value, when not a mapping
	src  int        // index of the source that wrote leaf
	path []string   // path of leaf relative to that source's values root
}

func (m *mnode) isMap() bool { return m != nil && m.kids != nil }

// mergeInto merges the mapping node v of source src into dst, the way the
// Helm Operator merges values: a mapping merges key by key into a mapping,
// any other value (lists and nulls included) replaces what was there. Beyond
// maxValuesDepth a mapping is kept whole as a leaf: no shape or mapping
// reaches that deep, and the walk stays bounded.
func mergeInto(dst *mnode, v *yaml.Node, src int, at []string, depth int) {
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			continue
		}
		key := k.Value
		p := appendPath(at, key)
		cur, seen := dst.kids[key]
		if !seen {
			dst.keys = append(dst.keys, key)
		}
		if val.Kind == yaml.MappingNode && depth < maxValuesDepth {
			if !cur.isMap() {
				cur = &mnode{kids: map[string]*mnode{}}
				dst.kids[key] = cur
			}
			mergeInto(cur, val, src, p, depth+1)
			continue
		}
		dst.kids[key] = &mnode{leaf: val, src: src, path: p}
	}
}

// child returns the merged value at key of a merged mapping, or nil.
func (m *mnode) child(key string) *mnode {
	if !m.isMap() {
		return nil
	}
	return m.kids[key]
}

// str returns the value of a leaf that is a string scalar. Like Flux v1,
// only strings count as a repository or registry.
func (m *mnode) str() (string, bool) {
	if m == nil || m.isMap() {
		return "", false
	}
	n := deref(m.leaf)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", false
	}
	return n.Value, true
}

// tagValue returns the value of a leaf that can be a tag node: a string, or a
// number a user wrote plain (tag: 2). Flux v1 took strings only; numbers are
// accepted here because Helm renders them as written for most tags, and the
// splicer quotes the new value where plain would not read back as a string.
func (m *mnode) tagValue() (string, bool) {
	if m == nil || m.isMap() {
		return "", false
	}
	n := deref(m.leaf)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.Tag {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	}
	return "", false
}

// hrImage is an image found in a HelmRelease's merged values, before it is
// tied to a file.
type hrImage struct {
	container  string
	repository string
	tag        string
	at         *mnode // the node that holds the tag
	whole      bool   // at holds "name:tag"
	name       string // when whole: the name as written in at
}

// helmRelease finds the images of a helm.fluxcd.io/v1 HelmRelease: the five
// value shapes at the values root and under each top-level key, and the
// containers mapped by annotations, all on the merged view of its values
// files and inline values.
func (f *finder) helmRelease(pf *parsedFile, doc int, obj *yaml.Node, base []string) {
	ref, ann := objectMeta(obj)
	fail := func(err error) { f.errs = append(f.errs, fmt.Errorf("%s: %s: %w", pf.path, ref, err)) }

	sources, err := f.valuesSources(pf, doc, obj, base)
	if err != nil {
		fail(err)
		return
	}
	merged := &mnode{kids: map[string]*mnode{}}
	for i, s := range sources {
		mergeInto(merged, s.root, i, nil, 1)
	}

	var found []hrImage
	mapped, mapErrs := mappedImages(merged, ann)
	for _, err := range mapErrs {
		fail(err)
	}
	taken := map[*mnode]bool{}
	names := map[string]bool{}
	for _, m := range mappingNames(ann) {
		names[m] = true
	}
	for _, im := range mapped {
		taken[im.at] = true
		found = append(found, im)
	}
	for _, im := range shapeImages(merged) {
		if !names[im.container] && !taken[im.at] {
			found = append(found, im)
		}
	}
	slices.SortStableFunc(found, func(a, b hrImage) int {
		switch {
		case a.container == b.container:
			return 0
		case a.container == chartImage:
			return -1
		case b.container == chartImage:
			return 1
		}
		return strings.Compare(a.container, b.container)
	})

	for _, im := range found {
		s := sources[im.at.src]
		p := appendPath(s.base, im.at.path...)
		if _, err := nodeAt(s.pf.docs[s.doc], p); err != nil {
			fail(fmt.Errorf("container %q: tag in %s: %w", im.container, s.pf.path, err))
			continue
		}
		f.images = append(f.images, Image{
			Object:      ref,
			Annotations: maps.Clone(ann),
			Container:   im.container,
			Repository:  im.repository,
			Tag:         im.tag,
			File:        s.pf.path,
			Locator:     Locator{file: s.pf.key, doc: s.doc, path: encodePath(p), whole: im.whole, name: im.name},
		})
	}
}

// valuesSources returns the values layers of a HelmRelease present in the
// checkout, lowest precedence first: its gitFileRef values files in
// valuesFrom order, then spec.values. Values files missing from the checkout
// are skipped, as are valuesFrom entries of other kinds (ConfigMaps,
// Secrets, URLs, chart files are not in git, so automation cannot write
// them). A values file that is present but unreadable, or not a mapping,
// makes the whole HelmRelease unreadable: without it the merged view, and so
// the node to edit, could be wrong.
func (f *finder) valuesSources(pf *parsedFile, doc int, obj *yaml.Node, base []string) ([]valuesSource, error) {
	var sources []valuesSource
	spec := get(obj, "spec")
	refs := gitFileRefs(spec)
	for _, i := range orderedRefs(refs) {
		// The HelmRelease controller reads the file with the same rule.
		clean, err := repopath.Clean(refs[i])
		if err != nil {
			return nil, fmt.Errorf("spec.valuesFrom[%d].gitFileRef.path: %w", i, err)
		}
		vf := f.c.byPath[clean]
		if vf == nil {
			continue
		}
		if vf.err != nil {
			return nil, fmt.Errorf("values file %s cannot be read", vf.path)
		}
		if len(vf.docs) == 0 {
			continue
		}
		root := docRoot(vf.docs[0])
		if root == nil || (root.Kind == yaml.ScalarNode && root.Tag == "!!null") {
			continue // an empty values file counts as {}
		}
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("values file %s is not a YAML map", vf.path)
		}
		sources = append(sources, valuesSource{pf: vf, doc: 0, root: root})
	}
	if v := get(spec, "values"); v != nil && v.Kind == yaml.MappingNode {
		sources = append(sources, valuesSource{pf: pf, doc: doc, base: appendPath(base, "spec", "values"), root: v})
	}
	return sources, nil
}

// gitFileRefs returns spec.valuesFrom[].gitFileRef.path as written, with
// the index of each entry ("" for entries of another kind).
func gitFileRefs(spec *yaml.Node) map[int]string {
	out := map[int]string{}
	vf := get(spec, "valuesFrom")
	if vf == nil || vf.Kind != yaml.SequenceNode {
		return out
	}
	for i, e := range vf.Content {
		if g := get(e, "gitFileRef"); g != nil {
			out[i] = scalarValue(get(g, "path"))
		}
	}
	return out
}

// orderedRefs returns the gitFileRef paths of gitFileRefs in valuesFrom order.
func orderedRefs(refs map[int]string) []int {
	idx := slices.Collect(maps.Keys(refs))
	slices.Sort(idx)
	return idx
}

// shapeImages detects the Flux Helm Operator's five value shapes on the
// merged values: at the root (container "chart-image") and in the mapping
// under each top-level key (container named after the key).
func shapeImages(values *mnode) []hrImage {
	var out []hrImage
	if im, ok := detectShape(values); ok {
		im.container = chartImage
		out = append(out, im)
	}
	for _, k := range values.keys {
		if im, ok := detectShape(values.kids[k]); ok {
			im.container = k
			out = append(out, im)
		}
	}
	return out
}

// detectShape interprets a merged mapping as a container's image:
//
//  1. image: repo:tag
//  2. image: repo, tag: tag
//  3. registry: reg, image: repo, tag: tag
//  4. image: {repository: repo, tag: tag}
//  5. image: {registry: reg, repository: repo, tag: tag}
//
// As in Flux v1, a registry or tag that is not a scalar is ignored (so
// "registry: reg, image: repo:tag" works too), and a tag beside the
// repository wins over a tag inside it.
func detectShape(c *mnode) (hrImage, bool) {
	img := c.child("image")
	if img == nil {
		return hrImage{}, false
	}
	holder := c // the mapping that holds repository, registry and tag
	repoNode := img
	if img.isMap() {
		holder = img
		repoNode = img.child("repository")
	}
	repo, ok := repoNode.str()
	if !ok {
		return hrImage{}, false
	}
	registry, _ := holder.child("registry").str()
	im, ok := imageOf(repoNode, repo, registry, holder.child("tag"))
	if ok && img.isMap() && im.whole && im.tag == "" {
		// image: {repository: repo} with no tag: charts join repository and
		// tag themselves (often defaulting to the chart's appVersion), so
		// writing "repo:tag" into repository would break the image. Flux v1
		// did that; helmflux leaves such an image alone.
		return hrImage{}, false
	}
	return im, ok
}

// imageOf builds the image whose repository is written in repoNode (value
// repo), with an optional registry, and an optional separate tag node.
func imageOf(repoNode *mnode, repo, registry string, tagNode *mnode) (hrImage, bool) {
	name, tag, ok := SplitRef(repo)
	if !ok {
		return hrImage{}, false
	}
	if t, isTag := tagNode.tagValue(); isTag {
		if t != "" && !policy.ValidTag(t) {
			return hrImage{}, false
		}
		return hrImage{repository: joinRepository(registry, name), tag: t, at: tagNode}, true
	}
	return hrImage{repository: joinRepository(registry, name), tag: tag, at: repoNode, whole: true, name: name}, true
}

// imageMapping is what the annotations of one mapped container say.
type imageMapping struct{ registry, repository, tag string }

// mappingNames returns the containers named by mapping annotations, sorted.
func mappingNames(ann map[string]string) []string {
	set := map[string]bool{}
	for k := range ann {
		for _, p := range []string{registryPrefix, repositoryPrefix, tagPrefix} {
			if c, ok := strings.CutPrefix(k, p); ok && c != "" {
				set[c] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// mappedImages resolves the repository.fluxcd.io/<c>, tag.fluxcd.io/<c> and
// registry.fluxcd.io/<c> annotations: dot paths into the values. Without a
// tag path the repository value holds "repo:tag". A mapping that does not
// resolve is an error, not a fall back to shape detection: the annotation
// says what the user means.
func mappedImages(values *mnode, ann map[string]string) ([]hrImage, []error) {
	var out []hrImage
	var errs []error
	for _, c := range mappingNames(ann) {
		m := imageMapping{ann[registryPrefix+c], ann[repositoryPrefix+c], ann[tagPrefix+c]}
		im, err := resolveMapping(values, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("image mapping of container %q: %w", c, err))
			continue
		}
		im.container = c
		out = append(out, im)
	}
	return out, errs
}

func resolveMapping(values *mnode, m imageMapping) (hrImage, error) {
	if m.repository == "" {
		return hrImage{}, fmt.Errorf("needs a %s annotation", repositoryPrefix+"<container>")
	}
	repoNode, err := dotPath(values, m.repository)
	if err != nil {
		return hrImage{}, err
	}
	repo, ok := repoNode.str()
	if !ok {
		return hrImage{}, fmt.Errorf("values %s is not a string", m.repository)
	}
	var registry string
	if m.registry != "" {
		regNode, err := dotPath(values, m.registry)
		if err != nil {
			return hrImage{}, err
		}
		if registry, ok = regNode.str(); !ok {
			return hrImage{}, fmt.Errorf("values %s is not a string", m.registry)
		}
	}
	var tagNode *mnode
	if m.tag != "" {
		if tagNode, err = dotPath(values, m.tag); err != nil {
			return hrImage{}, err
		}
		if _, ok := tagNode.tagValue(); !ok {
			return hrImage{}, fmt.Errorf("values %s is not a string", m.tag)
		}
	}
	im, ok := imageOf(repoNode, repo, registry, tagNode)
	if !ok {
		return hrImage{}, errors.New("the mapped values are not an image reference with a tag (or are pinned by digest)")
	}
	return im, nil
}

// dotPath resolves a mapping annotation's dot path ("app.image.tag") in the
// merged values.
func dotPath(values *mnode, p string) (*mnode, error) {
	n := values
	for _, k := range strings.Split(p, ".") {
		if k == "" {
			return nil, fmt.Errorf("values path %q has an empty key", p)
		}
		if n = n.child(k); n == nil {
			return nil, fmt.Errorf("values path %q does not exist", p)
		}
	}
	if n.isMap() {
		return nil, fmt.Errorf("values %s is a map", p)
	}
	return n, nil
}

// ValuesFiles returns the repository paths named by
// spec.valuesFrom[].gitFileRef.path of the HelmReleases in files (also
// inside Lists): cleaned, slash-separated, de-duplicated, in order of
// appearance. The caller reads them and passes them to Find with the
// manifests. A path that is absolute or leaves the repository is returned
// as an error, not a path; Find reports the same error for its HelmRelease,
// so a caller that runs both may drop these. Files that do not parse are
// skipped here and reported by Find.
func ValuesFiles(files []File) ([]string, []error) {
	var out []string
	var errs []error
	seen := map[string]bool{}
	var visit func(pf *parsedFile, obj *yaml.Node, depth int)
	visit = func(pf *parsedFile, obj *yaml.Node, depth int) {
		kind := scalarValue(get(obj, "kind"))
		switch {
		case kind == "List" && depth < maxListDepth:
			if items := get(obj, "items"); items != nil && items.Kind == yaml.SequenceNode {
				for _, it := range items.Content {
					visit(pf, it, depth+1)
				}
			}
		case kind == "HelmRelease" && scalarValue(get(obj, "apiVersion")) == helmReleaseAPIVersion:
			ref, _ := objectMeta(obj)
			refs := gitFileRefs(get(obj, "spec"))
			for _, i := range orderedRefs(refs) {
				clean, err := repopath.Clean(refs[i])
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("%s: %s: spec.valuesFrom[%d].gitFileRef.path: %w", pf.path, ref, i, err))
				case !seen[clean]:
					seen[clean] = true
					out = append(out, clean)
				}
			}
		}
	}
	for _, pf := range parseCheckout(files).files {
		for _, d := range pf.docs {
			if root := docRoot(d); root != nil && root.Kind == yaml.MappingNode {
				visit(pf, root, 0)
			}
		}
	}
	return out, errs
}
