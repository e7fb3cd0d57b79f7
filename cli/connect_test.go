package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(name string, ready bool) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}}
}

// TestPickPod: of several operator replicas the port-forward goes to the
// Lease holder, whatever the order of the list; without one to be found, to
// the first ready Pod by name, so that two commands reach the same replica.
func TestPickPod(t *testing.T) {
	tests := []struct {
		name   string
		pods   []corev1.Pod
		holder string
		want   string
	}{
		{name: "the leader", pods: []corev1.Pod{pod("op-a", true), pod("op-b", true)}, holder: "op-b", want: "op-b"},
		{name: "the leader, not yet ready", pods: []corev1.Pod{pod("op-a", true), pod("op-b", false)}, holder: "op-b", want: "op-b"},
		{name: "no Lease: first ready by name", pods: []corev1.Pod{pod("op-c", true), pod("op-a", false), pod("op-b", true)}, want: "op-b"},
		{name: "holder is not among the Pods", pods: []corev1.Pod{pod("op-b", true), pod("op-a", true)}, holder: "gone", want: "op-a"},
		{name: "none ready, no holder", pods: []corev1.Pod{pod("op-a", false), pod("op-b", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if p := pickPod(tt.pods, tt.holder); p != nil {
				got = p.Name
			}
			if got != tt.want {
				t.Errorf("pickPod() = %q, want %q", got, tt.want)
			}
		})
	}
}
