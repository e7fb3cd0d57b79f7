package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func init() {
	benchmarks = append(benchmarks, fluxctlRelease)
}

// releasedDeployment is a Deployment that is not automated: only a release
// changes its image.
const releasedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: NS
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: IMAGE
`

// releaseWorld is what a release benchmark releases to: the in-process
// operator with its API on addr, and the GitSync "apps" of a repository
// holding the Deployment app (image 1.0.0, not automated), applied.
type releaseWorld struct {
	c         client.Client
	ns, image string
	// id is the Deployment's workload ID; addr the API's --listen address.
	id, addr string
}

func newReleaseWorld(t *testing.T, namespace string) releaseWorld {
	t.Helper()
	_, cfg := startControlPlane(t)
	addr := startAutomationInProcess(t, cfg)
	c := newClient(t, cfg)
	ns := createNamespace(t, c, namespace)
	image := "example.com/team/app"
	repo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": strings.NewReplacer("NS", ns, "IMAGE", image+":1.0.0").Replace(releasedDeployment)})
	createGitSync(t, c, ns, "apps", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"},
		Interval: metav1.Duration{Duration: time.Hour}})
	waitApplied(t, c, ns, "apps", repo.Head(), time.Minute)
	return releaseWorld{c: c, ns: ns, image: image, id: ns + ":deployment/app", addr: addr}
}

// fluxctlRelease measures the seed's story with the real fluxctl 1.25.4
// (make fluxctl): `fluxctl release --workload <id> --update-image <image>`
// from the start of the command until the Deployment in the cluster has the
// image, 10 times (the seed's Flux took 55.8 s). fluxctl then still polls
// /v6/sync on its own backoff (1 s first), which is not measured. One
// in-process operator; the release job wakes the GitSync after its push.
var fluxctlRelease = benchmark{
	name:  "fluxctl_release",
	names: []string{"fluxctl_release_p50_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const runs = 10
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		fluxctl := filepath.Join(root, "bin", "fluxctl")
		if _, err := os.Stat(fluxctl); err != nil {
			t.Fatalf("%s: run `make fluxctl` (make bench does): %v", fluxctl, err)
		}
		w := newReleaseWorld(t, "bench-fluxctl")
		c, ns, image, id, addr := w.c, w.ns, w.image, w.id, w.addr
		home := t.TempDir() // no kubeconfig, no git identity of the developer's

		var samples []time.Duration
		var pace pacer
		for i := 1; i <= runs; i++ {
			pace.wait()
			want := fmt.Sprintf("%s:1.0.%d", image, i)
			cmd := exec.Command(fluxctl, "--url", "http://"+addr+fluxapi.Prefix, "release", "--workload", id, "--update-image", want,
				"--user", "bench", "--timeout", "2m")
			cmd.Env = append(os.Environ(), "HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, 5*time.Millisecond, "the Deployment with "+want, func() bool {
				d := &appsv1.Deployment{}
				return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, d) == nil &&
					d.Spec.Template.Spec.Containers[0].Image == want
			})
			samples = append(samples, time.Since(start))
			if err := cmd.Wait(); err != nil {
				t.Fatalf("fluxctl release: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "success") {
				t.Fatalf("fluxctl release printed no success:\n%s", out.String())
			}
		}
		reportPercentile(t, report, "fluxctl_release_p50_ms", samples, 50, time.Millisecond)
	},
}
