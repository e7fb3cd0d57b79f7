package helmrelease_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// An index.yaml above the cap (streamed without a Content-Length, so the
// size shows only while reading) fails the HelmRelease that uses it with a
// message naming the repository and the cap, and a Warning Event; a
// HelmRelease of another repository is installed meanwhile.
func TestIndexAboveTheCapIsRefused(t *testing.T) {
	ns := newNamespace(t)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/index.yaml" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-yaml")
		_, _ = fmt.Fprint(w, "apiVersion: v1\nentries:\n  app:\n")
		line := []byte(strings.Repeat("#", 1023) + "\n")
		for range helm.DefaultMaxIndexSize/int64(len(line)) + 1 {
			if _, err := w.Write(line); err != nil {
				return // the operator stopped reading
			}
		}
	}))
	t.Cleanup(huge.Close)
	good := helmtest.NewRepoServer(t)
	good.Add(t, appChart("1.0.0"))

	mustCreateHR(t, repoRelease(ns, "huge", huge.URL, "1.0.0", ""))
	mustCreateHR(t, repoRelease(ns, "fine", good.URL(), "1.0.0", ""))

	hr := waitCondition(t, ns, "huge", meta.ReadyCondition, "False "+helmv1.ChartFetchFailedReason)
	c := condition(hr, meta.ReadyCondition)
	for _, want := range []string{huge.URL, fmt.Sprint(helm.DefaultMaxIndexSize)} {
		if !strings.Contains(c, want) {
			t.Errorf("Ready does not name %s: %s", want, c)
		}
	}
	waitEvent(t, ns, "huge", helmv1.ChartFetchFailedReason, huge.URL)
	waitReady(t, ns, "fine")
}
