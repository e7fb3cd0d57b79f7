package gitsync_test

import (
	"strings"
	"testing"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// taggedRepo makes a repository whose ConfigMap settings has the color of
// each tag: v1.0.0, v1.1.0 and v2.0.0, then a commit on main that no tag
// names. It returns the commit of each tag.
func taggedRepo(t *testing.T, ns string) (*gittest.Repo, map[string]string) {
	t.Helper()
	repo := gittest.NewRepo(t, nil)
	tags := map[string]string{}
	for _, tag := range []string{"v1.0.0", "v1.1.0", "v2.0.0"} {
		tags[tag] = repo.CommitFiles(tag, map[string]string{"settings.yaml": configMap(ns, tag)})
		repo.Tag(tag)
	}
	repo.CommitFiles("untagged", map[string]string{"settings.yaml": configMap(ns, "untagged")})
	return repo, tags
}

// ref.tag stays on its tag, whatever main does.
func TestATagRefStaysOnItsTag(t *testing.T) {
	ns := newNamespace(t)
	repo, tags := taggedRepo(t, ns)
	createGitSync(t, ns, "pinned", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{Tag: "v1.1.0"}})
	waitAtTag(t, ns, "pinned", "v1.1.0", tags["v1.1.0"])

	repo.CommitFiles("newer", map[string]string{"settings.yaml": configMap(ns, "newer")})
	gs := waitHandled(t, ns, "pinned", requestReconcile(t, ns, "pinned"))
	if !strings.HasSuffix(gs.Status.LastFetchedRevision, tags["v1.1.0"]) || settingsColor(t, ns) != "v1.1.0" {
		t.Errorf("a tag ref moved with main: fetched %s, color %q", gs.Status.LastFetchedRevision, settingsColor(t, ns))
	}
}

// ref.semver follows the highest tag in the range, and a new matching tag
// (an annotated one here) on the next fetch.
func TestASemverRefFollowsTheHighestTagInRange(t *testing.T) {
	ns := newNamespace(t)
	repo, tags := taggedRepo(t, ns)
	createGitSync(t, ns, "ranged", helmfluxv1alpha1.GitSyncSpec{URL: repo.URL(), Ref: &helmfluxv1alpha1.GitRef{SemVer: ">=1.0.0 <2.0.0"}})
	waitAtTag(t, ns, "ranged", "v1.1.0", tags["v1.1.0"])

	next := repo.CommitFiles("v1.2.0", map[string]string{"settings.yaml": configMap(ns, "v1.2.0")})
	repo.AnnotatedTag("v1.2.0", "release 1.2.0")
	requestReconcile(t, ns, "ranged")
	waitAtTag(t, ns, "ranged", "v1.2.0", next)
}

// waitAtTag waits until a GitSync applied the commit of tag, and checks that
// the revision names the tag and that the cluster has the tag's color.
func waitAtTag(t *testing.T, ns, name, tag, hash string) {
	t.Helper()
	gs := waitApplied(t, ns, name, hash)
	if want := tag + "@sha1:" + hash; gs.Status.LastAppliedRevision != want {
		t.Errorf("lastAppliedRevision = %s, want %s", gs.Status.LastAppliedRevision, want)
	}
	if color := settingsColor(t, ns); color != tag {
		t.Errorf("color = %q, want %s", color, tag)
	}
}
