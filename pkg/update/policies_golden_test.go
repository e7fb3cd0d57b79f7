package update

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/policy"
)

func dep(ns, name string) ObjectRef { return ObjectRef{Kind: "Deployment", Namespace: ns, Name: name} }

// policyGoldenCases name a directory under testdata (laid out as for
// goldenCases: input.yaml and want.yaml) and the policy changes to apply,
// as fluxctl sends them.
var policyGoldenCases = []struct {
	dir     string
	changes []PolicyChange
}{
	// fluxctl automate: the annotation goes after the existing one.
	{"policy-automate", []PolicyChange{{Object: dep("demo", "podinfo"), Add: map[string]string{"automated": "true"}}}},
	// fluxctl deautomate: one line goes.
	{"policy-deautomate", []PolicyChange{{Object: ObjectRef{Kind: "StatefulSet", Name: "db"}, Remove: map[string]string{"automated": "true"}}}},
	// fluxctl lock -m ... with a user.
	{"policy-lock", []PolicyChange{{Object: dep("", "api"), Add: map[string]string{
		"locked": "true", "locked_user": "Jane Doe <jane@example.com>", "locked_msg": "incident 42: \"do not\" release",
	}}}},
	// fluxctl unlock removes locked, locked_msg and locked_user; the
	// annotations key goes with its last entry.
	{"policy-unlock", []PolicyChange{{Object: dep("", "api"), Remove: map[string]string{"locked": "", "locked_msg": "", "locked_user": ""}}}},
	// fluxctl policy --tag: a rewrite keeps the value's quoting, a new
	// filter for the init container is added.
	{"policy-tag-add", []PolicyChange{{Object: ObjectRef{Kind: "DaemonSet", Name: "agent"}, Add: map[string]string{
		"tag.agent": "semver:~1.2", "tag.setup": "glob:1.*",
	}}}},
	// fluxctl policy --tag backup='*': both spellings of the filter go.
	{"policy-tag-remove", []PolicyChange{{Object: ObjectRef{Kind: "CronJob", Name: "backup"}, Remove: map[string]string{"tag.backup": ""}}}},
	// fluxctl policy --tag-all: every container, init and digest-pinned
	// ones included, as in fluxd; the explicit filter of web is rewritten.
	{"policy-tag-all", []PolicyChange{{Object: dep("", "web"), Add: map[string]string{"tag_all": "glob:1.*"}}}},
	// --tag-all='*' removes the filter of every container of the pod (also
	// a filter.fluxcd.io/ one), not of containers that are not there.
	{"policy-tag-all-star", []PolicyChange{{Object: dep("", "web"), Add: map[string]string{"tag_all": "glob:*"}}}},
	// Legacy keys are edited and removed in place, not duplicated.
	{"policy-legacy", []PolicyChange{{Object: dep("", "old"), Add: map[string]string{"automated": "true", "tag.app": "glob:2.*"}, Remove: map[string]string{"locked": ""}}}},
	// No annotations yet: a block in the file's four-space indentation, after
	// the labels.
	{"policy-missing-annotations", []PolicyChange{{Object: dep("spaced", "four"), Add: map[string]string{"automated": "true", "tag.app": "semver:^1"}}}},
	// Flow-style metadata: the annotations are added, and removed, in flow
	// style.
	{"policy-flow", []PolicyChange{
		{Object: dep("", "flowing"), Add: map[string]string{"automated": "true", "locked": "true"}},
		{Object: dep("", "flowing-annotated"), Remove: map[string]string{"automated": ""}, Add: map[string]string{"locked": "true"}},
	}},
	// Comments around, between and after the edited entries stay.
	{"policy-comments", []PolicyChange{{Object: dep("", "commented"), Add: map[string]string{"locked": "true", "tag.app": "semver:~1.3"}, Remove: map[string]string{"automated": ""}}}},
	// CRLF line endings, and a last line without a line break.
	{"policy-crlf", []PolicyChange{
		{Object: dep("", "win"), Add: map[string]string{"automated": "true"}},
		{Object: dep("", "win2"), Add: map[string]string{"tag.app": "glob:1.*"}, Remove: map[string]string{"locked": ""}},
	}},
	// Two workloads in one file: only the one named is touched. The kind is
	// as a fluxd resource ID spells it.
	{"policy-multidoc", []PolicyChange{{Object: ObjectRef{Kind: "deployment", Name: "backend"}, Add: map[string]string{"automated": "true"}}}},
	// A HelmRelease: its containers are the values' images.
	{"policy-helmrelease", []PolicyChange{{Object: ObjectRef{Kind: "HelmRelease", Namespace: "apps", Name: "podinfo"}, Add: map[string]string{
		"automated": "true", "tag.chart-image": "semver:~6.5", "tag.cache": "glob:7.*",
	}}}},
	// Items of a List, annotations before the name.
	{"policy-list", []PolicyChange{
		{Object: dep("", "one"), Add: map[string]string{"automated": "true"}},
		{Object: dep("", "two"), Remove: map[string]string{"ignore": ""}, Add: map[string]string{"automated": "true"}},
	}},
}

func TestPolicyGolden(t *testing.T) {
	for _, tc := range policyGoldenCases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", tc.dir)
			files := readCase(t, dir)
			before, errs := Find(files)
			if len(errs) > 0 {
				t.Fatalf("Find: %v", errs)
			}

			out, errs := ApplyPolicies(files, tc.changes)
			if len(errs) > 0 {
				t.Fatalf("ApplyPolicies: %v", errs)
			}
			if len(out) == 0 {
				t.Fatal("ApplyPolicies changed no file")
			}
			next := make([]File, len(files))
			for i, f := range files {
				got := f.Data
				if b, ok := out[f.Path]; ok {
					got = b
				}
				next[i] = File{Path: f.Path, Data: got}
				wantPath := filepath.Join(dir, wantName(f.Path))
				if *updateGolden {
					if err := os.WriteFile(wantPath, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(wantPath)
				if err != nil {
					t.Fatalf("%v (run go test ./pkg/update -run TestPolicyGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: got\n%s\nwant\n%s", f.Path, got, want)
				}
			}

			// Applying the same changes again changes nothing.
			again, errs := ApplyPolicies(next, tc.changes)
			if len(errs) > 0 || len(again) > 0 {
				t.Errorf("second ApplyPolicies: changed %d files, errors %v", len(again), errs)
			}

			// Find reads the same images, and pkg/policy reads back what was
			// written.
			after, errs := Find(next)
			if len(errs) > 0 {
				t.Fatalf("Find after ApplyPolicies: %v", errs)
			}
			if len(after) != len(before) {
				t.Fatalf("Find after ApplyPolicies: %d images, before %d", len(after), len(before))
			}
			for i := range after {
				if after[i].Object != before[i].Object || after[i].Container != before[i].Container ||
					after[i].Repository != before[i].Repository || after[i].Tag != before[i].Tag || after[i].Locator != before[i].Locator {
					t.Errorf("image %d: %+v became %+v", i, before[i], after[i])
				}
			}
			for _, c := range tc.changes {
				assertPolicies(t, after, c)
			}
		})
	}
}

// assertPolicies checks that pkg/policy reads the policies of c from the
// annotations Find reports for c's object.
func assertPolicies(t *testing.T, images []Image, c PolicyChange) {
	t.Helper()
	var ann map[string]string
	var containers []string
	for _, im := range images {
		if strings.EqualFold(im.Object.Kind, c.Object.Kind) && im.Object.Name == c.Object.Name && im.Object.Namespace == c.Object.Namespace {
			ann = im.Annotations
			containers = append(containers, im.Container)
		}
	}
	if ann == nil {
		t.Fatalf("%s: Find reports no image", c.Object)
	}
	p := policy.FromAnnotations(ann)
	check := func(name, value string, present bool) {
		t.Helper()
		switch name {
		case "automated":
			if p.Automated != present {
				t.Errorf("%s: automated = %v, want %v (%v)", c.Object, p.Automated, present, ann)
			}
		case "locked":
			if p.Locked != present {
				t.Errorf("%s: locked = %v, want %v (%v)", c.Object, p.Locked, present, ann)
			}
		case "ignore":
			if p.Ignored != present {
				t.Errorf("%s: ignored = %v, want %v (%v)", c.Object, p.Ignored, present, ann)
			}
		case "locked_msg":
			if p.LockedMsg != value {
				t.Errorf("%s: locked_msg = %q, want %q", c.Object, p.LockedMsg, value)
			}
		case "locked_user":
			if p.LockedUser != value {
				t.Errorf("%s: locked_user = %q, want %q", c.Object, p.LockedUser, value)
			}
		default:
			ctr := strings.TrimPrefix(name, "tag.")
			got, err := p.Container(ctr)
			if err != nil {
				t.Fatalf("%s: container %s: %v", c.Object, ctr, err)
			}
			want := "glob:*"
			if present {
				want = value
			}
			wf, err := policy.ParseFilter(want)
			if err != nil {
				t.Fatal(err)
			}
			if got.Filter.Kind != wf.Kind || got.Filter.Pattern != wf.Pattern {
				t.Errorf("%s: container %s filter %s:%s, want %s (%v)", c.Object, ctr, got.Filter.Kind, got.Filter.Pattern, want, ann)
			}
		}
	}
	for name, v := range c.Add {
		if _, removed := c.Remove[name]; removed {
			continue
		}
		if name == TagAllPolicy {
			for _, ctr := range containers {
				check("tag."+ctr, v, v != "glob:*")
			}
			continue
		}
		check(name, v, v != "")
	}
	for name := range c.Remove {
		check(name, "", false)
	}
}
