package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/controllers"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func init() {
	benchmarks = append(benchmarks, haHandover)
}

// haLease are the lease timings of the hand-over benchmark: short, so that
// a sample takes seconds; the chart's defaults are 35s/30s/5s.
var haLease = []string{"--leader-election-lease-duration=4s", "--leader-election-renew-deadline=3s", "--leader-election-retry-period=500ms"}

// haHandover measures a leader's death as the story tells it: two
// operator processes elect a leader on one Lease; the leader is SIGKILLed
// and, at once, a git push notification for a new commit reaches the other
// replica, which is not leading yet and can only write the request into the
// cluster. ha_handover_s is the time from the kill to the Lease naming the
// other replica (bounded by the lease duration, 4s here);
// ha_push_after_handover_ms is the time from that hand-over to the GitSync
// having applied the pushed commit in a pass that handled the request. Five
// samples, the killed replica restarted as the standby after each; the
// GitSync polls hourly, so nothing but the push brings the commit in.
var haHandover = benchmark{
	name:  "ha_handover",
	names: []string{"ha_handover_s", "ha_push_after_handover_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const runs = 5
		env, cfg := startControlPlane(t)
		c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		ns := testenv.NewNamespace(t, c, "bench-ha")
		token := "bench-ha-token"
		if err := c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"},
			StringData: map[string]string{"token": token}}); err != nil {
			t.Fatal(err)
		}
		repo := gittest.NewRepo(t, map[string]string{"settings.yaml": haConfigMap(ns, 0)})
		srv := gittest.NewHTTPServer(t, repo.Root())
		if err := c.Create(context.Background(), &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
			Spec: helmfluxv1alpha1.GitSyncSpec{URL: srv.URL(gittest.RepoName), Interval: metav1.Duration{Duration: time.Hour},
				WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}}}); err != nil {
			t.Fatal(err)
		}

		replicas := make([]*haReplica, 2)
		for i := range replicas {
			replicas[i] = startHAReplica(t, env, ns)
		}
		lead := haFirstLeader(t, c, ns, replicas)
		var handovers, pushes []time.Duration
		for i := 1; i <= runs; i++ {
			leader, standby := replicas[lead], replicas[1-lead]
			before := haHolder(c, ns)
			repo.Write(map[string]string{"settings.yaml": haConfigMap(ns, i)})
			hash := repo.Commit(fmt.Sprintf("change %d", i))

			haWaitListening(t, standby.addr)
			killed := time.Now()
			leader.Kill()
			if code := testenv.PushHook(t, standby.addr, ns, "apps", token); code != http.StatusAccepted {
				t.Fatalf("push to the standby: %d", code)
			}
			var acquired time.Time
			testenv.Eventually(t, time.Minute, "the standby to take the Lease", func() (bool, string) {
				h := haHolder(c, ns)
				acquired = time.Now()
				return h != "" && h != before, h
			})
			testenv.Eventually(t, time.Minute, "the pushed commit applied", func() (bool, string) {
				gs := &helmfluxv1alpha1.GitSync{}
				if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "apps"}, gs); err != nil {
					return false, err.Error()
				}
				return strings.HasSuffix(gs.Status.LastAppliedRevision, hash), gs.Status.LastAppliedRevision
			})
			handovers = append(handovers, acquired.Sub(killed))
			pushes = append(pushes, time.Since(acquired))
			leader.Start() // the standby of the next sample
			lead = 1 - lead
		}
		reportPercentile(t, report, "ha_handover_s", handovers, 50, time.Second)
		reportPercentile(t, report, "ha_push_after_handover_ms", pushes, 50, time.Millisecond)
	},
}

// haReplica is one operator process of the hand-over benchmark.
type haReplica struct {
	*testenv.Operator
	addr string
}

func startHAReplica(t *testing.T, env *envtest.Environment, ns string) *haReplica {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--leader-elect", "--leader-election-namespace=" + ns, "--listen=" + addr}, haLease...)
	return &haReplica{Operator: testenv.StartOperator(t, env, args...), addr: addr}
}

// haHolder returns the Lease's holder, "" while there is none.
func haHolder(c client.Client, ns string) string {
	lease := &coordinationv1.Lease{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: controllers.LeaderElectionID}, lease); err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// haFirstLeader waits for the first leader and returns its index: the one
// replica that logged taking the Lease.
func haFirstLeader(t *testing.T, c client.Client, ns string, replicas []*haReplica) int {
	t.Helper()
	lead := -1
	testenv.Eventually(t, time.Minute, "a leader", func() (bool, string) {
		if haHolder(c, ns) == "" {
			return false, "no holder"
		}
		for i, r := range replicas {
			if strings.Contains(r.Log(), "Successfully acquired lease") {
				lead = i
			}
		}
		return lead >= 0, "no replica logged it"
	})
	return lead
}

// haWaitListening waits until addr accepts connections: a restarted
// replica is ready before its HTTP server listens.
func haWaitListening(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, addr+" listening", func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/api/flux/v11/ping")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return true, ""
	})
}

func haConfigMap(ns string, i int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: %s\ndata:\n  n: %q\n", ns, fmt.Sprint(i))
}
