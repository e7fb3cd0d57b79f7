package apply_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/apply"
)

// changes collects what a Watcher heard.
type changes struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *changes) hear(gk schema.GroupKind, m *metav1.PartialObjectMetadata) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[gk.Kind+"/"+m.Name]++
}

func (c *changes) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[key]
}

// startWatcher runs a Watcher on its own (uncounted) connection until the test ends.
func startWatcher(t *testing.T) (*apply.Watcher, *changes) {
	t.Helper()
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	heard := &changes{seen: map[string]int{}}
	w := apply.NewWatcher(mc, mapper, heard.hear)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, heard
}

func TestSyncWithAWatcherSendsNothingForUnchangedObjectsAndHearsDrift(t *testing.T) {
	w, heard := startWatcher(t)
	_, c, counter, ns := newApplier(t)
	a := apply.New(c, "helmflux", apply.WithWatcher(w))
	state := apply.NewState()
	ctx := context.Background()
	set := func(color string) []*unstructured.Unstructured {
		return objects(t, ns, appSetWith(color))
	}

	// The client's REST mapper reads discovery once per group.
	for _, gk := range []schema.GroupKind{{Kind: "Namespace"}, {Kind: "ConfigMap"}, {Group: "apps", Kind: "Deployment"}} {
		if _, err := c.RESTMapper().RESTMapping(gk); err != nil {
			t.Fatal(err)
		}
	}
	counter.Reset()
	cs, err := a.Sync(ctx, set("blue"), state)
	if err != nil {
		t.Fatalf("first sync: %v", err)
	}
	want := map[string]apply.Action{"Namespace/" + ns: apply.Created, "ConfigMap/settings": apply.Created, "Deployment/web": apply.Created}
	if got := actions(cs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first sync = %v, want %v", got, want)
	}
	// Watched kinds are neither read before nor after: a dry-run and an apply each.
	if r := counter.Reads(); r > 1 { // the new Namespace's existence check
		t.Errorf("first sync read %d times, want at most 1", r)
	}

	// The watch catches up with the writes (a pass before it does costs
	// those objects two requests again, no more).
	ids := []apply.ObjectID{{Kind: "Namespace", Name: ns}, {Kind: "ConfigMap", Namespace: ns, Name: "settings"},
		{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}}
	testenv.Eventually(t, 30*time.Second, "the watch sees the applied objects", func() (bool, string) {
		for _, id := range ids {
			if fp, exists, ok := w.Lookup(id); !ok || !exists || state.Drifted(id, fp, exists) {
				return false, id.Display()
			}
		}
		return true, ""
	})
	counter.Reset()
	cs, err = a.Sync(ctx, set("blue"), state)
	if err != nil {
		t.Fatalf("second sync: %v", err)
	}
	if n := cs.Count(apply.Unchanged); n != 3 {
		t.Errorf("second sync: %s, want 3 unchanged", cs.Summary())
	}
	if total := counter.Reads() + counter.Writes() + counter.DryRuns(); total != 0 {
		t.Errorf("an unchanged sync sent %d requests (%d reads, %d dry-runs, %d writes), want 0",
			total, counter.Reads(), counter.DryRuns(), counter.Writes())
	}

	// A change in git costs that object only.
	counter.Reset()
	cs, err = a.Sync(ctx, set("green"), state)
	if err != nil {
		t.Fatalf("third sync: %v", err)
	}
	if got := actions(cs)["ConfigMap/settings"]; got != apply.Configured || cs.Count(apply.Unchanged) != 2 {
		t.Errorf("third sync: %s (ConfigMap %s), want the ConfigMap configured and 2 unchanged", cs.Summary(), got)
	}
	if counter.Reads() != 0 || counter.DryRuns() != 1 || counter.Writes() != 1 {
		t.Errorf("a one-object change sent %d reads, %d dry-runs, %d writes; want 0, 1, 1", counter.Reads(), counter.DryRuns(), counter.Writes())
	}

	// Someone edits the ConfigMap: the watch hears it, the state knows it
	// drifted, and the next sync puts it back.
	before := heard.count("ConfigMap/settings")
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["color"] = "red"
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	id := apply.ObjectID{Kind: "ConfigMap", Namespace: ns, Name: "settings"}
	testenv.Eventually(t, 30*time.Second, "the watch hears the edit and the state calls it drift", func() (bool, string) {
		fp, exists, ok := w.Lookup(id)
		return heard.count("ConfigMap/settings") > before && ok && exists && state.Drifted(id, fp, exists),
			fmt.Sprintf("events %d (before %d), lookup ok=%v exists=%v", heard.count("ConfigMap/settings"), before, ok, exists)
	})
	cs, err = a.Sync(ctx, set("green"), state)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs)["ConfigMap/settings"]; got != apply.Configured {
		t.Errorf("sync after the edit: ConfigMap %s, want configured (%s)", got, cs.Summary())
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil || cm.Data["color"] != "green" {
		t.Errorf("after the sync the ConfigMap holds %v (%v), want green", cm.Data, err)
	}

	// Someone deletes it: the next sync creates it again.
	before = heard.count("ConfigMap/settings")
	if err := c.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the watch hears the delete", func() (bool, string) {
		_, exists, ok := w.Lookup(id)
		return heard.count("ConfigMap/settings") > before && ok && !exists, fmt.Sprintf("lookup ok=%v exists=%v", ok, exists)
	})
	if !state.Drifted(id, apply.Fingerprint{}, false) {
		t.Fatalf("a deleted object is not drift")
	}
	cs, err = a.Sync(ctx, set("green"), state)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs)["ConfigMap/settings"]; got != apply.Created {
		t.Errorf("sync after the delete: ConfigMap %s, want created (%s)", got, cs.Summary())
	}

	// Controllers writing status are no drift: the Deployment keeps its
	// generation.
	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, dep); err != nil {
		t.Fatal(err)
	}
	dep.Status.ObservedGeneration = dep.Generation
	dep.Status.Replicas = 2
	if err := c.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	depID := apply.ObjectID{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}
	testenv.Eventually(t, 30*time.Second, "the watch sees the status write", func() (bool, string) {
		return heard.count("Deployment/web") > 0, "no event"
	})
	if fp, exists, _ := w.Lookup(depID); state.Drifted(depID, fp, exists) {
		t.Errorf("a status write counts as drift")
	}
}

func appSetWith(color string) string {
	return strings.Replace(appSet, "color: blue", "color: "+color, 1)
}

// A Watcher whose identity may not list a kind leaves it unwatched: Sync
// then reads and dry-runs its objects on every pass, as Apply does, and a
// second pass writes nothing.
func TestSyncFallsBackForKindsTheWatcherMayNotList(t *testing.T) {
	nobody := rest.CopyConfig(cfg)
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	mc, err := metadata.NewForConfig(nobody)
	if err != nil {
		t.Fatal(err)
	}
	_, c, counter, ns := newApplier(t)
	w := apply.NewWatcher(mc, c.RESTMapper(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	a := apply.New(c, "helmflux", apply.WithWatcher(w))
	state := apply.NewState()
	if _, err := a.Sync(ctx, objects(t, ns, appSet), state); err != nil {
		t.Fatal(err)
	}
	if w.Watched(ctx, schema.GroupKind{Kind: "ConfigMap"}) {
		t.Fatal("a kind the watcher may not list counts as watched")
	}
	counter.Reset()
	cs, err := a.Sync(ctx, objects(t, ns, appSet), state)
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.Count(apply.Unchanged); n != 3 {
		t.Errorf("second sync: %s, want 3 unchanged", cs.Summary())
	}
	if counter.Writes() != 0 || counter.Reads() < 3 || counter.DryRuns() != 3 {
		t.Errorf("an unwatched pass made %d reads, %d dry-runs and %d writes; want the three objects read and dry-run and nothing written",
			counter.Reads(), counter.DryRuns(), counter.Writes())
	}
}
