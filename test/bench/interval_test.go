package bench

import (
	"testing"
	"time"
)

// The interval of a percentile is the pair of order statistics the
// binomial distribution gives for about 95% (ranks computed by hand from
// the binomial CDF), clamped to the samples when there are few.
func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		n      int
		p      float64
		lo, hi int // 1-based ranks
	}{
		{n: 11, p: 50, lo: 2, hi: 10},
		{n: 20, p: 50, lo: 6, hi: 15},
		{n: 50, p: 50, lo: 18, hi: 33},
		{n: 50, p: 95, lo: 44, hi: 50},
		{n: 3, p: 50, lo: 1, hi: 3},
		{n: 1, p: 50, lo: 1, hi: 1},
	} {
		// Samples in descending order, so the function must sort them:
		// the k-th smallest is k ms.
		var samples []time.Duration
		for k := tc.n; k >= 1; k-- {
			samples = append(samples, time.Duration(k)*time.Millisecond)
		}
		lo, hi := interval(samples, tc.p)
		if lo != time.Duration(tc.lo)*time.Millisecond || hi != time.Duration(tc.hi)*time.Millisecond {
			t.Errorf("n=%d p%.0f: interval %v–%v, want ranks %d–%d", tc.n, tc.p, lo, hi, tc.lo, tc.hi)
		}
	}
}
