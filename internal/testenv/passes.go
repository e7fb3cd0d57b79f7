package testenv

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/helmflux/helmflux/operator/automation"
)

// LineCounter returns a function counting the lines of log() written since
// LineCounter was called that hold every one of words. log must only grow,
// as a LogBuffer or an Operator's log file does.
func LineCounter(log func() string, words ...string) func() int {
	count := func() int {
		n := 0
		for _, line := range strings.Split(log(), "\n") {
			if containsAll(line, words) {
				n++
			}
		}
		return n
	}
	start := count()
	return func() int { return count() - start }
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// AutomationPasses counts the image automation passes over the GitSync
// ns/name that have ended since it was called, by the line each pass logs at
// V(1) (automation.DoneMessage) in log: the proof that a pass ran, where
// its status may not change. The operator must log at V(1) (zap's
// development mode, or --zap-log-level=debug for the process).
func AutomationPasses(log func() string, ns, name string) func() int {
	return LineCounter(log, automation.DoneMessage, fmt.Sprintf(`{"name":"%s","namespace":"%s"}`, name, ns))
}

// WaitPasses waits until passes, a counter such as AutomationPasses, has
// counted n. To prove a pass started after some moment, make the counter at
// that moment and wait for 2: passes over one object run one at a time, so
// the second began after the first had ended.
func WaitPasses(t testing.TB, passes func() int, n int) {
	t.Helper()
	Eventually(t, 2*time.Minute, fmt.Sprintf("%d passes", n), func() (bool, string) {
		c := passes()
		return c >= n, fmt.Sprintf("%d passes", c)
	})
}
