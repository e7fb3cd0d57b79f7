package bench

import (
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/helmflux/helmflux/internal/testenv"
)

var (
	filter = flag.String("bench.run", ".", "Run only the benchmarks with a figure matching this regular expression.")
	list   = flag.Bool("bench.list", false, "Print the names of the figures -bench.run matches instead of running them (make bench-list).")
)

// benchmark measures one or more figures and reports each through report.
// It runs as a subtest of its own, named name: whatever it starts it stops
// in its t.Cleanup functions, which TestBench checks.
type benchmark struct {
	name  string
	names []string
	run   func(t *testing.T, report func(name string, value float64))
}

var benchmarks = []benchmark{
	controlPlaneStart,
	commitToApplied,
	apply1000,
	noopSync,
	hr100,
	hrNoop,
	hrInstallFloor,
	hrRequests,
	hr500,
	hr5000,
	sync1k,
	sync10k,
}

// TestBench runs the benchmarks one after the other, each as a subtest
// whose cleanups have all run when it returns. Before the first and after
// each one it checks that nothing runs in this process's name any more (a
// process below it, an in-process operator) and stops with an error when
// something does, since the next figures would be measured beside it. Each
// benchmark's note says how much CPU the rest of the machine used meanwhile.
func TestBench(t *testing.T) {
	if os.Getenv("HELMFLUX_BENCH") == "" && !*list {
		t.Skip("benchmarks run with `make bench`")
	}
	re, err := regexp.Compile(*filter)
	if err != nil {
		t.Fatalf("-bench.run: %v", err)
	}
	if *list {
		for _, b := range benchmarks {
			for _, n := range b.names {
				if re.MatchString(n) {
					fmt.Println(n)
				}
			}
		}
		return
	}
	if err := waitIsolated(settleTimeout); err != nil {
		killDescendants()
		t.Fatalf("isolation: before the first benchmark, this process already runs %v", err)
	}
	ran := 0
	for _, b := range benchmarks {
		if !matchesAny(re, b.names) {
			continue
		}
		ran++
		gauge, err := startNoiseGauge()
		if err != nil {
			t.Fatal(err)
		}
		t.Run(b.name, func(t *testing.T) {
			b.run(t, func(name string, value float64) {
				if re.MatchString(name) {
					fmt.Printf("bench: %s %s\n", name, format(value))
				}
			})
		})
		if err := waitIsolated(settleTimeout); err != nil {
			killDescendants()
			t.Fatalf("isolation: %s's cleanups have run and these still run, so no later benchmark starts: %v", b.name, err)
		}
		n, err := gauge.stop()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("note: %s: noise: %s", b.name, n)
	}
	if ran == 0 {
		t.Fatalf("no benchmark matches %q", *filter)
	}
}

func matchesAny(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

// format prints integers without a fraction and other values with two decimals.
func format(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

// startControlPlane starts a control plane with helmflux's CRDs for one benchmark.
func startControlPlane(t *testing.T) (*envtest.Environment, *rest.Config) {
	t.Helper()
	return startControlPlaneWith(t)
}

// startControlPlaneWith is startControlPlane with kube-apiserver flags,
// given as name, value pairs.
func startControlPlaneWith(t *testing.T, flags ...string) (*envtest.Environment, *rest.Config) {
	t.Helper()
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	for i := 0; i+1 < len(flags); i += 2 {
		args.Set(flags[i], flags[i+1])
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	return env, cfg
}

// percentile returns the p-th percentile (0..100) of samples, nearest rank.
func percentile(samples []time.Duration, p float64) time.Duration {
	s := sorted(samples)
	idx := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(idx, len(s)-1))]
}

func sorted(samples []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// interval returns a distribution-free confidence interval of about 95%
// for the p-th percentile (0..100) of what samples were drawn from: the
// order statistics x(l) and x(u) such that fewer than l samples fall below
// the true percentile with a probability of at most 2.5%, and u or more do
// with at most 2.5% (the number below is binomial in len(samples) and
// p/100). With few samples the ranks are clamped to the smallest and the
// largest sample, and the interval covers less.
func interval(samples []time.Duration, p float64) (lo, hi time.Duration) {
	s := sorted(samples)
	n, q := len(s), p/100
	// cdf[k] = P(X <= k) for X ~ Binomial(n, q).
	cdf := make([]float64, n+1)
	pmf := math.Pow(1-q, float64(n))
	for k := 0; k <= n; k++ {
		if k > 0 {
			pmf *= float64(n-k+1) / float64(k) * q / (1 - q)
		}
		cdf[k] = pmf
		if k > 0 {
			cdf[k] += cdf[k-1]
		}
	}
	l, u := 1, n // 1-based ranks
	for k := 1; k <= n; k++ {
		if cdf[k-1] <= 0.025 {
			l = k
		}
	}
	for k := n; k >= 1; k-- {
		if cdf[k-1] >= 0.975 {
			u = k
		}
	}
	return s[l-1], s[max(u, l)-1]
}

// sampleSpacing is the least time from the start of one sample of a
// percentile figure to the start of the next. This machine (a 2-vCPU
// virtual machine) has fast and slow phases that last about a second and
// show in no CPU time of other processes and in no single-core reference
// loop: back-to-back Helm installs are correlated (autocorrelation of
// their log time 0.39 at 0.14 s, 0.17 at 1.1 s, about 0 from 1.6 s on),
// so 20 samples taken within one second fall into one or two phases, and
// their interval said ±10% while two runs' medians differed by 40%.
// Samples this far apart are close to independent, and the interval of
// their percentile covers the phases.
const sampleSpacing = 1500 * time.Millisecond

// pacer spaces the samples of a percentile figure sampleSpacing apart.
type pacer struct{ next time.Time }

// wait returns sampleSpacing after the previous call returned (at once the
// first time): call it before each sample, preparation included.
func (p *pacer) wait() {
	time.Sleep(time.Until(p.next))
	p.next = time.Now().Add(sampleSpacing)
}

// reportPercentile reports the p-th percentile of samples as name, in units
// of unit, and notes its confidence interval: the figure's own sampling
// noise, which a second run's figure falls within about 19 times in 20.
func reportPercentile(t *testing.T, report func(string, float64), name string, samples []time.Duration, p float64, unit time.Duration) {
	t.Helper()
	v := percentile(samples, p)
	lo, hi := interval(samples, p)
	in := func(d time.Duration) float64 { return float64(d) / float64(unit) }
	report(name, in(v))
	t.Logf("note: %s: %s over %d samples; 95%% interval %s–%s (%+.0f%% / %+.0f%%)", name, format(in(v)), len(samples),
		format(in(lo)), format(in(hi)), 100*(in(lo)-in(v))/in(v), 100*(in(hi)-in(v))/in(v))
}

// controlPlaneStart measures how long the local control plane (etcd and
// kube-apiserver with helmflux's CRDs established) takes to start: the fixed
// cost of every integration test binary and of the demo. Median of 11
// starts: kube-apiserver's own start (its RBAC bootstrap above all) varies
// by about 10% from one start to the next on a quiet machine.
var controlPlaneStart = benchmark{
	name:  "controlplane_start",
	names: []string{"controlplane_start_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		var samples []time.Duration
		for range 11 {
			env, err := testenv.New()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := env.Start(); err != nil {
				t.Fatalf("start the control plane: %v", err)
			}
			samples = append(samples, time.Since(start))
			if err := env.Stop(); err != nil {
				t.Fatalf("stop the control plane: %v", err)
			}
		}
		reportPercentile(t, report, "controlplane_start_ms", samples, 50, time.Millisecond)
	},
}
