package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/helmflux/helmflux/api/fluxd"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/fluxapi"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// The helmflux CLI's benchmarks join the list of bench_test.go here.
func init() {
	benchmarks = append(benchmarks, cliRelease, cliListWorkloads)
}

// cliRelease measures fluxctlRelease's story with helmflux's own CLI:
// `helmflux release --workload <id> --update-image <image>` from the start
// of the command until the Deployment in the cluster has the image in its
// pod template, 10 times (the seed's Flux took 55.8 s). The CLI then still
// waits on /v6/sync for the GitSync's applied revision and exits, which is
// not measured but noted. One in-process operator, as for fluxctl; the
// release job wakes the GitSync after its push. A note splits the time at
// the lines the CLI prints (the first one, "Commit pushed:", "Commit
// applied:") and gives the median of `helmflux version`, the cost of the
// CLI process alone, taken after each sample.
var cliRelease = benchmark{
	name:  "release_update_image",
	names: []string{"release_update_image_p50_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const runs = 10
		cli := buildCLI(t)
		w := newReleaseWorld(t, "bench-cli-release")
		c, ns, image, id := w.c, w.ns, w.image, w.id
		url := "http://" + w.addr + fluxapi.Prefix

		var samples, firstLine, pushed, applied, exited, version []time.Duration
		var pace pacer
		for i := 1; i <= runs; i++ {
			pace.wait()
			want := fmt.Sprintf("%s:1.0.%d", image, i)
			cmd := cli.command("--url", url, "release", "--workload", id, "--update-image", want, "--user", "bench", "--timeout", "2m")
			out := &stampedOutput{}
			cmd.Stdout, cmd.Stderr = out, out
			start := time.Now()
			out.start(start, "Submitting release", "Commit pushed:", "Commit applied:")
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
				t.Fatalf("helmflux release: %v\n%s", err, out)
			}
			exited = append(exited, time.Since(start))
			marks, ok := out.marks()
			if !ok {
				t.Fatalf("helmflux release printed no %q, %q and %q:\n%s", "Submitting release", "Commit pushed:", "Commit applied:", out)
			}
			if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "success") {
				t.Fatalf("helmflux release printed no success for %s:\n%s", id, out)
			}
			firstLine, pushed, applied = append(firstLine, marks[0]), append(pushed, marks[1]), append(applied, marks[2])
			version = append(version, cli.timeVersion(t))
		}
		reportPercentile(t, report, "release_update_image_p50_ms", samples, 50, time.Millisecond)
		t.Logf("note: release_update_image: medians from the start of the command, in ms: its first line %s, \"Commit pushed:\" %s, "+
			"the Deployment has the image %s, \"Commit applied:\" %s, exit %s; the CLI process alone (`helmflux version`, start to exit) %s",
			medianMS(firstLine), medianMS(pushed), medianMS(samples), medianMS(applied), medianMS(exited), medianMS(version))
	},
}

// medianMS is the median of samples in milliseconds, for a note.
func medianMS(samples []time.Duration) string {
	return fmt.Sprintf("%.1f", float64(percentile(samples, 50))/float64(time.Millisecond))
}

// listedDeployments is how many Deployments cliListWorkloads lists.
const listedDeployments = 1000

// cliListWorkloads measures `helmflux list-workloads -a` through --url
// with 1,000 Deployments in git: one repository synced by one GitSync,
// applied before the first sample. Each of 10 samples runs from the start
// of the command to its exit, and its table must list exactly the 1,000
// Deployments. The operator runs as its own process with its default
// flags (--kube-api-qps=100, --kube-api-burst=300), as a user runs it:
// GET /v6/services reads the workloads with one List per namespace and kind
// (live, from the API server's watch cache), so the client-side rate limit
// is not what is measured, as it was with a GET per workload. A note gives the median of the
// same GET sent straight from the benchmark (the operator's share) and of
// `helmflux version` (the CLI process's), each taken after every sample.
var cliListWorkloads = benchmark{
	name:  "list_workloads",
	names: []string{"list_workloads_p50_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const runs = 10
		cli := buildCLI(t)
		env, cfg := startControlPlane(t)
		c := newClient(t, cfg)
		ns := createNamespace(t, c, "bench-cli-list")
		files := make(map[string]string, listedDeployments)
		wantIDs := make([]string, listedDeployments)
		for i := range listedDeployments {
			name := fmt.Sprintf("app-%04d", i)
			files["apps/"+name+".yaml"] = listedDeployment(ns, name)
			wantIDs[i] = ns + ":deployment/" + name
		}
		repo := gittest.NewRepo(t, files)
		addr := freeAddr(t)
		testenv.StartOperator(t, env, "--listen="+addr)
		setup := time.Now()
		createGitSync(t, c, ns, "apps", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"},
			Interval: metav1.Duration{Duration: time.Hour}})
		waitApplied(t, c, ns, "apps", repo.Head(), 10*time.Minute)
		url := "http://" + addr + fluxapi.Prefix
		applied := time.Since(setup)
		first := getServices(t, url, len(wantIDs))
		t.Logf("note: list_workloads: the operator applied %d Deployments in %s; a first GET /v6/services took %s (neither measured)",
			listedDeployments, applied.Round(time.Millisecond), first.Round(time.Millisecond))

		var samples, direct, version []time.Duration
		var pace pacer
		for range runs {
			pace.wait()
			cmd := cli.command("--url", url, "list-workloads", "-a")
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("helmflux list-workloads -a: %v\n%s", err, errOut.String())
			}
			samples = append(samples, time.Since(start))
			if err := checkWorkloadTable(out.String(), wantIDs); err != nil {
				t.Fatalf("helmflux list-workloads -a: %v\n%s", err, errOut.String())
			}
			direct = append(direct, getServices(t, url, len(wantIDs)))
			version = append(version, cli.timeVersion(t))
		}
		reportPercentile(t, report, "list_workloads_p50_ms", samples, 50, time.Millisecond)
		t.Logf("note: list_workloads: medians in ms: GET /v6/services?namespace= straight from the benchmark, to the last byte of its %d workloads, %s; "+
			"the CLI process alone (`helmflux version`, start to exit) %s",
			len(wantIDs), medianMS(direct), medianMS(version))
	},
}

// listedDeployment is one of cliListWorkloads's Deployments, its container
// named app.
func listedDeployment(ns, name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      containers:
        - name: app
          image: example.com/team/%[2]s:1.0.0
`, ns, name)
}

// checkWorkloadTable checks list-workloads' table: a header, then one row
// per ID in wantIDs, in that (sorted) order, each with its container.
func checkWorkloadTable(out string, wantIDs []string) error {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(wantIDs) {
		return fmt.Errorf("%d lines, want a header and %d rows", len(lines), len(wantIDs))
	}
	if f := strings.Fields(lines[0]); len(f) == 0 || f[0] != "WORKLOAD" {
		return fmt.Errorf("header %q, want WORKLOAD ...", lines[0])
	}
	for i, want := range wantIDs {
		f := strings.Fields(lines[1+i])
		if len(f) < 3 || f[0] != want || f[1] != "app" {
			return fmt.Errorf("row %d is %q, want %s with container app", i+1, lines[1+i], want)
		}
	}
	return nil
}

// getServices times GET /v6/services for every namespace from sending
// it to the last byte of the answer, and fails unless the answer lists
// want workloads.
func getServices(t *testing.T, base string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(base + "/v6/services?namespace=")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v6/services answered %s: %s", resp.Status, body)
	}
	var ws []fluxd.ControllerStatus
	if err := json.Unmarshal(body, &ws); err != nil {
		t.Fatalf("GET /v6/services: %v", err)
	}
	if len(ws) != want {
		t.Fatalf("GET /v6/services listed %d workloads, want %d", len(ws), want)
	}
	return took
}

// cliBinary is the helmflux CLI built for one benchmark.
type cliBinary struct {
	path string
	home string // an empty HOME: no kubeconfig, no git identity of the developer's
}

// buildCLI builds ./cli as `make build` builds bin/helmflux (static,
// -trimpath) into the benchmark's temporary directory, before anything is
// measured.
func buildCLI(t *testing.T) cliBinary {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := cliBinary{path: filepath.Join(dir, "helmflux"), home: filepath.Join(dir, "home")}
	if err := os.Mkdir(bin.home, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin.path, "./cli") // #nosec G204 -- a temp path of our own
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, out)
	}
	return bin
}

// command is the CLI with args, in an environment without the developer's
// kubeconfig, git identity or FLUX_* variables.
func (b cliBinary) command(args ...string) *exec.Cmd {
	cmd := exec.Command(b.path, args...) // #nosec G204 -- the CLI built for this benchmark
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLUX_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+b.home, "KUBECONFIG="+filepath.Join(b.home, "none"), "NO_COLOR=1")
	return cmd
}

// timeVersion times `helmflux version` from the start of the command to its
// exit: what any command costs before it does anything.
func (b cliBinary) timeVersion(t *testing.T) time.Duration {
	t.Helper()
	cmd := b.command("version")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("helmflux version: %v\n%s", err, out.String())
	}
	took := time.Since(start)
	if strings.TrimSpace(out.String()) == "" {
		t.Fatal("helmflux version printed nothing")
	}
	return took
}

// stampedOutput collects a command's output and notes when each of a few
// markers first appeared in it, from the start of the command.
type stampedOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	t0      time.Time
	markers []string
	at      []time.Duration // 0 until the marker appeared
}

func (o *stampedOutput) start(t0 time.Time, markers ...string) {
	o.t0, o.markers, o.at = t0, markers, make([]time.Duration, len(markers))
}

func (o *stampedOutput) Write(p []byte) (int, error) {
	now := time.Since(o.t0)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for i, m := range o.markers {
		if o.at[i] == 0 && bytes.Contains(o.buf.Bytes(), []byte(m)) {
			o.at[i] = now
		}
	}
	return len(p), nil
}

// marks returns when each marker appeared, and whether all did.
func (o *stampedOutput) marks() ([]time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range o.at {
		if d == 0 {
			return o.at, false
		}
	}
	return o.at, true
}

func (o *stampedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
