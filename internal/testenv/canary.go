package testenv

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// Leaks name the places outside the cluster where AssertNoLeak looks for a
// secret.
type Leaks struct {
	// Logs are everything the operator logged: the in-process controllers'
	// LogBuffer, an operator process's Operator.Log, or both.
	Logs []string
	// Remotes are the git remotes the operator could push to. Every object
	// stored in them is read (gittest.Repo.Occurrences): commit messages,
	// signatures, tree entry names and every blob.
	Remotes []*gittest.Repo
}

// AssertNoLeak fails t when canary, a secret value, appears where people
// who may not read Secrets would read it: in where's logs and git remotes,
// and, in every namespace of the cluster (the test's own, a
// targetNamespace, the operator's), in an Event or in the status of a
// GitSync or HelmRelease.
func AssertNoLeak(t testing.TB, c client.Reader, canary string, where Leaks) {
	t.Helper()
	if canary == "" {
		t.Fatal("AssertNoLeak: an empty canary is found everywhere")
	}
	for i, logs := range where.Logs {
		if !strings.Contains(logs, canary) {
			continue
		}
		t.Errorf("the canary secret appears in the operator's logs (source %d)", i)
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, canary) {
				t.Logf("log line: %s", line)
			}
		}
	}
	for _, repo := range where.Remotes {
		for _, place := range repo.Occurrences(canary) {
			t.Errorf("the canary secret appears in the git remote %s: %s", repo.BareDir(), place)
		}
	}
	ctx := context.Background()
	evs := &eventsv1.EventList{}
	if err := c.List(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if containsJSON(t, e, canary) {
			t.Errorf("the canary secret appears in Event %s/%s: %s", e.Namespace, e.Name, e.Note)
		}
	}
	gss := &helmfluxv1alpha1.GitSyncList{}
	if err := c.List(ctx, gss); err != nil {
		t.Fatal(err)
	}
	for _, gs := range gss.Items {
		if containsJSON(t, gs.Status, canary) {
			t.Errorf("the canary secret appears in the status of GitSync %s/%s", gs.Namespace, gs.Name)
		}
	}
	hrs := &helmv1.HelmReleaseList{}
	if err := c.List(ctx, hrs); err != nil {
		t.Fatal(err)
	}
	for _, hr := range hrs.Items {
		if containsJSON(t, hr.Status, canary) {
			t.Errorf("the canary secret appears in the status of HelmRelease %s/%s", hr.Namespace, hr.Name)
		}
	}
}

// AssertNoCanary is AssertNoLeak for the in-process controllers' logs. ns is
// the test's namespace; every namespace is searched, so a leak into another
// one shows too.
func AssertNoCanary(t testing.TB, c client.Reader, ns, canary, logs string) {
	t.Helper()
	AssertNoLeak(t, c, canary, Leaks{Logs: []string{logs}})
}

// containsJSON reports whether v's JSON form holds s, as JSON escapes it.
func containsJSON(t testing.TB, v any, s string) bool {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(s)
	return strings.Contains(string(b), strings.Trim(string(q), `"`))
}
