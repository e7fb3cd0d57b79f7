package install

import (
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/helmflux/helmflux/operator/controllers"
)

// TestChartSharding: sharding.shards [a, b] renders the main Deployment and
// one per shard. Their --watch-label-selector flags split the objects
// between them (what is labelled a is a's alone, what has no label the
// main instance's, a third shard's nobody's), each elects its leader on a
// Lease of its own (the main instance keeps the one the CLI reads), the
// Deployments' Pods never overlap, each has a Service of its own (the
// chart's own selects the main instance's), and otherwise they run with the same flags.
// A shard name that cannot be a label value, or one listed twice, is
// refused at render time.
func TestChartSharding(t *testing.T) {
	_, plain := operatorDeployment(t, renderChart(t))
	if slices.ContainsFunc(plain.Args, func(a string) bool { return strings.HasPrefix(a, "--watch-label-selector") }) {
		t.Errorf("the default install shards: %q", plain.Args)
	}

	r := renderChartWith(t, map[string]any{"sharding": map[string]any{"shards": []any{"a", "b"}}, "replicas": 2})
	deployments := map[string]*appsv1.Deployment{}
	args := map[string][]string{}
	for _, d := range typed[appsv1.Deployment](t, r, "Deployment") {
		i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "operator" })
		if i < 0 {
			continue
		}
		deployments[d.Name] = d
		args[d.Name] = d.Spec.Template.Spec.Containers[i].Args
	}
	main, a, b := releaseName+"-operator", releaseName+"-operator-a", releaseName+"-operator-b"
	if len(deployments) != 3 || deployments[main] == nil || deployments[a] == nil || deployments[b] == nil {
		t.Fatalf("want Deployments %s, %s and %s, got %v", main, a, b, slices.Sorted(maps.Keys(deployments)))
	}

	flag := func(name, f string) (string, bool) {
		for _, arg := range args[name] {
			if v, ok := strings.CutPrefix(arg, "--"+f+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	selectors := map[string]labels.Selector{}
	leases := map[string]string{}
	for name := range deployments {
		v, ok := flag(name, "watch-label-selector")
		if !ok {
			t.Fatalf("%s runs without --watch-label-selector: %q", name, args[name])
		}
		sel, err := labels.Parse(v)
		if err != nil {
			t.Fatalf("%s: --watch-label-selector %q: %v", name, v, err)
		}
		selectors[name] = sel
		lease, ok := flag(name, "leader-election-id")
		if !ok {
			lease = controllers.LeaseName(sel)
		}
		if other, ok := leases[lease]; ok {
			t.Errorf("%s and %s share the Lease %s", other, name, lease)
		}
		leases[lease] = name
	}
	if leases[controllers.LeaderElectionID] != main {
		t.Errorf("the main instance does not keep the Lease %s the CLI reads: %v", controllers.LeaderElectionID, leases)
	}
	for _, tc := range []struct {
		labels labels.Set
		want   string // the one Deployment that reconciles it, "" for none
	}{
		{labels.Set{}, main},
		{labels.Set{"app": "web"}, main},
		{labels.Set{"sharding.fluxcd.io/key": "a"}, a},
		{labels.Set{"sharding.fluxcd.io/key": "b"}, b},
		{labels.Set{"sharding.fluxcd.io/key": "c"}, ""},
	} {
		var got []string
		for name, sel := range selectors {
			if sel.Matches(tc.labels) {
				got = append(got, name)
			}
		}
		if want := []string{tc.want}; !slices.Equal(got, want) && (tc.want != "" || len(got) > 0) {
			t.Errorf("an object labelled %v is reconciled by %v, want %q", tc.labels, got, tc.want)
		}
	}

	// Same flags otherwise.
	strip := func(name string) []string {
		return slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(args[name]), func(a string) bool {
			return strings.HasPrefix(a, "--watch-label-selector=") || strings.HasPrefix(a, "--leader-election-id=")
		})))
	}
	for _, s := range []string{a, b} {
		if !slices.Equal(strip(main), strip(s)) {
			t.Errorf("%s runs with other flags than %s: %q, %q", s, main, strip(s), strip(main))
		}
		if *deployments[s].Spec.Replicas != 2 {
			t.Errorf("%s runs %d replicas, want replicas: 2", s, *deployments[s].Spec.Replicas)
		}
	}

	// No Deployment's selector takes another's Pods; the Service and the
	// CLI's default selector take the main instance's.
	for name, d := range deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for other, o := range deployments {
			if matches := sel.Matches(labels.Set(o.Spec.Template.Labels)); matches != (name == other) {
				t.Errorf("the selector of %s (%s) matching the Pods of %s is %v", name, sel, other, matches)
			}
		}
	}
	services := typed[corev1.Service](t, r, "Service")
	if len(services) != 3 {
		t.Errorf("two shards render %d Services, want 3", len(services))
	}
	for _, svc := range services {
		for name, d := range deployments {
			if matches := labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)); matches != (name == svc.Name) {
				t.Errorf("Service %s selecting the Pods of %s is %v", svc.Name, name, matches)
			}
		}
	}
	cli, _ := labels.Parse("app.kubernetes.io/name=helmflux")
	for name, d := range deployments {
		if cli.Matches(labels.Set(d.Spec.Template.Labels)) != (name == main) {
			t.Errorf("the CLI's default --k8s-fwd-labels finding the Pods of %s is %v", name, name != main)
		}
	}
	pdbs := typed[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget")
	if len(pdbs) != 3 {
		t.Errorf("replicas: 2 with two shards renders %d PodDisruptionBudgets, want 3", len(pdbs))
	}
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PodDisruptionBudget %s selects the Pods of %d Deployments, want 1", pdb.Name, n)
		}
	}

	for _, bad := range [][]any{{"Shard_A"}, {"a", "a"}, {"a) || (b"}} {
		_, err := tryRenderChart(t, map[string]any{"sharding": map[string]any{"shards": bad}})
		if err == nil || !strings.Contains(err.Error(), "sharding.shards") {
			t.Errorf("sharding.shards %q rendered (error %v), want a refusal naming the value", bad, err)
		}
	}
}
