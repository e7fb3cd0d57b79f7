package manifest

import (
	"context"
	"slices"
	"testing"
)

// Flux v1's .flux.yaml files are reported, never run: those above a path
// (Flux v1 looked upwards for the one governing it) and those of the
// directories walked; one in a directory not loaded is not.
func TestLoadReportsFluxV1ConfigFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, tree{
		".flux.yaml":                 "version: 1\ncommandUpdated:\n  generators:\n  - command: kustomize build .\n",
		"clusters/dev/app.yaml":      cm("app"),
		"clusters/dev/db/.flux.yaml": "version: 1\n",
		"clusters/dev/db/db.yaml":    cm("db"),
		"clusters/prod/.flux.yaml":   "version: 1\n",
		"clusters/prod/app.yaml":     cm("prod"),
	})
	objs, rep, err := LoadReport(context.Background(), root, []string{"clusters/dev"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(objs); !slices.Equal(got, []string{"clusters/dev/app.yaml:1 ConfigMap/app", "clusters/dev/db/db.yaml:1 ConfigMap/db"}) {
		t.Errorf("objects = %v: the plain YAML is read as it is", got)
	}
	if want := []string{".flux.yaml", "clusters/dev/db/.flux.yaml"}; !slices.Equal(rep.FluxV1Configs, want) {
		t.Errorf("FluxV1Configs = %v, want %v", rep.FluxV1Configs, want)
	}

	_, rep, err = LoadReport(context.Background(), t.TempDir(), nil, Options{})
	if err != nil || len(rep.FluxV1Configs) != 0 {
		t.Errorf("an empty checkout: %v %v", rep.FluxV1Configs, err)
	}
}
