package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

var chartDir = filepath.Join("..", "..", "charts", "helmflux")

func TestChartLintsClean(t *testing.T) {
	res := lint.AllWithKubeVersion(chartDir, map[string]any{}, "helmflux-system", nil)
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("lint: %s", m)
		}
	}
}

// The chart's ClusterRole carries the rules generated from operator/rbac.go, and
// cluster-admin is bound only when asked for.
func TestChartRendersGeneratedRBAC(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, clusterAdmin := range []bool{true, false} {
		vals, err := chartutil.ToRenderValues(chrt, map[string]any{"clusterAdmin": clusterAdmin},
			chartutil.ReleaseOptions{Name: "hf", Namespace: "helmflux-system", IsInstall: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := engine.Render(chrt, vals)
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		rbac := out["helmflux/templates/rbac.yaml"]
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(strings.Split(rbac, "\n---")[0]), &role); err != nil {
			t.Fatalf("decode ClusterRole: %v", err)
		}
		if !grants(role, "helm.fluxcd.io", "helmreleases", "watch") || !grants(role, "helmflux.dev", "gitsyncs/status", "patch") {
			t.Errorf("ClusterRole lacks the generated rules: %+v", role.Rules)
		}
		if got := strings.Contains(rbac, "name: cluster-admin"); got != clusterAdmin {
			t.Errorf("clusterAdmin=%v: cluster-admin bound = %v", clusterAdmin, got)
		}
	}
}

func grants(role rbacv1.ClusterRole, group, resource, verb string) bool {
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}
