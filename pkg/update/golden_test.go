package update

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the want files under testdata")

// goldenCases name a directory under testdata and the new tag to set for
// each container. Every file of the directory but the want files is an
// input (input.yaml and any values files, at paths relative to the case
// directory). The want file of input.yaml is want.yaml, of any other file X
// it is want-X; every input has one, so an untouched file is asserted
// untouched.
var goldenCases = []struct {
	dir string
	set map[string]string
}{
	{"deployment", map[string]string{"init": "1.37", "app": "6.5.1", "sidecar": "v2"}},
	{"statefulset", map[string]string{"postgres": "16.2"}},
	{"daemonset", map[string]string{"agent": "2.0.2", "untagged": "1.0"}},
	{"cronjob", map[string]string{"backup": "2024.02.1"}},
	{"job", map[string]string{"migrate": "v4"}},
	{"pod", map[string]string{"shell": "3.19"}},
	{"list", map[string]string{"web": "1.1.0", "probe": "0.2"}},
	{"multidoc", map[string]string{"web": "1.1.0"}},
	{"crlf", map[string]string{"app": "1.1", "other": "2.1"}},
	{"bom", map[string]string{"app": "1.1", "chart-image": "1.1"}},
	{"hr-shape1-root", map[string]string{"chart-image": "1.0.1"}},
	{"hr-shape2-root", map[string]string{"chart-image": "1.0.1"}},
	{"hr-shape3-root", map[string]string{"chart-image": "1.0.1"}},
	{"hr-shape4-root", map[string]string{"chart-image": "v1.0.1"}},
	{"hr-shape5-root", map[string]string{"chart-image": "1.0.1"}},
	{"hr-shapes-keys", map[string]string{"one": "1.0.1", "two": "1.0.2", "three": "1.0.3", "four": "1.0.4", "five": "1.0.5"}},
	{"hr-mapping-split", map[string]string{"api": "1.0.1", "web": "2.0.1"}},
	{"hr-mapping-combined", map[string]string{"app": "1.0.1", "worker": "1.0.2"}},
	{"hr-valuesfile", map[string]string{"chart-image": "6.5.1"}},
	{"hr-inline-overrides", map[string]string{"chart-image": "6.5.1", "worker": "1.2.0"}},
	{"hr-flow", map[string]string{"chart-image": "1.1", "sidecar": "v1.1"}},
	{"quoted-tags", map[string]string{"single": "1.0.1", "double": "1.0.2", "whole": "1.0.3", "app": "1.0.4"}},
	{"plain-needs-quoting", map[string]string{"app": "1.10", "date": "2024-01-01", "stays": "1.9.2"}},
	{"unicode", map[string]string{"grüße": "1.1", "straße": "1.0.1", "日本": "1.0.2"}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", tc.dir)
			files := readCase(t, dir)

			images, errs := Find(files)
			if len(errs) > 0 {
				t.Fatalf("Find: %v", errs)
			}
			var changes []Change
			matched := map[string]bool{}
			for _, im := range images {
				if nt, ok := tc.set[im.Container]; ok {
					changes = append(changes, Change{Image: im, NewTag: nt})
					matched[im.Container] = true
				}
			}
			for c := range tc.set {
				if !matched[c] {
					t.Fatalf("Find found no image of container %q; found %+v", c, images)
				}
			}

			out, errs := Apply(files, changes)
			if len(errs) > 0 {
				t.Fatalf("Apply: %v", errs)
			}
			if len(out) == 0 {
				t.Fatal("Apply changed no file")
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
					t.Fatalf("%v (run go test ./pkg/update -run TestGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: got\n%s\nwant\n%s", f.Path, got, want)
				}
			}

			assertOnlyTagsChanged(t, files, next, changes)

			// Applying the same changes again changes nothing.
			again, errs := Apply(next, changes)
			if len(errs) > 0 || len(again) > 0 {
				t.Errorf("second Apply: changed %d files, errors %v", len(again), errs)
			}

			// Find on the result reports the new tags, and the same images otherwise.
			after, errs := Find(next)
			if len(errs) > 0 {
				t.Fatalf("Find after Apply: %v", errs)
			}
			if len(after) != len(images) {
				t.Fatalf("Find after Apply: %d images, before %d", len(after), len(images))
			}
			for i, im := range after {
				want := images[i]
				if nt, ok := tc.set[want.Container]; ok {
					want.Tag = nt
				}
				if im.Container != want.Container || im.Repository != want.Repository || im.Tag != want.Tag || im.Locator != want.Locator {
					t.Errorf("after Apply: image %d = %s %s %s:%s, want %s %s:%s", i, im.Object, im.Container, im.Repository, im.Tag, want.Container, want.Repository, want.Tag)
				}
			}
		})
	}
}

// wantName is the name of the want file of a case's input file.
func wantName(input string) string {
	if input == "input.yaml" {
		return "want.yaml"
	}
	return "want-" + input
}

func readCase(t *testing.T, dir string) []File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []File
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), "want") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Path: e.Name(), Data: b})
	}
	if len(files) == 0 {
		t.Fatalf("%s has no input", dir)
	}
	return files
}

// assertOnlyTagsChanged checks that each file of after differs from before
// only inside the scalars the changes address: the bytes between those
// scalars, before the first and after the last, are identical.
func assertOnlyTagsChanged(t *testing.T, before, after []File, changes []Change) {
	t.Helper()
	for i, f := range before {
		var locs []Locator
		for _, c := range changes {
			if c.Image.Locator.file == cleanKey(f.Path) && !slices.Contains(locs, c.Image.Locator) {
				locs = append(locs, c.Image.Locator)
			}
		}
		oldSpans := spans(t, f.Data, locs)
		newSpans := spans(t, after[i].Data, locs)
		oldGaps := gaps(f.Data, oldSpans)
		newGaps := gaps(after[i].Data, newSpans)
		for g := range oldGaps {
			if oldGaps[g] != newGaps[g] {
				t.Errorf("%s: bytes outside the tag scalars changed:\n%q\nbecame\n%q", f.Path, oldGaps[g], newGaps[g])
			}
		}
	}
}

// spans returns the byte spans of the scalars at locs in data, in file order.
func spans(t *testing.T, data []byte, locs []Locator) [][2]int {
	t.Helper()
	docs, err := parseDocs(data)
	if err != nil {
		t.Fatal(err)
	}
	starts := lineStarts(data)
	var out [][2]int
	for _, l := range locs {
		n, err := nodeAt(docs[l.doc], l.nodePath())
		if err != nil {
			t.Fatal(err)
		}
		s, e, err := scalarSpan(data, starts, n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int{s, e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// gaps returns the text of data outside spans.
func gaps(data []byte, spans [][2]int) []string {
	var out []string
	at := 0
	for _, s := range spans {
		out = append(out, string(data[at:s[0]]))
		at = s[1]
	}
	return append(out, string(data[at:]))
}
