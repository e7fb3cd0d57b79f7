package restart

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxcd/pkg/apis/meta"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// TestOperatorWideLoginIsReadAtStartAndImageFiltersHold runs the operator
// process with --docker-config, --registry-include-image and
// --registry-exclude-image: the docker config's login opens a registry no
// workload has a pull secret for, and is read once, at start, as documented
// (a corrected file counts only after a restart); images the globs leave out
// are never scanned nor changed. No password, of the registry or of the git
// server, shows in the operator's log, an Event, a status or the remote.
func TestOperatorWideLoginIsReadAtStartAndImageFiltersHold(t *testing.T) {
	const (
		regPass   = "canary-DockerCfg-9b1e"
		wrongPass = "canary-WrongCfg-3c7d"
		gitPass   = "canary-GitPush-5a2f"
	)
	reg := registrytest.NewServer(t, registrytest.WithPlainHTTP(), registrytest.WithBasicAuth("robot", regPass))
	host := reg.Host()
	for _, r := range []string{"team/app", "team/excluded", "other/app"} {
		reg.PushTags(t, r, "1.0.0", "1.0.1")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "restart-opts-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	// Without pull secrets: only the operator-wide login opens the registry.
	deploy := func(name, repo string) string {
		return testenv.AutomatedDeployment(ns.Name, name, host+"/"+repo+":1.0.0", "semver:~1.0")
	}
	repo := gittest.NewRepo(t, map[string]string{
		"apps/app.yaml":      deploy("app", "team/app"),
		"apps/excluded.yaml": deploy("excluded", "team/excluded"),
		"apps/other.yaml":    deploy("other", "other/app"),
	})
	srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBasicAuth("git", gitPass))
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "git"},
		StringData: map[string]string{"username": "git", "password": gitPass},
	}
	if err := k8s.Create(context.Background(), creds); err != nil {
		t.Fatal(err)
	}

	dockerConfig := filepath.Join(t.TempDir(), "config.json")
	writeDockerConfig(t, dockerConfig, host, wrongPass)
	op := testenv.StartOperator(t, env, "--automation-interval=1s", "--registry-poll-interval=0s",
		"--registry-insecure-host="+host, "--docker-config="+dockerConfig,
		"--registry-include-image="+host+"/team/*", "--registry-exclude-image="+host+"/team/excluded",
		"--zap-log-level=debug")
	gs := &helmfluxv1alpha1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "apps"},
		Spec: helmfluxv1alpha1.GitSyncSpec{
			URL: srv.URL(gittest.RepoName), Paths: []string{"apps"}, Interval: metav1.Duration{Duration: time.Minute},
			SecretRef: &meta.LocalObjectReference{Name: "git"}, AllowInsecureHTTP: true, // the test server is plain http://
		},
	}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	head := repo.RemoteHead("main").Hash

	// The login the operator started with is refused.
	waitFor(t, time.Minute, "the refused login reported", func() (bool, string) {
		got := automationStatus(t, ns.Name, "apps")
		return strings.HasPrefix(got, "False ScanFailed") && strings.Contains(got, host+"/team/app"), got
	})
	if st := getGitSync(t, ns.Name, "apps").Status.ImageAutomation; st.AutomatedImages != 1 || len(st.Failures) != 1 {
		t.Fatalf("automatedImages %d, failures %+v; want only team/app, the one image the globs let in", st.AutomatedImages, st.Failures)
	}

	// Corrected on disk, the login is not read again while the operator runs.
	writeDockerConfig(t, dockerConfig, host, regPass)
	testenv.WaitPasses(t, testenv.AutomationPasses(op.Log, ns.Name, "apps"), 2)
	if got := automationStatus(t, ns.Name, "apps"); !strings.HasPrefix(got, "False ScanFailed") {
		t.Fatalf("after the file changed, without a restart: %s; want the old login still refused", got)
	}
	if h := repo.RemoteHead("main").Hash; h != head {
		t.Fatalf("a commit %s was pushed without a working login", h)
	}

	// After a restart the new login opens the registry: one commit, to the
	// image the globs let in.
	op.Stop()
	op.Start()
	waitFor(t, time.Minute, "a commit setting team/app 1.0.1", func() (bool, string) {
		s := repo.FileAt(repo.RemoteHead("main"), "apps/app.yaml")
		return strings.Contains(s, "team/app:1.0.1\n"), s
	})
	cm := repo.RemoteHead("main")
	if len(cm.ParentHashes) != 1 || cm.ParentHashes[0] != head {
		t.Fatalf("the automation commit %s has parents %v, want %s", cm.Hash, cm.ParentHashes, head)
	}
	for _, f := range []string{"apps/excluded.yaml", "apps/other.yaml"} {
		if got, was := repo.FileAt(cm, f), repo.FileAt(repo.RemoteLog("main")[1], f); got != was {
			t.Errorf("%s, left out by the globs, changed:\n%s", f, got)
		}
	}
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/team/excluded/") || strings.Contains(r.Path, "/other/app/") {
			t.Errorf("an image the globs leave out was scanned: %s %s", r.Method, r.Path)
		}
	}
	for _, secret := range []string{regPass, wrongPass, gitPass} {
		testenv.AssertNoLeak(t, k8s, secret, testenv.Leaks{Logs: []string{op.Log()}, Remotes: []*gittest.Repo{repo}})
	}
}

// writeDockerConfig writes a docker config.json with one login for host.
func writeDockerConfig(t *testing.T, path, host, pass string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"username": "robot", "password": pass}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
