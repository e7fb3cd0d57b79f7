package git

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

// recordingObserver keeps what a Cache reported.
type recordingObserver struct {
	mu      sync.Mutex
	fetches []string // host/outcome
	retries map[string]int
	pushes  int
}

func (o *recordingObserver) Fetched(host string, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	o.fetches = append(o.fetches, host+"/"+outcome)
}

func (o *recordingObserver) Pushed(host string, retries int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.retries == nil {
		o.retries = map[string]int{}
	}
	o.retries[host] += retries
	o.pushes++
}

// TestObserverSeesFetchesAndPushRetries: a push that lost a race to a
// human is reported with one retry, under the host of the remote ("local"
// for file://, a host name without port, user or path over HTTP), and every
// fetch is reported with its outcome.
func TestObserverSeesFetchesAndPushRetries(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"app/deploy.yaml": "tag: 1.0.0\n", "notes.txt": "a\n"})
	o := &recordingObserver{}
	c := newTestCache(t, WithObserver(o))
	calls := 0
	edit := bumpEdit("2.0.0", &calls)
	racing := func(ctx context.Context, dir string, head Revision) (Edit, error) {
		if calls == 0 {
			repo.CommitFiles("human", map[string]string{"notes.txt": "b\n"})
		}
		return edit(ctx, dir, head)
	}
	if _, err := c.CommitAndPush(testCtx(t), repo.URL(), PushOptions{Author: testAuthor}, racing); err != nil {
		t.Fatal(err)
	}
	if o.pushes != 1 || o.retries["local"] != 1 {
		t.Fatalf("observed %d pushes with retries %v, want one push to local with 1 retry", o.pushes, o.retries)
	}
	if len(o.fetches) == 0 || o.fetches[0] != "local/ok" {
		t.Fatalf("fetches observed: %v, want local/ok ones", o.fetches)
	}

	srv := gittest.NewHTTPServer(t, repo.Root())
	if _, err := c.Fetch(testCtx(t), srv.URL(gittest.RepoName), Ref{Branch: "main"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(testCtx(t), srv.URL("missing.git"), Ref{Branch: "main"}, nil); err == nil {
		t.Fatal("fetching a missing repository succeeded")
	}
	n := len(o.fetches)
	if got := o.fetches[n-2:]; got[0] != "127.0.0.1/ok" || got[1] != "127.0.0.1/failed" {
		t.Fatalf("HTTP fetches observed as %v, want 127.0.0.1/ok then 127.0.0.1/failed", got)
	}
}
