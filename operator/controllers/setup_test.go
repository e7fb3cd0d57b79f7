package controllers

import (
	"testing"
	"time"
)

// The default index refresh comes later than the longest pass (interval
// plus 10% jitter) even when it is 10% early itself, so one pass over every
// HelmRelease of a repository asks for its index at most once.
func TestChartIndexIntervalOutlastsAPass(t *testing.T) {
	for _, helm := range []time.Duration{0, time.Second, 3 * time.Minute, time.Hour} {
		pass := helm
		if pass == 0 {
			pass = 3 * time.Minute
		}
		got := ChartIndexInterval(helm)
		if earliest, longest := got*9/10, pass*11/10; earliest <= longest {
			t.Errorf("charts-sync-interval %s: index refreshed every %s, earliest %s, not after the longest pass %s", helm, got, earliest, longest)
		}
	}
}
