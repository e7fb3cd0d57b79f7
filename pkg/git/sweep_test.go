package git

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/sweep"
)

// Filled beyond its size bound, the git cache evicts the repositories used
// least recently; one whose lock an operation holds stays; an evicted one
// is fetched again (cloned) when next used.
func TestSweepEvictsLeastRecentlyUsedRepositories(t *testing.T) {
	c := newTestCache(t)
	var urls, dirs []string
	for i := range 4 {
		repo := gittest.NewRepo(t, map[string]string{"a.yaml": "a: " + string(rune('0'+i)) + "\n"})
		mustFetch(t, c, repo.URL(), Ref{}, nil)
		dir, err := DirOf(c.dir, repo.URL())
		if err != nil {
			t.Fatal(err)
		}
		// Used i hours ago, the first the longest ago.
		when := time.Now().Add(-time.Duration(4-i) * time.Hour)
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
		urls, dirs = append(urls, repo.URL()), append(dirs, dir)
	}
	var each int64
	res, err := sweep.Run(sweep.Policy{}, time.Now(), sweep.Area{Dir: c.dir})
	if err != nil || len(res.Removed) != 0 {
		t.Fatalf("a sweep without bounds: %+v, %v", res, err)
	}
	each = res.Size / 4

	// The oldest is in use: the next two go instead, leaving two.
	r, err := parseRemote(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.lock(testCtx(t), r, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dirs[0], time.Now().Add(-5*time.Hour), time.Now().Add(-5*time.Hour)); err != nil {
		t.Fatal(err) // lock touched it
	}
	res, err = c.Sweep(sweep.Policy{MaxSize: 2*each + each/2})
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{dirs[1], dirs[2]}; !reflect.DeepEqual(res.Removed, want) {
		t.Errorf("removed %v, want %v", res.Removed, want)
	}
	for i, d := range dirs {
		_, err := os.Stat(d)
		if gone := os.IsNotExist(err); gone != (i == 1 || i == 2) {
			t.Errorf("repository %d: %v", i, err)
		}
	}
	// By age: everything not used within the last 30 minutes.
	if res, err = c.Sweep(sweep.Policy{MaxAge: 30 * time.Minute}); err != nil || len(res.Removed) != 2 {
		t.Errorf("sweep by age: %+v, %v", res, err)
	}
	// An evicted repository is fetched again.
	mustFetch(t, c, urls[1], Ref{}, nil)
	if _, err := os.Stat(filepath.Join(dirs[1], "HEAD")); err != nil {
		t.Errorf("not fetched again: %v", err)
	}
}
