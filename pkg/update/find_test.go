package update

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// found is the part of an Image a Find test compares.
type found struct{ obj, container, repo, tag, file string }

func (f found) String() string {
	return fmt.Sprintf("%s %s %s:%s in %s", f.obj, f.container, f.repo, f.tag, f.file)
}

func foundOf(images []Image) []found {
	var out []found
	for _, im := range images {
		out = append(out, found{im.Object.String(), im.Container, im.Repository, im.Tag, im.File})
	}
	return out
}

const hrHead = `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: hr
  namespace: apps
`

func TestFind(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string // path → content; files are passed in path order
		want     []found
		wantErrs []string // one substring per expected error
	}{
		{
			name: "workloads: digests skipped, other kinds ignored, ignore annotation kept",
			files: map[string]string{"a.yaml": `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {fluxcd.io/ignore: "true"}
spec:
  template:
    spec:
      containers:
        - {name: digest, image: "nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000"}
        - {name: tagdigest, image: "nginx:1.25@sha256:0000000000000000000000000000000000000000000000000000000000000000"}
        - {name: untagged, image: "localhost:5000/app"}
        - {name: web, image: "nginx:1.25"}
        - {name: noimage}
        - {name: nullimage, image: ~}
        - {name: template, image: "{{ .Values.image }}"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {image: "nginx:1.0"}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: v2}
spec: {values: {image: "nginx:1.0"}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: r}
spec: {template: {spec: {containers: [{name: r, image: "nginx:1.0"}]}}}
--- just a scalar
---
- a sequence
`},
			want: []found{
				{"default:deployment/web", "untagged", "localhost:5000/app", "", "a.yaml"},
				{"default:deployment/web", "web", "nginx", "1.25", "a.yaml"},
			},
		},
		{
			name: "a malformed file is an error, the others still yield images",
			files: map[string]string{
				"a-bad.yaml": "kind: Pod\nspec: [unclosed\n",
				"b-good.yaml": `
kind: Pod
metadata: {name: p, namespace: ns}
spec:
  initContainers: [{name: i, image: "busybox:1"}]
  containers: [{name: c, image: "busybox:2"}]
`,
			},
			want: []found{
				{"ns:pod/p", "i", "busybox", "1", "b-good.yaml"},
				{"ns:pod/p", "c", "busybox", "2", "b-good.yaml"},
			},
			wantErrs: []string{"a-bad.yaml"},
		},
		{
			name: "aliases and anchors are reported, not automated",
			files: map[string]string{"a.yaml": `
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
        - {name: anchored, image: &img "nginx:1.0"}
        - {name: alias, image: *img}
        - {name: fine, image: "nginx:1.0"}
`},
			want:     []found{{"default:deployment/d", "fine", "nginx", "1.0", "a.yaml"}},
			wantErrs: []string{`container "anchored"`, `container "alias"`},
		},
		{
			name: "kind List, nested",
			files: map[string]string{"a.yaml": `
kind: List
items:
  - kind: List
    items:
      - {kind: Pod, metadata: {name: inner}, spec: {containers: [{name: c, image: "a:1"}]}}
  - {kind: Job, metadata: {name: j}, spec: {template: {spec: {containers: [{name: c, image: "b:2"}]}}}}
  - not an object
`},
			want: []found{
				{"default:pod/inner", "c", "a", "1", "a.yaml"},
				{"default:job/j", "c", "b", "2", "a.yaml"},
			},
		},
		{
			name: "helmrelease: chart-image first, then by name; non-image keys ignored",
			files: map[string]string{"hr.yaml": hrHead + `spec:
  values:
    zeta: {image: "z:1"}
    alpha: {image: {repository: a, tag: "2"}}
    image: "root:3"
    plain: 5
    list: [image, tag]
    noRepo: {image: {tag: "1"}}
    noTag: {image: {repository: "acme/notag"}}
    nullTag: {image: {repository: "acme/nulltag", tag: ~}}
    tagInRepo: {image: {repository: "acme/taginrepo:4"}}
    boolImage: {image: true}
    digest: {image: "d@sha256:0000000000000000000000000000000000000000000000000000000000000000"}
`},
			want: []found{
				{"apps:helmrelease/hr", "chart-image", "root", "3", "hr.yaml"},
				{"apps:helmrelease/hr", "alpha", "a", "2", "hr.yaml"},
				{"apps:helmrelease/hr", "tagInRepo", "acme/taginrepo", "4", "hr.yaml"},
				{"apps:helmrelease/hr", "zeta", "z", "1", "hr.yaml"},
			},
		},
		{
			name: "helmrelease: tags written as numbers, a null tag falls back to the image string",
			files: map[string]string{"hr.yaml": hrHead + `spec:
  values:
    num: {image: n, tag: 2}
    float: {image: {repository: f, tag: 1.9}}
    nulltag: {image: "x:1.0", tag: ~}
    booltag: {image: "b:1.0", tag: true}
`},
			want: []found{
				{"apps:helmrelease/hr", "booltag", "b", "1.0", "hr.yaml"},
				{"apps:helmrelease/hr", "float", "f", "1.9", "hr.yaml"},
				{"apps:helmrelease/hr", "nulltag", "x", "1.0", "hr.yaml"},
				{"apps:helmrelease/hr", "num", "n", "2", "hr.yaml"},
			},
		},
		{
			name: "helmrelease: merged across values files and inline, tag edited where it wins",
			files: map[string]string{
				"hr.yaml": hrHead + `spec:
  valuesFrom:
    - gitFileRef: {path: values/base.yaml}
    - secretKeyRef: {name: s}
    - gitFileRef: {path: values/missing.yaml}
    - gitFileRef: {path: ./values/env.yaml}
  values:
    api: {image: {registry: inline.example.com}}
    web: {tag: "3.0"}
`,
				"values/base.yaml": `
api: {image: {repository: acme/api, tag: "1.0"}}
web: {image: acme/web, tag: "1.0"}
db: {image: {repository: acme/db, tag: "1.0"}}
`,
				"values/env.yaml": `
api: {image: {tag: "2.0"}}
db: {image: "acme/db2:2.0"}
`,
			},
			want: []found{
				{"apps:helmrelease/hr", "api", "inline.example.com/acme/api", "2.0", "values/env.yaml"},
				{"apps:helmrelease/hr", "db", "acme/db2", "2.0", "values/env.yaml"},
				{"apps:helmrelease/hr", "web", "acme/web", "3.0", "hr.yaml"},
			},
		},
		{
			name: "helmrelease: values file that is unreadable or not a map",
			files: map[string]string{
				"a.yaml": hrHead + `spec:
  valuesFrom: [{gitFileRef: {path: bad.yaml}}]
  values: {image: "a:1"}
`,
				"b.yaml": strings.Replace(hrHead, "name: hr", "name: hr2", 1) + `spec:
  valuesFrom: [{gitFileRef: {path: list.yaml}}, {gitFileRef: {path: empty.yaml}}]
  values: {image: "a:1"}
`,
				"bad.yaml":   "image: [\n",
				"empty.yaml": "# nothing yet\n",
				"list.yaml":  "- image\n",
			},
			wantErrs: []string{"values file bad.yaml cannot be read", "values file list.yaml is not a YAML map", "bad.yaml:"},
		},
		{
			name: "helmrelease: gitFileRef paths that leave the repository",
			files: map[string]string{"hr.yaml": hrHead + `spec:
  valuesFrom: [{gitFileRef: {path: ../../etc/values.yaml}}]
  values: {image: "a:1"}
---
` + strings.Replace(hrHead, "name: hr", "name: hr2", 1) + `spec:
  valuesFrom: [{gitFileRef: {path: /etc/values.yaml}}]
`},
			wantErrs: []string{"leaves its root", "is absolute"},
		},
		{
			name: "helmrelease: mapped containers replace shape detection, broken mappings are errors and hide the shape",
			files: map[string]string{"hr.yaml": `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: hr
  annotations:
    repository.fluxcd.io/app: app.image.repository
    tag.fluxcd.io/app: app.image.tag
    repository.fluxcd.io/renamed: other.image
    tag.fluxcd.io/renamed: other.tag
    repository.fluxcd.io/broken: nowhere.repository
    tag.fluxcd.io/notag: notag.image
    repository.fluxcd.io/map: app
spec:
  values:
    app: {image: {repository: acme/app, tag: "1.0"}}
    other: {image: acme/other, tag: "2.0"}
    notag: {image: "acme/notag:1.0"}
    broken: {image: "acme/broken:1.0"}
    map: {image: "acme/map:1.0"}
`},
			want: []found{
				{"default:helmrelease/hr", "app", "acme/app", "1.0", "hr.yaml"},
				{"default:helmrelease/hr", "renamed", "acme/other", "2.0", "hr.yaml"},
			},
			wantErrs: []string{`"broken": values path "nowhere.repository" does not exist`, `"map": values app is a map`, `"notag": needs a repository.fluxcd.io/<container> annotation`},
		},
		{
			name: "helmrelease: anchored tag in values is an error",
			files: map[string]string{"hr.yaml": hrHead + `spec:
  values:
    defaults: &d {image: "a:1"}
    app: {image: {repository: b, tag: &t "1"}}
    copy: *d
`},
			wantErrs: []string{`container "app"`, `container "defaults"`},
		},
		{
			name: "helmrelease: one values file shared by two releases",
			files: map[string]string{
				"a.yaml":      hrHead + "spec: {valuesFrom: [{gitFileRef: {path: common.yaml}}]}\n",
				"b.yaml":      strings.Replace(hrHead, "name: hr", "name: hr2", 1) + "spec: {valuesFrom: [{gitFileRef: {path: common.yaml}}]}\n",
				"common.yaml": "image: {repository: acme/common, tag: \"1\"}\n",
			},
			want: []found{
				{"apps:helmrelease/hr", "chart-image", "acme/common", "1", "common.yaml"},
				{"apps:helmrelease/hr2", "chart-image", "acme/common", "1", "common.yaml"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []File
			for _, p := range sortedKeys(tt.files) {
				files = append(files, File{Path: p, Data: []byte(tt.files[p])})
			}
			images, errs := Find(files)
			if got := foundOf(images); !slices.Equal(got, tt.want) {
				t.Errorf("images:\n got %v\nwant %v", got, tt.want)
			}
			assertErrors(t, errs, tt.wantErrs)
		})
	}
}

func TestFindAnnotationsAndLocators(t *testing.T) {
	files := []File{{Path: "a.yaml", Data: []byte(`
kind: Deployment
metadata:
  name: d
  annotations: {fluxcd.io/automated: "true", filter.fluxcd.io/a: "semver:~1"}
spec: {template: {spec: {containers: [{name: a, image: "x:1"}, {name: b, image: "x:1"}]}}}
`)}}
	images, errs := Find(files)
	if len(errs) > 0 || len(images) != 2 {
		t.Fatalf("Find: %v %v", images, errs)
	}
	if images[0].Annotations["filter.fluxcd.io/a"] != "semver:~1" || images[0].Annotations["fluxcd.io/automated"] != "true" {
		t.Errorf("annotations: %v", images[0].Annotations)
	}
	images[0].Annotations["x"] = "y"
	if _, shared := images[1].Annotations["x"]; shared {
		t.Error("images share one annotations map")
	}
	if images[0].Locator == images[1].Locator {
		t.Error("two containers have one locator")
	}
	if got := images[1].Locator.nodePath(); !slices.Equal(got, []string{"spec", "template", "spec", "containers", "[1]", "image"}) {
		t.Errorf("path: %v", got)
	}
}

func TestObjectRefString(t *testing.T) {
	for ref, want := range map[ObjectRef]string{
		{Kind: "Deployment", Namespace: "apps", Name: "podinfo"}: "apps:deployment/podinfo",
		{Kind: "HelmRelease", Name: "podinfo"}:                   "default:helmrelease/podinfo",
	} {
		if got := ref.String(); got != want {
			t.Errorf("%#v: got %q, want %q", ref, got, want)
		}
	}
}

func TestValuesFiles(t *testing.T) {
	files := []File{
		{Path: "a.yaml", Data: []byte(hrHead + `spec:
  valuesFrom:
    - gitFileRef: {path: ./values/a.yaml}
    - configMapKeyRef: {name: cm}
    - gitFileRef: {path: values/x/../b.yaml}
    - gitFileRef: {path: ../outside.yaml}
    - gitFileRef: {path: /abs.yaml}
    - gitFileRef: {path: 'values\win.yaml'}
---
kind: List
items:
  - apiVersion: helm.fluxcd.io/v1
    kind: HelmRelease
    metadata: {name: inlist}
    spec: {valuesFrom: [{gitFileRef: {path: values/a.yaml}}, {gitFileRef: {path: values/c.yaml}}]}
  - apiVersion: helm.toolkit.fluxcd.io/v2
    kind: HelmRelease
    metadata: {name: other}
    spec: {valuesFrom: [{gitFileRef: {path: values/ignored.yaml}}]}
`)},
		{Path: "broken.yaml", Data: []byte("{")},
	}
	got, errs := ValuesFiles(files)
	if want := []string{"values/a.yaml", "values/b.yaml", "values/c.yaml"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	assertErrors(t, errs, []string{"valuesFrom[3]", "valuesFrom[4]", "valuesFrom[5]"})
}

// assertErrors checks that errs has one error per substring, in any order.
func assertErrors(t *testing.T, errs []error, want []string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d matching %q", len(errs), errs, len(want), want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), w) }) {
			t.Errorf("no error contains %q in %v", w, errs)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
