package install

import (
	"strings"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestChartReplicas: the chart runs one replica by default and no
// PodDisruptionBudget; replicas: 2 runs two with leader election and a
// PodDisruptionBudget keeping one of the operator's Pods; replicas: 2
// without leader election is refused at render time with what to set, as
// is a PodDisruptionBudget nobody asked for left out.
func TestChartReplicas(t *testing.T) {
	if pdbs := typed[policyv1.PodDisruptionBudget](t, renderChart(t), "PodDisruptionBudget"); len(pdbs) != 0 {
		t.Errorf("the default install renders %d PodDisruptionBudgets, want none for one replica", len(pdbs))
	}

	two := renderChartWith(t, map[string]any{"replicas": 2})
	d, c := operatorDeployment(t, two)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas: 2 renders %v replicas", d.Spec.Replicas)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--leader-elect=true") {
		t.Errorf("replicas: 2 runs the operator without leader election: %q", c.Args)
	}
	pdbs := typed[policyv1.PodDisruptionBudget](t, two, "PodDisruptionBudget")
	if len(pdbs) != 1 {
		t.Fatalf("replicas: 2 renders %d PodDisruptionBudgets, want 1", len(pdbs))
	}
	pdb := pdbs[0]
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("the PodDisruptionBudget's minAvailable is %v, want 1", pdb.Spec.MinAvailable)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Namespace != d.Namespace {
		t.Errorf("the PodDisruptionBudget (%s in %s) does not select the operator's Pods (%v in %s)", sel, pdb.Namespace, d.Spec.Template.Labels, d.Namespace)
	}
	off := renderChartWith(t, map[string]any{"replicas": 2, "podDisruptionBudget": map[string]any{"enabled": false}})
	if n := len(typed[policyv1.PodDisruptionBudget](t, off, "PodDisruptionBudget")); n != 0 {
		t.Errorf("podDisruptionBudget.enabled: false renders %d PodDisruptionBudgets", n)
	}

	_, err = tryRenderChart(t, map[string]any{"replicas": 2, "leaderElect": false})
	if err == nil || !strings.Contains(err.Error(), "leaderElect is false") || !strings.Contains(err.Error(), "set leaderElect: true") {
		t.Errorf("replicas: 2 with leaderElect: false rendered (error %v), want a refusal naming leaderElect", err)
	}
}

// config/ha runs what the chart's replicas: 2 runs: the same operator, two
// replicas, and a PodDisruptionBudget that keeps one of its Pods.
func TestHAInstallsAgree(t *testing.T) {
	kust, chart := renderKustomization(t, "ha"), renderChartWith(t, map[string]any{"replicas": 2})
	assertSameOperator(t, kust, chart)
	d, _ := operatorDeployment(t, kust)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("config/ha runs %v replicas, want 2", d.Spec.Replicas)
	}
	pdbs := typed[policyv1.PodDisruptionBudget](t, kust, "PodDisruptionBudget")
	if len(pdbs) != 1 || pdbs[0].Spec.MinAvailable == nil || pdbs[0].Spec.MinAvailable.IntValue() != 1 || pdbs[0].Namespace != d.Namespace {
		t.Fatalf("config/ha's PodDisruptionBudgets: %v", pdbs)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdbs[0].Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("config/ha's PodDisruptionBudget (%v) does not select the operator's Pods (%v): %v", sel, d.Spec.Template.Labels, err)
	}
}
