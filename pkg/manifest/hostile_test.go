package manifest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLoadHostileInput(t *testing.T) {
	laughs := "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += n + ": &" + n + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n"
		prev = n
	}
	tests := []struct {
		name, file, data string
	}{
		{"deeply nested YAML flow", "deep.yaml", strings.Repeat("[", 1<<20)},
		{"deeply nested YAML block", "deep2.yaml", strings.Repeat("- ", 50000) + "x\n"},
		{"deeply nested JSON", "deep.json", strings.Repeat(`{"a":`, 200000)},
		{"billion laughs", "lol.yaml", laughs},
		{"kustomization billion laughs", "kustomization.yaml", laughs},
		{"deeply nested kustomization", "kustomization.yaml", "resources: " + strings.Repeat("[", 1<<20)},
	}
	kustomized := []struct {
		name string
		data string
	}{
		{"deeply nested kustomize resource", strings.Repeat("- ", 50000) + "x\n"},
		{"kustomize resource billion laughs", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  " + strings.TrimSuffix(strings.ReplaceAll(laughs, "\n", "\n  "), "  ")},
	}
	indented := "      " + strings.ReplaceAll(laughs, "\n", "\n      ")
	tests = append(tests,
		struct{ name, file, data string }{"inline patch billion laughs", "kustomization.yaml",
			"resources: [cm.yaml]\npatches:\n- patch: |\n" + indented},
		struct{ name, file, data string }{"inline plugin patch billion laughs", "kustomization.yaml",
			"resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata:\n    name: p\n  patch: |\n" +
				"  " + strings.ReplaceAll(indented, "\n", "\n  ")},
	)
	for _, k := range kustomized {
		tests = append(tests, struct{ name, file, data string }{k.name, "res.yaml", k.data})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := tree{tt.file: tt.data}
			switch tt.file {
			case "res.yaml":
				files["kustomization.yaml"] = "resources: [res.yaml]\n"
			case "kustomization.yaml":
				files["cm.yaml"] = cm("target")
			}
			writeTree(t, root, files)
			start := time.Now()
			_, err := Load(context.Background(), root, nil, Options{})
			t.Logf("%v after %v", err, time.Since(start))
			if err == nil {
				t.Fatal("hostile input loaded without error")
			}
		})
	}
}

func TestLoadKustomizeDiamondBounded(t *testing.T) {
	// Each level includes the next twice under different name prefixes, so
	// the output doubles per level: 2^16 objects from a few dozen tiny files.
	const depth = 16
	files := tree{"kustomization.yaml": "resources: [l0]\n"}
	for i := range depth {
		files[fmt.Sprintf("l%d/kustomization.yaml", i)] = fmt.Sprintf("resources: [../l%da, ../l%db]\n", i, i)
		for _, side := range []string{"a", "b"} {
			next := fmt.Sprintf("../l%d", i+1)
			if i == depth-1 {
				next = "../leaf"
			}
			files[fmt.Sprintf("l%d%s/kustomization.yaml", i, side)] = "namePrefix: " + side + "-\nresources: [" + next + "]\n"
		}
	}
	files["leaf/kustomization.yaml"] = "resources: [cm.yaml]\n"
	files["leaf/cm.yaml"] = cm("x")
	root := t.TempDir()
	writeTree(t, root, files)
	start := time.Now()
	_, err := Load(context.Background(), root, nil, Options{MaxObjects: 1000})
	t.Logf("%v after %v", err, time.Since(start))
	if !errors.Is(err, ErrTooManyObjects) || !strings.Contains(err.Error(), "kustomize read more than") {
		t.Fatalf("Load: %v, want the kustomize document limit", err)
	}
}
