package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

var testAuthor = Signature{Name: "helmflux", Email: "helmflux@example.com"}

// bumpEdit rewrites "tag: <anything>" in app/deploy.yaml to tag: want, from
// what it reads in the checkout, counting its calls.
func bumpEdit(want string, calls *int) EditFunc {
	return func(_ context.Context, dir string, head Revision) (Edit, error) {
		*calls++
		b, err := os.ReadFile(filepath.Join(dir, "app", "deploy.yaml"))
		if err != nil {
			return Edit{}, err
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "tag: ") {
				lines[i] = "tag: " + want
			}
		}
		return Edit{
			Files:   map[string][]byte{"app/deploy.yaml": []byte(strings.Join(lines, "\n"))},
			Message: "Set tag to " + want + "\n\nHelmflux-Image: app " + want + "\n",
		}, nil
	}
}

func TestCommitAndPushWritesOneCommitWithOnlyTheEdit(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{
		"app/deploy.yaml": "# keep me\ntag: 1.0.0\nother: x\n",
		"README.md":       "hello\n",
	})
	before := repo.Head()
	c := newTestCache(t)
	calls := 0
	when := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	res, err := c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor, Now: func() time.Time { return when }}, bumpEdit("1.1.0", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 || calls != 1 || res.Base.Hash != before || res.Commit.Ref != "main" {
		t.Fatalf("result %+v after %d edits", res, calls)
	}
	if len(res.Files) != 1 || res.Files[0] != "app/deploy.yaml" {
		t.Fatalf("files %v", res.Files)
	}
	log := repo.RemoteLog("main")
	head := log[0]
	if head.Hash.String() != res.Commit.Hash || head.ParentHashes[0].String() != before {
		t.Fatalf("remote head %s (parent %v), want %s on %s", head.Hash, head.ParentHashes, res.Commit.Hash, before)
	}
	if got := repo.FileAt(head, "app/deploy.yaml"); got != "# keep me\ntag: 1.1.0\nother: x\n" {
		t.Fatalf("deploy.yaml = %q", got)
	}
	if got := repo.FileAt(head, "README.md"); got != "hello\n" {
		t.Fatalf("README.md = %q", got)
	}
	if head.Author.Name != "helmflux" || head.Author.Email != "helmflux@example.com" || !head.Author.When.Equal(when) || head.Committer.Name != "helmflux" {
		t.Fatalf("author %+v committer %+v", head.Author, head.Committer)
	}
	if !strings.HasPrefix(head.Message, "Set tag to 1.1.0") {
		t.Fatalf("message %q", head.Message)
	}

	// The cache already has the pushed commit: the next fetch transfers
	// nothing and lands on it.
	if rev := mustFetch(t, c, repo.URL(), Ref{}, nil); rev.Hash != res.Commit.Hash {
		t.Fatalf("fetch after push: %s", rev.Hash)
	}

	// Applying the same edit again changes nothing: no empty commit.
	res, err = c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor}, bumpEdit("1.1.0", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != (Revision{}) || len(repo.RemoteLog("main")) != len(log) {
		t.Fatalf("a no-op edit committed: %+v", res)
	}
}

func TestCommitAndPushRedoesTheEditWhenSomeonePushedFirst(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"app/deploy.yaml": "tag: 1.0.0\n", "notes.txt": "a\n"})
	c := newTestCache(t)
	calls := 0
	edit := bumpEdit("2.0.0", &calls)
	var human string
	racing := func(ctx context.Context, dir string, head Revision) (Edit, error) {
		if calls == 0 {
			// A human pushes between our fetch and our push.
			human = repo.CommitFiles("human", map[string]string{"notes.txt": "b\n"})
		}
		return edit(ctx, dir, head)
	}
	res, err := c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor}, racing)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || calls != 2 || res.Base.Hash != human {
		t.Fatalf("result %+v after %d edits, human %s", res, calls, human)
	}
	log := repo.RemoteLog("main")
	if log[0].Hash.String() != res.Commit.Hash || log[1].Hash.String() != human {
		t.Fatalf("remote history %s, %s; want ours on the human commit", log[0].Hash, log[1].Hash)
	}
	if got := repo.FileAt(log[0], "notes.txt"); got != "b\n" {
		t.Fatalf("the human change was lost: %q", got)
	}
}

func TestCommitAndPushGivesUpWithoutForcing(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"app/deploy.yaml": "tag: 1.0.0\n", "n": "0"})
	c := newTestCache(t)
	calls := 0
	edit := bumpEdit("2.0.0", &calls)
	var humans []string
	alwaysRacing := func(ctx context.Context, dir string, head Revision) (Edit, error) {
		humans = append(humans, repo.CommitFiles("human", map[string]string{"n": string(rune('a' + len(humans)))}))
		return edit(ctx, dir, head)
	}
	_, err := c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor, MaxAttempts: 3}, alwaysRacing)
	if !errors.Is(err, ErrPushRejected) {
		t.Fatalf("got %v, want ErrPushRejected", err)
	}
	if calls != 3 {
		t.Fatalf("%d attempts, want 3", calls)
	}
	if head := repo.RemoteLog("main")[0].Hash.String(); head != humans[len(humans)-1] {
		t.Fatalf("remote head %s, want the last human commit %s", head, humans[len(humans)-1])
	}
}

func TestCommitAndPushOverHTTPWithAuthAndAPushBranch(t *testing.T) {
	const user, pass = "flux", "canary-PushPa55-41d2"
	repo := gittest.NewRepo(t, map[string]string{"app/deploy.yaml": "tag: 1.0.0\n"})
	srv := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBasicAuth(user, pass))
	url := srv.URL(gittest.RepoName)
	c := newTestCache(t)
	calls := 0
	auth := &Auth{Username: user, Password: pass, AllowInsecureHTTP: true} // the test server is plain http://
	opts := PushOptions{Author: testAuthor, Auth: auth, Branch: "main", PushBranch: "image-updates"}

	res, err := c.CommitAndPush(testCtx(t), url, opts, bumpEdit("1.1.0", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit.Ref != "image-updates" || res.Base.Ref != "main" {
		t.Fatalf("result %+v", res)
	}
	// A second pass stacks on the push branch.
	res2, err := c.CommitAndPush(testCtx(t), url, opts, bumpEdit("1.2.0", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if res2.Base.Hash != res.Commit.Hash || res2.Base.Ref != "image-updates" {
		t.Fatalf("second pass based on %+v, want %s", res2.Base, res.Commit.Hash)
	}
	if rev := mustFetch(t, newTestCache(t), url, Ref{Branch: "main"}, auth); rev.Hash != repo.Head() {
		t.Fatalf("main moved to %s", rev.Hash)
	}

	_, err = newTestCache(t).CommitAndPush(testCtx(t), url, PushOptions{Author: testAuthor, Auth: &Auth{Username: user, Password: "canary-Wrong-88aa", AllowInsecureHTTP: true}}, bumpEdit("9", &calls))
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong password: %v", err)
	}
	assertNoSecret(t, err, "canary-Wrong-88aa", pass)
}

func TestCommitAndPushSignsCommits(t *testing.T) {
	key := gittest.NewOpenPGPKey(t, "automation")
	repo := gittest.NewRepo(t, map[string]string{"app/deploy.yaml": "tag: 1.0.0\n"})
	c := newTestCache(t)
	calls := 0
	res, err := c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor, SigningKey: key.PrivateArmored(t, "")}, bumpEdit("1.1.0", &calls))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(testCtx(t), repo.URL(), res.Commit, "", key.PublicArmored); err != nil {
		t.Fatalf("pushed commit does not verify: %v", err)
	}
	_, err = c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor, SigningKey: []byte("junk")}, bumpEdit("1.2.0", &calls))
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("junk signing key: %v", err)
	}
}

func TestCommitAndPushRefusesEditsOutsideExistingFiles(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"app/deploy.yaml": "tag: 1.0.0\n"})
	repo.Symlink("link.yaml", "app/deploy.yaml")
	repo.Commit("symlink")
	before := repo.Head()
	for _, p := range []string{"../outside.yaml", "/etc/passwd", "app/new.yaml", "link.yaml", "app"} {
		t.Run(p, func(t *testing.T) {
			edit := func(context.Context, string, Revision) (Edit, error) {
				return Edit{Files: map[string][]byte{p: []byte("x")}, Message: "m"}, nil
			}
			_, err := newTestCache(t).CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor}, edit)
			if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrPathEscapes) {
				t.Fatalf("got %v, want a refusal", err)
			}
		})
	}
	if repo.Head() != before || repo.RemoteLog("main")[0].Hash.String() != before {
		t.Fatal("a refused edit reached the remote")
	}
	for _, a := range []Signature{{}, {Name: "x", Email: "a>b"}} {
		_, err := newTestCache(t).CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: a}, nil)
		if !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("author %+v: %v", a, err)
		}
	}
}
