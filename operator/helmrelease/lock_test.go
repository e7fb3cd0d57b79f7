package helmrelease_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"helm.sh/helm/v3/pkg/chart/loader"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// helperEnv makes the test binary run killableUpgrade instead of the tests.
const helperEnv = "HELMFLUX_TEST_KILLABLE_UPGRADE"

// killableUpgrade runs in a child process: a Helm upgrade that waits for a
// rollout that never comes, so the release stays pending-upgrade until the
// parent kills the process, exactly as a killed operator leaves it.
func killableUpgrade() int {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := helm.NewRunner(cfg, ctrl.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ch, err := loader.Load(os.Getenv("CHART"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = r.Upgrade(context.Background(), helm.Request{
		Namespace: os.Getenv("NAMESPACE"), Name: os.Getenv("RELEASE"), Chart: ch,
		Values:     map[string]any{"image": map[string]any{"tag": testenv.NeverReadyImageSuffix[1:]}},
		Antecedent: os.Getenv("ANTECEDENT"), Timeout: time.Hour, Wait: true, MaxHistory: 10,
	})
	fmt.Fprintln(os.Stderr, "upgrade ended:", err)
	return 1
}

// lockRelease starts killableUpgrade on a release and kills it (SIGKILL)
// once the release is pending-upgrade.
func lockRelease(t *testing.T, ns, release, antecedent string, c helmtest.Chart) {
	t.Helper()
	dir := t.TempDir()
	tgz, err := c.Package()
	if err != nil {
		t.Fatal(err)
	}
	chartPath := filepath.Join(dir, "chart.tgz")
	if err := os.WriteFile(chartPath, tgz, 0o600); err != nil {
		t.Fatal(err)
	}
	kcPath, err := testenv.AdminKubeconfig(testEnv, dir, "locker")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$") // #nosec G204 -- the test binary itself
	cmd.Env = append(os.Environ(), helperEnv+"=1", "KUBECONFIG="+kcPath, "CHART="+chartPath,
		"NAMESPACE="+ns, "RELEASE="+release, "ANTECEDENT="+antecedent)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "release pending-upgrade", func() (bool, string) {
		h := history(t, ns, release)
		return len(h) > 0 && h[len(h)-1] == helm.StatusPendingUpgrade, fmt.Sprint(h, out.String())
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func TestStaleLockIsClearedButAYoungOneIsLeftAlone(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	repo.Add(t, appChart("1.1.0"))

	const staleTimeout = 6 * time.Second
	stale := repoRelease(ns, "stale", repo.URL(), "1.0.0", "")
	stale.Spec.Timeout = ptrTo(int64(staleTimeout / time.Second))
	young := repoRelease(ns, "young", repo.URL(), "1.0.0", "")
	young.Spec.Timeout = ptrTo(int64(600))
	mustCreateHR(t, stale)
	mustCreateHR(t, young)
	waitReady(t, ns, "stale")
	waitReady(t, ns, "young")

	// The stale lock is taken last and its HelmRelease changed first, so
	// that the controller first sees it younger than its timeout.
	lockRelease(t, ns, ns+"-young", ns+":helmrelease/young", appChart("1.1.0"))
	lockRelease(t, ns, ns+"-stale", ns+":helmrelease/stale", appChart("1.1.0"))
	locked, err := runner.Last(context.Background(), ns, ns+"-stale")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"stale", "young"} {
		update(t, ns, name, func(hr *helmv1.HelmRelease) { hr.Spec.Chart.Version = "1.1.0" })
	}

	// The young lock may be someone's helm upgrade: left alone, and said so.
	var hr *helmv1.HelmRelease
	eventually(t, time.Minute, "a pass over young's new generation", func() (bool, string) {
		hr = getHR(t, ns, "young")
		c := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		return c != nil && c.ObservedGeneration == hr.Generation, condition(hr, meta.ReadyCondition)
	})
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "False ReleaseLocked") || !strings.Contains(c, "pending-upgrade") {
		t.Errorf("Ready: %s", c)
	}
	// ... and tried again once, when the lock would expire (in ten minutes),
	// not in a backoff that starts at milliseconds: over the next 30 s (in
	// which the stale release below is unlocked and upgraded) it is not
	// reconciled again.
	youngPasses := passCounter(ns, "young")
	window := time.Now().Add(30 * time.Second)

	// The stale one is unlocked once older than its timeout, then upgraded.
	hr = waitReady(t, ns, "stale")
	if hr.Status.Revision != "1.1.0" || hr.Status.ReleaseStatus != "deployed" {
		t.Errorf("status: %+v", hr.Status)
	}
	if h := history(t, ns, ns+"-stale"); strings.Join(h, ",") != "superseded,failed,deployed" {
		t.Errorf("history: %v", h)
	}
	// ... but not before its timeout: while younger, it was left alone (and
	// said so), and it was cleared no earlier than its timeout after it was
	// taken.
	if _, ok := eventTime(t, ns, "stale", helmv1.ReleaseLockedReason); !ok {
		t.Errorf("the stale lock was never left alone as a young one: %v", events(t, ns, "stale"))
	}
	unlockedAt, ok := eventTime(t, ns, "stale", helmv1.ReleaseUnlockedReason)
	if !ok {
		t.Errorf("no Unlocked Event: %v", events(t, ns, "stale"))
	} else if earliest := locked.LastDeployed.Add(staleTimeout); unlockedAt.Before(earliest) {
		t.Errorf("the stale lock was cleared at %s, %s after it was taken, before its timeout of %s",
			unlockedAt.Format(time.RFC3339Nano), unlockedAt.Sub(locked.LastDeployed), staleTimeout)
	}

	if h := history(t, ns, ns+"-young"); h[len(h)-1] != helm.StatusPendingUpgrade {
		t.Errorf("the young lock was touched: %v", h)
	}
	time.Sleep(time.Until(window)) // the window the count is over, not a wait for an outcome
	if n := youngPasses(); n > 1 {
		t.Errorf("the young lock was reconciled %d times in 30 s; want it left until the lock expires", n)
	}
	if c := condition(getHR(t, ns, "young"), meta.ReadyCondition); !strings.HasPrefix(c, "False ReleaseLocked") {
		t.Errorf("Ready after the window: %s", c)
	}
}

// TestTheEndOfSomeonesHelmCommandWakesALockedRelease: a release left alone
// for someone's lock is not only retried when the lock would expire; the
// storage record that ends the command wakes it at once.
func TestTheEndOfSomeonesHelmCommandWakesALockedRelease(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	repo.Add(t, appChart("1.1.0"))
	hr := repoRelease(ns, "waiting", repo.URL(), "1.0.0", "")
	hr.Spec.Timeout = ptrTo(int64(600))
	mustCreateHR(t, hr)
	waitReady(t, ns, "waiting")
	release := ns + "-waiting"
	lockRelease(t, ns, release, ns+":helmrelease/waiting", appChart("1.1.0"))
	update(t, ns, "waiting", func(hr *helmv1.HelmRelease) { hr.Spec.Chart.Version = "1.1.0" })
	waitCondition(t, ns, "waiting", meta.ReadyCondition, "False ReleaseLocked")

	// The command ends (here: its revision is marked failed, as Helm does
	// when an upgrade fails), ten minutes before the lock would expire.
	if _, err := runner.Unlock(context.Background(), ns, release, 0); err != nil {
		t.Fatal(err)
	}
	hr = waitReady(t, ns, "waiting")
	if hr.Status.Revision != "1.1.0" || hr.Status.ReleaseRevision != 3 {
		t.Errorf("status after the command ended: %+v", hr.Status)
	}
}

// eventTime returns when the first Event with reason about an object was
// recorded (by the recorder's clock, the operator's, when it decided).
func eventTime(t *testing.T, ns, name, reason string) (time.Time, bool) {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			return e.EventTime.Time, true
		}
	}
	return time.Time{}, false
}
