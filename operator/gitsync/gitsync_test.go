package gitsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/inventory"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func deployment(ns string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example.com/web:1.0.0
`, ns, replicas)
}

func configMap(ns, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: %s\ndata:\n  color: %s\n", ns, value)
}

func createGitSync(t *testing.T, ns, name string, spec helmfluxv1alpha1.GitSyncSpec) {
	t.Helper()
	if spec.Interval.Duration == 0 {
		spec.Interval = metav1.Duration{Duration: time.Hour} // only explicit requests trigger
	}
	gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := k8s.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func getDeployment(t *testing.T, ns string) (*appsv1.Deployment, error) {
	t.Helper()
	d := &appsv1.Deployment{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)
	return d, err
}

// remote serves a repository over one transport and returns its URL and the
// credentials Secret's data; the password or key passphrase is canary.
type remote func(t *testing.T, repo *gittest.Repo, canary string) (string, map[string][]byte)

var remotes = map[string]remote{
	"smart HTTP with basic auth": func(t *testing.T, repo *gittest.Repo, canary string) (string, map[string][]byte) {
		srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBasicAuth("git", canary))
		return srv.URL(gittest.RepoName), map[string][]byte{"username": []byte("git"), "password": []byte(canary)}
	},
	"SSH with known_hosts": func(t *testing.T, repo *gittest.Repo, canary string) (string, map[string][]byte) {
		key := gittest.NewSSHKey(t, canary)
		srv := gittest.NewSSHServer(t, repo.Root(), key.Public)
		return srv.URL(gittest.RepoName), map[string][]byte{
			"identity": key.PrivatePEM, "passphrase": []byte(canary), "known_hosts": srv.KnownHosts()}
	},
}

// A commit that adds, changes and then removes a Deployment, over smart HTTP
// and over SSH: applied, updated, then pruned (prune on) or left (prune off).
func TestCommitsAreAppliedUpdatedAndPruned(t *testing.T) {
	for transport, serve := range remotes {
		for _, prune := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prune=%v", transport, prune), func(t *testing.T) {
				testCommitsAreApplied(t, serve, prune)
			})
		}
	}
}

func testCommitsAreApplied(t *testing.T, serve remote, prune bool) {
	ns := newNamespace(t)
	const canary = "canary-password-7f3a9c"
	repo := gittest.NewRepo(t, map[string]string{
		"apps/settings.yaml": configMap(ns, "blue"),
		"apps/web.yaml":      deployment(ns, 1),
		"README.md":          "not a manifest",
	})
	url, creds := serve(t, repo, canary)
	createSecret(t, ns, "git-auth", creds)
	createGitSync(t, ns, "apps", helmfluxv1alpha1.GitSyncSpec{
		URL: url, Paths: []string{"apps"}, Prune: prune,
		SecretRef: &meta.LocalObjectReference{Name: "git-auth"}, AllowInsecureHTTP: true, // the HTTP test server is plain http://
	})

	waitApplied(t, ns, "apps", repo.Head())
	d, err := getDeployment(t, ns)
	if err != nil {
		t.Fatalf("Deployment not applied: %v", err)
	}
	if got := d.Annotations[helmfluxv1alpha1.SourceAnnotation]; got != "apps/web.yaml" {
		t.Errorf("source annotation = %q, want apps/web.yaml", got)
	}
	if got := d.Annotations[helmfluxv1alpha1.SyncAnnotation]; got != ns+"/apps" {
		t.Errorf("sync annotation = %q, want %s/apps", got, ns)
	}

	repo.Write(map[string]string{"apps/web.yaml": deployment(ns, 3)})
	hash := repo.Commit("scale web to 3")
	requestReconcile(t, ns, "apps")
	waitApplied(t, ns, "apps", hash)
	if d, err = getDeployment(t, ns); err != nil || *d.Spec.Replicas != 3 {
		t.Fatalf("Deployment after the change: replicas %v, err %v; want 3", d.Spec.Replicas, err)
	}

	repo.Remove("apps/web.yaml")
	hash = repo.Commit("remove web")
	requestReconcile(t, ns, "apps")
	gs := waitApplied(t, ns, "apps", hash)
	_, err = getDeployment(t, ns)
	if prune && !apierrors.IsNotFound(err) {
		t.Errorf("prune on: Deployment still there after it left git (err %v)", err)
	}
	if !prune && err != nil {
		t.Errorf("prune off: Deployment removed (err %v), want it left alone", err)
	}
	if gs.Status.Inventory == nil || gs.Status.Inventory.Count != 1 {
		t.Errorf("inventory = %+v, want just the ConfigMap", gs.Status.Inventory)
	}
	assertEvent(t, ns, "Deployment/"+ns+"/web created")
	assertNoCanary(t, ns, canary)
}

// assertEvent waits for an Event on the namespace whose note holds text.
func assertEvent(t *testing.T, ns, text string) {
	t.Helper()
	eventually(t, "an event saying "+text, func() (bool, string) {
		evs := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var notes []string
		for _, e := range evs.Items {
			if strings.Contains(e.Note, text) {
				return true, ""
			}
			notes = append(notes, e.Note)
		}
		return false, strings.Join(notes, " | ")
	})
}

// A revision with a malformed file or an invalid object changes nothing; the
// status names the file and line or the object; the next good commit recovers.
func TestBadRevisionsChangeNothingAndRecover(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
	createGitSync(t, ns, "cfg", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL()})
	good := repo.Head()
	waitApplied(t, ns, "cfg", good)

	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{name: "malformed YAML", want: []string{"BuildFailed", "broken.yaml:4"},
			files: map[string]string{"broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n"}},
		{name: "schema-invalid object", want: []string{"ValidationFailed", "Deployment/" + ns + "/bad", "invalid.yaml"},
			files: map[string]string{"invalid.yaml": strings.Replace(strings.Replace(deployment(ns, 1), "name: web", "name: bad", 1), "app: web}}\n  template", "app: other}}\n  template", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"settings.yaml": configMap(ns, "green")}
			for k, v := range tt.files {
				files[k] = v
			}
			repo.Write(files)
			bad := repo.Commit(tt.name)
			requestReconcile(t, ns, "cfg")
			eventually(t, "the bad revision refused", func() (bool, string) {
				gs := getGitSync(t, ns, "cfg")
				r := ready(gs)
				ok := strings.HasPrefix(r, "False") && strings.HasSuffix(gs.Status.LastFetchedRevision, bad)
				for _, w := range tt.want {
					ok = ok && strings.Contains(r, w)
				}
				return ok, r
			})
			cm := &corev1.ConfigMap{}
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
				t.Fatal(err)
			}
			if cm.Data["color"] != "blue" {
				t.Errorf("a refused revision changed the cluster: color = %q", cm.Data["color"])
			}
			if gs := getGitSync(t, ns, "cfg"); !strings.HasSuffix(gs.Status.LastAppliedRevision, good) {
				t.Errorf("lastAppliedRevision = %s, want the last good %s", gs.Status.LastAppliedRevision, good)
			}

			for k := range tt.files {
				repo.Remove(k)
			}
			repo.Write(map[string]string{"settings.yaml": configMap(ns, "blue")})
			fixed := repo.Commit("fix " + tt.name)
			requestReconcile(t, ns, "cfg")
			waitApplied(t, ns, "cfg", fixed)
			good = fixed
		})
	}
}

// Over SSH the host must be in known_hosts; an unknown host is refused.
func TestSSHNeedsAKnownHost(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
	key := gittest.NewSSHKey(t, "")
	srv := gittest.NewSSHServer(t, repo.Root(), key.Public)
	other := gittest.NewSSHServer(t, repo.Root(), key.Public)

	createSecret(t, ns, "ssh-good", map[string][]byte{"identity": key.PrivatePEM, "known_hosts": srv.KnownHosts()})
	createSecret(t, ns, "ssh-wrong-host", map[string][]byte{"identity": key.PrivatePEM, "known_hosts": other.KnownHosts()})
	createGitSync(t, ns, "good", helmfluxv1alpha1.GitSyncSpec{URL: srv.URL(gittest.RepoName),
		SecretRef: &meta.LocalObjectReference{Name: "ssh-good"}})
	waitApplied(t, ns, "good", repo.Head())

	createGitSync(t, ns, "unknown", helmfluxv1alpha1.GitSyncSpec{URL: srv.URL(gittest.RepoName),
		SecretRef: &meta.LocalObjectReference{Name: "ssh-wrong-host"}})
	eventually(t, "the unknown host refused", func() (bool, string) {
		r := ready(getGitSync(t, ns, "unknown"))
		return strings.HasPrefix(r, "False "+helmfluxv1alpha1.CredentialsReason) && strings.Contains(r, "host key"), r
	})
}

// Paths and symlinks must stay inside the checkout, and files have a size cap.
func TestEscapesAndOversizedFilesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *gittest.Repo)
		want  string
	}{
		{name: "symlink out", want: "escapes.yaml: symlink resolves outside the checkout", setup: func(r *gittest.Repo) { r.Symlink("escapes.yaml", "/etc/passwd") }},
		{name: "kustomize parent", want: "outside.yaml is outside the checkout", setup: func(r *gittest.Repo) {
			r.Write(map[string]string{"app/kustomization.yaml": "resources:\n- ../../outside.yaml\n"})
		}},
		{name: "oversized", want: "big.yaml: file is 6291459 bytes, over the limit of 5242880: size limit exceeded", setup: func(r *gittest.Repo) {
			r.Write(map[string]string{"big.yaml": "# " + strings.Repeat("x", 6<<20) + "\n"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
			tt.setup(repo)
			repo.Commit(tt.name)
			createGitSync(t, ns, "esc", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL()})
			eventually(t, tt.name+" refused", func() (bool, string) {
				r := ready(getGitSync(t, ns, "esc"))
				return strings.HasPrefix(r, "False "+helmfluxv1alpha1.BuildFailedReason) && strings.Contains(r, tt.want), r
			})
			err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("a refused revision applied its other objects (err %v)", err)
			}
		})
	}
}

// With verification on, an unsigned commit on top of signed ones is not applied.
func TestUnsignedCommitIsNotApplied(t *testing.T) {
	for _, mode := range []helmfluxv1alpha1.VerificationMode{helmfluxv1alpha1.VerifyHead, helmfluxv1alpha1.VerifyAll} {
		t.Run(string(mode), func(t *testing.T) {
			ns := newNamespace(t)
			key := gittest.NewOpenPGPKey(t, "release team")
			repo := gittest.NewRepo(t, nil)
			repo.Write(map[string]string{"settings.yaml": configMap(ns, "blue")})
			signed := repo.Commit("signed", gittest.SignedBy(key))
			createSecret(t, ns, "trusted", map[string][]byte{"release-team.asc": []byte(key.PublicArmored)})
			createGitSync(t, ns, "signed", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(),
				Verify: &helmfluxv1alpha1.GitVerification{Mode: mode, SecretRef: &meta.LocalObjectReference{Name: "trusted"}}})
			waitApplied(t, ns, "signed", signed)

			repo.Write(map[string]string{"settings.yaml": configMap(ns, "red")})
			unsigned := repo.Commit("unsigned")
			requestReconcile(t, ns, "signed")
			eventually(t, "the unsigned commit refused", func() (bool, string) {
				gs := getGitSync(t, ns, "signed")
				c := apimeta.FindStatusCondition(gs.Status.Conditions, helmfluxv1alpha1.SourceVerifiedCondition)
				return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, unsigned[:7]) &&
					strings.HasSuffix(gs.Status.LastFetchedRevision, unsigned), ready(gs)
			})
			cm := &corev1.ConfigMap{}
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
				t.Fatal(err)
			}
			if cm.Data["color"] != "blue" {
				t.Errorf("the unsigned commit was applied: color = %q", cm.Data["color"])
			}
			if gs := getGitSync(t, ns, "signed"); !strings.HasSuffix(gs.Status.LastAppliedRevision, signed) {
				t.Errorf("lastAppliedRevision = %s, want the signed %s", gs.Status.LastAppliedRevision, signed)
			}
		})
	}
}

// syncLarge applies 1,001 ConfigMaps, one more than status keeps, with the
// pruning GitSync "large", and returns their manifests, the repository and
// the applied GitSync.
func syncLarge(t *testing.T, ns string) (string, *gittest.Repo, *helmfluxv1alpha1.GitSync) {
	t.Helper()
	var docs strings.Builder
	for i := range 1001 {
		fmt.Fprintf(&docs, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  namespace: %s\n", i, ns)
	}
	repo := gittest.NewRepo(t, map[string]string{"many.yaml": docs.String()})
	createGitSync(t, ns, "large", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Prune: true})
	return docs.String(), repo, waitApplied(t, ns, "large", repo.Head())
}

// An inventory too large for status goes to a ConfigMap the GitSync owns;
// pruning works from it, and a smaller inventory moves back into status.
func TestLargeInventoryLivesInAConfigMap(t *testing.T) {
	ns := newNamespace(t)
	docs, repo, gs := syncLarge(t, ns)
	inv := gs.Status.Inventory
	if inv == nil || inv.Count != 1001 || len(inv.Entries) != 0 || inv.ConfigMapRef == nil {
		t.Fatalf("inventory = %+v, want 1001 objects kept in a ConfigMap", inv)
	}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: inv.ConfigMapRef.Name}, cm); err != nil {
		t.Fatalf("inventory ConfigMap: %v", err)
	}
	if n := strings.Count(cm.Data["inventory"], "\n"); n != 1001 {
		t.Errorf("inventory ConfigMap holds %d entries, want 1001", n)
	}

	// Drop the last object: it is pruned from the ConfigMap's inventory, and
	// the 1,000 left fit in status again.
	repo.Write(map[string]string{"many.yaml": docs[:strings.LastIndex(docs, "---\n")]})
	hash := repo.Commit("drop cm-1000")
	requestReconcile(t, ns, "large")
	gs = waitApplied(t, ns, "large", hash)
	if inv := gs.Status.Inventory; inv == nil || inv.Count != 1000 || len(inv.Entries) != 1000 || inv.ConfigMapRef != nil {
		t.Errorf("inventory after the prune = count %d, %d entries, ref %v; want 1000 in status", inv.Count, len(inv.Entries), inv.ConfigMapRef)
	}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cm-1000"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("cm-1000 not pruned (err %v)", err)
	}
	eventually(t, "the inventory ConfigMap removed", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: cm.Name}, &corev1.ConfigMap{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// A Flux v1 .flux.yaml is not run, and says so: the GitSync applies the
// plain YAML beside it, sets FluxV1ConfigIgnored naming the file and records

// Anyone who may write ConfigMaps in the namespace may write the inventory
// ConfigMap, while only helmflux writes status: status keeps the digest of
// the entries, and a ConfigMap that does not match it, or is gone, lists
// nothing. No object is pruned or taken as applied from it, the pass goes
// on and writes the inventory again, and a deleted GitSync is not held.
func TestAForgedOrMissingInventoryConfigMapIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	_, _, gs := syncLarge(t, ns)
	inv := gs.Status.Inventory
	if inv == nil || inv.ConfigMapRef == nil || !strings.HasPrefix(inv.Digest, "sha256:") {
		t.Fatalf("inventory = %+v, want a ConfigMap and its digest", inv)
	}
	key := client.ObjectKey{Namespace: ns, Name: inv.ConfigMapRef.Name}

	// A ConfigMap that names this GitSync as its sync, as an object it
	// applied would, and a forged entry for it.
	victim := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim",
		Annotations: map[string]string{helmfluxv1alpha1.SyncAnnotation: ns + "/large"}}}
	if err := k8s.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	victimID := apply.ObjectID{Namespace: ns, Name: "victim", Kind: "ConfigMap"}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, key, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data[inventory.ConfigMapKey] += victimID.String() + " v1\n"
	if err := k8s.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if listed, err := inventory.Lists(ctx, k8s, getGitSync(t, ns, "large"), victimID); listed || err == nil {
		t.Errorf("the forged entry: listed %v, err %v; want it refused", listed, err)
	}
	waitHandled(t, ns, "large", requestReconcile(t, ns, "large"))
	assertEvent(t, ns, "does not match the digest")
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(victim), &corev1.ConfigMap{}); err != nil {
		t.Errorf("the object of the forged entry: %v, want it left alone", err)
	}
	eventually(t, "the inventory written again", func() (bool, string) {
		gs := getGitSync(t, ns, "large")
		listed, err := inventory.Lists(ctx, k8s, gs, victimID)
		entries, lerr := inventory.Load(ctx, k8s, gs)
		return err == nil && lerr == nil && !listed && len(entries) == 1001 && apimeta.IsStatusConditionTrue(gs.Status.Conditions, meta.ReadyCondition),
			fmt.Sprintf("listed %v (%v), %d entries (%v), %s", listed, err, len(entries), lerr, ready(gs))
	})

	// A deleted inventory ConfigMap holds nothing up: the pass writes it again.
	if err := k8s.Get(ctx, key, cm); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitHandled(t, ns, "large", requestReconcile(t, ns, "large"))
	assertEvent(t, ns, "is gone")
	eventually(t, "the inventory ConfigMap written again", func() (bool, string) {
		gs := getGitSync(t, ns, "large")
		entries, err := inventory.Load(ctx, k8s, gs)
		return err == nil && len(entries) == 1001 && apimeta.IsStatusConditionTrue(gs.Status.Conditions, meta.ReadyCondition), fmt.Sprintf("%d entries (%v), %s", len(entries), err, ready(gs))
	})

	// Nor does it hold up the GitSync's deletion: with no inventory to
	// trust, nothing is pruned.
	if err := k8s.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, getGitSync(t, ns, "large")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the GitSync gone", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "large"}, &helmfluxv1alpha1.GitSync{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cm-0000"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("cm-0000: %v, want it left in place", err)
	}
}

// one Warning Event; the condition goes once the file does.
func TestAFluxV1ConfigIsReportedNotRun(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{
		"apps/.flux.yaml":    "version: 1\ncommandUpdated:\n  generators:\n  - command: kustomize build .\n",
		"apps/settings.yaml": configMap(ns, "blue"),
	})
	createGitSync(t, ns, "v1", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Paths: []string{"apps"}})
	gs := waitApplied(t, ns, "v1", repo.Head())
	c := apimeta.FindStatusCondition(gs.Status.Conditions, helmfluxv1alpha1.FluxV1ConfigIgnoredCondition)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != helmfluxv1alpha1.FluxV1ConfigIgnoredReason ||
		!strings.Contains(c.Message, "apps/.flux.yaml") {
		t.Fatalf("FluxV1ConfigIgnored = %+v, want True naming apps/.flux.yaml", c)
	}
	waitWarning(t, k8s, ns, "v1", helmfluxv1alpha1.FluxV1ConfigIgnoredReason, "apps/.flux.yaml", "kustomization.yaml")

	repo.Remove("apps/.flux.yaml")
	gone := repo.Commit("no more manifest generation")
	requestReconcile(t, ns, "v1")
	gs = waitApplied(t, ns, "v1", gone)
	if c := apimeta.FindStatusCondition(gs.Status.Conditions, helmfluxv1alpha1.FluxV1ConfigIgnoredCondition); c != nil {
		t.Errorf("FluxV1ConfigIgnored after the file went: %+v", c)
	}
}
