package update

import (
	"errors"
	"strings"
	"testing"
)

const applyInput = `kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
        - name: a
          image: acme/a:1.0 # a
        - name: b
          image: acme/b:1.0 # b
`

func findOne(t *testing.T, files []File) []Image {
	t.Helper()
	images, errs := Find(files)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return images
}

func TestApplyStale(t *testing.T) {
	files := []File{{Path: "./d.yaml", Data: []byte(applyInput)}}
	images := findOne(t, files)

	// The file changes after Find: a's tag moves on, b's is untouched.
	moved := []File{{Path: "./d.yaml", Data: []byte(strings.Replace(applyInput, "acme/a:1.0", "acme/a:1.5", 1))}}
	out, errs := Apply(moved, []Change{{images[0], "2.0"}, {images[1], "2.0"}})
	if len(errs) != 1 || !errors.Is(errs[0], ErrStale) || !strings.Contains(errs[0].Error(), "d.yaml") {
		t.Fatalf("errors: %v", errs)
	}
	want := strings.Replace(strings.Replace(applyInput, "acme/a:1.0", "acme/a:1.5", 1), "acme/b:1.0", "acme/b:2.0", 1)
	if got := string(out["./d.yaml"]); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// A repository changed by hand is stale too, even with the old tag.
	renamed := []File{{Path: "d.yaml", Data: []byte(strings.Replace(applyInput, "acme/a:1.0", "acme/z:1.0", 1))}}
	if _, errs := Apply(renamed, []Change{{images[0], "2.0"}}); len(errs) != 1 || !errors.Is(errs[0], ErrStale) {
		t.Errorf("renamed repository: %v", errs)
	}

	// A file that is no longer there.
	if _, errs := Apply(nil, []Change{{images[0], "2.0"}}); len(errs) != 1 || !errors.Is(errs[0], ErrStale) {
		t.Errorf("missing file: %v", errs)
	}

	// A path that went away.
	gone := []File{{Path: "d.yaml", Data: []byte("kind: Deployment\n")}}
	if _, errs := Apply(gone, []Change{{images[0], "2.0"}}); len(errs) != 1 || !errors.Is(errs[0], ErrStale) {
		t.Errorf("missing node: %v", errs)
	}
}

func TestApplyIdempotentAndConflicting(t *testing.T) {
	files := []File{{Path: "d.yaml", Data: []byte(applyInput)}}
	images := findOne(t, files)

	// NewTag already written: nothing changes, no error.
	done := []File{{Path: "d.yaml", Data: []byte(strings.Replace(applyInput, "acme/a:1.0", "acme/a:2.0", 1))}}
	if out, errs := Apply(done, []Change{{images[0], "2.0"}}); len(out) != 0 || len(errs) != 0 {
		t.Errorf("already applied: %v %v", out, errs)
	}

	// The same change twice in one call is applied once.
	out, errs := Apply(files, []Change{{images[0], "2.0"}, {images[0], "2.0"}})
	if len(errs) != 0 || !strings.Contains(string(out["d.yaml"]), "acme/a:2.0 # a") {
		t.Errorf("twice: %s %v", out["d.yaml"], errs)
	}

	// Two different tags for one image: the first wins, the second is stale.
	out, errs = Apply(files, []Change{{images[0], "2.0"}, {images[0], "3.0"}})
	if len(errs) != 1 || !errors.Is(errs[0], ErrStale) || !strings.Contains(string(out["d.yaml"]), "acme/a:2.0 # a") {
		t.Errorf("conflict: %s %v", out["d.yaml"], errs)
	}
}

func TestApplyRefusesBadChanges(t *testing.T) {
	files := []File{{Path: "d.yaml", Data: []byte(applyInput)}}
	images := findOne(t, files)
	for _, c := range []Change{
		{images[0], ""},
		{images[0], "1.0 # injected"},
		{images[0], "1.0\nkind: Secret"},
		{images[0], "-1"},
		{Image{}, "1.0"},
	} {
		out, errs := Apply(files, []Change{c})
		if len(out) != 0 || len(errs) != 1 || errors.Is(errs[0], ErrStale) {
			t.Errorf("change to %q: %v %v", c.NewTag, out, errs)
		}
	}
}

func TestApplyRefusesUneditableNode(t *testing.T) {
	// Find saw a plain tag; the file now has a block scalar there.
	in := "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: \"acme/a:1.0\"}]}\n"
	images := findOne(t, []File{{Path: "p.yaml", Data: []byte(in)}})
	block := "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      image: |-\n        acme/a:1.0\n"
	out, errs := Apply([]File{{Path: "p.yaml", Data: []byte(block)}}, []Change{{images[0], "2.0"}})
	if len(out) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "block scalar") {
		t.Errorf("block scalar: %v %v", out, errs)
	}
}
