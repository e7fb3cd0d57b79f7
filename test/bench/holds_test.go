package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/history"
	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// The rollback benchmarks join the list of bench_test.go here.
func init() {
	benchmarks = append(benchmarks, revertToApplied, holdWalk10k)
}

// revertToApplied measures a person's rollback: from the push notification
// for a commit that reverts helmflux's image commit until the Deployment in
// the cluster has the old image again, 20 times. Each round first lets
// automation write 1.0.i over 1.0.0 (a registry webhook; not measured),
// then a person's commit writes 1.0.0 back, which holds; the next round's
// 1.0.(i+1) ranks above the held tag and moves on. One in-process operator, intervals
// of an hour, so only the webhooks start passes.
var revertToApplied = benchmark{
	name:  "revert_to_applied",
	names: []string{"revert_to_applied_p50_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const runs = 20
		_, cfg := startControlPlane(t)
		reg := registrytest.NewServer(t)
		reg.Push(t, "team/app", "1.0.0", time.Now())
		addr := startAutomationInProcess(t, cfg)
		c := newClient(t, cfg)
		ns := createNamespace(t, c, "bench-revert")
		image := reg.Host() + "/team/app"
		manifest := func(tag string) string {
			return testenv.AutomatedDeployment(ns, "app", image+":"+tag, "semver:~1.0")
		}
		repo := gittest.NewRepo(t, map[string]string{automatedPath: manifest("1.0.0")})
		const token = "bench-token"
		create(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook"}, Data: map[string][]byte{"token": []byte(token)}})
		createGitSync(t, c, ns, "apps", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{Branch: "main"},
			Interval: metav1.Duration{Duration: time.Hour}, WebhookSecretRef: &meta.LocalObjectReference{Name: "hook"}})
		waitApplied(t, c, ns, "apps", repo.Head(), time.Minute)
		runs1 := func(want string) func() bool {
			return func() bool {
				d := &appsv1.Deployment{}
				return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, d) == nil &&
					d.Spec.Template.Spec.Containers[0].Image == image+":"+want
			}
		}

		var samples []time.Duration
		var pace pacer
		for i := 1; i <= runs; i++ {
			pace.wait()
			// Each revert goes back to 1.0.0, where git was before the bump.
			bumped, previous := fmt.Sprintf("1.0.%d", i), "1.0.0"
			reg.Push(t, "team/app", bumped, time.Now())
			notifyRegistry(t, "http://"+addr, reg.Host(), "team/app")
			waitFor(t, 30*time.Second, 5*time.Millisecond, "the automation commit of "+bumped, func() bool {
				return remoteFile(repo, automatedPath) == manifest(bumped)
			})
			waitFor(t, 30*time.Second, 10*time.Millisecond, "the Deployment with "+bumped, runs1(bumped))

			// A person's revert, straight into the remote (automation is
			// idle: nothing else pushes until the next webhook).
			repo.RawCommit(gittest.DefaultBranch, fmt.Sprintf("Revert to %s", previous), []gittest.RawEntry{{
				Name: "apps", Mode: filemode.Dir,
				Entries: []gittest.RawEntry{{Name: "app.yaml", Mode: filemode.Regular, Content: manifest(previous)}},
			}})
			start := time.Now()
			notify(t, "http://"+addr+"/hooks/"+ns+"/apps", token)
			waitFor(t, 30*time.Second, 10*time.Millisecond, "the Deployment back on "+previous, runs1(previous))
			samples = append(samples, time.Since(start))
		}
		reportPercentile(t, report, "revert_to_applied_p50_ms", samples, 50, time.Millisecond)
	},
}

// holdWalk10k measures deriving holds from a 10,000-commit history with a
// cold history cache: a git.Cache opened afresh on the fetched repository
// walks the default bound of commits (--hold-history-commits) for one
// automated container whose only helmflux commit is the oldest one, so the
// walk reads every commit. Median of 7 fresh caches.
var holdWalk10k = benchmark{
	name:  "hold_walk_10k",
	names: []string{"hold_walk_10k_ms"},
	run: func(t *testing.T, report func(string, float64)) {
		const commits = git.DefaultLogCommits
		key := history.Key{Workload: "apps:deployment/app", Repository: "reg.example/team/app"}
		repo := gittest.NewLongHistory(t, commits, 0, func(i int) string {
			if i == 1 {
				return fmt.Sprintf("Auto-release %s:1.0.1\n\n%s: %s 1.0.0 -> 1.0.1\n%s: %s\n",
					key.Repository, history.ImageTrailer, key.Repository, history.WorkloadTrailer, key.Workload)
			}
			return fmt.Sprintf("commit %d", i)
		})
		dir := t.TempDir()
		fetcher, err := git.NewCache(dir)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := fetcher.Fetch(context.Background(), repo.URL(), git.Ref{Branch: gittest.DefaultBranch}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var samples []time.Duration
		var pace pacer
		for range 7 {
			pace.wait()
			cold, err := git.NewCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := cold.Log(context.Background(), repo.URL(), rev, git.LogOptions{MaxCommits: commits})
			if err != nil {
				t.Fatal(err)
			}
			w := history.LastWritten(res.Entries, []history.Key{key})
			samples = append(samples, time.Since(start))
			if got := w[key]; got.Tag != "1.0.1" || len(res.Entries) != commits {
				t.Fatalf("the walk read %d commits and found %+v, want %d commits and the tag 1.0.1 of the oldest", len(res.Entries), got, commits)
			}
		}
		reportPercentile(t, report, "hold_walk_10k_ms", samples, 50, time.Millisecond)
	},
}
