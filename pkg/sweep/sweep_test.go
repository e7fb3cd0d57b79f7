package sweep

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
)

// put makes an entry of n bytes last used age ago: a file, or a directory
// holding one when dir is set.
func put(t *testing.T, area, name string, n int, age time.Duration, dir bool) string {
	t.Helper()
	p := filepath.Join(area, name)
	file := p
	if dir {
		if err := os.MkdirAll(filepath.Join(p, "objects"), 0o700); err != nil {
			t.Fatal(err)
		}
		file = filepath.Join(p, "objects", "pack")
	}
	if err := os.WriteFile(file, make([]byte, n), 0o600); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
	return p
}

func names(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	sort.Strings(out)
	return out
}

// Beyond the size bound the least recently used entries go, across areas,
// until the rest fit; scratch entries (".tmp") are never swept.
func TestRunEvictsLeastRecentlyUsedBeyondTheSize(t *testing.T) {
	git, charts := t.TempDir(), t.TempDir()
	for i := range 6 {
		put(t, git, fmt.Sprintf("repo%d", i), 1000, time.Duration(10-i)*time.Hour, true) // repo0 oldest
		put(t, charts, fmt.Sprintf("chart%d.tgz", i), 500, time.Duration(20-i)*time.Minute, false)
	}
	put(t, git, ".tmp", 100000, 1000*time.Hour, true)
	res, err := Run(Policy{MaxSize: 5000}, time.Now(), Area{Dir: git}, Area{Dir: charts})
	if err != nil {
		t.Fatal(err)
	}
	// 9000 bytes: the four oldest repositories bring it to 5000.
	if want := []string{"repo0", "repo1", "repo2", "repo3"}; !reflect.DeepEqual(names(res.Removed), want) {
		t.Errorf("removed %v, want %v", names(res.Removed), want)
	}
	if res.Size != 5000 || res.Freed != 4000 {
		t.Errorf("size %d freed %d, want 5000 and 4000", res.Size, res.Freed)
	}
	if _, err := os.Stat(filepath.Join(git, ".tmp")); err != nil {
		t.Errorf("the scratch directory was swept: %v", err)
	}
}

// Entries unused for longer than MaxAge go whatever the size; an entry
// whose cache says it is in use stays.
func TestRunEvictsByAgeAndSkipsEntriesInUse(t *testing.T) {
	area := t.TempDir()
	put(t, area, "fresh", 10, time.Minute, false)
	put(t, area, "stale", 10, 48*time.Hour, false)
	busy := put(t, area, "busy", 10, 72*time.Hour, true)
	remove := func(p string) error {
		if p == busy {
			return ErrInUse
		}
		return os.RemoveAll(p)
	}
	res, err := Run(Policy{MaxAge: 24 * time.Hour}, time.Now(), Area{Dir: area, Remove: remove})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"stale"}; !reflect.DeepEqual(names(res.Removed), want) {
		t.Errorf("removed %v, want %v", names(res.Removed), want)
	}
	for _, p := range []string{"fresh", "busy"} {
		if _, err := os.Stat(filepath.Join(area, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := Run(Policy{MaxAge: time.Hour}, time.Now(), Area{Dir: filepath.Join(area, "missing")}); err != nil {
		t.Errorf("a missing area: %v", err)
	}
}
