package gitsync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// A deleted GitSync's repository leaves the git cache, unless another
// GitSync still syncs the same repository: then it stays until that one
// goes too.
func TestDeletedGitSyncLeavesTheCache(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{"settings.yaml": configMap(ns, "blue")})
	dir, err := git.DirOf(filepath.Join(cacheDir, "git"), repo.URL())
	if err != nil {
		t.Fatal(err)
	}
	cached := func() bool { _, err := os.Stat(dir); return err == nil }
	createGitSync(t, ns, "first", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL()})
	createGitSync(t, ns, "second", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL() + "/"}) // the same repository, spelt otherwise
	waitApplied(t, ns, "first", repo.Head())
	waitApplied(t, ns, "second", repo.Head())
	if !cached() {
		t.Fatalf("%s is not in the cache at %s", repo.URL(), dir)
	}

	del := func(name string) {
		t.Helper()
		gs := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8s.Delete(context.Background(), gs); err != nil {
			t.Fatal(err)
		}
		eventually(t, "GitSync "+name+" gone", func() (bool, string) {
			list := &helmfluxv1alpha1.GitSyncList{}
			if err := k8s.List(context.Background(), list); err != nil {
				return false, err.Error()
			}
			for _, o := range list.Items {
				if o.Namespace == ns && o.Name == name {
					return false, "still there"
				}
			}
			return true, ""
		})
	}
	del("first")
	if !cached() {
		t.Errorf("the cache went with the first GitSync while the second still syncs the repository")
	}
	del("second")
	eventually(t, "the cache of the deleted GitSyncs removed", func() (bool, string) {
		return !cached(), dir
	})
}
