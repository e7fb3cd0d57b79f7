package helmrelease_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// appChart is a small chart like podinfo: a Deployment whose image and
// replicas come from values, a ConfigMap that shows the merged values, an
// optional test hook and a values file for chartFileRef.
func appChart(version string) helmtest.Chart {
	return helmtest.Chart{
		Name: "app", Version: version, AppVersion: version,
		Values: "replicaCount: 1\nimage:\n  repository: example.com/app\n  tag: \"" + version + "\"\nmessage: chart-default\ntest:\n  enabled: false\n  fail: false\n",
		Templates: map[string]string{
			"configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-values
data:
  message: {{ .Values.message | quote }}
  values.json: {{ toJson .Values | quote }}
`,
			"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
      - name: app
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
`,
			"tests/test.yaml": `{{- if .Values.test.enabled }}
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
    {{- if .Values.test.fail }}
    ` + testenv.TestFailAnnotation + `: "true"
    {{- end }}
spec:
  restartPolicy: Never
  containers:
  - name: test
    image: example.com/test:1
{{- end }}
`,
		},
		Files: map[string]string{"overrides/prod.yaml": "message: from-chart-file\n"},
	}
}

// repoRelease returns a HelmRelease of appChart from a chart repository.
func repoRelease(ns, name, repo, version string, values string) *helmv1.HelmRelease {
	hr := &helmv1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: helmv1.HelmReleaseSpec{
			Chart: helmv1.ChartSource{Repository: repo, Name: "app", Version: version},
		},
	}
	if values != "" {
		hr.Spec.Values = mustValues(values)
	}
	return hr
}

func mustValues(yamlDoc string) *helmv1.Values {
	v := &helmv1.Values{}
	if err := v.UnmarshalJSON(mustJSON(yamlDoc)); err != nil {
		panic(err)
	}
	return v
}

// renderedValues returns the values the release's ConfigMap shows.
func renderedValues(t *testing.T, ns, release string) map[string]any {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: release + "-values"}, cm); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal([]byte(cm.Data["values.json"]), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// passCounter returns a function counting the passes over a HelmRelease
// since passCounter was called, by the line each pass logs.
func passCounter(ns, name string) func() int {
	return logs.Counter("\tReconciling\t", fmt.Sprintf(`"helmrelease": {"name":"%s","namespace":"%s"}`, name, ns))
}

// waitPasses waits until the controller has handled n more passes over a
// HelmRelease.
func waitPasses(t *testing.T, ns, name string, n int) {
	t.Helper()
	passes := passCounter(ns, name)
	eventually(t, time.Minute, fmt.Sprintf("%d passes", n), func() (bool, string) {
		c := passes()
		return c >= n, fmt.Sprintf("%d passes", c)
	})
}

func TestInstallUpgradeAndNoOpPassesFromAChartRepository(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	repo.Add(t, appChart("1.1.0"))

	hr := repoRelease(ns, "web", repo.URL(), "1.0.0", "replicaCount: 2\nmessage: inline")
	hr.Spec.Wait = ptrTo(true)
	if err := k8s.Create(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	hr = waitReady(t, ns, "web")
	release := ns + "-web"
	// One log line says what the pass did, to whom and how it ended.
	eventually(t, 10*time.Second, "the install's log line", func() (bool, string) {
		for _, l := range logs.LinesWith(`"release": "` + release + `"`) {
			if strings.Contains(l, `"reason": "InstallSucceeded"`) && strings.Contains(l, `"outcome": "success"`) &&
				strings.Contains(l, `"chartVersion": "1.0.0"`) && strings.Contains(l, `"namespace":"`+ns+`"`) {
				return true, ""
			}
		}
		return false, strings.Join(logs.LinesWith(release), "\n")
	})
	if hr.Status.ReleaseName != release || hr.Status.ReleaseStatus != "deployed" || hr.Status.Revision != "1.0.0" ||
		hr.Status.ReleaseRevision != 1 || hr.Status.Phase != helmv1.PhaseSucceeded {
		t.Errorf("status after install: %+v", hr.Status)
	}
	if c := condition(hr, helmv1.ReleasedCondition); !strings.HasPrefix(c, "True InstallSucceeded") {
		t.Errorf("Released: %s", c)
	}
	// wait: true really waited for the rollout on the fake nodes.
	if d := deployment(t, ns, release); d.Status.ReadyReplicas != 2 {
		t.Errorf("ready replicas after a waited install: %d, want 2", d.Status.ReadyReplicas)
	}
	if got := renderedValues(t, ns, release)["message"]; got != "inline" {
		t.Errorf("message = %v, want inline", got)
	}

	// Ten unchanged passes make no new revision, no Event and no chart download.
	downloads := repo.Requests("/charts/app-1.0.0.tgz")
	evs := len(events(t, ns, "web"))
	waitPasses(t, ns, "web", 10)
	if h := history(t, ns, release); len(h) != 1 {
		t.Errorf("history after ten unchanged passes: %v", h)
	}
	if n := len(events(t, ns, "web")); n != evs {
		t.Errorf("unchanged passes recorded %d Events", n-evs)
	}
	if n := repo.Requests("/charts/app-1.0.0.tgz"); n != downloads {
		t.Errorf("unchanged passes downloaded the chart %d times", n-downloads)
	}

	update(t, ns, "web", func(hr *helmv1.HelmRelease) { hr.Spec.Chart.Version = "1.1.0" })
	hr = waitReady(t, ns, "web")
	if hr.Status.Revision != "1.1.0" || hr.Status.ReleaseRevision != 2 {
		t.Errorf("status after upgrade: %+v", hr.Status)
	}
	if d := deployment(t, ns, release); d.Spec.Template.Spec.Containers[0].Image != "example.com/app:1.1.0" {
		t.Errorf("image after upgrade: %s", d.Spec.Template.Spec.Containers[0].Image)
	}
	if !containsAny(events(t, ns, "web"), "Upgraded app 1.0.0 → 1.1.0") {
		t.Errorf("no upgrade Event: %v", events(t, ns, "web"))
	}
	if h := history(t, ns, release); strings.Join(h, ",") != "superseded,deployed" {
		t.Errorf("history: %v", h)
	}

	// Deleting the HelmRelease uninstalls the release.
	if err := k8s.Delete(context.Background(), getHR(t, ns, "web")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "release uninstalled", func() (bool, string) {
		h := history(t, ns, release)
		return len(h) == 0, fmt.Sprint(h)
	})
}

func TestInstallFromAnOCIRegistry(t *testing.T) {
	ns := newNamespace(t)
	reg := helmtest.NewRegistry(t)
	reg.Push(t, "charts", appChart("2.0.0"))
	hr := repoRelease(ns, "oci", "oci://"+reg.Host()+"/charts", "2.x", "")
	if err := k8s.Create(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	hr = waitReady(t, ns, "oci")
	if hr.Status.Revision != "2.0.0" || !strings.HasPrefix(hr.Status.ChartDigest, "sha256:") {
		t.Errorf("status: %+v", hr.Status)
	}
}

// Every values source sets a key of its own (fromX) and overrides the key of
// the source before it; only the next source overrides its own. So a source
// left out of the merge, or merged out of order, shows in the result: the
// key before it keeps the older value, or its own key is not overridden.
func TestValuesFromEverySourceInOrderWithoutLeakingSecrets(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	chart := appChart("1.0.0")
	chart.Values += "fromChart: chart\n"
	chart.Files = map[string]string{"overrides/prod.yaml": "fromLegacy: chartFile\nfromChartFile: chartFile\n"}
	repo.Add(t, chart)
	const canary = "canary-Qx7-secret-value"
	external := httptestTLS(t, "fromSecret: external\nfromExternal: external\n")

	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
		Data: map[string][]byte{"values.yaml": []byte("fromChart: legacy\nfromLegacy: legacy\n")}})
	mustCreate(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"},
		Data: map[string]string{"values.yaml": "fromChartFile: configMap\nfromConfigMap: configMap\nnested: {a: 1, b: 1}\n"}})
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sec"},
		Data: map[string][]byte{"custom.yaml": []byte("password: " + canary + "\nfromConfigMap: secret\nfromSecret: secret\nnested: {b: 2}\n")}})

	hr := repoRelease(ns, "vals", repo.URL(), "1.0.0", "fromExternal: inline\nnested: {c: 3}")
	optional := true
	hr.Spec.ValueFileSecrets = []helmv1.LocalObjectReference{{Name: "legacy"}}
	hr.Spec.ValuesFrom = []helmv1.ValuesFromSource{
		{ChartFileRef: &helmv1.ChartFileSelector{Path: "overrides/prod.yaml"}},
		{ConfigMapKeyRef: &helmv1.OptionalKeySelector{Name: "cm"}},
		{SecretKeyRef: &helmv1.OptionalKeySelector{Name: "sec", Key: "custom.yaml"}},
		{ExternalSourceRef: &helmv1.ExternalSourceSelector{URL: external}},
		{ConfigMapKeyRef: &helmv1.OptionalKeySelector{Name: "missing", Optional: true}},
		{ExternalSourceRef: &helmv1.ExternalSourceSelector{URL: external + "/missing", Optional: &optional}},
	}
	mustCreateHR(t, hr)
	waitReady(t, ns, "vals")
	got := renderedValues(t, ns, ns+"-vals")
	want := map[string]any{
		"fromChart":     "legacy",    // chart defaults < valueFileSecrets
		"fromLegacy":    "chartFile", // valueFileSecrets < chartFileRef
		"fromChartFile": "configMap", // chartFileRef < configMapKeyRef
		"fromConfigMap": "secret",    // configMapKeyRef < secretKeyRef
		"fromSecret":    "external",  // secretKeyRef < externalSourceRef
		"fromExternal":  "inline",    // externalSourceRef < values
		"password":      canary,
		"nested":        map[string]any{"a": float64(1), "b": float64(2), "c": float64(3)},
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("values[%s] = %v, want %v", k, got[k], v)
		}
	}

	// A change of a referenced ConfigMap upgrades the release at once.
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cm"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["values.yaml"] = "fromChartFile: changed\n"
	if err := k8s.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the ConfigMap change released", func() (bool, string) {
		v := renderedValues(t, ns, ns+"-vals")["fromChartFile"]
		return v == "changed", fmt.Sprint(v)
	})

	// A broken Secret is reported without quoting it.
	sec := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "sec"}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["custom.yaml"] = []byte("password: " + canary + "\n  broken: [")
	if err := k8s.Update(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "vals", meta.ReadyCondition, "False ValuesFailed")
	assertNoCanary(t, ns, canary)
}

func TestFailedUpgradeRollsBackOnceAndDoesNotLoop(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	hr := repoRelease(ns, "rb", repo.URL(), "1.0.0", "")
	hr.Spec.Timeout = ptrTo(int64(3))
	hr.Spec.Rollback = helmv1.Rollback{Enable: true}
	mustCreateHR(t, hr)
	waitReady(t, ns, "rb")

	update(t, ns, "rb", func(hr *helmv1.HelmRelease) {
		hr.Spec.Values = mustValues("image: {tag: " + testenv.NeverReadyImageSuffix[1:] + "}")
	})
	hr = waitCondition(t, ns, "rb", helmv1.RolledBackCondition, "True RollbackSucceeded")
	if hr.Status.RollbackCount != 1 {
		t.Errorf("rollbackCount = %d", hr.Status.RollbackCount)
	}
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "False UpgradeFailed") {
		t.Errorf("Ready: %s", c)
	}
	release := ns + "-rb"
	eventually(t, time.Minute, "history settles", func() (bool, string) {
		h := history(t, ns, release)
		return strings.Join(h, ",") == "superseded,failed,deployed", fmt.Sprint(h)
	})
	if img := deployment(t, ns, release).Spec.Template.Spec.Containers[0].Image; img != "example.com/app:1.0.0" {
		t.Errorf("image after the rollback: %s", img)
	}
	// No upgrade-rollback loop: more passes make no more revisions.
	waitPasses(t, ns, "rb", 10)
	if h := history(t, ns, release); len(h) != 3 {
		t.Errorf("history after more passes: %v", h)
	}
	if n := getHR(t, ns, "rb").Status.RollbackCount; n != 1 {
		t.Errorf("rollbackCount after more passes = %d", n)
	}
	// A fixed values change upgrades again.
	update(t, ns, "rb", func(hr *helmv1.HelmRelease) { hr.Spec.Values = mustValues("message: fixed") })
	hr = waitReady(t, ns, "rb")
	if hr.Status.RollbackCount != 0 || hr.Status.ReleaseRevision != 4 {
		t.Errorf("status after the fix: %+v", hr.Status)
	}
}

func TestHelmTestsRunAndFailuresAreReported(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	hr := repoRelease(ns, "tested", repo.URL(), "1.0.0", "test: {enabled: true}")
	hr.Spec.Test = helmv1.Test{Enable: true, Timeout: ptrTo(int64(30))}
	phases := watchPhases(t, ns, "tested")
	mustCreateHR(t, hr)
	hr = waitReady(t, ns, "tested")
	if c := condition(hr, helmv1.TestedCondition); !strings.HasPrefix(c, "True") {
		t.Errorf("Tested: %s", c)
	}
	// status.phase shows each step while it happens, as the Helm Operator's did.
	eventually(t, 10*time.Second, "phases ending with Installing Testing Tested Succeeded", func() (bool, string) {
		got := phases()
		return strings.HasSuffix(got, "Installing Testing Tested Succeeded"), got
	})
	if c := condition(hr, helmv1.DeployedCondition); !strings.HasPrefix(c, "True Deployed") {
		t.Errorf("Deployed: %s", c)
	}
	ignore := true
	update(t, ns, "tested", func(hr *helmv1.HelmRelease) {
		hr.Spec.Values = mustValues("test: {enabled: true, fail: true}")
		hr.Spec.Test.IgnoreFailures = &ignore
	})
	hr = waitCondition(t, ns, "tested", helmv1.TestedCondition, "False TestFailed")
	if hr.Status.Phase != helmv1.PhaseTestFailed {
		t.Errorf("phase = %s", hr.Status.Phase)
	}
	// Ignored failures keep the release Ready, pass after pass, and say so.
	waitPasses(t, ns, "tested", 5)
	hr = getHR(t, ns, "tested")
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "True") || !strings.Contains(c, "tests failed") {
		t.Errorf("Ready with ignoreFailures: %s", c)
	}
	if c := condition(hr, helmv1.ReleasedCondition); !strings.HasPrefix(c, "True") {
		t.Errorf("Released with ignoreFailures: %s", c)
	}
	if !containsAny(events(t, ns, "tested"), "(ignored)") {
		t.Errorf("no Event for the ignored failure: %v", events(t, ns, "tested"))
	}

	// Failed tests that count, with rollback on, roll the upgrade back.
	noIgnore := false
	update(t, ns, "tested", func(hr *helmv1.HelmRelease) {
		hr.Spec.Values = mustValues("test: {enabled: true, fail: true}\nmessage: failing-tests")
		hr.Spec.Test.IgnoreFailures = &noIgnore
		hr.Spec.Rollback = helmv1.Rollback{Enable: true}
	})
	hr = waitCondition(t, ns, "tested", helmv1.RolledBackCondition, "True RollbackSucceeded")
	if c := condition(hr, meta.ReadyCondition); !strings.HasPrefix(c, "False TestFailed") {
		t.Errorf("Ready: %s", c)
	}
	eventually(t, 10*time.Second, "phases ending with Upgrading Testing TestFailed RollingBack RolledBack", func() (bool, string) {
		got := phases()
		return strings.HasSuffix(got, "Upgrading Testing TestFailed RollingBack RolledBack"), got
	})
	if got := renderedValues(t, ns, ns+"-tested")["message"]; got == "failing-tests" {
		t.Errorf("the upgrade whose tests failed is still deployed")
	}
}

func TestBadInputIsRefusedClearly(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	repo.AddArchive(t, "evil", "1.0.0", helmtest.HostileArchive("traversal"))

	evil := repoRelease(ns, "evil", repo.URL(), "1.0.0", "")
	evil.Spec.Chart.Name = "evil"
	mustCreateHR(t, evil)
	hr := waitCondition(t, ns, "evil", meta.ReadyCondition, "False ChartFetchFailed")
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, `hostile chart archive refused: entry "app/../../evil.yaml": name has a ".." component`) {
		t.Errorf("the refusal does not name the entry: %s", c)
	}

	escape := repoRelease(ns, "escape", repo.URL(), "1.0.0", "")
	escape.Spec.ValuesFrom = []helmv1.ValuesFromSource{{ChartFileRef: &helmv1.ChartFileSelector{Path: "../../etc/passwd"}}}
	mustCreateHR(t, escape)
	hr = waitCondition(t, ns, "escape", meta.ReadyCondition, "False InvalidSpec")
	if c := condition(hr, meta.StalledCondition); !strings.HasPrefix(c, "True") {
		t.Errorf("Stalled: %s", c)
	}
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, `chartFileRef ../../etc/passwd: path "../../etc/passwd" leaves its root`) {
		t.Errorf("Ready: %s", c)
	}

	other := newNamespace(t)
	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "theirs"},
		Data: map[string][]byte{"values.yaml": []byte("a: 1")}})
	cross := repoRelease(ns, "cross", repo.URL(), "1.0.0", "")
	cross.Spec.ValuesFrom = []helmv1.ValuesFromSource{{SecretKeyRef: &helmv1.OptionalKeySelector{Name: "theirs", Namespace: other}}}
	mustCreateHR(t, cross)
	hr = waitCondition(t, ns, "cross", meta.ReadyCondition, "False "+helmv1.CrossNamespaceRefReason)
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, "cross-namespace") {
		t.Errorf("Ready: %s", c)
	}

	// None of this stopped a good release in the same namespace.
	mustCreateHR(t, repoRelease(ns, "good", repo.URL(), "1.0.0", ""))
	waitReady(t, ns, "good")
}

func TestAReleaseOfAnotherHelmReleaseIsNotTakenOver(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	first := repoRelease(ns, "first", repo.URL(), "1.0.0", "message: first")
	first.Spec.ReleaseName = "shared"
	mustCreateHR(t, first)
	waitReady(t, ns, "first")

	second := repoRelease(ns, "second", repo.URL(), "1.0.0", "message: second")
	second.Spec.ReleaseName = "shared"
	mustCreateHR(t, second)
	hr := waitCondition(t, ns, "second", meta.ReadyCondition, "False ReleaseNotOwned")
	if c := condition(hr, meta.ReadyCondition); !strings.Contains(c, ns+":helmrelease/first") {
		t.Errorf("Ready does not say who owns the release: %s", c)
	}
	if got := renderedValues(t, ns, "shared")["message"]; got != "first" {
		t.Errorf("the release was changed by the second HelmRelease: message = %v", got)
	}
	// Deleting the second HelmRelease leaves the first one's release alone.
	if err := k8s.Delete(context.Background(), getHR(t, ns, "second")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "second deleted", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "second"}, &helmv1.HelmRelease{})
		return err != nil, fmt.Sprint(err)
	})
	if h := history(t, ns, "shared"); len(h) != 1 {
		t.Errorf("history of the first release: %v", h)
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func mustCreateHR(t *testing.T, hr *helmv1.HelmRelease) { t.Helper(); mustCreate(t, hr) }

func ptrTo[T any](v T) *T { return &v }

// watchPhases records every status.phase a HelmRelease shows, from a watch
// of the API server, and returns them space-separated, repeats dropped.
func watchPhases(t *testing.T, ns, name string) func() string {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &helmv1.HelmReleaseList{}, client.InNamespace(ns),
		client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var mu sync.Mutex
	var seen []string
	go func() {
		for e := range w.ResultChan() {
			hr, ok := e.Object.(*helmv1.HelmRelease)
			if !ok {
				continue
			}
			mu.Lock()
			if p := string(hr.Status.Phase); p != "" && (len(seen) == 0 || seen[len(seen)-1] != p) {
				seen = append(seen, p)
			}
			mu.Unlock()
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(seen, " ")
	}
}

func TestDriftIsReportedOrCorrected(t *testing.T) {
	ns := newNamespace(t)
	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	for _, mode := range []helmv1.DriftDetectionMode{helmv1.DriftDetectionWarn, helmv1.DriftDetectionEnabled} {
		name := "drift-" + string(mode)
		hr := repoRelease(ns, name, repo.URL(), "1.0.0", "replicaCount: 1")
		hr.Spec.DriftDetection = &helmv1.DriftDetection{Mode: mode}
		mustCreateHR(t, hr)
		waitCondition(t, ns, name, helmv1.DriftedCondition, "False NoDrift")

		// Someone scales the Deployment by hand (racing the controller
		// manager's status updates, hence the retry on a conflict).
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d := deployment(t, ns, ns+"-"+name)
			d.Spec.Replicas = ptrTo(int32(3))
			return k8s.Update(context.Background(), d)
		}); err != nil {
			t.Fatal(err)
		}
		if mode == helmv1.DriftDetectionWarn {
			hr := waitCondition(t, ns, name, helmv1.DriftedCondition, "True DriftDetected")
			if c := condition(hr, helmv1.DriftedCondition); !strings.Contains(c, "Deployment") {
				t.Errorf("Drifted does not name the object: %s", c)
			}
			if r := *deployment(t, ns, ns+"-"+name).Spec.Replicas; r != 3 {
				t.Errorf("warn mode changed replicas to %d", r)
			}
			// Drift does not make the release unready: Ready stays True, pass
			// after pass, and names the drift.
			waitPasses(t, ns, name, 5)
			if c := condition(getHR(t, ns, name), meta.ReadyCondition); !strings.HasPrefix(c, "True") ||
				!strings.Contains(c, "differ from release") {
				t.Errorf("Ready in warn mode with drift: %s", c)
			}
			continue
		}
		eventually(t, time.Minute, "drift corrected", func() (bool, string) {
			r := *deployment(t, ns, ns+"-"+name).Spec.Replicas
			return r == 1, fmt.Sprint(r)
		})
		waitCondition(t, ns, name, helmv1.DriftedCondition, "False DriftCorrected")
		if !containsAny(events(t, ns, name), "Corrected drift") {
			t.Errorf("no Event for the correction: %v", events(t, ns, name))
		}
		if h := history(t, ns, ns+"-"+name); len(h) != 1 {
			t.Errorf("correcting drift made a revision: %v", h)
		}

		// An object of the release deleted by hand is created again.
		values := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: ns + "-" + name + "-values"}, values); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Delete(context.Background(), values); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "the deleted ConfigMap created again", func() (bool, string) {
			cm := &corev1.ConfigMap{}
			err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: values.Name}, cm)
			return err == nil && cm.UID != values.UID, fmt.Sprint(err)
		})
		waitEvent(t, ns, name, helmv1.DriftCorrectedReason, "ConfigMap/"+ns+"/"+values.Name)
		if h := history(t, ns, ns+"-"+name); len(h) != 1 {
			t.Errorf("re-creating a deleted object made a revision: %v", h)
		}
	}
}
