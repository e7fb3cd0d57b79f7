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
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/pkg/registry"
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
		if !grants(role, "helm.fluxcd.io", "helmreleases", "watch") || !grants(role, "helmflux.dev", "gitsyncs/status", "patch") ||
			!grants(role, "helmflux.dev", "alerts", "watch") || !grants(role, "helmflux.dev", "alerts/status", "patch") {
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

// The automation settings become flags, and the docker config and webhook
// token Secrets are mounted where those flags point.
func TestChartRendersAutomationSettings(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"automation": map[string]any{"interval": "1m"},
		"registry": map[string]any{
			"insecureHosts": []any{"registry.local:5000"}, "excludeImages": []any{"docker.io/library/*"},
			"dockerConfigSecret": "regcreds", "webhookTokenSecret": "hooktoken",
		},
	}
	vals, err := chartutil.ToRenderValues(chrt, values,
		chartutil.ReleaseOptions{Name: "hf", Namespace: "helmflux-system", IsInstall: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(out["helmflux/templates/deployment.yaml"]), &d); err != nil {
		t.Fatalf("decode Deployment: %v", err)
	}
	args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{
		"--cache-dir=/var/cache/helmflux", "--automation-interval=1m", "--registry-poll-interval=5m",
		"--registry-insecure-host=registry.local:5000", "--registry-exclude-image=docker.io/library/*",
		"--docker-config=/etc/helmflux/docker/config.json", "--registry-webhook-token-file=/etc/helmflux/registry-webhook/token",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	secrets := map[string]bool{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secrets[v.Secret.SecretName] = true
		}
	}
	if !secrets["regcreds"] || !secrets["hooktoken"] || len(d.Spec.Template.Spec.Containers[0].VolumeMounts) != 3 {
		t.Errorf("volumes %+v, mounts %+v", d.Spec.Template.Spec.Volumes, d.Spec.Template.Spec.Containers[0].VolumeMounts)
	}
}

// The chart's default registry rate limits are the operator's own
// (registry.DefaultRPS and DefaultBurst), so an install scans as the tests
// and benchmarks do.
func TestChartRegistryLimitsAreTheOperatorDefaults(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	reg, ok := chrt.Values["registry"].(map[string]any)
	if !ok {
		t.Fatalf("values.yaml has no registry map: %v", chrt.Values["registry"])
	}
	if rps, ok := reg["rps"].(float64); !ok || rps != registry.DefaultRPS {
		t.Errorf("registry.rps = %v, want registry.DefaultRPS = %v", reg["rps"], registry.DefaultRPS)
	}
	if burst, ok := reg["burst"].(float64); !ok || burst != registry.DefaultBurst {
		t.Errorf("registry.burst = %v, want registry.DefaultBurst = %v", reg["burst"], registry.DefaultBurst)
	}
}
