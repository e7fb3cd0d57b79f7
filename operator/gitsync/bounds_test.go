package gitsync_test

import (
	"fmt"
	"strings"
	"testing"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// A manifest set above the operator's bounds (here more objects than
// manifest.DefaultMaxObjects, in one file well under the file size bound;
// the file size bound is TestEscapesAndOversizedFilesAreRefused's) is
// refused with a status naming the file and the limit and a Warning Event,
// and nothing of it is applied; a GitSync of another repository next to it
// is applied.
func TestHugeManifestSetIsRefused(t *testing.T) {
	ns := newNamespace(t)
	var many strings.Builder
	for i := range manifest.DefaultMaxObjects + 1 {
		fmt.Fprintf(&many, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c%d, namespace: %s}\n", i, ns)
	}
	huge := gittest.NewRepo(t, map[string]string{"many.yaml": many.String()})
	fine := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
	createGitSync(t, ns, "huge", helmfluxv1alpha1.GitSyncSpec{URL: huge.URL()})
	createGitSync(t, ns, "fine", helmfluxv1alpha1.GitSyncSpec{URL: fine.URL()})

	want := fmt.Sprintf("more than %d objects", manifest.DefaultMaxObjects)
	eventually(t, "the huge manifest set refused", func() (bool, string) {
		r := ready(getGitSync(t, ns, "huge"))
		return strings.HasPrefix(r, "False "+helmfluxv1alpha1.BuildFailedReason) && strings.Contains(r, "many.yaml") && strings.Contains(r, want), r
	})
	assertEvent(t, ns, want)
	waitApplied(t, ns, "fine", fine.Head())
	if gs := getGitSync(t, ns, "huge"); gs.Status.Inventory != nil || gs.Status.LastAppliedRevision != "" {
		t.Errorf("the refused GitSync applied something: %+v", gs.Status)
	}
}
