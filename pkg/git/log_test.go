package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

func mustLog(t *testing.T, c *Cache, url string, rev Revision, opts LogOptions) LogResult {
	t.Helper()
	res, err := c.Log(testCtx(t), url, rev, opts)
	if err != nil {
		t.Fatalf("Log(%s): %v", rev, err)
	}
	return res
}

func mustPathChanges(t *testing.T, c *Cache, url string, rev Revision, path, until string, opts LogOptions) []string {
	t.Helper()
	got, err := c.PathChanges(testCtx(t), url, rev, path, until, opts)
	if err != nil {
		t.Fatalf("PathChanges(%s, %q, %q): %v", rev, path, until, err)
	}
	return hashes(got)
}

func hashes(entries []LogEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Hash
	}
	return out
}

// withParents makes a gittest commit a merge of these parents.
func withParents(hs ...string) gittest.CommitOption {
	return func(o *gogit.CommitOptions) {
		for _, h := range hs {
			o.Parents = append(o.Parents, plumbing.NewHash(h))
		}
	}
}

// storeInCache writes a commit object straight into url's cache entry, as a
// damaged or hand-made history would have it, and returns its hash.
func storeInCache(t *testing.T, c *Cache, url string, cm *object.Commit) string {
	t.Helper()
	r, err := parseRemote(url)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := gogit.PlainOpen(c.repoDir(r))
	if err != nil {
		t.Fatal(err)
	}
	h, err := store(repo.Storer, cm)
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func isDamaged(c *Cache, url string) bool {
	r, _ := parseRemote(url)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.damaged[r.key]
}

func TestLogTrailersAndSubjects(t *testing.T) {
	long := strings.Repeat("x", maxTrailerValue)
	var many strings.Builder
	var first100 []Trailer
	for i := range 150 {
		fmt.Fprintf(&many, "Key-%d: v%d\n", i, i)
		if i < maxTrailers {
			first100 = append(first100, Trailer{fmt.Sprintf("Key-%d", i), fmt.Sprintf("v%d", i)})
		}
	}
	subj := strings.Repeat("é", 150) // 300 bytes

	tests := []struct {
		name        string
		msg         string
		wantSubject string
		want        []Trailer
	}{
		{name: "subject only", msg: "Just a subject", wantSubject: "Just a subject"},
		{name: "one paragraph of trailers is a title", msg: "Key: v\nOther: w\n", wantSubject: "Key: v"},
		{name: "subject and trailers", msg: "Subj\n\nKey: v\nOther-Key: w\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}, {"Other-Key", "w"}}},
		{name: "CRLF", msg: "Subj\r\n\r\nBody\r\n\r\nKey: v\r\nB: w \r\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}, {"B", "w"}}},
		{name: "continuation lines are unfolded", msg: "Subj\n\nKey: first\n  second\n\tthird\nB: w\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "first second third"}, {"B", "w"}}},
		{name: "a non-trailer line in the last paragraph", msg: "Subj\n\nKey: v\nthis is prose\n", wantSubject: "Subj"},
		{name: "trailers not in the last paragraph", msg: "Subj\n\nKey: v\n\nprose at the end\n", wantSubject: "Subj"},
		{name: "body then trailers, trailing blank lines", msg: "Subj\n\nBody text\nmore\n\nKey: v\n\n \n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}}},
		{name: "Signed-off-by allows other lines", msg: "Subj\n\nSigned-off-by: A <a@x>\nprose line\nKey: v\n", wantSubject: "Subj",
			want: []Trailer{{"Signed-off-by", "A <a@x>"}, {"Key", "v"}}},
		{name: "Signed-off-by with too much prose", msg: "Subj\n\nSigned-off-by: A\np1\np2\np3\np4\n", wantSubject: "Subj"},
		{name: "cherry-pick line", msg: "Subj\n\n(cherry picked from commit abc)\nKey: v\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}}},
		{name: "space before the colon", msg: "Subj\n\nKey : v\nEmpty:\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}, {"Empty", ""}}},
		{name: "key with a bad byte", msg: "Subj\n\nKey_1: v\n", wantSubject: "Subj"},
		{name: "key of two words", msg: "Subj\n\nBad Key: v\n", wantSubject: "Subj"},
		{name: "indented first line", msg: "Subj\n\n  Key: v\n", wantSubject: "Subj"},
		{name: "indented line before the first trailer", msg: "Subj\n\n  indented\nKey: v\n", wantSubject: "Subj"},
		{name: "comment lines are skipped", msg: "Subj\n\n# note\nKey: v\n# more\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}}},
		{name: "value of 1 KiB", msg: "Subj\n\nKey: " + long + "\n", wantSubject: "Subj",
			want: []Trailer{{"Key", long}}},
		{name: "value over 1 KiB is not a trailer", msg: "Subj\n\nA: a\nKey: " + long + "y\n", wantSubject: "Subj"},
		{name: "continuation over 1 KiB drops the trailer", msg: "Subj\n\nA: a\nKey: " + long + "\n y\n", wantSubject: "Subj",
			want: []Trailer{{"A", "a"}}},
		{name: "at most 100 trailers", msg: "Subj\n\n" + many.String(), wantSubject: "Subj", want: first100},
		{name: "message just under 64 KiB", msg: "Subj\n\n" + strings.Repeat("b", maxMessageRead-100) + "\n\nKey: v\n", wantSubject: "Subj",
			want: []Trailer{{"Key", "v"}}},
		{name: "message over 64 KiB", msg: "Subj\n\n" + strings.Repeat("b", maxMessageRead) + "\n\nKey: v\n", wantSubject: "Subj"},
		{name: "trailers of a message over 64 KiB are not read", msg: "Subj\n\n" + strings.Repeat("K: v\n", maxMessageRead/5+10), wantSubject: "Subj"},
		{name: "leading blank lines", msg: "\n \nSubj  \n\nKey: v\n", wantSubject: "Subj", want: []Trailer{{"Key", "v"}}},
		{name: "subject cut at 200 bytes on a rune boundary", msg: subj + "\n", wantSubject: strings.Repeat("é", 100)},
		{name: "subject ends at a lone CR", msg: "Subj\rhidden\n", wantSubject: "Subj"},
		{name: "empty message", msg: ""},
	}
	repo := gittest.NewRepo(t, nil)
	commits := make([]string, len(tests))
	for i, tt := range tests {
		commits[i] = repo.RawCommit(gittest.DefaultBranch, tt.msg, nil)
	}
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	res := mustLog(t, c, repo.URL(), rev, LogOptions{})
	byHash := map[string]LogEntry{}
	for _, e := range res.Entries {
		byHash[e.Hash] = e
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := byHash[commits[i]]
			if !ok {
				t.Fatalf("commit %s not in the log", commits[i])
			}
			if e.Subject != tt.wantSubject {
				t.Errorf("subject %q, want %q", e.Subject, tt.wantSubject)
			}
			if len(e.Subject) > maxSubject || strings.ContainsAny(e.Subject, "\r\n") || !utf8.ValidString(e.Subject) {
				t.Errorf("subject %q is not bounded to one valid line", e.Subject)
			}
			if !slices.Equal(e.Trailers, tt.want) {
				t.Errorf("trailers %q, want %q", e.Trailers, tt.want)
			}
		})
	}
}

func TestLogWalksEveryParentNewestFirst(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a.yaml": "1", "b.yaml": "1"})
	root := repo.Head()
	repo.Branch("auto")
	auto := repo.CommitFiles("Update image\n\nHelmflux-Image: app:2\n", map[string]string{"a.yaml": "2"})
	repo.Switch(gittest.DefaultBranch)
	human := repo.CommitFiles("Human edit", map[string]string{"b.yaml": "2"})
	merge := repo.CommitFiles("Merge auto", map[string]string{"a.yaml": "2"}, withParents(human, auto))
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	res := mustLog(t, c, repo.URL(), rev, LogOptions{})
	if want := []string{merge, human, auto, root}; !slices.Equal(hashes(res.Entries), want) {
		t.Fatalf("log %v, want %v", hashes(res.Entries), want)
	}
	if res.Truncated || res.Shallow {
		t.Errorf("truncated %v, shallow %v; want neither", res.Truncated, res.Shallow)
	}
	m, a := res.Entries[0], res.Entries[2]
	if !slices.Equal(m.Parents, []string{human, auto}) {
		t.Errorf("merge parents %v, want [%s %s]", m.Parents, human, auto)
	}
	if want := []Trailer{{"Helmflux-Image", "app:2"}}; !slices.Equal(a.Trailers, want) {
		t.Errorf("second-parent commit trailers %v, want %v", a.Trailers, want)
	}
	if a.Author != (Signature{Name: "gittest", Email: "gittest@example.com"}) || a.Subject != "Update image" {
		t.Errorf("entry %+v", a)
	}
	if !a.Time.Equal(time.Date(2024, 1, 1, 0, 2, 0, 0, time.UTC)) {
		t.Errorf("time %v", a.Time)
	}

	if got, want := mustPathChanges(t, c, repo.URL(), rev, "a.yaml", "", LogOptions{}), []string{merge, auto, root}; !slices.Equal(got, want) {
		t.Errorf("changes of a.yaml %v, want %v (the merge differs from its first parent)", got, want)
	}
	if got, want := mustPathChanges(t, c, repo.URL(), rev, "b.yaml", "", LogOptions{}), []string{human, root}; !slices.Equal(got, want) {
		t.Errorf("changes of b.yaml %v, want %v", got, want)
	}
}

func TestLogBreaksTimeTiesByHash(t *testing.T) {
	repo := gittest.NewRepo(t, nil)
	base := repo.RemoteHead(gittest.DefaultBranch)
	sig := object.Signature{Name: "n", Email: "e", When: base.Committer.When.Add(time.Hour)}
	c := newTestCache(t)
	mustFetch(t, c, repo.URL(), Ref{}, nil)
	side := func(msg string) string {
		return storeInCache(t, c, repo.URL(), &object.Commit{Author: sig, Committer: sig, Message: msg,
			TreeHash: base.TreeHash, ParentHashes: []plumbing.Hash{base.Hash}})
	}
	x, y, z := side("x"), side("y"), side("z")
	top := storeInCache(t, c, repo.URL(), &object.Commit{Author: sig, Committer: sig, Message: "octopus",
		TreeHash: base.TreeHash, ParentHashes: []plumbing.Hash{plumbing.NewHash(z), plumbing.NewHash(x), plumbing.NewHash(y)}})
	sorted := []string{x, y, z}
	slices.Sort(sorted)
	want := append(append([]string{top}, sorted...), base.Hash.String())
	for range 3 {
		res := mustLog(t, reopen(t, c), repo.URL(), Revision{Hash: top}, LogOptions{})
		if got := hashes(res.Entries); !slices.Equal(got, want) {
			t.Fatalf("log %v, want %v", got, want)
		}
	}
}

// reopen is a fresh Cache (empty history cache) on c's directory.
func reopen(t *testing.T, c *Cache) *Cache {
	t.Helper()
	fresh, err := NewCache(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

func TestLogBounds(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	all := []string{repo.Head()}
	for i := 1; i <= 9; i++ {
		all = append(all, repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)}))
	}
	slices.Reverse(all) // newest first, as the log
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	timeOf := func(i int) time.Time { // of all[i]: gittest commits are a minute apart
		return time.Date(2024, 1, 1, 0, 10-i, 0, 0, time.UTC)
	}

	tests := []struct {
		name          string
		opts          LogOptions
		want          int // entries: all[:want]
		wantTruncated bool
	}{
		{"default", LogOptions{}, 10, false},
		{"max commits below the history", LogOptions{MaxCommits: 4}, 4, true},
		{"max commits is the history", LogOptions{MaxCommits: 10}, 10, false},
		{"one commit", LogOptions{MaxCommits: 1}, 1, true},
		{"since cuts older commits", LogOptions{Since: timeOf(3)}, 4, true},
		{"since between commits", LogOptions{Since: timeOf(3).Add(-time.Second)}, 4, true},
		{"since before the root", LogOptions{Since: timeOf(9).Add(-time.Hour)}, 10, false},
		{"since after the head", LogOptions{Since: timeOf(0).Add(time.Second)}, 0, true},
		{"both, max commits first", LogOptions{MaxCommits: 2, Since: timeOf(5)}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustLog(t, c, repo.URL(), rev, tt.opts)
			if got := hashes(res.Entries); !slices.Equal(got, all[:tt.want]) {
				t.Errorf("log %v, want %v", got, all[:tt.want])
			}
			if res.Truncated != tt.wantTruncated || res.Shallow {
				t.Errorf("truncated %v, shallow %v; want truncated %v", res.Truncated, res.Shallow, tt.wantTruncated)
			}
		})
	}
	_, err := c.Log(testCtx(t), repo.URL(), rev, LogOptions{MaxCommits: -1})
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("negative MaxCommits: %v, want ErrInvalidInput", err)
	}
}

func TestLogMissingParentIsShallow(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	for i := 1; i <= 3; i++ {
		repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)})
	}
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	head := repo.RemoteHead(gittest.DefaultBranch)
	gone := plumbing.NewHash(strings.Repeat("ab", 20))
	sig := head.Committer
	sig.When = sig.When.Add(time.Minute)
	// A merge whose second parent was lost, and a commit on top of nothing.
	merge := storeInCache(t, c, repo.URL(), &object.Commit{Author: sig, Committer: sig, Message: "merge",
		TreeHash: head.TreeHash, ParentHashes: []plumbing.Hash{head.Hash, gone}})
	orphan := storeInCache(t, c, repo.URL(), &object.Commit{Author: sig, Committer: sig, Message: "orphan",
		TreeHash: head.TreeHash, ParentHashes: []plumbing.Hash{gone}})

	res := mustLog(t, c, repo.URL(), Revision{Hash: merge}, LogOptions{})
	if len(res.Entries) != 5 || res.Entries[0].Hash != merge || res.Entries[1].Hash != rev.Hash {
		t.Errorf("log %v, want the merge and the 4 commits of main", hashes(res.Entries))
	}
	if !res.Shallow || res.Truncated {
		t.Errorf("shallow %v, truncated %v; want shallow only", res.Shallow, res.Truncated)
	}
	if !isDamaged(c, repo.URL()) {
		t.Error("a missing parent in a full clone was not noted as damage")
	}

	res = mustLog(t, c, repo.URL(), Revision{Hash: orphan}, LogOptions{})
	if got := hashes(res.Entries); !slices.Equal(got, []string{orphan}) || !res.Shallow {
		t.Errorf("log %v, shallow %v; want just the orphan, shallow", got, res.Shallow)
	}
	// The edge of a shallow history counts as a root for PathChanges.
	if got := mustPathChanges(t, c, repo.URL(), Revision{Hash: orphan}, "a", "", LogOptions{}); !slices.Equal(got, []string{orphan}) {
		t.Errorf("changes %v, want the orphan", got)
	}
}

func TestLogShallowClone(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	for i := 1; i <= 5; i++ {
		repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)})
	}
	srv := gittest.NewHTTPServer(t, repo.Root())
	url := srv.URL(gittest.RepoName)
	c := newTestCache(t)
	r, err := parseRemote(url)
	if err != nil {
		t.Fatal(err)
	}
	// A cache entry made by a depth-3 clone (real git serves it over HTTP).
	bare, err := gogit.PlainInit(c.repoDir(r), true)
	if err != nil {
		t.Fatal(err)
	}
	rem, err := bare.CreateRemoteAnonymous(&config.RemoteConfig{Name: "anonymous", URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	err = rem.FetchContext(testCtx(t), &gogit.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/main:refs/heads/main"}, Depth: 3, Tags: gogit.NoTags,
	})
	if err != nil {
		t.Fatalf("shallow fetch: %v", err)
	}
	head := Revision{Ref: "main", Hash: repo.Head()}

	res := mustLog(t, c, url, head, LogOptions{})
	if len(res.Entries) != 3 || res.Entries[0].Hash != head.Hash || !res.Shallow || res.Truncated {
		t.Errorf("log %v, shallow %v, truncated %v; want 3 commits, shallow", hashes(res.Entries), res.Shallow, res.Truncated)
	}
	if isDamaged(c, url) {
		t.Error("the edge of a shallow clone was noted as damage")
	}
}

func TestLogReportsDamage(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	c := newTestCache(t)
	mustFetch(t, c, repo.URL(), Ref{}, nil)
	r, _ := parseRemote(repo.URL())
	// A parent whose loose object is garbage.
	bad := strings.Repeat("cd", 20)
	p := filepath.Join(c.repoDir(r), "objects", bad[:2], bad[2:])
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	head := repo.RemoteHead(gittest.DefaultBranch)
	top := storeInCache(t, c, repo.URL(), &object.Commit{Author: head.Author, Committer: head.Committer, Message: "top",
		TreeHash: head.TreeHash, ParentHashes: []plumbing.Hash{plumbing.NewHash(bad)}})

	_, err := c.Log(testCtx(t), repo.URL(), Revision{Hash: top}, LogOptions{})
	if err == nil {
		t.Fatal("Log over a corrupt object succeeded")
	}
	if !isDamaged(c, repo.URL()) {
		t.Errorf("damage not noted after %v", err)
	}
}

func TestLogErrors(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	_, err := c.Log(testCtx(t), repo.URL(), Revision{Hash: strings.Repeat("0", 40)}, LogOptions{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "fetch it first") {
		t.Errorf("unknown revision: %v, want fs.ErrNotExist", err)
	}
	_, err = c.Log(testCtx(t), repo.URL(), Revision{Hash: "abc"}, LogOptions{})
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad hash: %v, want ErrInvalidInput", err)
	}
	_, err = c.Log(testCtx(t), "https://user:s3cret@example.com/x.git", rev, LogOptions{})
	if !errors.Is(err, errNotCached) {
		t.Errorf("never fetched: %v, want errNotCached", err)
	}
	assertNoSecret(t, err, "s3cret", "user")
	if _, err := c.PathChanges(testCtx(t), repo.URL(), rev, "../x", "", LogOptions{}); !errors.Is(err, ErrPathEscapes) {
		t.Errorf("path ../x: %v, want ErrPathEscapes", err)
	}
	if _, err := c.PathChanges(testCtx(t), repo.URL(), rev, "a", "nope", LogOptions{}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("until nope: %v, want ErrInvalidInput", err)
	}
}

func TestLogIsIncremental(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	for i := 1; i <= 20; i++ {
		repo.CommitFiles(fmt.Sprintf("c%d\n\nN: %d\n", i, i), map[string]string{"a": fmt.Sprint(i)})
	}
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	reads := func(f func()) int64 {
		before := c.objectReads.Load()
		f()
		return c.objectReads.Load() - before
	}

	var first, second LogResult
	if n := reads(func() { first = mustLog(t, c, repo.URL(), rev, LogOptions{}) }); n != 21 {
		t.Errorf("first Log read %d objects, want 21 (every commit once)", n)
	}
	if n := reads(func() { second = mustLog(t, c, repo.URL(), rev, LogOptions{}) }); n != 0 {
		t.Errorf("second Log read %d objects, want 0", n)
	}
	if !equalLogs(first, second) {
		t.Error("a warm Log differs from the cold one")
	}
	// A caller's edits do not reach the cache.
	first.Entries[0].Trailers[0].Value = "changed"
	first.Entries[0].Parents[0] = "changed"
	if again := mustLog(t, c, repo.URL(), rev, LogOptions{}); !equalLogs(again, second) {
		t.Error("editing a result changed the cache")
	}

	for i := 21; i <= 23; i++ {
		repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)})
	}
	rev = mustFetch(t, c, repo.URL(), Ref{}, nil)
	var third LogResult
	if n := reads(func() { third = mustLog(t, c, repo.URL(), rev, LogOptions{}) }); n != 3 {
		t.Errorf("Log after 3 new commits read %d objects, want 3", n)
	}
	if len(third.Entries) != 24 || !equalLogs(LogResult{Entries: third.Entries[3:]}, second) {
		t.Errorf("log after 3 new commits has %d entries, want the 3 new ones on top of the old 21", len(third.Entries))
	}

	// PathChanges reads each tree on the way once, then nothing.
	var changes []string
	if n := reads(func() { changes = mustPathChanges(t, c, repo.URL(), rev, "a", "", LogOptions{}) }); n != 24 {
		t.Errorf("first PathChanges read %d objects, want 24 (one root tree per commit)", n)
	}
	if len(changes) != 24 {
		t.Errorf("%d changes of a, want 24", len(changes))
	}
	if n := reads(func() { mustPathChanges(t, c, repo.URL(), rev, "a", "", LogOptions{}) }); n != 0 {
		t.Errorf("second PathChanges read %d objects, want 0", n)
	}
}

func equalLogs(a, b LogResult) bool {
	return a.Truncated == b.Truncated && a.Shallow == b.Shallow && slices.EqualFunc(a.Entries, b.Entries, func(x, y LogEntry) bool {
		return x.Hash == y.Hash && slices.Equal(x.Parents, y.Parents) && x.Time.Equal(y.Time) &&
			x.Author == y.Author && x.Subject == y.Subject && slices.Equal(x.Trailers, y.Trailers)
	})
}

func TestLogCacheIsBounded(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	for i := 1; i <= 29; i++ {
		repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)})
	}
	t.Run("entries", func(t *testing.T) {
		c := newTestCache(t, WithLogCacheEntries(10))
		rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
		for range 2 {
			if res := mustLog(t, c, repo.URL(), rev, LogOptions{}); len(res.Entries) != 30 || res.Truncated {
				t.Fatalf("%d entries, truncated %v; want all 30", len(res.Entries), res.Truncated)
			}
			if n := c.history.lru.Len(); n > 10 {
				t.Errorf("history cache holds %d entries, bound 10", n)
			}
		}
	})
	t.Run("bytes", func(t *testing.T) {
		c := newTestCache(t, WithLogCacheBytes(2_000))
		rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
		if res := mustLog(t, c, repo.URL(), rev, LogOptions{}); len(res.Entries) != 30 {
			t.Fatalf("%d entries, want 30", len(res.Entries))
		}
		if c.history.bytes > 2_000 || c.history.lru.Len() >= 30 {
			t.Errorf("history cache holds %d entries of %d bytes, bound 2000 bytes", c.history.lru.Len(), c.history.bytes)
		}
	})
	t.Run("remove forgets the remote", func(t *testing.T) {
		c := newTestCache(t)
		rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
		mustLog(t, c, repo.URL(), rev, LogOptions{})
		if err := c.Remove(testCtx(t), repo.URL()); err != nil {
			t.Fatal(err)
		}
		if n := c.history.lru.Len(); n != 0 || c.history.bytes != 0 {
			t.Errorf("%d entries (%d bytes) left after Remove", n, c.history.bytes)
		}
	})
	if _, err := NewCache(t.TempDir(), WithLogCacheEntries(0)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("zero entries: %v, want ErrInvalidInput", err)
	}
}

func TestPathChanges(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"app/values.yaml": "v1", "other": "x"})
	add := repo.Head()
	c1 := repo.CommitFiles("other only", map[string]string{"other": "y"})
	modify := repo.CommitFiles("modify", map[string]string{"app/values.yaml": "v2"})
	repo.Remove("app/values.yaml")
	del := repo.Commit("delete")
	readd := repo.CommitFiles("add again", map[string]string{"app/values.yaml": "v3"})
	repo.Remove("app/values.yaml")
	rename := repo.CommitFiles("rename away", map[string]string{"app/renamed.yaml": "v3"})
	c6 := repo.CommitFiles("other again", map[string]string{"other": "z"})
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	tests := []struct {
		name  string
		path  string
		until string
		opts  LogOptions
		want  []string
	}{
		{"add, modify, delete, add, rename away", "app/values.yaml", "", LogOptions{}, []string{rename, readd, del, modify, add}},
		{"a directory is a state too", "app", "", LogOptions{}, []string{rename, readd, del, modify, add}},
		{"the renamed file", "app/renamed.yaml", "", LogOptions{}, []string{rename}},
		{"another file", "other", "", LogOptions{}, []string{c6, c1, add}},
		{"until excludes itself and older", "app/values.yaml", modify, LogOptions{}, []string{rename, readd, del}},
		{"until the head", "app/values.yaml", c6, LogOptions{}, nil},
		{"until not in the walk means all of it", "app/values.yaml", strings.Repeat("0", 40), LogOptions{}, []string{rename, readd, del, modify, add}},
		{"within max commits", "app/values.yaml", "", LogOptions{MaxCommits: 3}, []string{rename, readd}},
		{"below a file", "other/x", "", LogOptions{}, nil},
		{"never there", "nope.yaml", "", LogOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustPathChanges(t, c, repo.URL(), rev, tt.path, tt.until, tt.opts)
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes %v, want %v", got, tt.want)
			}
		})
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, to
// cancel a walk in the middle.
type cancelAfter struct {
	context.Context
	n atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestLogHonoursContext(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	for i := 1; i <= 50; i++ {
		repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)})
	}
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Log(ctx, repo.URL(), rev, LogOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v, want context.Canceled", err)
	}
	mid := &cancelAfter{Context: context.Background()}
	mid.n.Store(10)
	res, err := c.Log(mid, repo.URL(), rev, LogOptions{})
	if !errors.Is(err, context.Canceled) || res.Entries != nil {
		t.Errorf("cancelled in the walk: %d entries, %v; want none and context.Canceled", len(res.Entries), err)
	}
	if n := c.objectReads.Load(); n >= 51 {
		t.Errorf("the cancelled walk read %d commits, all of them", n)
	}
	mid.n.Store(60) // enough for the walk, not for the path checks
	if _, err := c.PathChanges(mid, repo.URL(), rev, "a", "", LogOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled in PathChanges: %v, want context.Canceled", err)
	}
	if c.history.lru.Len() == 0 {
		t.Error("nothing cached from the cancelled walks")
	}
}

// TestLogLongHistory walks the default bound of 10,000 commits and logs how
// long a cold and a warm walk take (figures only: no timing is asserted).
func TestLogLongHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 10,000-commit repository")
	}
	start := time.Now()
	repo := gittest.NewLongHistory(t, DefaultLogCommits, 100, func(i int) string {
		if i%50 == 0 {
			return fmt.Sprintf("Commit %d\n\nBody.\n\nHelmflux-Hold: app:%d\nSigned-off-by: gittest <gittest@example.com>\n", i, i)
		}
		return fmt.Sprintf("Commit %d", i)
	})
	built := time.Since(start)
	c := newTestCache(t)
	start = time.Now()
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	fetched := time.Since(start)

	start = time.Now()
	cold := mustLog(t, c, repo.URL(), rev, LogOptions{})
	coldTime := time.Since(start)
	readsCold := c.objectReads.Load()
	start = time.Now()
	warm := mustLog(t, c, repo.URL(), rev, LogOptions{})
	warmTime := time.Since(start)
	start = time.Now()
	changes := mustPathChanges(t, c, repo.URL(), rev, gittest.LongHistoryEveryFile, "", LogOptions{})
	pathCold := time.Since(start)
	start = time.Now()
	mustPathChanges(t, c, repo.URL(), rev, gittest.LongHistoryEveryFile, "", LogOptions{})
	pathWarm := time.Since(start)
	t.Logf("10,000 commits: build %v, fetch %v; Log cold %v (%d reads), warm %v; PathChanges cold %v, warm %v",
		built, fetched, coldTime, readsCold, warmTime, pathCold, pathWarm)

	if len(cold.Entries) != DefaultLogCommits || !cold.Truncated || cold.Shallow {
		t.Errorf("%d entries, truncated %v, shallow %v; want the default bound of %d, truncated (the initial commit is beyond it)",
			len(cold.Entries), cold.Truncated, cold.Shallow, DefaultLogCommits)
	}
	if !equalLogs(cold, warm) {
		t.Error("warm Log differs from the cold one")
	}
	if e := cold.Entries[0]; e.Subject != "Commit 10000" || !slices.Contains(e.Trailers, Trailer{"Helmflux-Hold", "app:10000"}) {
		t.Errorf("head entry %+v", e)
	}
	if len(changes) != DefaultLogCommits/100 {
		t.Errorf("%d changes of %s, want %d", len(changes), gittest.LongHistoryEveryFile, DefaultLogCommits/100)
	}
}

func FuzzParseCommit(f *testing.F) {
	f.Add([]byte("tree " + strings.Repeat("a", 40) + "\nparent " + strings.Repeat("b", 40) +
		"\nauthor A <a@x> 1700000000 +0100\ncommitter C <c@x> 1700000000 +0100\ngpgsig -----BEGIN\n x\n\nSubj\n\nKey: v\n"))
	f.Add([]byte("parent nothex\n\n\r\n\r\nA: b\r\n  c\r\n"))
	f.Add([]byte("Subj\n\nSigned-off-by: x\n(cherry picked from commit y)\nprose\n#c\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := parseCommit(plumbing.ZeroHash, bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if len(n.subject) > maxSubject || strings.ContainsAny(n.subject, "\r\n") {
			t.Errorf("subject %q", n.subject)
		}
		if len(n.trailers) > maxTrailers || len(n.parents) > maxParents {
			t.Errorf("%d trailers, %d parents", len(n.trailers), len(n.parents))
		}
		for _, tr := range n.trailers {
			if tr.Key == "" || strings.IndexFunc(tr.Key, func(r rune) bool { return r > 127 || !isKeyByte(byte(r)) }) >= 0 || len(tr.Value) > maxTrailerValue {
				t.Errorf("trailer %q", tr)
			}
		}
		if len(n.author.Name) > maxIdentity || len(n.author.Email) > maxIdentity {
			t.Errorf("author %q", n.author)
		}
	})
}

func TestParseCommitHeaders(t *testing.T) {
	parent := strings.Repeat("b", 40)
	var raw strings.Builder
	raw.WriteString("tree " + strings.Repeat("a", 40) + "\n")
	for range maxParents + 1 {
		raw.WriteString("parent " + parent + "\n")
	}
	raw.WriteString("author " + strings.Repeat("N", 2*maxHeaderLine) + " <a@x> 1 +0000\n")
	raw.WriteString("committer C <c@x> 1700000000 +0100\n")
	raw.WriteString("gpgsig -----BEGIN PGP SIGNATURE-----\n parent " + strings.Repeat("c", 40) + "\n \n -----END\n")
	raw.WriteString("\nSubj\n")
	n, err := parseCommit(plumbing.ZeroHash, strings.NewReader(raw.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.parents) != maxParents || !n.partial {
		t.Errorf("%d parents, partial %v; want %d, partial", len(n.parents), n.partial, maxParents)
	}
	if n.tree.String() != strings.Repeat("a", 40) || n.subject != "Subj" {
		t.Errorf("tree %s, subject %q", n.tree, n.subject)
	}
	if len(n.author.Name) > maxIdentity {
		t.Errorf("author name of %d bytes", len(n.author.Name))
	}
	if !n.time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("committer time %v", n.time)
	}

	n, err = parseCommit(plumbing.ZeroHash, strings.NewReader("parent xyz\ncommitter C <c@x> 5 +0000"))
	if err != nil || !n.partial || len(n.parents) != 0 || n.subject != "" || !n.time.Equal(time.Unix(5, 0)) {
		t.Errorf("malformed parent, no message: %+v, %v", n, err)
	}
}

func TestLogConcurrentWithFetch(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"a": "0"})
	c := newTestCache(t)
	rev := mustFetch(t, c, repo.URL(), Ref{}, nil)
	errs := make(chan error, 16)
	for i := range 8 {
		go func() {
			for range 5 {
				res, err := c.Log(testCtx(t), repo.URL(), rev, LogOptions{})
				if err == nil && len(res.Entries) != 1 {
					err = fmt.Errorf("goroutine %d: %d entries, want 1", i, len(res.Entries))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range 3 {
		repo.CommitFiles(fmt.Sprintf("c%d", i), map[string]string{"a": fmt.Sprint(i)})
		mustFetch(t, c, repo.URL(), Ref{}, nil)
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
