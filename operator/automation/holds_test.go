package automation

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/history"
)

// The trailers message() writes are the trailers lastWritten reads.
func TestMessageTrailersRoundTrip(t *testing.T) {
	tmpl, err := parseTemplate("")
	if err != nil {
		t.Fatal(err)
	}
	up := helmfluxv1alpha1.ImageUpdate{Workload: "apps:deployment/web", Container: "web", Image: "reg/web", From: "1.0.0", To: "1.0.1", File: "web.yaml"}
	back := helmfluxv1alpha1.ImageUpdate{Workload: "apps:deployment/api", Container: "api", Image: "reg/api", From: "2.0.1", To: "2.0.0", File: "api.yaml"}
	msg, err := message(tmpl, []helmfluxv1alpha1.ImageUpdate{up, back}, []quarantine{{update: back, reason: "the rollout of Deployment apps/api\nexceeded its progress deadline"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Quarantine reg/api:2.0.1\n\n- apps:deployment/api (api): reg/api 2.0.1 -> 2.0.0: the rollout of Deployment apps/api exceeded its progress deadline\n\nAuto-release reg/web:1.0.1\n",
		"\n\nHelmflux-Quarantine: reg/api 2.0.1\nHelmflux-Image: reg/api 2.0.1 -> 2.0.0\nHelmflux-Image: reg/web 1.0.0 -> 1.0.1\nHelmflux-Workload: apps:deployment/api\nHelmflux-Workload: apps:deployment/web\n",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message\n%s\nlacks\n%s", msg, want)
		}
	}
	block := msg[strings.LastIndex(strings.TrimRight(msg, "\n"), "\n\n")+2:]
	var e git.LogEntry
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		e.Trailers = append(e.Trailers, git.Trailer{Key: k, Value: v})
	}
	web, api := history.Key{Workload: "apps:deployment/web", Repository: "reg/web"}, history.Key{Workload: "apps:deployment/api", Repository: "reg/api"}
	got := history.LastWritten([]git.LogEntry{e}, []history.Key{web, api})
	if w := got[web]; w.Tag != "1.0.1" || w.Quarantine {
		t.Errorf("web: %+v", w)
	}
	if w := got[api]; w.Tag != "2.0.1" || !w.Quarantine {
		t.Errorf("api: %+v", w)
	}
}

func TestDeploymentFailed(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "reg:5000/web:1.0.1"}}
	if _, failed := deploymentFailed(d, "web", "1.0.1"); failed {
		t.Error("a Deployment without conditions failed")
	}
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}
	if why, failed := deploymentFailed(d, "web", "1.0.1"); !failed || !strings.Contains(why, "apps/web exceeded its progress deadline") {
		t.Errorf("deadline exceeded: %q, %v", why, failed)
	}
	if _, failed := deploymentFailed(d, "web", "1.0.2"); failed {
		t.Error("the failure of another tag's rollout counted")
	}
	if _, failed := deploymentFailed(d, "sidecar", "1.0.1"); failed {
		t.Error("the failure counted for a container the Deployment does not have")
	}
}

func TestHelmReleaseFailed(t *testing.T) {
	commitTime := time.Date(2026, 5, 1, 10, 0, 0, 500, time.UTC)
	hr := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	set := func(typ, status, reason string, at time.Time) {
		hr.Status.Conditions = append(hr.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason, LastTransitionTime: metav1.NewTime(at)})
	}
	set(helmv1.ReleasedCondition, "False", helmv1.UpgradeFailedReason, commitTime.Add(-time.Minute))
	if _, failed := helmReleaseFailed(hr, commitTime); failed {
		t.Error("a failure from before the commit counted")
	}
	hr.Status.Conditions = nil
	set(helmv1.ReleasedCondition, "False", helmv1.UpgradeFailedReason, commitTime.Truncate(time.Second))
	set(helmv1.RolledBackCondition, "True", helmv1.RollbackSucceededReason, commitTime.Add(time.Second))
	if why, failed := helmReleaseFailed(hr, commitTime); !failed || !strings.Contains(why, "apps/web failed and was rolled back (UpgradeFailed)") {
		t.Errorf("rolled back: %q, %v", why, failed)
	}
	hr.Status.Conditions = nil
	set(helmv1.ReleasedCondition, "False", helmv1.ChartFetchFailedReason, commitTime.Add(time.Second))
	if _, failed := helmReleaseFailed(hr, commitTime); failed {
		t.Error("a chart that could not be fetched counted as a failed release of the tag")
	}
}
