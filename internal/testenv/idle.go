package testenv

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// WaitIdle waits until the in-process controller named controller ("gitsync",
// "helmrelease") has finished every reconcile it was handed: nothing queued,
// no worker busy, and no reconcile ended between two looks 100 ms apart. A
// test that must show an event caused no pass waits for a later event's pass
// (the queue is first in, first out), then for this, and only then looks.
// It reads controller-runtime's metrics, so it sees every manager of the
// test binary; objects with a short interval keep it from ever holding.
func WaitIdle(t testing.TB, timeout time.Duration, controller string) {
	t.Helper()
	var last workload
	Eventually(t, timeout, "controller "+controller+" idle", func() (bool, string) {
		now, err := workloadOf(controller)
		if err != nil {
			return false, err.Error()
		}
		idle := now.queued == 0 && now.busy == 0 && now == last
		last = now
		return idle, fmt.Sprintf("%v queued, %v busy, %v reconciles ended", now.queued, now.busy, now.ended)
	})
}

// workload is what a controller's metrics say it has to do and has done.
type workload struct {
	queued, busy, ended float64
}

func workloadOf(controller string) (workload, error) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return workload{}, fmt.Errorf("gather metrics: %w", err)
	}
	var w workload
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case f.GetName() == "workqueue_depth" && labels["name"] == controller:
				w.queued += m.GetGauge().GetValue()
			case f.GetName() == "controller_runtime_active_workers" && labels["controller"] == controller:
				w.busy += m.GetGauge().GetValue()
			case f.GetName() == "controller_runtime_reconcile_total" && labels["controller"] == controller:
				w.ended += m.GetCounter().GetValue()
			}
		}
	}
	return w, nil
}
