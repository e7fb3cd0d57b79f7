package automation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/automation"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// deployYAML is a hand-written manifest: comments, odd quoting and key order
// that a YAML re-encoder would not keep.
const deployYAML = `# The app, automated within 1.0.x.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"   # Flux v1 annotation, unchanged
    filter.fluxcd.io/app: 'semver:~1.0'
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app}
    spec:
      imagePullSecrets:
        - name: regcred
      containers:
        - name: app
          image: "HOST/team/app:1.0.0"  # bumped by helmflux
          ports: [{containerPort: 80}]
`

const inlineReleaseYAML = `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: inline
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/tag.chart-image: semver:~1.0
spec:
  releaseName: inline
  chart:
    repository: CHARTS/
    name: simple
    version: 1.0.0
  values:
    # the image the chart runs
    image:
      repository: HOST/team/rel
      tag: 1.0.0
    message: inline values stay as they are
`

const filesReleaseYAML = `apiVersion: helm.fluxcd.io/v1
kind: HelmRelease
metadata:
  name: vf
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    filter.fluxcd.io/chart-image: glob:1.0.*
spec:
  releaseName: vf
  chart:
    repository: CHARTS/
    name: simple
    version: 1.0.0
  valuesFrom:
    - gitFileRef:
        path: values/vf.yaml
`

const valuesFileYAML = "# values for the vf release\r\nimage:\r\n  repository: HOST/team/vf\r\n  tag: '1.0.0'  # quoted on purpose\r\nreplicaCount: 1\r\n"

// TestNewTagIsCommittedOnceAndRuns is the user story: a new tag in the
// registry becomes one commit that changes a Deployment, a HelmRelease's
// inline values and a values file, each only in the tag, and the cluster
// then runs it. The registry needs a login whose password must never show.
func TestNewTagIsCommittedOnceAndRuns(t *testing.T) {
	const canary = "canary-RegPa55-6d0e"
	ns := newNamespace(t)
	reg := registrytest.NewServer(t, registrytest.WithBasicAuth("robot", canary))
	host := reg.Host()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, repo := range []string{"team/app", "team/rel", "team/vf"} {
		reg.Push(t, repo, "1.0.0", old)
		reg.Push(t, repo, "2.0.0", old) // outside every policy
	}
	charts := helmtest.NewRepoServer(t)
	charts.Add(t, helmtest.Simple("simple", "1.0.0"))
	pullSecret(t, ns, "regcred", host, "robot", canary)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	_ = k8s.Create(context.Background(), sa) // may exist already
	setPullSecret(t, ns, "regcred")

	fill := strings.NewReplacer("NS", ns, "HOST", host, "CHARTS", charts.URL()).Replace
	files := map[string]string{
		"apps/deploy.yaml":  fill(deployYAML),
		"apps/inline.yaml":  fill(inlineReleaseYAML),
		"apps/vf.yaml":      fill(filesReleaseYAML),
		"values/vf.yaml":    fill(valuesFileYAML),
		"docs/untouched.md": "not YAML\n",
	}
	repo := gittest.NewRepo(t, files)
	createGitSync(t, ns, "apps", repo.URL(), nil)
	waitImage(t, ns, "app", host+"/team/app:1.0.0")
	waitImage(t, ns, "inline-simple", host+"/team/rel:1.0.0")
	waitImage(t, ns, "vf-simple", host+"/team/vf:1.0.0")
	eventually(t, time.Minute, "a pass with nothing to do", func() (bool, string) {
		gs := getGitSync(t, ns, "apps")
		return strings.HasPrefix(automationReady(gs), "True ImagesUpToDate"), automationReady(gs)
	})
	before := repo.Head()

	for _, r := range []string{"team/app", "team/rel", "team/vf"} {
		reg.Push(t, r, "1.0.1", old.Add(time.Hour))
	}
	notify(t, host+"/team/app", host+"/team/rel", host+"/team/vf")

	var head *object.Commit
	eventually(t, time.Minute, "the automation commit", func() (bool, string) {
		head = repo.RemoteHead("main")
		return head.Hash.String() != before, head.Hash.String()
	})
	if len(head.ParentHashes) != 1 || head.ParentHashes[0].String() != before {
		t.Fatalf("automation commit %s has parents %v, want %s", head.Hash, head.ParentHashes, before)
	}
	want := map[string]string{
		"apps/deploy.yaml": strings.Replace(files["apps/deploy.yaml"], "app:1.0.0", "app:1.0.1", 1),
		"apps/inline.yaml": strings.Replace(files["apps/inline.yaml"], "tag: 1.0.0", "tag: 1.0.1", 1),
		"values/vf.yaml":   strings.Replace(files["values/vf.yaml"], "tag: '1.0.0'", "tag: '1.0.1'", 1),
	}
	changed := gittest.ChangedPaths(t, head)
	if strings.Join(changed, ",") != "apps/deploy.yaml,apps/inline.yaml,values/vf.yaml" {
		t.Fatalf("the commit changed %v", changed)
	}
	for name, w := range want {
		if got := repo.FileAt(head, name); got != w {
			t.Errorf("%s after the commit:\n%q\nwant\n%q", name, got, w)
		}
	}
	// The whole message: Flux v1's subject and list, then every trailer.
	wantMsg := "Auto-release multiple (3) images\n\n" +
		"- " + ns + ":deployment/app (app): " + host + "/team/app 1.0.0 -> 1.0.1\n" +
		"- " + ns + ":helmrelease/inline (chart-image): " + host + "/team/rel 1.0.0 -> 1.0.1\n" +
		"- " + ns + ":helmrelease/vf (chart-image): " + host + "/team/vf 1.0.0 -> 1.0.1\n\n" +
		automation.ImageTrailer + ": " + host + "/team/app 1.0.0 -> 1.0.1\n" +
		automation.ImageTrailer + ": " + host + "/team/rel 1.0.0 -> 1.0.1\n" +
		automation.ImageTrailer + ": " + host + "/team/vf 1.0.0 -> 1.0.1\n" +
		automation.WorkloadTrailer + ": " + ns + ":deployment/app\n" +
		automation.WorkloadTrailer + ": " + ns + ":helmrelease/inline\n" +
		automation.WorkloadTrailer + ": " + ns + ":helmrelease/vf\n"
	if head.Message != wantMsg {
		t.Errorf("commit message:\n%s\nwant:\n%s", head.Message, wantMsg)
	}
	if head.Author.Name != automation.DefaultAuthorName || head.Author.Email != automation.DefaultAuthorEmail ||
		head.Committer.Name != head.Author.Name || head.Committer.Email != head.Author.Email {
		t.Errorf("author %v, committer %v", head.Author, head.Committer)
	}

	// The GitSync applies the commit, the releases upgrade, pods roll.
	waitImage(t, ns, "app", host+"/team/app:1.0.1")
	waitImage(t, ns, "inline-simple", host+"/team/rel:1.0.1")
	waitImage(t, ns, "vf-simple", host+"/team/vf:1.0.1")
	gs := getGitSync(t, ns, "apps")
	if st := gs.Status.ImageAutomation; st == nil || !strings.HasSuffix(st.LastPushedCommit, head.Hash.String()) || st.AutomatedImages != 3 {
		t.Fatalf("imageAutomation status %+v", gs.Status.ImageAutomation)
	}

	// Later passes, which list the tags again, find nothing to do: still
	// exactly one commit, and they started from it.
	passes := automationPasses(ns, "apps")
	notify(t, host+"/team/app", host+"/team/rel", host+"/team/vf")
	testenv.WaitPasses(t, passes, 2)
	if h := repo.RemoteHead("main").Hash; h != head.Hash {
		t.Fatalf("a second commit %s appeared", h)
	}
	if got, want := getGitSync(t, ns, "apps").Status.ImageAutomation.LastRevision, "main@sha1:"+head.Hash.String(); got != want {
		t.Errorf("the last pass started from %s, want %s", got, want)
	}
	assertNoCanary(t, canary, repo)
}

// createGitSync applies a GitSync of the repository's apps directory.
func createGitSync(t *testing.T, ns, name, url string, mutate func(*helmfluxv1alpha1.GitSync)) {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: url, Paths: []string{"apps"}, Interval: metav1.Duration{Duration: time.Minute},
		},
	}
	if mutate != nil {
		mutate(gs)
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
}

// setPullSecret makes the namespace's default ServiceAccount carry a pull secret.
func setPullSecret(t *testing.T, ns, secret string) {
	t.Helper()
	eventually(t, time.Minute, "the default ServiceAccount", func() (bool, string) {
		sa := &corev1.ServiceAccount{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "default"}, sa); err != nil {
			return false, err.Error()
		}
		patch := client.MergeFrom(sa.DeepCopy())
		sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: secret}}
		if err := k8s.Patch(context.Background(), sa, patch); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// waitImage waits until Deployment name runs image in all its replicas.
func waitImage(t *testing.T, ns, name, image string) {
	t.Helper()
	eventually(t, 2*time.Minute, "Deployment "+name+" running "+image, func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, err.Error()
		}
		got := d.Spec.Template.Spec.Containers[0].Image
		s := d.Status
		done := got == image && d.Generation == s.ObservedGeneration && s.UpdatedReplicas == *d.Spec.Replicas &&
			s.ReadyReplicas == *d.Spec.Replicas && s.Replicas == *d.Spec.Replicas
		return done, fmt.Sprintf("image %s, status %+v", got, s)
	})
}
