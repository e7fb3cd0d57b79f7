package manifest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// copyDir copies the tree at src into dst, so tests work on real files in
// t.TempDir() rather than on the repository.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// render prints objects in a stable, reviewable form for golden files.
func render(t *testing.T, objs []Object) []byte {
	t.Helper()
	var b bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "# source: %s line: %d\n", o.Source, o.Line)
		y, err := yaml.Marshal(o.Object.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(y)
	}
	return b.Bytes()
}

func TestLoadKustomizeGolden(t *testing.T) {
	tests := []struct {
		name  string // directory under testdata/ holding input/ and want.yaml
		paths []string
	}{
		// An overlay with a base elsewhere in the checkout, patches (file,
		// inline JSON 6902), namePrefix, namespace, images and a
		// configMapGenerator with literals and a file.
		{name: "kustomize-overlay", paths: []string{"overlays/prod"}},
		// A whole-checkout walk: plain files around a kustomization that uses
		// a component; the component directory itself is passed by; ignore
		// annotations apply to kustomize output too.
		{name: "kustomize-tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			copyDir(t, filepath.Join("testdata", tt.name, "input"), root)
			objs, err := Load(context.Background(), root, tt.paths, Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := render(t, objs)
			wantFile := filepath.Join("testdata", tt.name, "want.yaml")
			if *update {
				if err := os.WriteFile(wantFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", wantFile, got)
			}
			// The same input must give the same output every time.
			again, err := Load(context.Background(), root, tt.paths, Options{})
			if err != nil || !bytes.Equal(render(t, again), got) {
				t.Errorf("second Load differs (err %v)", err)
			}
		})
	}
}

// fakeGit puts a "git" first on PATH that records being run, so a test can
// prove kustomize never executed git.
func fakeGit(t *testing.T) (marker string) {
	t.Helper()
	bin := t.TempDir()
	marker = filepath.Join(t.TempDir(), "git-was-run")
	script := "#!/bin/sh\necho \"$@\" >> " + marker + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return marker
}

func TestLoadKustomizeRemoteRefused(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(cm("remote")))
	}))
	t.Cleanup(srv.Close)
	marker := fakeGit(t)

	kust := func(body string) string {
		return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + body
	}
	tests := []struct {
		name  string
		files tree
	}{
		{"http resource", tree{"kustomization.yaml": kust("resources:\n- " + srv.URL + "/cm.yaml\n")}},
		{"git over http base", tree{"kustomization.yaml": kust("resources:\n- " + srv.URL + "/org/repo.git//base?ref=main\n")}},
		{"github shorthand", tree{"kustomization.yaml": kust("resources:\n- github.com/example/repo//deploy?ref=v1.0.0\n")}},
		{"scp-style git", tree{"kustomization.yaml": kust("resources:\n- git@github.com:example/repo.git//deploy\n")}},
		{"forced git prefix", tree{"kustomization.yaml": kust("resources:\n- git::https://example.com/repo//deploy\n")}},
		{"ssh URL", tree{"kustomization.yaml": kust("resources:\n- ssh://git@example.com/org/repo\n")}},
		{"file URL clones a local repository", tree{"kustomization.yaml": kust("resources:\n- file:///etc\n")}},
		{"upper-case scheme", tree{"kustomization.yaml": kust("resources:\n- HTTPS://example.com/x.yaml\n")}},
		{"deprecated bases", tree{"kustomization.yaml": kust("bases:\n- github.com/example/repo\n")}},
		{"component", tree{"kustomization.yaml": kust("components:\n- " + srv.URL + "/repo.git//c\n")}},
		{"patch path", tree{"kustomization.yaml": kust("resources: [cm.yaml]\npatches:\n- path: " + srv.URL + "/p.yaml\n"), "cm.yaml": cm("a")}},
		{"strategic merge patch", tree{"kustomization.yaml": kust("resources: [cm.yaml]\npatchesStrategicMerge:\n- " + srv.URL + "/p.yaml\n"), "cm.yaml": cm("a")}},
		{"generator file source", tree{"kustomization.yaml": kust("configMapGenerator:\n- name: x\n  files:\n  - key=" + srv.URL + "/f\n")}},
		{"generator env source", tree{"kustomization.yaml": kust("secretGenerator:\n- name: x\n  env: " + srv.URL + "/env\n")}},
		{"openapi path", tree{"kustomization.yaml": kust("openapi:\n  path: " + srv.URL + "/schema.json\n")}},
		{"remote base of a local base", tree{
			"overlay/kustomization.yaml": kust("resources:\n- ../base\n"),
			"base/kustomization.yaml":    kust("resources:\n- " + srv.URL + "/cm.yaml\n"),
		}},
		{"transformer config file", tree{
			"kustomization.yaml": kust("resources: [cm.yaml]\ntransformers: [t.yaml]\n"),
			"cm.yaml":            cm("a"),
			"t.yaml":             "apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: p\npath: " + srv.URL + "/p.yaml\ntarget:\n  kind: ConfigMap\n",
		}},
		{"inline transformer", tree{
			"kustomization.yaml": kust("resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: /builtin\n  kind: PatchTransformer\n  metadata:\n    name: p\n  path: " + srv.URL + "/p.yaml\n"),
			"cm.yaml":            cm("a"),
		}},
		{"generator directory with a remote resource", tree{
			"kustomization.yaml":     kust("generators: [gen]\n"),
			"gen/kustomization.yaml": kust("resources: [g.yaml]\n"),
			"gen/g.yaml":             "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: g\nfiles:\n- " + srv.URL + "/f\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			_, err := Load(context.Background(), root, nil, Options{})
			t.Log(err)
			if !errors.Is(err, ErrRemoteReference) {
				t.Fatalf("Load: %v, want %v", err, ErrRemoteReference)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FileError", err)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("error %q leaks the checkout path", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the HTTP server got %d requests, want none", n)
	}
	if data, err := os.ReadFile(marker); err == nil {
		t.Errorf("git was executed: %s", data)
	}
}

func TestLoadKustomizeRefusals(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, tree{
		"secret.env":              "PASSWORD=hunter2\n",
		"secret.yaml":             cm("stolen"),
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            cm("outside-base"),
	})
	marker := filepath.Join(t.TempDir(), "plugin-was-run")
	script := "#!/bin/sh\ntouch " + marker + "\n"

	tests := []struct {
		name  string
		files tree
		paths []string
		is    error
		path  string
		msg   string
	}{
		{
			name:  "base outside the checkout",
			files: tree{"apps/prod/kustomization.yaml": "resources:\n- ../../../outside-dir\n", "../outside-dir/": ""},
			is:    ErrOutsideCheckout, path: "apps/prod",
		},
		{
			name:  "absolute base outside the checkout",
			files: tree{"kustomization.yaml": "resources:\n- " + filepath.Join(outside, "base") + "\n"},
			is:    ErrOutsideCheckout, path: ".",
		},
		{
			name:  "file resource through ../ outside the checkout",
			files: tree{"app/kustomization.yaml": "resources:\n- ../../" + filepath.Base(outside) + "/secret.yaml\n"},
			is:    ErrOutsideCheckout, path: "app",
		},
		{
			name: "symlinked base outside the checkout",
			files: tree{
				"app/kustomization.yaml": "resources:\n- ../vendor\n",
				"vendor":                 "-> " + filepath.Join(outside, "base"),
			},
			paths: []string{"app"},
			is:    ErrOutsideCheckout, path: "app",
		},
		{
			name: "symlinked resource file outside the checkout",
			files: tree{
				"app/kustomization.yaml": "resources:\n- cm.yaml\n",
				"app/cm.yaml":            "-> " + filepath.Join(outside, "secret.yaml"),
			},
			is: ErrOutsideCheckout, path: "app",
		},
		{
			name: "generator reading a file outside the checkout",
			files: tree{
				"app/kustomization.yaml": "secretGenerator:\n- name: s\n  envs:\n  - env\n",
				"app/env":                "-> " + filepath.Join(outside, "secret.env"),
			},
			is: ErrOutsideCheckout, path: "app",
		},
		{
			name: "symlinked kustomization directory outside the checkout",
			files: tree{
				"apps/ext": "-> " + filepath.Join(outside, "base"),
			},
			is: ErrOutsideCheckout, path: "apps/ext",
		},
		{
			name:  "helmCharts",
			files: tree{"kustomization.yaml": "helmCharts:\n- name: podinfo\n  repo: https://stefanprodan.github.io/podinfo\n  version: 6.5.0\n"},
			is:    ErrNotAllowed, path: ".", msg: "Helm chart inflation",
		},
		{
			name: "builtin Helm generator",
			files: tree{
				"kustomization.yaml": "generators: [helm.yaml]\n",
				"helm.yaml":          "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: h\nchartName: podinfo\n",
			},
			is: ErrNotAllowed, path: ".",
		},
		{
			name: "exec KRM function",
			files: tree{
				"kustomization.yaml": "resources: [cm.yaml]\ntransformers: [fn.yaml]\n",
				"cm.yaml":            cm("a"),
				"fn.yaml": "apiVersion: example.com/v1\nkind: Evil\nmetadata:\n  name: evil\n  annotations:\n" +
					"    config.kubernetes.io/function: |\n      exec:\n        path: ./run.sh\n",
				"run.sh": script,
			},
			path: ".", msg: "plugin",
		},
		{
			name: "container KRM function",
			files: tree{
				"kustomization.yaml": "resources: [cm.yaml]\ngenerators: [fn.yaml]\n",
				"cm.yaml":            cm("a"),
				"fn.yaml": "apiVersion: example.com/v1\nkind: Evil\nmetadata:\n  name: evil\n  annotations:\n" +
					"    config.kubernetes.io/function: |\n      container:\n        image: example.com/evil:1\n",
			},
			path: ".", msg: "plugin",
		},
		{
			name: "kustomization file over MaxFileSize",
			files: tree{
				"kustomization.yaml": "resources: [cm.yaml]\n" + strings.Repeat("# pad\n", 500),
				"cm.yaml":            cm("a"),
			},
			is: ErrTooLarge, path: ".",
		},
		{
			name:  "kustomize output over MaxObjects",
			files: tree{"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": cm("a") + "---\n" + cm("b") + "---\n" + cm("c")},
			is:    ErrTooManyObjects, path: ".",
		},
		{
			name:  "kustomize error is relative to the checkout",
			files: tree{"app/kustomization.yaml": "resources: [missing.yaml]\n"},
			path:  "app", msg: "app: kustomize build: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "checkout")
			writeTree(t, root, tt.files)
			objs, err := Load(context.Background(), root, tt.paths, Options{MaxFileSize: 2000, MaxObjects: 2})
			if err == nil {
				t.Fatalf("Load succeeded with %q", summary(objs))
			}
			t.Log(err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %q (%T) is not a *FileError", err, err)
			}
			if fe.Path != tt.path {
				t.Errorf("FileError.Path = %q, want %q (%v)", fe.Path, tt.path, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("error %q leaks the checkout path", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a secret from outside", err)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a KRM exec function was run")
	}
}

func TestLoadKustomizeExplicitComponentFails(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, tree{"c/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"})
	if _, err := Load(context.Background(), root, []string{"c"}, Options{}); err == nil {
		t.Fatal("building a Component on its own succeeded")
	}
	// The same component met during a walk is passed by.
	objs, err := Load(context.Background(), root, nil, Options{})
	if err != nil || len(objs) != 0 {
		t.Fatalf("walk over a component: %q, %v", summary(objs), err)
	}
}
