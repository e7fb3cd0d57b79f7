package update

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is one file of the checkout, its path relative to the repository root
// (slash-separated). Find and Apply never read the file system: the caller
// reads (and size-caps) the files and passes their bytes.
type File struct {
	Path string
	Data []byte
}

// ObjectRef names the object an image belongs to, so automation can report
// and address it the way Flux v1 did.
type ObjectRef struct {
	Kind string
	// Namespace as written in the file, "" when the file names none.
	Namespace string
	Name      string
}

// String renders the reference as a Flux v1 resource ID,
// "<namespace>:<kind-lowercase>/<name>", e.g. "default:deployment/podinfo",
// so fluxctl-style commands and messages keep working. An object whose file
// names no namespace renders with "default", as fluxd did with its default
// namespacer; a caller that applies with another default namespace should set
// Namespace before rendering.
func (o ObjectRef) String() string {
	ns := o.Namespace
	if ns == "" {
		ns = "default"
	}
	return ns + ":" + strings.ToLower(o.Kind) + "/" + o.Name
}

// Image is one image reference that automation may change. Policy is not
// applied here: objects marked fluxcd.io/ignore and images without a policy
// are returned too, with their object's annotations, for the caller to judge.
type Image struct {
	Object ObjectRef
	// Annotations of the workload or HelmRelease, where the policy lives.
	Annotations map[string]string
	// Container is the container's name; for a HelmRelease the top-level
	// values key the image sits under, "chart-image" for an image at the
	// values root, or the <c> of a repository.fluxcd.io/<c> mapping.
	Container string
	// Repository is the image without its tag, as written: "ghcr.io/org/app",
	// "nginx", "localhost:5000/x". Where registry and repository are written
	// separately they are joined with "/".
	Repository string
	// Tag is the current tag, "" when the reference has none.
	Tag string
	// File is the path of the file that holds the tag, as given in Find's
	// files: a values file for values read through gitFileRef.
	File string
	// Locator says where the tag lives, for Apply.
	Locator Locator
}

// Locator says where an image's tag is written: the file, the document, the
// node path, and whether the node holds only the tag or the whole
// "repository:tag". It is opaque to callers, but comparable: two images with
// equal Locators are written in the same place.
type Locator struct {
	file string // cleaned path of the file, as Find and Apply index files
	doc  int
	path string // node path, encoded by encodePath
	// whole is set when the node holds "name:tag" rather than the tag alone;
	// name is then the part before the tag, as written.
	whole bool
	name  string
}

func (l Locator) nodePath() []string { return decodePath(l.path) }

// encodePath packs a node path into a string so Locator stays comparable.
// Each element is length-prefixed, so keys may contain any character.
func encodePath(p []string) string {
	var b strings.Builder
	for _, e := range p {
		b.WriteString(strconv.Itoa(len(e)))
		b.WriteByte(':')
		b.WriteString(e)
	}
	return b.String()
}

func decodePath(s string) []string {
	var p []string
	for s != "" {
		n, rest, ok := strings.Cut(s, ":")
		l, err := strconv.Atoi(n)
		if !ok || err != nil || l < 0 || l > len(rest) {
			return nil
		}
		p = append(p, rest[:l])
		s = rest[l:]
	}
	return p
}

// podSpecPaths says where each workload kind keeps its pod spec. Any
// apiVersion is accepted: the kinds moved between API groups over the years.
var podSpecPaths = map[string][]string{
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
	"Pod":         {"spec"},
}

// maxListDepth bounds how deeply Lists may nest inside Lists.
const maxListDepth = 8

// parsedFile is one input file, parsed once and shared by every object that
// reads it (a values file may serve several HelmReleases).
type parsedFile struct {
	path string // as given by the caller
	key  string // cleaned, the index key
	docs []*yaml.Node
	err  error
}

// checkout indexes the parsed files of one Find call by cleaned path.
type checkout struct {
	files  []*parsedFile
	byPath map[string]*parsedFile
}

func parseCheckout(files []File) *checkout {
	c := &checkout{byPath: make(map[string]*parsedFile, len(files))}
	for _, f := range files {
		pf := &parsedFile{path: f.Path, key: cleanKey(f.Path)}
		pf.docs, pf.err = parseDocs(f.Data)
		c.files = append(c.files, pf)
		c.byPath[pf.key] = pf
	}
	return c
}

// cleanKey is the key files are indexed by, so "./a.yaml" and "a.yaml" meet.
func cleanKey(p string) string { return path.Clean(strings.TrimPrefix(p, "/")) }

// Find returns the images of every supported object in files, and one error
// per file or object (or image) that could not be read; a malformed file
// never stops the others. Supported objects are the workloads
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, of any
// apiVersion, and the same inside a kind: List) and helm.fluxcd.io/v1
// HelmReleases; see the package documentation for the shapes understood.
//
// A HelmRelease's gitFileRef values files are looked up among files, so one
// call with the manifests and their values files (see ValuesFiles) finds
// everything; a values file that is not among files is treated as absent.
//
// Images come in file order, then document order; a workload's containers in
// the order written, a HelmRelease's "chart-image" first and the others by
// name.
func Find(files []File) ([]Image, []error) {
	c := parseCheckout(files)
	f := &finder{c: c}
	for _, pf := range c.files {
		if pf.err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", pf.path, pf.err))
			continue
		}
		for di, d := range pf.docs {
			if root := docRoot(d); root != nil && root.Kind == yaml.MappingNode {
				f.object(pf, di, root, nil, 0)
			}
		}
	}
	return f.images, f.errs
}

type finder struct {
	c      *checkout
	images []Image
	errs   []error
}

// object finds the images of one object, whose node path from the document
// root is base.
func (f *finder) object(pf *parsedFile, doc int, obj *yaml.Node, base []string, depth int) {
	kind := scalarValue(get(obj, "kind"))
	switch {
	case kind == "List":
		if depth >= maxListDepth {
			f.errs = append(f.errs, fmt.Errorf("%s: %s: Lists nest more than %d deep", pf.path, pathString(base), maxListDepth))
			return
		}
		items := get(obj, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return
		}
		for i, it := range items.Content {
			if it.Kind == yaml.MappingNode {
				f.object(pf, doc, it, appendPath(base, "items", index(i)), depth+1)
			}
		}
	case kind == "HelmRelease" && scalarValue(get(obj, "apiVersion")) == helmReleaseAPIVersion:
		f.helmRelease(pf, doc, obj, base)
	case podSpecPaths[kind] != nil:
		f.workload(pf, doc, obj, base, podSpecPaths[kind])
	}
}

// workload finds the images of the containers and initContainers of a pod
// spec, in the order written.
func (f *finder) workload(pf *parsedFile, doc int, obj *yaml.Node, base, specPath []string) {
	ref, ann := objectMeta(obj)
	spec := obj
	for _, k := range specPath {
		if spec = get(spec, k); spec == nil || spec.Kind != yaml.MappingNode {
			return
		}
	}
	specBase := appendPath(base, specPath...)
	for i := 0; i+1 < len(spec.Content); i += 2 {
		key := spec.Content[i].Value
		list := spec.Content[i+1]
		if (key != "containers" && key != "initContainers") || list.Kind != yaml.SequenceNode {
			continue
		}
		for ci, ctr := range list.Content {
			if ctr.Kind != yaml.MappingNode {
				continue
			}
			img := get(ctr, "image")
			if img == nil || (img.Kind == yaml.ScalarNode && img.Tag == "!!null") {
				continue
			}
			name := scalarValue(get(ctr, "name"))
			p := appendPath(specBase, key, index(ci), "image")
			n, err := nodeAt(pf.docs[doc], p)
			if err != nil {
				f.errs = append(f.errs, fmt.Errorf("%s: %s container %q: %w", pf.path, ref, name, err))
				continue
			}
			repo, tag, ok := SplitRef(n.Value)
			if !ok {
				continue // a digest, or not an image reference
			}
			f.images = append(f.images, Image{
				Object:      ref,
				Annotations: maps.Clone(ann),
				Container:   name,
				Repository:  repo,
				Tag:         tag,
				File:        pf.path,
				Locator:     Locator{file: pf.key, doc: doc, path: encodePath(p), whole: true, name: repo},
			})
		}
	}
}

// objectMeta reads an object's kind, name, namespace and annotations.
func objectMeta(obj *yaml.Node) (ObjectRef, map[string]string) {
	ref := ObjectRef{Kind: scalarValue(get(obj, "kind"))}
	meta := get(obj, "metadata")
	ref.Name = scalarValue(get(meta, "name"))
	ref.Namespace = scalarValue(get(meta, "namespace"))
	ann := map[string]string{}
	if a := get(meta, "annotations"); a != nil && a.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(a.Content); i += 2 {
			if k, v := a.Content[i], deref(a.Content[i+1]); k.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode {
				ann[k.Value] = v.Value
			}
		}
	}
	return ref, ann
}

// get returns the value of key in mapping m (the first, if written twice),
// or nil. It reads through aliases; nodeAt refuses them when it comes to
// writing.
func get(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// deref follows an alias to its anchor (once: an anchor cannot be an alias).
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// scalarValue returns the value of a non-null scalar, or "".
func scalarValue(n *yaml.Node) string {
	if n = deref(n); n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// appendPath returns a new path; it never writes into base's array, which
// other paths may share.
func appendPath(base []string, elems ...string) []string {
	return append(slices.Clip(base), elems...)
}

// PodSpecPath returns where a workload kind keeps its pod spec (mapping keys
// from the object's root), and false for kinds that are not workloads. It
// lets callers read the rest of the pod spec (pull secrets, service
// account) of the workloads Find reports.
func PodSpecPath(kind string) ([]string, bool) {
	p, ok := podSpecPaths[kind]
	return append([]string(nil), p...), ok
}
