package manifest

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// Kustomize fetches remote bases and resources itself: a git URL makes it
// run `git fetch` into a temporary directory and an http(s) URL makes it GET
// the file, both before any path reaches the file system, so confinedFS
// alone cannot stop them (Flux's secure file system refuses the clone only
// after git has run). So every kustomization file, and every builtin plugin
// configuration, is checked as confinedFS reads it, before kustomize looks
// inside: any reference that kustomize could treat as remote is refused.

// checkKustomizeInput checks a file kustomize is about to read.
func checkKustomizeInput(name string, data []byte) error {
	if err := checkAliases(data); err != nil {
		return err
	}
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if name == n {
			return checkKustomization(data)
		}
	}
	if bytes.Contains(data, []byte(konfig.BuiltinPluginApiVersion)) {
		return checkPluginConfigs(data)
	}
	return nil
}

// checkKustomization parses a kustomization exactly as kustomize does and
// checks every field kustomize loads a file or a base from.
func checkKustomization(data []byte) error {
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		// Kustomize parses with the same function and refuses the file
		// with a better message than ours.
		return nil
	}
	k.FixKustomization() // folds bases into resources, env into envs, ...
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		return fmt.Errorf("helmCharts: Helm chart inflation is %w (use a HelmRelease)", ErrNotAllowed)
	}
	refs := map[string][]string{
		"resources":             k.Resources,
		"components":            k.Components,
		"crds":                  k.Crds,
		"configurations":        k.Configurations,
		"generators":            k.Generators,
		"transformers":          k.Transformers,
		"validators":            k.Validators,
		"openapi":               {k.OpenAPI["path"]},
		"patchesStrategicMerge": nil,
	}
	for _, p := range k.PatchesStrategicMerge { //nolint:staticcheck // deprecated, but kustomize still loads it
		refs["patchesStrategicMerge"] = append(refs["patchesStrategicMerge"], string(p))
	}
	for _, p := range k.Patches {
		refs["patches"] = append(refs["patches"], p.Path)
	}
	for _, p := range k.PatchesJson6902 { //nolint:staticcheck // deprecated, but kustomize still loads it
		refs["patchesJson6902"] = append(refs["patchesJson6902"], p.Path)
	}
	for _, r := range k.Replacements {
		refs["replacements"] = append(refs["replacements"], r.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		refs["configMapGenerator"] = append(refs["configMapGenerator"], kvSources(g.KvPairSources)...)
	}
	for _, g := range k.SecretGenerator {
		refs["secretGenerator"] = append(refs["secretGenerator"], kvSources(g.KvPairSources)...)
	}
	for _, field := range []string{"resources", "components", "crds", "configurations", "generators", "transformers",
		"validators", "openapi", "patchesStrategicMerge", "patches", "patchesJson6902", "replacements",
		"configMapGenerator", "secretGenerator"} {
		for _, ref := range refs[field] {
			if isRemote(ref) {
				return fmt.Errorf("%s: %q: %w", field, ref, ErrRemoteReference)
			}
		}
	}
	// Generators, transformers and validators may be given inline, as YAML
	// plugin configurations.
	for _, list := range [][]string{k.Generators, k.Transformers, k.Validators} {
		for _, entry := range list {
			if strings.Contains(entry, "\n") {
				if err := checkPluginConfigs([]byte(entry)); err != nil {
					return err
				}
			}
		}
	}
	// Inline patches are YAML that kustomize parses (and expands) later.
	inline := refs["patchesStrategicMerge"]
	for _, p := range k.Patches {
		inline = append(inline, p.Patch)
	}
	for _, p := range k.PatchesJson6902 { //nolint:staticcheck // deprecated, but kustomize still loads it
		inline = append(inline, p.Patch)
	}
	for _, p := range inline {
		if err := checkAliases([]byte(p)); err != nil {
			return err
		}
	}
	return nil
}

// checkAliases refuses YAML whose aliases expand into a huge document (the
// "billion laughs"). Kustomize expands every alias of the resources it reads
// without a limit, which takes the process down; go-yaml's decoder has a
// limit, so data that uses aliases at all is decoded once here first. Other
// decoding errors are left for kustomize to report.
func checkAliases(data []byte) error {
	if !bytes.Contains(data, []byte("*")) || !bytes.Contains(data, []byte("&")) {
		return nil
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var v interface{}
		err := dec.Decode(&v)
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "excessive aliasing") {
			return fmt.Errorf("YAML aliases expand too much: %w", ErrTooLarge)
		}
		return nil // io.EOF, or an error kustomize reports itself
	}
}

// kvSources lists the files a generator reads: "key=path" or "path".
func kvSources(s types.KvPairSources) []string {
	out := append([]string{}, s.EnvSources...)
	if s.EnvSource != "" {
		out = append(out, s.EnvSource)
	}
	for _, f := range s.FileSources {
		out = append(out, f)
		if _, p, ok := strings.Cut(f, "="); ok {
			out = append(out, p)
		}
	}
	return out
}

// pluginPathKeys are the fields of builtin plugin configurations that name
// something to load (PatchTransformer.path, ConfigMapGenerator.files, ...).
// The list is wide on purpose: a false alarm only costs a clear error.
var pluginPathKeys = map[string]bool{
	"path": true, "paths": true, "files": true, "envs": true, "env": true,
	"targetfilepath": true, "valuesfile": true, "additionalvaluesfiles": true,
	"argsfromfile": true, "resources": true, "components": true, "bases": true,
	"crds": true, "configurations": true, "generators": true, "transformers": true,
	"validators": true, "patchesstrategicmerge": true,
}

// checkPluginConfigs checks the builtin plugin configurations (apiVersion
// "builtin") among the documents of data for remote references and for Helm
// chart inflation. Other documents are plain resources and are left alone.
func checkPluginConfigs(data []byte) error {
	for _, d := range splitYAML(data) {
		var v interface{}
		if err := yaml.Unmarshal(d.body, &v); err != nil {
			// Fail closed: kustomize parses with another YAML library,
			// which might accept what this one refuses.
			return fmt.Errorf("line %d: parse plugin configuration: %w", d.start, err)
		}
		m, ok := v.(map[string]interface{})
		if !ok || !isBuiltinAPIVersion(m["apiVersion"]) {
			continue
		}
		if kind, _ := m["kind"].(string); strings.EqualFold(kind, "HelmChartInflationGenerator") {
			return fmt.Errorf("line %d: Helm chart inflation is %w (use a HelmRelease)", d.start, ErrNotAllowed)
		}
		if ref, ok := findRemote(m, "", 0); ok {
			return fmt.Errorf("line %d: %q: %w", d.start, ref, ErrRemoteReference)
		}
		if err := checkInlineAliases(m, 0); err != nil {
			return fmt.Errorf("line %d: %w", d.start, err)
		}
	}
	return nil
}

// checkInlineAliases runs checkAliases on every multi-line string in v: a
// builtin plugin may carry an inline patch that kustomize parses.
func checkInlineAliases(v interface{}, depth int) error {
	if depth > 100 {
		return nil
	}
	switch t := v.(type) {
	case map[string]interface{}:
		for _, x := range t {
			if err := checkInlineAliases(x, depth+1); err != nil {
				return err
			}
		}
	case []interface{}:
		for _, x := range t {
			if err := checkInlineAliases(x, depth+1); err != nil {
				return err
			}
		}
	case string:
		if strings.Contains(t, "\n") {
			return checkAliases([]byte(t))
		}
	}
	return nil
}

// isBuiltinAPIVersion tells whether v is an apiVersion kustomize takes for a
// builtin plugin: group empty, version "builtin" (so "builtin" or "/builtin").
func isBuiltinAPIVersion(v interface{}) bool {
	s, _ := v.(string)
	if i := strings.Index(s, "/"); i >= 0 {
		return s[:i] == "" && s[i+1:] == konfig.BuiltinPluginApiVersion
	}
	return s == konfig.BuiltinPluginApiVersion
}

// findRemote looks for a remote reference under a path-naming key anywhere
// in v; key is the key v sits under.
func findRemote(v interface{}, key string, depth int) (string, bool) {
	if depth > 100 {
		return "", false
	}
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			if ref, ok := findRemote(x, strings.ToLower(k), depth+1); ok {
				return ref, true
			}
		}
	case []interface{}:
		for _, x := range t {
			if ref, ok := findRemote(x, key, depth+1); ok {
				return ref, true
			}
		}
	case string:
		if !pluginPathKeys[key] {
			return "", false
		}
		if isRemote(t) {
			return t, true
		}
		if _, p, ok := strings.Cut(t, "="); ok && isRemote(p) {
			return t, true
		}
	}
	return "", false
}

// schemeRE matches a URL scheme at the start of a reference.
var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// scpUserRE matches the "user@" that makes kustomize read "git@host:org/repo"
// as a git repository.
var scpUserRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// isRemote tells whether kustomize could treat ref as remote: a URL it would
// GET, or anything its git URL parser accepts (any scheme, "user@host:path",
// "github.com/org/repo", with or without a "git::" prefix). It errs on the
// side of refusing; a local path never looks like this.
func isRemote(ref string) bool {
	for _, s := range []string{ref, strings.TrimSpace(ref)} {
		if s == "" {
			continue
		}
		lower := strings.ToLower(s)
		if strings.HasPrefix(lower, "git::") {
			return true
		}
		if schemeRE.MatchString(s) ||
			strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:") ||
			scpUserRE.MatchString(s) {
			return true
		}
		if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			return true
		}
	}
	return false
}
