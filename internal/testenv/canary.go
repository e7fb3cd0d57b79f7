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
)

// AssertNoCanary fails t when a secret value appears in the controllers'
// logs, in an Event of namespace ns, or in the status of a GitSync or
// HelmRelease there: the places a leaked credential would be read by people
// who may not read Secrets.
func AssertNoCanary(t testing.TB, c client.Reader, ns, canary, logs string) {
	t.Helper()
	ctx := context.Background()
	if strings.Contains(logs, canary) {
		t.Errorf("the canary secret appears in the controllers' logs")
	}
	evs := &eventsv1.EventList{}
	if err := c.List(ctx, evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if strings.Contains(e.Note, canary) {
			t.Errorf("the canary secret appears in Event %s: %s", e.Name, e.Note)
		}
	}
	statuses := map[string]any{}
	gss := &helmfluxv1alpha1.GitSyncList{}
	if err := c.List(ctx, gss, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, gs := range gss.Items {
		statuses["GitSync "+gs.Name] = gs.Status
	}
	hrs := &helmv1.HelmReleaseList{}
	if err := c.List(ctx, hrs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, hr := range hrs.Items {
		statuses["HelmRelease "+hr.Name] = hr.Status
	}
	for name, st := range statuses {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), canary) {
			t.Errorf("the canary secret appears in the status of %s", name)
		}
	}
}
