package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/helmflux/helmflux/pkg/git/gittest"
)

//go:embed repo
var demoRepo embed.FS

// gitServer serves the demo repository over smart HTTP and, after every push,
// sends the operator a push notification, as a git host would.
type gitServer struct {
	url      string // of the repository
	workDir  string // the user's clone
	token    string // shared with the operator's receiver
	shutdown func()
}

// startGitServer makes the bare repository and the user's clone in stateDir,
// commits the demo manifests (with fill's replacements: the chart
// repository's URL, the registry's address) and serves the repository on
// addr. hook is the URL push notifications go to.
func startGitServer(ctx context.Context, stateDir, addr, hook string, fill *strings.Replacer) (*gitServer, error) {
	root := filepath.Join(stateDir, "git")
	work := filepath.Join(stateDir, "work")
	for _, d := range []string{root, work} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	opts := gogit.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}
	if _, err := gogit.PlainInitWithOptions(filepath.Join(root, "demo.git"), &gogit.PlainInitOptions{InitOptions: opts, Bare: true}); err != nil {
		return nil, fmt.Errorf("init the demo repository: %w", err)
	}
	backend, err := gittest.Backend(root)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for the git server (is another demo running?): %w", addr, err)
	}
	s := &gitServer{url: "http://" + l.Addr().String() + "/demo.git", workDir: work, token: randomToken()}
	srv := &http.Server{Handler: s.notifyAfterPush(backend, hook), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.shutdown = func() { _ = srv.Close() }

	if err := s.seed(ctx, fill); err != nil {
		s.shutdown()
		return nil, err
	}
	return s, nil
}

// notifyAfterPush serves git and posts a push notification after each
// successful push.
func (s *gitServer) notifyAfterPush(backend http.Handler, hook string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		backend.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") && rec.status == http.StatusOK {
			go s.notify(hook)
		}
	})
}

func (s *gitServer) notify(hook string) {
	req, err := http.NewRequest(http.MethodPost, hook, bytes.NewReader([]byte(`{"ref":"refs/heads/main"}`)))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// seed writes the demo manifests into the user's clone, filled in by fill,
// commits them and pushes.
func (s *gitServer) seed(ctx context.Context, fill *strings.Replacer) error {
	repo, err := gogit.PlainInitWithOptions(s.workDir, &gogit.PlainInitOptions{
		InitOptions: gogit.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		return err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.url}}); err != nil {
		return err
	}
	// `git commit` in the clone works on a machine with no git identity set.
	cfg, err := repo.Config()
	if err != nil {
		return err
	}
	cfg.User.Name, cfg.User.Email = "Demo User", "demo@example.com"
	cfg.Branches["main"] = &config.Branch{Name: "main", Remote: "origin", Merge: plumbing.NewBranchReferenceName("main")}
	if err := repo.SetConfig(cfg); err != nil {
		return err
	}
	err = fs.WalkDir(demoRepo, "repo", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := demoRepo.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(s.workDir, strings.TrimPrefix(p, "repo/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(fill.Replace(string(data))), 0o600)
	})
	if err != nil {
		return fmt.Errorf("write the demo manifests: %w", err)
	}
	return s.commitAndPush(ctx, repo, "Add the demo app")
}

// commitAndPush commits everything in the clone and pushes to the server.
func (s *gitServer) commitAndPush(ctx context.Context, repo *gogit.Repository, msg string) error {
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		return err
	}
	sig := &object.Signature{Name: "Demo User", Email: "demo@example.com", When: time.Now()}
	if _, err := wt.Commit(msg, &gogit.CommitOptions{Author: sig}); err != nil {
		return err
	}
	err = repo.PushContext(ctx, &gogit.PushOptions{RemoteName: "origin"})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return fmt.Errorf("push to %s: %w", s.url, err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
