package update

import (
	"fmt"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/policy"
)

const policyInput = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  annotations:
    fluxcd.io/automated: "true"
spec:
  template:
    spec:
      containers:
        - name: app
          image: acme/app:1.0
`

func TestApplyPoliciesErrors(t *testing.T) {
	d := dep("", "d")
	tests := []struct {
		name   string
		files  []File
		change PolicyChange
		want   string
	}{
		{"not found", []File{{Path: "a.yaml", Data: []byte(policyInput)}}, PolicyChange{Object: dep("", "e"), Add: map[string]string{"locked": "true"}}, "not found"},
		{"namespace differs", []File{{Path: "a.yaml", Data: []byte(policyInput)}}, PolicyChange{Object: dep("default", "d"), Add: map[string]string{"locked": "true"}}, "not found"},
		{"not found, a file does not parse", []File{{Path: "a.yaml", Data: []byte(policyInput)}, {Path: "bad.yaml", Data: []byte("a: [\n")}}, PolicyChange{Object: dep("", "e"), Add: map[string]string{"locked": "true"}}, "bad.yaml"},
		{"found twice", []File{{Path: "a.yaml", Data: []byte(policyInput)}, {Path: "b.yaml", Data: []byte(policyInput)}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "found 2 times (a.yaml document 0, b.yaml document 0)"},
		{"not a supported kind", []File{{Path: "a.yaml", Data: []byte("kind: Service\nmetadata: {name: d}\n")}}, PolicyChange{Object: ObjectRef{Kind: "Service", Name: "d"}, Add: map[string]string{"locked": "true"}}, "not found"},
		{"HelmRelease of another API", []File{{Path: "a.yaml", Data: []byte("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: d}\n")}}, PolicyChange{Object: ObjectRef{Kind: "HelmRelease", Name: "d"}, Add: map[string]string{"locked": "true"}}, "not found"},
		{"metadata is an alias", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nx: &m {name: d}\nmetadata: *m\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "alias"},
		{"annotations are anchored", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nmetadata: {name: d, annotations: &a {x: y}}\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "anchored"},
		{"annotations are a list", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nmetadata:\n  name: d\n  annotations: [x]\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "not a mapping"},
		{"annotations are null", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nmetadata:\n  name: d\n  annotations:\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "not a mapping"},
		{"annotations written twice", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nmetadata:\n  name: d\n  annotations: {a: b}\n  annotations: {c: d}\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "duplicate key"},
		{"annotation key written twice", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\n    a: c\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, `"a" is written twice`},
		{"merge key in annotations", []File{{Path: "a.yaml", Data: []byte("kind: Deployment\nx: &c {a: b}\nmetadata:\n  name: d\n  annotations:\n    <<: *c\n")}}, PolicyChange{Object: d, Add: map[string]string{"locked": "true"}}, "merge"},
		{"unknown policy", nil, PolicyChange{Object: d, Add: map[string]string{"automate": "true"}}, `unknown policy "automate"`},
		{"unknown policy removed", nil, PolicyChange{Object: d, Remove: map[string]string{"fluxcd.io/automated": ""}}, "unknown policy"},
		{"flag not true", nil, PolicyChange{Object: d, Add: map[string]string{"automated": "false"}}, `the only value is "true"`},
		{"unknown filter prefix", nil, PolicyChange{Object: d, Add: map[string]string{"tag.app": "semvr:~1"}}, "policy tag.app"},
		{"bad regexp", nil, PolicyChange{Object: d, Add: map[string]string{"tag.app": "regexp:("}}, "policy tag.app"},
		{"bad semver", nil, PolicyChange{Object: d, Add: map[string]string{"tag_all": "semver:~x~"}}, "policy tag_all"},
		{"container not a key", nil, PolicyChange{Object: d, Add: map[string]string{"tag.a/b": "glob:*"}}, "cannot be part of an annotation key"},
		{"empty container", nil, PolicyChange{Object: d, Remove: map[string]string{"tag.": ""}}, "cannot be part of an annotation key"},
		{"container name too long for a key", nil, PolicyChange{Object: d, Add: map[string]string{"tag." + strings.Repeat("c", 60): "glob:*"}}, "cannot be part of an annotation key"},
		{"value too long", nil, PolicyChange{Object: d, Add: map[string]string{"locked_msg": strings.Repeat("x", maxPolicyValue+1)}}, "at most 4096 bytes"},
		{"value not UTF-8", nil, PolicyChange{Object: d, Add: map[string]string{"locked_user": "\xff"}}, "not UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := tc.files
			if files == nil {
				files = []File{{Path: "a.yaml", Data: []byte(policyInput)}}
			}
			out, errs := ApplyPolicies(files, []PolicyChange{tc.change})
			if len(out) != 0 {
				t.Errorf("wrote %d files", len(out))
			}
			if len(errs) != 1 {
				t.Fatalf("errors: %v", errs)
			}
			msg := errs[0].Error()
			if !strings.Contains(msg, tc.change.Object.String()) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q; want it to name %s and say %q", msg, tc.change.Object, tc.want)
			}
		})
	}
}

func TestApplyPoliciesNoop(t *testing.T) {
	files := []File{{Path: "a.yaml", Data: []byte(policyInput)}}
	for _, c := range []PolicyChange{
		{Object: dep("", "d"), Add: map[string]string{"automated": "true"}},
		{Object: dep("", "d"), Remove: map[string]string{"locked": "", "locked_msg": "", "tag.app": ""}},
		{Object: dep("", "d"), Add: map[string]string{"locked_msg": ""}}, // empty: remove, and there is none
		{Object: dep("", "d"), Add: map[string]string{"tag_all": "glob:*"}},
		{Object: dep("", "d"), Remove: map[string]string{"tag_all": ""}},
		{Object: dep("", "d")},
	} {
		out, errs := ApplyPolicies(files, []PolicyChange{c})
		if len(out) != 0 || len(errs) != 0 {
			t.Errorf("%+v: wrote %q, errors %v", c, out, errs)
		}
	}
}

// TestApplyPoliciesEdits covers edits the golden cases do not.
func TestApplyPoliciesEdits(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		change PolicyChange
		want   string
	}{
		{
			name:   "metadata last in a file without a final line break",
			in:     "kind: Deployment\nspec: {}\nmetadata:\n  name: d",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"automated": "true"}},
			want:   "kind: Deployment\nspec: {}\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/automated: \"true\"\n",
		},
		{
			name:   "annotations last in a file without a final line break",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"automated": "true"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\n    fluxcd.io/automated: \"true\"\n",
		},
		{
			name:   "a block scalar message is replaced by a one-line entry",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/locked_msg: |\n      old\n      reason\n    fluxcd.io/locked: \"true\"\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"locked_msg": "new\nreason"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/locked: \"true\"\n    fluxcd.io/locked_msg: \"new\\nreason\"\n",
		},
		{
			name:   "the only annotation, an empty value, is written anew",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/locked_msg:\n  labels: {}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"locked_msg": "why"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  labels: {}\n  annotations:\n    fluxcd.io/locked_msg: \"why\"\n",
		},
		{
			name:   "an empty Add value removes",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/locked: \"true\"\n    fluxcd.io/locked_msg: old\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"locked": "true", "locked_msg": ""}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/locked: \"true\"\n",
		},
		{
			name:   "remove wins over add, as in fluxd",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/automated: \"true\"\n    a: b\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"automated": "true"}, Remove: map[string]string{"automated": ""}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\n",
		},
		{
			name:   "both spellings are removed",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/automated: \"true\"\n    flux.weave.works/automated: \"true\"\n    a: b\n",
			change: PolicyChange{Object: dep("", "d"), Remove: map[string]string{"automated": ""}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\n",
		},
		{
			name:   "the winning spelling is edited, the shadowed one goes",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    flux.weave.works/tag.app: glob:1.*\n    filter.fluxcd.io/app: semver:~1\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"tag.app": "semver:~2"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    filter.fluxcd.io/app: \"semver:~2\"\n",
		},
		{
			name:   "a bare glob is written as given, as fluxd did",
			in:     "kind: Deployment\nmetadata: {name: d}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"tag.app": "1.*"}},
			want:   "kind: Deployment\nmetadata: {name: d, annotations: {fluxcd.io/tag.app: \"1.*\"}}\n",
		},
		{
			name:   "empty flow metadata annotations",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations: {}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"automated": "true"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations: {fluxcd.io/automated: \"true\"}\n",
		},
		{
			name:   "multi-line flow annotations",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations: {a: b,\n    fluxcd.io/automated: \"true\", # on\n    c: d}\n",
			change: PolicyChange{Object: dep("", "d"), Remove: map[string]string{"automated": ""}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations: {a: b,\n    # on\n    c: d}\n",
		},
		{
			name:   "flow annotations emptied inside flow metadata",
			in:     "kind: Deployment\nmetadata: {name: d, annotations: {fluxcd.io/automated: \"true\"}, labels: {a: b}}\n",
			change: PolicyChange{Object: dep("", "d"), Remove: map[string]string{"automated": ""}},
			want:   "kind: Deployment\nmetadata: {name: d, labels: {a: b}}\n",
		},
		{
			name:   "flow annotations last in flow metadata",
			in:     "kind: Deployment\nmetadata: {name: d, annotations: {fluxcd.io/automated: \"true\", 'x': \"a, b}\"}}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"locked": "true"}},
			want:   "kind: Deployment\nmetadata: {name: d, annotations: {fluxcd.io/automated: \"true\", 'x': \"a, b}\", fluxcd.io/locked: \"true\"}}\n",
		},
		{
			name:   "metadata ending with a nested block",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  labels:\n    a: b\n\n    c: |\n      x\n# trailing\nspec: {}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"ignore": "true"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  labels:\n    a: b\n\n    c: |\n      x\n  annotations:\n    fluxcd.io/ignore: \"true\"\n# trailing\nspec: {}\n",
		},
		{
			name:   "metadata ending with a compact block sequence",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  finalizers:\n  - a\n  - b\nspec: {}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"automated": "true"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  finalizers:\n  - a\n  - b\n  annotations:\n    fluxcd.io/automated: \"true\"\nspec: {}\n",
		},
		{
			name:   "an empty tag_all removes every container's filter, as in fluxd",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    fluxcd.io/tag.app: glob:1.*\n    a: b\nspec: {template: {spec: {containers: [{name: app, image: x}]}}}\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"tag_all": ""}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\nspec: {template: {spec: {containers: [{name: app, image: x}]}}}\n",
		},
		{
			name:   "a container name that needs quoting as a key",
			in:     "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\n",
			change: PolicyChange{Object: dep("", "d"), Add: map[string]string{"tag.1.0": "glob:*"}},
			want:   "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    a: b\n    fluxcd.io/tag.1.0: \"glob:*\"\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errs := ApplyPolicies([]File{{Path: "a.yaml", Data: []byte(tc.in)}}, []PolicyChange{tc.change})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := string(out["a.yaml"]); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestApplyPoliciesInOrder(t *testing.T) {
	files := []File{{Path: "./a.yaml", Data: []byte(policyInput)}}
	out, errs := ApplyPolicies(files, []PolicyChange{
		{Object: dep("", "d"), Add: map[string]string{"locked": "true"}},
		{Object: dep("", "gone"), Add: map[string]string{"locked": "true"}},
		{Object: dep("", "d"), Add: map[string]string{"locked_user": "ann"}, Remove: map[string]string{"automated": ""}},
	})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "default:deployment/gone") {
		t.Fatalf("errors: %v", errs)
	}
	want := strings.Replace(policyInput, `    fluxcd.io/automated: "true"`, `    fluxcd.io/locked: "true"`+"\n"+`    fluxcd.io/locked_user: "ann"`, 1)
	if got := string(out["./a.yaml"]); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestApplyPoliciesHelmReleaseTagAll(t *testing.T) {
	hr := `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: app
spec:
  valuesFrom:
    - gitFileRef: {path: values.yaml}
  values:
    worker: {image: {repository: acme/worker, tag: "1.0"}}
`
	files := []File{{Path: "hr.yaml", Data: []byte(hr)}, {Path: "values.yaml", Data: []byte("image: acme/app:1.0\n")}}
	out, errs := ApplyPolicies(files, []PolicyChange{{Object: ObjectRef{Kind: "HelmRelease", Name: "app"}, Add: map[string]string{"tag_all": "semver:^1"}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(out) != 1 {
		t.Fatalf("wrote %d files", len(out))
	}
	want := strings.Replace(hr, "  name: app\n", "  name: app\n  annotations:\n    fluxcd.io/tag.chart-image: \"semver:^1\"\n    fluxcd.io/tag.worker: \"semver:^1\"\n", 1)
	if got := string(out["hr.yaml"]); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestApplyPoliciesRoundTrip writes values that need escaping and reads
// them back through Find and pkg/policy.
func TestApplyPoliciesRoundTrip(t *testing.T) {
	msg := "rollback: \"v2\" broke\tcheckout\nsee #42 — ünïcode \u2028 and \\ too"
	for _, in := range []string{policyInput, strings.Replace(policyInput, "metadata:\n  name: d\n  annotations:\n    fluxcd.io/automated: \"true\"\n", "metadata: {name: d, annotations: {fluxcd.io/automated: \"true\"}}\n", 1)} {
		files := []File{{Path: "a.yaml", Data: []byte(in)}}
		out, errs := ApplyPolicies(files, []PolicyChange{{Object: dep("", "d"), Add: map[string]string{
			"locked": "true", "locked_msg": msg, "locked_user": "yes", "tag.app": "regex:^v[0-9]+$",
		}}})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		images := findOne(t, []File{{Path: "a.yaml", Data: out["a.yaml"]}})
		p := policy.FromAnnotations(images[0].Annotations)
		cp, err := p.Container("app")
		if err != nil {
			t.Fatal(err)
		}
		if !p.Locked || !p.Automated || p.LockedMsg != msg || p.LockedUser != "yes" || cp.Filter.Kind != policy.FilterRegex || cp.Filter.Pattern != "^v[0-9]+$" {
			t.Errorf("read back %+v %+v from\n%s", p, cp.Filter, out["a.yaml"])
		}
	}
}

// BenchmarkApplyPolicies automates every Deployment of a 100-document
// file, one change each, as a fluxctl automate per workload would.
func BenchmarkApplyPolicies(b *testing.B) {
	var in strings.Builder
	var changes []PolicyChange
	for i := range 100 {
		fmt.Fprintf(&in, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d%d\n  labels: {app: d}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: acme/app:1.0\n", i)
		changes = append(changes, PolicyChange{Object: dep("", fmt.Sprintf("d%d", i)), Add: map[string]string{"automated": "true", "tag.app": "glob:1.*"}})
	}
	files := []File{{Path: "a.yaml", Data: []byte(in.String())}}
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := ApplyPolicies(files, changes); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
