package helm

import (
	"errors"
	"strconv"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// countingDriver counts the queries that reach a driver.
type countingDriver struct {
	driver.Driver
	queries int
}

func (d *countingDriver) Query(labels map[string]string) ([]*release.Release, error) {
	d.queries++
	return d.Driver.Query(labels)
}

func rev(name string, version int, status release.Status) *release.Release {
	return &release.Release{Name: name, Version: version, Namespace: "app",
		Info: &release.Info{Status: status}, Chart: &chart.Chart{Metadata: &chart.Metadata{Name: "c", Version: "1.0.0"}}}
}

// Helm's reads of a release's records during one action (Last, Deployed,
// the history limit) are answered from the History the caller read, kept
// current by the action's own writes; other releases' queries and a second
// action read the storage.
func TestHistoryAnswersTheActionsQueries(t *testing.T) {
	mem := driver.NewMemory()
	mem.SetNamespace("app")
	for _, r := range []*release.Release{rev("web", 1, release.StatusSuperseded), rev("web", 2, release.StatusDeployed), rev("other", 1, release.StatusDeployed)} {
		if err := mem.Create(storageKey(r), r); err != nil {
			t.Fatal(err)
		}
	}
	h, err := mem.Query(map[string]string{"name": "web", "owner": "helm"})
	if err != nil {
		t.Fatal(err)
	}
	hist := &History{namespace: "app", name: "web", releases: h}
	if l := hist.Last(); l == nil || l.Version != 2 || l.Status != StatusDeployed {
		t.Fatalf("Last = %+v, want revision 2 deployed", l)
	}
	next := &countingDriver{Driver: mem}
	store := storage.Init(hist.driver("app", "web", next))
	store.MaxHistory = 2
	last, err := store.Last("web")
	if err != nil || last.Version != 2 {
		t.Fatalf("Last = %v, %v", last, err)
	}
	// Create with a history limit queries the history and deletes revision 1.
	if err := store.Create(rev("web", 3, release.StatusPendingUpgrade)); err != nil {
		t.Fatal(err)
	}
	up := rev("web", 3, release.StatusDeployed)
	if err := store.Update(up); err != nil {
		t.Fatal(err)
	}
	deployed, err := store.Deployed("web")
	if err != nil || deployed.Version != 3 {
		t.Fatalf("Deployed = %v, %v; want revision 3", deployed, err)
	}
	hist3, err := store.History("web")
	if err != nil || len(hist3) != 2 {
		t.Fatalf("History = %d records, %v; want revisions 2 and 3", len(hist3), err)
	}
	if next.queries != 0 {
		t.Errorf("%d queries of the release reached the storage, want 0", next.queries)
	}
	if _, err := store.Deployed("other"); err != nil || next.queries != 1 {
		t.Errorf("another release's query: %v, %d queries reached the storage, want 1", err, next.queries)
	}
	if _, err := mem.Get(storageKey(rev("web", 1, ""))); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Errorf("revision 1 beyond the history limit: %v, want deleted", err)
	}
	// A History serves one action.
	if d := hist.driver("app", "web", next); d != driver.Driver(next) {
		t.Error("a History served a second action")
	}
	// NoHistory answers that there is none.
	store = storage.Init(NoHistory("app", "new").driver("app", "new", next))
	if _, err := store.History("new"); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Errorf("NoHistory: %v, want not found", err)
	}
}

func storageKey(r *release.Release) string {
	return "sh.helm.release.v1." + r.Name + ".v" + strconv.Itoa(r.Version)
}

// A chart whose templates, or its dependencies', set the hook annotation
// to an install or upgrade event (or a value they compute) may run hooks;
// one without, or with test hooks only, does not.
func TestMayRunHooks(t *testing.T) {
	tmpl := func(data string) *chart.Chart {
		return &chart.Chart{Metadata: &chart.Metadata{Name: "c"}, Templates: []*chart.File{{Name: "templates/x.yaml", Data: []byte(data)}}}
	}
	plain := tmpl("kind: ConfigMap\n")
	hooked := tmpl("kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: pre-install\n")
	tests := tmpl("kind: Pod\nmetadata:\n  annotations:\n    \"helm.sh/hook\": test,test-success\n    helm.sh/hook-delete-policy: before-hook-creation\n")
	computed := tmpl("kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: {{ .Values.when }}\n")
	parent := tmpl("kind: ConfigMap\n")
	parent.AddDependency(hooked)
	for _, tt := range []struct {
		name string
		ch   *chart.Chart
		want bool
	}{{"plain", plain, false}, {"hooked", hooked, true}, {"tests", tests, false}, {"computed", computed, true}, {"dependency", parent, true}, {"nil", nil, false}} {
		if got := MayRunHooks(tt.ch); got != tt.want {
			t.Errorf("%s: MayRunHooks = %v, want %v", tt.name, got, tt.want)
		}
	}
}
