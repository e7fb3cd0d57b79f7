// Package requeue holds what every controller uses to pick its next pass,
// so that GitSyncs, HelmReleases and automation passes spread their load the
// same way.
package requeue

import (
	"math/rand/v2"
	"time"
)

// Jitter returns d plus up to a tenth of d, so that many objects with the
// same interval do not all come due at once.
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d/10)+1)) // #nosec G404 -- spreading load, not a secret
}
