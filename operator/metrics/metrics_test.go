package metrics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/operator/outcome"
)

func TestResultOf(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ResultSuccess},
		{boom, ResultFailure},
		{outcome.Retry("R", boom), ResultFailure},
		{outcome.RetryAfter("R", time.Second, boom), ResultWaiting},
		{outcome.WaitForChange("R", boom), ResultWaiting},
		{outcome.Stall("R", boom), ResultStalled},
	} {
		if got := resultOf(tc.err); got != tc.want {
			t.Errorf("resultOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func hr(ns, name string, conds ...metav1.Condition) *helmv1.HelmRelease {
	obj := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	obj.Status.Conditions = conds
	return obj
}

// TestConditionSeriesFollowTheObject: the status an object's condition has
// is 1, the others 0, Stalled removed reads False, and a deleted object's
// series go while another's stay.
func TestConditionSeriesFollowTheObject(t *testing.T) {
	r := New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collectors()...)
	stalled := hr("team", "a",
		metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionFalse},
		metav1.Condition{Type: meta.StalledCondition, Status: metav1.ConditionTrue})
	r.Reconciled(KindHelmRelease, stalled, time.Now(), outcome.Stall("R", errors.New("x")))
	r.Reconciled(KindHelmRelease, hr("team", "b", metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue}), time.Now(), nil)

	want := `
# HELP gotk_reconcile_condition The current condition status of a GitSync or HelmRelease: 1 for the status it has, 0 for the others.
# TYPE gotk_reconcile_condition gauge
gotk_reconcile_condition{kind="HelmRelease",name="a",namespace="team",status="False",type="Ready"} 1
gotk_reconcile_condition{kind="HelmRelease",name="a",namespace="team",status="False",type="Stalled"} 0
gotk_reconcile_condition{kind="HelmRelease",name="a",namespace="team",status="True",type="Ready"} 0
gotk_reconcile_condition{kind="HelmRelease",name="a",namespace="team",status="True",type="Stalled"} 1
gotk_reconcile_condition{kind="HelmRelease",name="a",namespace="team",status="Unknown",type="Ready"} 0
gotk_reconcile_condition{kind="HelmRelease",name="a",namespace="team",status="Unknown",type="Stalled"} 0
gotk_reconcile_condition{kind="HelmRelease",name="b",namespace="team",status="False",type="Ready"} 0
gotk_reconcile_condition{kind="HelmRelease",name="b",namespace="team",status="False",type="Stalled"} 1
gotk_reconcile_condition{kind="HelmRelease",name="b",namespace="team",status="True",type="Ready"} 1
gotk_reconcile_condition{kind="HelmRelease",name="b",namespace="team",status="True",type="Stalled"} 0
gotk_reconcile_condition{kind="HelmRelease",name="b",namespace="team",status="Unknown",type="Ready"} 0
gotk_reconcile_condition{kind="HelmRelease",name="b",namespace="team",status="Unknown",type="Stalled"} 0
# HELP helmflux_reconcile_total Reconcile passes by kind and result (success, failure, waiting, stalled).
# TYPE helmflux_reconcile_total counter
helmflux_reconcile_total{kind="HelmRelease",result="stalled"} 1
helmflux_reconcile_total{kind="HelmRelease",result="success"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gotk_reconcile_condition", "helmflux_reconcile_total"); err != nil {
		t.Fatal(err)
	}

	r.Deleted(KindHelmRelease, types.NamespacedName{Namespace: "team", Name: "a"})
	if n := testutil.CollectAndCount(r.reconcileCondition); n != 6 {
		t.Errorf("%d condition series after deleting a, want b's 6", n)
	}
	if n := testutil.CollectAndCount(r.reconcileDuration); n != 1 {
		t.Errorf("%d duration series after deleting a, want b's", n)
	}
}

// TestNilRecorderRecordsNothing: controllers built without metrics work.
func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *Recorder
	key := types.NamespacedName{Namespace: "n", Name: "x"}
	r.Reconciled(KindGitSync, hr("n", "x"), time.Now(), nil)
	r.Deleted(KindGitSync, key)
	r.Applied(key, time.Now())
	r.Objects(key, ActionCreated, 1)
	r.Committed(key)
	r.Holds(key, 1)
	r.HelmAction("install", time.Second, nil)
	r.JobsQueued(func() int { return 1 })
	if r.Registry() != nil || r.Git() != nil {
		t.Fatal("a nil Recorder hands out observers")
	}
}

// Hosts come from image references and git URLs that any tenant writes:
// past MaxHosts distinct hosts, the others are counted under "other"
// instead of each adding series, while the hosts already seen keep theirs.
func TestHostLabelsAreBounded(t *testing.T) {
	r := New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collectors()...)
	obs, git := r.Registry(), r.Git()
	for i := range MaxHosts + 50 {
		host := fmt.Sprintf("registry-%d.example:5000", i)
		obs.Request(host, 200)
		obs.RateLimited(host)
		obs.Throttled(host)
		git.Fetched(host, time.Millisecond, nil)
		git.Pushed(host, 1)
	}
	obs.Request("registry-0.example:5000", 200)
	for name, c := range map[string]prometheus.Collector{
		"requests": r.registryRequests, "rate limited": r.registryRateLimited, "throttled": r.registryThrottled,
		"fetches": r.gitFetch, "push retries": r.gitPushRetries,
	} {
		if n := testutil.CollectAndCount(c); n != MaxHosts+1 {
			t.Errorf("%s: %d series, want %d hosts and other", name, n, MaxHosts)
		}
	}
	if v := testutil.ToFloat64(r.registryRequests.WithLabelValues(OtherHost, "200")); v != 50 {
		t.Errorf("other: %v requests, want 50", v)
	}
	if v := testutil.ToFloat64(r.registryRequests.WithLabelValues("registry-0.example:5000", "200")); v != 2 {
		t.Errorf("a host seen before the bound: %v requests, want 2", v)
	}
}
