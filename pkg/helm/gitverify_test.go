package helm

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// A git chart whose source asks for verification resolves and loads only
// at a commit signed by a trusted key: an unsigned commit that changes only
// the chart's templates is refused by Resolve (before Chart.yaml is read)
// and by Load (a reference that names it, resolved or not), even when an
// unverified Resolve of the same source is cached.
func TestGitVerification(t *testing.T) {
	trusted := gittest.NewOpenPGPKey(t, "trusted")
	stranger := gittest.NewOpenPGPKey(t, "stranger")
	gc, err := git.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &gitFixture{repo: gittest.NewRepo(t, nil), gc: gc}
	f.c = newChartsIn(t, t.TempDir(), gc)
	chart := helmtest.Simple("app", "1.0.0")
	f.writeChart(t, "charts/app", chart)
	signed := f.repo.Commit("add chart", gittest.SignedBy(trusted))

	head := func(keys string) ChartSource {
		src := f.src("charts/app")
		src.Verify = []GitVerification{{KeyRing: keys}}
		return src
	}
	good := mustResolve(t, f.c, head(trusted.PublicArmored))
	if !strings.HasSuffix(good.Revision, signed) {
		t.Fatalf("resolved %s, want the signed commit %s", good.Revision, signed)
	}
	f.load(t, good)
	if _, err := f.c.Resolve(testCtx(t), head(stranger.PublicArmored)); !errors.Is(err, ErrUnverified) ||
		!strings.Contains(err.Error(), "signed by a key not in the key ring") {
		t.Errorf("Resolve with another key ring: %v, want ErrUnverified", err)
	}

	// An unsigned commit that changes only a template.
	chart.Templates["configmap.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: injected\n"
	f.writeChart(t, "charts/app", chart)
	unsigned := f.repo.Commit("change a template")
	ttl := newChartsIn(t, t.TempDir(), gc, WithIndexTTL(time.Hour))
	unverified := mustResolve(t, ttl, f.src("charts/app")) // cached for the TTL
	if !strings.HasSuffix(unverified.Revision, unsigned) {
		t.Fatalf("unverified Resolve: %s, want %s", unverified.Revision, unsigned)
	}
	for name, c := range map[string]*Charts{"": f.c, " after an unverified one": ttl} {
		_, err = c.Resolve(testCtx(t), head(trusted.PublicArmored))
		if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "commit "+unsigned+" is not verified: commit is not signed") {
			t.Errorf("Resolve of the unsigned commit%s: %v, want ErrUnverified naming it", name, err)
		}
	}
	builds := f.c.Stats().GitBuilds
	for name, ref := range map[string]*ChartRef{"resolved without verification": unverified, "the signed chart's digest": withRevision(good, unverified.Revision)} {
		ref.Source = head(trusted.PublicArmored)
		if _, err := f.c.Load(testCtx(t), ref); !errors.Is(err, ErrUnverified) {
			t.Errorf("Load of the unsigned commit (%s): %v, want ErrUnverified", name, err)
		}
	}
	if n := f.c.Stats().GitBuilds; n != builds {
		t.Errorf("%d checkouts of the unsigned commit", n-builds)
	}

	// A signed commit on top is enough for "head", not for "all" since the
	// signed commit before the unsigned one.
	f.repo.CommitFiles("fix", map[string]string{"README.md": "signed\n"}, gittest.SignedBy(trusted))
	if ref := mustResolve(t, f.c, head(trusted.PublicArmored)); ref.Version != "1.0.0" {
		t.Errorf("head mode after a signed commit: %+v", ref)
	}
	all := head(trusted.PublicArmored)
	all.Verify[0].Since = signed
	if _, err := f.c.Resolve(testCtx(t), all); !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), unsigned) {
		t.Errorf("all mode since the signed commit: %v, want the unsigned commit refused", err)
	}
	// Since not on the history (rewritten): the head alone, as a GitSync does.
	all.Verify[0].Since = strings.Repeat("0", 40)
	mustResolve(t, f.c, all)
}

func withRevision(ref *ChartRef, rev string) *ChartRef {
	cp := *ref
	cp.Revision = rev
	return &cp
}
