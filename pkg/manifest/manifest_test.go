package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files tree
		paths []string
		want  []string
	}{
		{
			name: "multi-document YAML keeps file order and start lines",
			files: tree{
				"apps/all.yaml": "# leading comment\n---\n" + cm("a") + "---\n# only a comment\n---\n\n---\n" + cm("b") + "...\n---\n  \n" + cm("c"),
			},
			want: []string{"apps/all.yaml:3 ConfigMap/a", "apps/all.yaml:12 ConfigMap/b", "apps/all.yaml:19 ConfigMap/c"},
		},
		{
			name: "document on the marker line",
			files: tree{
				"a.yaml": "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: flow}}\n--- # comment\n" + cm("b"),
			},
			want: []string{"a.yaml:1 ConfigMap/flow", "a.yaml:3 ConfigMap/b"},
		},
		{
			name: "JSON files, single and concatenated",
			files: tree{
				"one.json": `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j1"}}`,
				"two.json": "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"j2\"}}\n\n{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Secret\",\n\t\"metadata\": {\"name\": \"j3\"}\n}\n",
			},
			want: []string{"one.json:1 ConfigMap/j1", "two.json:1 ConfigMap/j2", "two.json:3 Secret/j3"},
		},
		{
			name: "v1 List is expanded, other lists are not",
			files: tree{
				"list.yaml": "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(cm("i1"), "\n", "\n  ") +
					"\n- " + strings.ReplaceAll(cm("i2"), "\n", "\n  ") + "\n---\napiVersion: v1\nkind: List\nitems: []\n" +
					"---\napiVersion: example.com/v1\nkind: List\nmetadata:\n  name: custom\n",
				"list.json": `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}]}`,
			},
			want: []string{"list.json:1 Secret/s", "list.yaml:1 ConfigMap/i1", "list.yaml:1 ConfigMap/i2", "list.yaml:19 List/custom"},
		},
		{
			name: "ignore annotations",
			files: tree{
				"a.yaml": cm("kept") + "---\n" + cm("ignored") + "  annotations:\n    fluxcd.io/ignore: \"true\"\n" +
					"---\n" + cm("legacy-ignored") + "  annotations:\n    flux.weave.works/ignore: \"true\"\n" +
					"---\n" + cm("sync-only") + "  annotations:\n    fluxcd.io/ignore: sync_only\n" +
					"---\n" + cm("not-ignored") + "  annotations:\n    fluxcd.io/ignore: \"false\"\n",
			},
			want: []string{"a.yaml:1 ConfigMap/kept", "a.yaml:20 ConfigMap/sync-only", "a.yaml:27 ConfigMap/not-ignored"},
		},
		{
			name: "Helm charts, hidden entries and other files are skipped",
			files: tree{
				"charts/podinfo/Chart.yaml":           "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
				"charts/podinfo/values.yaml":          "replicaCount: 1\n",
				"charts/podinfo/templates/x.yaml":     "{{ .Values }}",
				"charts/podinfo/templates/more/y.yml": cm("in-chart"),
				".github/workflows/ci.yaml":           "on: push\n",
				"apps/.hidden.yaml":                   cm("hidden"),
				"apps/.cache/x.yaml":                  cm("hidden-dir"),
				"apps/README.md":                      "# docs\n",
				"apps/app.yml":                        cm("app"),
				"apps/notes.txt":                      "apiVersion",
			},
			want: []string{"apps/app.yml:1 ConfigMap/app"},
		},
		{
			name: "lexical walk order, files and directories interleaved",
			files: tree{
				"b.yaml":     cm("b"),
				"a/z.yaml":   cm("a-z"),
				"a.yaml":     cm("a"),
				"c/d/e.yaml": cm("c-d-e"),
				"B.yaml":     cm("B"),
			},
			want: []string{"B.yaml:1 ConfigMap/B", "a/z.yaml:1 ConfigMap/a-z", "a.yaml:1 ConfigMap/a", "b.yaml:1 ConfigMap/b", "c/d/e.yaml:1 ConfigMap/c-d-e"},
		},
		{
			name: "explicit paths in the order given, each file once",
			files: tree{
				"apps/a.yaml":    cm("a"),
				"apps/b.yaml":    cm("b"),
				"infra/ns.yaml":  "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
				"other/no.yaml":  cm("not-asked-for"),
				"single.any.txt": cm("explicit-file"),
			},
			paths: []string{"infra", "./apps/", "apps/a.yaml", "single.any.txt"},
			want:  []string{"infra/ns.yaml:1 Namespace/apps", "apps/a.yaml:1 ConfigMap/a", "apps/b.yaml:1 ConfigMap/b", "single.any.txt:1 ConfigMap/explicit-file"},
		},
		{
			name: "symlinks inside the checkout are followed, each target read once",
			files: tree{
				"shared/.real/cm.yaml": cm("shared"),
				"apps/shared":          "-> ../shared/.real",
				"apps/link.yaml":       "-> ../shared/.real/cm.yaml",
				"apps/zz.yaml":         cm("zz"),
				"apps/README":          "-> does-not-exist",
			},
			paths: []string{"apps"},
			want:  []string{"apps/link.yaml:1 ConfigMap/shared", "apps/zz.yaml:1 ConfigMap/zz"},
		},
		{
			name:  "empty directory and comment-only files",
			files: tree{"empty/": "", "c.yaml": "# nothing here\n---\n---\n", "d.json": "  \n"},
			want:  []string{},
		},
		{
			name:  "byte order mark and CRLF line endings",
			files: tree{"w.yaml": "\xef\xbb\xbfapiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: crlf\r\n---\r\n" + cm("second")},
			want:  []string{"w.yaml:1 ConfigMap/crlf", "w.yaml:6 ConfigMap/second"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			objs, err := Load(context.Background(), root, tt.paths, Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := summary(objs); !slices.Equal(got, tt.want) {
				t.Errorf("objects\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, tree{
		"passwd":       "root:x:0:0:root:/root:/bin/bash\n",
		"secret.yaml":  cm("stolen"),
		"dir/cm.yaml":  cm("stolen-dir"),
		"dir/cm2.yaml": cm("stolen-dir-2"),
	})
	big := strings.Repeat("# padding\n", 200) // 2,000 bytes

	tests := []struct {
		name    string
		files   tree
		paths   []string
		opts    Options
		is      error  // errors.Is target, if any
		path    string // FileError.Path
		line    int    // FileError.Line
		message string // substring of the message
	}{
		{
			name: "malformed YAML names the file and the line, after several documents",
			files: tree{"apps/podinfo.yaml": cm("a") + "---\n" + cm("b") + "---\n# comment\n\n" +
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  key: value: broken\n"},
			path: "apps/podinfo.yaml", line: 18,
			message: "apps/podinfo.yaml:18: yaml: mapping values are not allowed in this context",
		},
		{
			name:    "tab indentation",
			files:   tree{"t.yaml": cm("a") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: tab\n"},
			path:    "t.yaml",
			line:    9,
			message: "t.yaml:9: yaml: found character that cannot start any token",
		},
		{
			name:    "missing apiVersion names the file and the document's line",
			files:   tree{"apps/x.yaml": cm("a") + "---\n\n# the next one is broken\nkind: ConfigMap\nmetadata:\n  name: b\n"},
			path:    "apps/x.yaml",
			line:    8,
			message: "apps/x.yaml:8: object has no apiVersion",
		},
		{
			name:    "missing kind",
			files:   tree{"x.yaml": "apiVersion: v1\nmetadata:\n  name: b\n"},
			path:    "x.yaml",
			line:    1,
			message: "x.yaml:1: object has no kind",
		},
		{
			name:    "document that is not an object",
			files:   tree{"x.yaml": cm("a") + "---\n- just\n- a list\n"},
			path:    "x.yaml",
			line:    6,
			message: "document is an array, not an object",
		},
		{
			name:    "List item without kind",
			files:   tree{"x.yaml": "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  metadata: {name: a}\n"},
			path:    "x.yaml",
			line:    1,
			message: "list item 0: object has no kind",
		},
		{
			name:    "malformed JSON",
			files:   tree{"x.json": "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\"\n  \"metadata\": {}\n}\n"},
			path:    "x.json",
			line:    4,
			message: "x.json:4: json: invalid character",
		},
		{
			name:  "path with .. is refused",
			files: tree{"a.yaml": cm("a")},
			paths: []string{"apps/../../etc"},
			is:    ErrOutsideCheckout, path: "apps/../../etc",
		},
		{
			name:  "path with .. that stays inside is refused too",
			files: tree{"apps/a.yaml": cm("a")},
			paths: []string{"apps/../apps"},
			is:    ErrOutsideCheckout,
		},
		{
			name:  "absolute path is refused",
			files: tree{"a.yaml": cm("a")},
			paths: []string{"/etc"},
			is:    ErrOutsideCheckout, path: "/etc",
		},
		{
			name:    "missing path",
			files:   tree{"a.yaml": cm("a")},
			paths:   []string{"apps/nope"},
			path:    "apps",
			message: "no such file or directory",
		},
		{
			name:  "symlinked file outside the checkout",
			files: tree{"apps/a.yaml": cm("a"), "apps/passwd.yaml": "-> " + filepath.Join(outside, "passwd")},
			is:    ErrOutsideCheckout, path: "apps/passwd.yaml",
			message: "apps/passwd.yaml: symlink resolves outside the checkout",
		},
		{
			name:  "relative symlink climbing out of the checkout",
			files: tree{"apps/s.yaml": "-> ../../../../../../../../../../../../" + filepath.Join(outside, "secret.yaml")},
			is:    ErrOutsideCheckout, path: "apps/s.yaml",
		},
		{
			name:  "symlinked directory outside the checkout",
			files: tree{"apps/a.yaml": cm("a"), "apps/vendor": "-> " + filepath.Join(outside, "dir")},
			is:    ErrOutsideCheckout, path: "apps/vendor",
		},
		{
			name:  "symlink outside given as the path argument",
			files: tree{"apps/vendor": "-> " + filepath.Join(outside, "dir")},
			paths: []string{"apps/vendor/cm.yaml"},
			is:    ErrOutsideCheckout, path: "apps/vendor",
		},
		{
			name:  "symlink outside with a name that is not read is refused anyway",
			files: tree{"apps/LICENSE": "-> " + filepath.Join(outside, "passwd")},
			is:    ErrOutsideCheckout, path: "apps/LICENSE",
		},
		{
			name:  "symlink loop between files",
			files: tree{"apps/a.yaml": "-> b.yaml", "apps/b.yaml": "-> a.yaml"},
			is:    ErrSymlinkLoop, path: "apps/a.yaml",
		},
		{
			name:  "directory symlink to its parent",
			files: tree{"apps/a.yaml": cm("a"), "apps/z/up": "-> .."},
			is:    ErrSymlinkLoop, path: "apps/z/up",
		},
		{
			name:  "directory symlink to the root",
			files: tree{"apps/a.yaml": cm("a"), "apps/root": "-> ../"},
			paths: []string{"apps"},
			is:    ErrSymlinkLoop, path: "apps/root",
		},
		{
			name:  "dangling symlink with a manifest name",
			files: tree{"apps/gone.yaml": "-> nowhere.yaml"},
			path:  "apps/gone.yaml", message: "symlink target does not exist",
		},
		{
			name:  "file over MaxFileSize",
			files: tree{"a.yaml": cm("small"), "b.yaml": big + cm("big")},
			opts:  Options{MaxFileSize: 1000},
			is:    ErrTooLarge, path: "b.yaml",
			message: "b.yaml: file is 2053 bytes, over the limit of 1000",
		},
		{
			name:  "files over MaxTotalSize",
			files: tree{"a.yaml": big + cm("a"), "b.yaml": big + cm("b")},
			opts:  Options{MaxTotalSize: 3000},
			is:    ErrTooLarge, path: "b.yaml",
		},
		{
			name:  "more than MaxObjects",
			files: tree{"a.yaml": cm("a") + "---\n" + cm("b"), "b.yaml": cm("c") + "---\n" + cm("d")},
			opts:  Options{MaxObjects: 3},
			is:    ErrTooManyObjects, path: "b.yaml", line: 6,
		},
		{
			name:  "ignored objects count against MaxObjects",
			files: tree{"a.yaml": cm("a") + "  annotations: {fluxcd.io/ignore: \"true\"}\n---\n" + cm("b")},
			opts:  Options{MaxObjects: 1},
			is:    ErrTooManyObjects, path: "a.yaml", line: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			objs, err := Load(context.Background(), root, tt.paths, tt.opts)
			if err == nil {
				t.Fatalf("Load succeeded with %q, want an error", summary(objs))
			}
			if objs != nil {
				t.Errorf("Load returned objects with an error: %q", summary(objs))
			}
			t.Log(err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			var fe *FileError
			if tt.path != "" || tt.line != 0 {
				if !errors.As(err, &fe) {
					t.Fatalf("error %q (%T) is not a *FileError", err, err)
				}
				if tt.path != "" && fe.Path != tt.path {
					t.Errorf("FileError.Path = %q, want %q", fe.Path, tt.path)
				}
				if tt.line != 0 && fe.Line != tt.line {
					t.Errorf("FileError.Line = %d, want %d (%v)", fe.Line, tt.line, err)
				}
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not contain %q", err, tt.message)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("error %q leaks the checkout's absolute path", err)
			}
		})
	}
}

func TestLoadCancelled(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, tree{"a.yaml": cm("a")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, root, nil, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestLoadRootIsSymlink(t *testing.T) {
	// pkg/git may hand over a symlink to the current worktree; that is the
	// caller's choice of root, not content, and is followed.
	dir := t.TempDir()
	writeTree(t, dir, tree{"worktree/a.yaml": cm("a")})
	link := filepath.Join(dir, "current")
	if err := os.Symlink("worktree", link); err != nil {
		t.Fatal(err)
	}
	objs, err := Load(context.Background(), link, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(objs); !slices.Equal(got, []string{"a.yaml:1 ConfigMap/a"}) {
		t.Fatalf("got %q", got)
	}
}

func TestIsSyncOnly(t *testing.T) {
	tests := []struct {
		doc              string
		syncOnly, ignore bool
	}{
		{cm("plain"), false, false},
		{cm("s") + "  annotations: {fluxcd.io/ignore: sync_only}\n", true, false},
		{cm("s") + "  annotations: {flux.weave.works/ignore: sync_only}\n", true, false},
		{cm("i") + "  annotations: {fluxcd.io/ignore: \"true\"}\n", false, true},
		{cm("i") + "  annotations: {flux.weave.works/ignore: \"true\", other: 1}\n", false, true},
		{cm("odd") + "  annotations: [fluxcd.io/ignore]\n", false, false},
	}
	for _, tt := range tests {
		objs, err := decodeYAML([]byte(tt.doc))
		if err != nil || len(objs) != 1 {
			t.Fatalf("decode %q: %v", tt.doc, err)
		}
		if got := IsSyncOnly(objs[0].obj); got != tt.syncOnly {
			t.Errorf("IsSyncOnly(%q) = %v", tt.doc, got)
		}
		if got := IsIgnored(objs[0].obj); got != tt.ignore {
			t.Errorf("IsIgnored(%q) = %v", tt.doc, got)
		}
	}
	if IsSyncOnly(nil) || IsIgnored(nil) {
		t.Error("nil object is sync-only or ignored")
	}
}
