// Package ha holds the user stories of the operator run as two replicas
// against one control plane, with leader election: one reconciles, the other
// stands by, answers webhooks and takes over when the leader dies or stops.
package ha

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/operator/automation"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

var (
	env *envtest.Environment
	k8s client.Client
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *envtest.Environment, _ *rest.Config, c client.Client) (func() error, error) {
		env, k8s = e, c
		return nil, nil
	}))
}

// leaseName is the operator's leader election Lease.
const leaseName = "helmflux-operator.helmflux.dev"

// acquired is what the leader election logs (through controller-runtime) when a replica takes the lead.
const acquired = "Successfully acquired lease"

// replica is one operator process and the address of its HTTP endpoints.
type replica struct {
	*testenv.Operator
	addr string
}

// startReplica starts an operator electing its leader on a Lease in ns,
// with the given lease timings, serving its HTTP endpoints on a free port.
func startReplica(t *testing.T, ns string, timings []string, extra ...string) *replica {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--leader-elect", "--leader-election-namespace=" + ns, "--listen=" + addr, "--zap-log-level=debug"}, timings...)
	return &replica{Operator: testenv.StartOperator(t, env, append(args, extra...)...), addr: addr}
}

// holder returns the Lease's holderIdentity, "" while there is none.
func holder(t *testing.T, ns string) string {
	t.Helper()
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: leaseName}, lease); err != nil {
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// waitLeader waits until r logged that it took the lead and the Lease
// names a holder other than not; it returns the holder.
func waitLeader(t *testing.T, ns string, r *replica, not string) string {
	t.Helper()
	var h string
	testenv.Eventually(t, 2*time.Minute, "the replica to lead", func() (bool, string) {
		h = holder(t, ns)
		return h != "" && h != not && strings.Contains(r.Log(), acquired), "holder " + h
	})
	return h
}

// appliedLines counts the lines of log that say a pass applied a revision
// of the GitSync ns/name.
func appliedLines(log, ns, name string) int {
	return lines(log, "Applied revision", ns, name)
}

// automationLines counts the image automation passes of the GitSync ns/name in log.
func automationLines(log, ns, name string) int {
	return lines(log, automation.DoneMessage, ns, name)
}

// lines counts the lines of log holding msg about the object ns/name.
func lines(log, msg, ns, name string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, msg) && strings.Contains(line, fmt.Sprintf(`{"name":"%s","namespace":"%s"}`, name, ns)) {
			n++
		}
	}
	return n
}

// registryHook sends a registry notification for image to addr and returns
// the status and the Retry-After header.
func registryHook(t *testing.T, addr, image string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/registry-hooks", "application/json", strings.NewReader(`{"image":"`+image+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func getGitSync(t *testing.T, ns, name string) *helmfluxv1alpha1.GitSync {
	t.Helper()
	gs := &helmfluxv1alpha1.GitSync{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

// waitHandled waits until the GitSync applied hash in a pass that handled
// the reconcile request the receiver wrote (its requestedAt annotation).
func waitHandled(t *testing.T, ns, name, hash string) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "revision "+hash+" applied by a pass handling the push", func() (bool, string) {
		gs := getGitSync(t, ns, name)
		requested := gs.Annotations[meta.ReconcileRequestAnnotation]
		return requested != "" && gs.Status.LastHandledReconcileAt == requested && strings.HasSuffix(gs.Status.LastAppliedRevision, hash),
			fmt.Sprintf("requested %q handled %q applied %s", requested, gs.Status.LastHandledReconcileAt, gs.Status.LastAppliedRevision)
	})
}

func configMap(ns, color string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: " + ns + "\ndata:\n  color: " + color + "\n"
}

// imageTag matches the tag of the automated container in app.yaml.
var imageTag = regexp.MustCompile(`image: \S+/team/app:(\S+)`)

// TestOneLeaderReconcilesAndAPushToTheOtherIsNeverParked: of two replicas
// only the Lease holder reconciles and runs image automation. A push
// webhook sent to the other replica is applied by the leader at once (the
// GitSync polls hourly), and one sent to it just after the leader was
// killed is applied by it once it has taken over; a registry webhook it
// cannot act on is refused with 503 and Retry-After. An image bump across
// the hand-over is one commit, never a downgrade.
func TestOneLeaderReconcilesAndAPushToTheOtherIsNeverParked(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "ha-")
	reg := registrytest.NewServer(t, registrytest.WithPlainHTTP())
	host := reg.Host()
	reg.PushTags(t, "team/app", "1.0.0", "1.0.1")
	timings := []string{"--leader-election-lease-duration=8s", "--leader-election-renew-deadline=6s", "--leader-election-retry-period=1s"}
	auto := []string{"--automation-interval=2s", "--registry-poll-interval=0s", "--registry-insecure-host=" + host}

	a := startReplica(t, ns, timings, auto...)
	holderA := waitLeader(t, ns, a, "")
	b := startReplica(t, ns, timings, auto...)

	// config is pushed to by hand and follows hooks; apps is written by
	// automation. Both poll hourly.
	cfgRepo := gittest.NewRepo(t, map[string]string{"config/settings.yaml": configMap(ns, "blue")})
	cfgSrv := gittest.NewHTTPServer(t, cfgRepo.Root())
	appRepo := gittest.NewRepo(t, map[string]string{"apps/app.yaml": testenv.AutomatedDeployment(ns, "app", host+"/team/app:1.0.0", "semver:~1.0")})
	appSrv := gittest.NewHTTPServer(t, appRepo.Root())
	const token = "ha-hook-token"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{"token": []byte(token)}}
	hourly := metav1.Duration{Duration: time.Hour}
	for _, obj := range []client.Object{secret,
		&helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "config"}, Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: cfgSrv.URL(gittest.RepoName), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}, Paths: []string{"config"}, Interval: hourly,
			WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}}},
		&helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"}, Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: appSrv.URL(gittest.RepoName), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"}, Paths: []string{"apps"}, Interval: hourly}},
	} {
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 2*time.Minute, "the first revision applied", func() (bool, string) {
		gs := getGitSync(t, ns, "config")
		return strings.HasSuffix(gs.Status.LastAppliedRevision, cfgRepo.Head()), gs.Status.LastAppliedRevision
	})
	waitTag(t, appRepo, "1.0.1")

	// A push, announced to the replica that does not lead.
	cfgRepo.Write(map[string]string{"config/settings.yaml": configMap(ns, "green")})
	green := cfgRepo.Commit("green")
	if code := testenv.PushHook(t, b.addr, ns, "config", token); code != http.StatusAccepted {
		t.Fatalf("a push hook to the replica that does not lead got %d, want 202", code)
	}
	waitHandled(t, ns, "config", green)

	// A registry hook: the replica that does not lead refuses it, so the
	// registry retries; the leader takes it.
	if code, retry := registryHook(t, b.addr, host+"/team/app"); code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("a registry hook to the replica that does not lead got %d (Retry-After %q), want 503 with Retry-After", code, retry)
	}
	if code, _ := registryHook(t, a.addr, host+"/team/app"); code != http.StatusAccepted {
		t.Errorf("a registry hook to the leader got %d, want 202", code)
	}

	// Only the leader reconciled.
	if n := appliedLines(a.Log(), ns, "config"); n == 0 {
		t.Errorf("the leader logged no pass over GitSync config")
	}
	if n := appliedLines(b.Log(), ns, "config") + appliedLines(b.Log(), ns, "apps") + automationLines(b.Log(), ns, "apps"); n != 0 {
		t.Errorf("the replica that does not lead logged %d passes, want none", n)
	}
	if strings.Contains(b.Log(), acquired) {
		t.Errorf("both replicas took the lead")
	}

	// The hand-over: a new tag, a new commit; the leader dies (no release of
	// the Lease) and the push is announced to the other replica before it leads.
	reg.PushTags(t, "team/app", "1.0.2")
	cfgRepo.Write(map[string]string{"config/settings.yaml": configMap(ns, "red")})
	red := cfgRepo.Commit("red")
	a.Kill()
	if code := testenv.PushHook(t, b.addr, ns, "config", token); code != http.StatusAccepted {
		t.Fatalf("a push hook to the replica that does not lead yet got %d, want 202", code)
	}
	waitLeader(t, ns, b, holderA) // the Lease names another holder than the killed leader
	waitHandled(t, ns, "config", red)
	waitTag(t, appRepo, "1.0.2")
	// Passes of the new leader after the bump, each of which could commit.
	passes := testenv.AutomationPasses(b.Log, ns, "apps")
	testenv.WaitPasses(t, passes, 2)
	if n := appliedLines(b.Log(), ns, "config"); n == 0 {
		t.Errorf("the new leader logged no pass over GitSync config")
	}

	// The history of app.yaml: 1.0.0, 1.0.1, 1.0.2, one commit each.
	var tags []string
	log := appRepo.RemoteLog("main")
	for i := len(log) - 1; i >= 0; i-- {
		m := imageTag.FindStringSubmatch(appRepo.FileAt(log[i], "apps/app.yaml"))
		if m == nil {
			t.Fatalf("commit %s has no image in apps/app.yaml", log[i].Hash)
		}
		tags = append(tags, m[1])
	}
	if got := strings.Join(tags, " "); got != "1.0.0 1.0.1 1.0.2" {
		t.Errorf("app.yaml ran %s, commit by commit; want 1.0.0 1.0.1 1.0.2: one commit per bump, no downgrade", got)
	}
}

// waitTag waits until the remote's app.yaml runs tag.
func waitTag(t *testing.T, repo *gittest.Repo, tag string) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "a commit setting "+tag, func() (bool, string) {
		s := repo.FileAt(repo.RemoteHead("main"), "apps/app.yaml")
		return strings.Contains(s, "/team/app:"+tag+"\n"), s
	})
}

// TestStopReleasesTheLease: a leader stopped with SIGTERM (a rolling update,
// a drain) gives up its Lease on the way out, so the other replica leads at
// once. The lease lasts 10 minutes here, so without the release the other
// could not lead before this test times out.
func TestStopReleasesTheLease(t *testing.T) {
	ns := testenv.NewNamespace(t, k8s, "ha-stop-")
	timings := []string{"--leader-election-lease-duration=10m", "--leader-election-renew-deadline=5s", "--leader-election-retry-period=1s"}
	a := startReplica(t, ns, timings)
	holderA := waitLeader(t, ns, a, "")
	b := startReplica(t, ns, timings)
	a.Stop()
	if !strings.Contains(a.Log(), "Stopped") {
		t.Errorf("the stopped leader did not log that it stopped:\n%s", a.LogTail(20))
	}
	waitLeader(t, ns, b, holderA)
}
