package install

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/internal/testenv"
)

// docs/chart.md documents every value of charts/helmflux/values.yaml: each
// leaf (or list, or the parent of a map a user sets whole, like resources)
// is named there as `a.b`.
func TestEveryChartValueIsDocumented(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "charts", "helmflux", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "chart.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := valueKeys("", values)
	if len(keys) < 20 {
		t.Fatalf("found only %d values: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !documented(string(doc), k) {
			t.Errorf("docs/chart.md does not document the value %s", k)
		}
	}
}

// valueKeys lists the dotted paths of values' leaves, lists and empty maps.
func valueKeys(prefix string, values map[string]any) []string {
	var out []string
	for k, v := range values {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			out = append(out, valueKeys(key, m)...)
			continue
		}
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

// documentedWhole are the maps a user sets whole, documented by their own
// name rather than each default inside them.
var documentedWhole = []string{"resources"}

// documented tells whether key, or a map above it that is documented
// whole, is named in doc as code.
func documented(doc, key string) bool {
	if strings.Contains(doc, "`"+key+"`") {
		return true
	}
	for _, w := range documentedWhole {
		if strings.HasPrefix(key, w+".") && strings.Contains(doc, "`"+w+"`") {
			return true
		}
	}
	return false
}
