package gittest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// DefaultBranch is the branch NewRepo creates and the remote's HEAD.
const DefaultBranch = "main"

// RepoName is the name of the bare repository under Root(), as servers
// expose it: srv.URL(RepoName).
const RepoName = "repo.git"

// Repo is a working repository whose commits are pushed to a bare "remote"
// repository in the same temp dir. Point servers at Root() and fetch from
// URL() (file://) or a server's URL(RepoName).
type Repo struct {
	t    testing.TB
	root string
	bare string
	work string
	repo *gogit.Repository
	now  time.Time
}

// NewRepo creates the bare remote and a working repository on branch main,
// commits files (path -> content) and pushes. files may be empty.
func NewRepo(t testing.TB, files map[string]string) *Repo {
	t.Helper()
	base := t.TempDir()
	r := &Repo{
		t:    t,
		root: filepath.Join(base, "remote"),
		work: filepath.Join(base, "work"),
		now:  time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	r.bare = filepath.Join(r.root, RepoName)
	opts := gogit.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(DefaultBranch)}
	if _, err := gogit.PlainInitWithOptions(r.bare, &gogit.PlainInitOptions{InitOptions: opts, Bare: true}); err != nil {
		t.Fatalf("init bare repo: %v", err)
	}
	repo, err := gogit.PlainInitWithOptions(r.work, &gogit.PlainInitOptions{InitOptions: opts})
	if err != nil {
		t.Fatalf("init work repo: %v", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.URL()}}); err != nil {
		t.Fatalf("create remote: %v", err)
	}
	r.repo = repo
	r.Write(files)
	r.Commit("initial")
	return r
}

// Root is the directory holding the bare repository RepoName: serve it.
func (r *Repo) Root() string { return r.root }

// BareDir is the bare remote repository's path.
func (r *Repo) BareDir() string { return r.bare }

// WorkDir is the working repository's path.
func (r *Repo) WorkDir() string { return r.work }

// URL is the bare remote's file:// URL.
func (r *Repo) URL() string { return "file://" + filepath.ToSlash(r.bare) }

// Head returns the hash of the working repository's HEAD commit.
func (r *Repo) Head() string {
	r.t.Helper()
	h, err := r.repo.Head()
	if err != nil {
		r.t.Fatalf("read HEAD: %v", err)
	}
	return h.Hash().String()
}

// Write writes files (path -> content, slash-separated) into the worktree.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			r.t.Fatalf("write %s: %v", name, err)
		}
		_ = os.Remove(p) // may be a symlink
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			r.t.Fatalf("write %s: %v", name, err)
		}
	}
}

// Remove deletes paths from the worktree.
func (r *Repo) Remove(names ...string) {
	r.t.Helper()
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(r.work, filepath.FromSlash(name))); err != nil {
			r.t.Fatalf("remove %s: %v", name, err)
		}
	}
}

// Symlink creates name in the worktree as a symlink to target (verbatim).
func (r *Repo) Symlink(name, target string) {
	r.t.Helper()
	p := filepath.Join(r.work, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		r.t.Fatalf("symlink %s: %v", name, err)
	}
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		r.t.Fatalf("symlink %s: %v", name, err)
	}
}

// Chmod sets a worktree file's mode (git records only the executable bit).
func (r *Repo) Chmod(name string, mode os.FileMode) {
	r.t.Helper()
	if err := os.Chmod(filepath.Join(r.work, filepath.FromSlash(name)), mode); err != nil {
		r.t.Fatalf("chmod %s: %v", name, err)
	}
}

// CommitOption changes how Commit records a commit.
type CommitOption func(*gogit.CommitOptions)

// SignedBy signs the commit with an OpenPGP key.
func SignedBy(k *OpenPGPKey) CommitOption {
	return func(o *gogit.CommitOptions) { o.SignKey = k.Entity }
}

// Commit stages every change in the worktree (additions, edits, deletions,
// symlinks, modes), commits it (empty commits allowed) and force-pushes the
// current branch, so a Commit after ResetHard is a force-push. It returns the
// commit hash.
func (r *Repo) Commit(msg string, opts ...CommitOption) string {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatalf("worktree: %v", err)
	}
	if err := wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		r.t.Fatalf("stage: %v", err)
	}
	r.now = r.now.Add(time.Minute)
	sig := &object.Signature{Name: "gittest", Email: "gittest@example.com", When: r.now}
	co := &gogit.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true}
	for _, o := range opts {
		o(co)
	}
	h, err := wt.Commit(msg, co)
	if err != nil {
		r.t.Fatalf("commit: %v", err)
	}
	r.pushHead()
	return h.String()
}

// CommitFiles writes files and commits them.
func (r *Repo) CommitFiles(msg string, files map[string]string, opts ...CommitOption) string {
	r.t.Helper()
	r.Write(files)
	return r.Commit(msg, opts...)
}

func (r *Repo) pushHead() {
	r.t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		r.t.Fatalf("read HEAD: %v", err)
	}
	r.push(config.RefSpec("+" + head.Name() + ":" + head.Name()))
}

func (r *Repo) push(specs ...config.RefSpec) {
	r.t.Helper()
	err := r.repo.Push(&gogit.PushOptions{RemoteName: "origin", RefSpecs: specs, Force: true})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		r.t.Fatalf("push %v: %v", specs, err)
	}
}

// Tag creates a lightweight tag on HEAD and pushes it (moving it if it
// exists).
func (r *Repo) Tag(name string) {
	r.t.Helper()
	n := plumbing.NewTagReferenceName(name)
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(n, plumbing.NewHash(r.Head()))); err != nil {
		r.t.Fatalf("tag %s: %v", name, err)
	}
	r.push(config.RefSpec("+" + n + ":" + n))
}

// AnnotatedTag creates an annotated tag on HEAD and pushes it.
func (r *Repo) AnnotatedTag(name, msg string) {
	r.t.Helper()
	r.now = r.now.Add(time.Minute)
	_, err := r.repo.CreateTag(name, plumbing.NewHash(r.Head()), &gogit.CreateTagOptions{
		Tagger:  &object.Signature{Name: "gittest", Email: "gittest@example.com", When: r.now},
		Message: msg,
	})
	if err != nil {
		r.t.Fatalf("tag %s: %v", name, err)
	}
	n := plumbing.NewTagReferenceName(name)
	r.push(config.RefSpec("+" + n + ":" + n))
}

// Branch creates branch name at HEAD and switches the worktree to it (the
// branch reaches the remote with the next Commit).
func (r *Repo) Branch(name string) {
	r.t.Helper()
	r.checkout(&gogit.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(name), Create: true})
}

// Switch switches the worktree to an existing branch.
func (r *Repo) Switch(name string) {
	r.t.Helper()
	r.checkout(&gogit.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(name)})
}

func (r *Repo) checkout(o *gogit.CheckoutOptions) {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatalf("worktree: %v", err)
	}
	if err := wt.Checkout(o); err != nil {
		r.t.Fatalf("checkout %s: %v", o.Branch, err)
	}
}

// ResetHard moves the current branch to hash; the next Commit force-pushes.
func (r *Repo) ResetHard(hash string) {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatalf("worktree: %v", err)
	}
	if err := wt.Reset(&gogit.ResetOptions{Commit: plumbing.NewHash(hash), Mode: gogit.HardReset}); err != nil {
		r.t.Fatalf("reset %s: %v", hash, err)
	}
}

// RawEntry is a tree entry written verbatim by RawCommit: no name checks, so
// tests can build trees no git client would (names like "../evil").
type RawEntry struct {
	// Name is written as is.
	Name string
	// Mode is the entry's git mode; filemode.Dir entries use Entries.
	Mode filemode.FileMode
	// Content is the blob (a symlink's target for filemode.Symlink).
	Content string
	// Entries are a directory's children.
	Entries []RawEntry
	// Hash, if set, is used instead of Content/Entries (e.g. a submodule's
	// commit).
	Hash string
}

// RawCommit writes a commit with exactly this tree directly into the bare
// remote on branch, parented on the branch's tip if it exists, and returns
// its hash. The working repository does not see it.
func (r *Repo) RawCommit(branch, msg string, entries []RawEntry) string {
	r.t.Helper()
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		r.t.Fatalf("open bare: %v", err)
	}
	tree := r.rawTree(bare.Storer, entries)
	r.now = r.now.Add(time.Minute)
	sig := object.Signature{Name: "gittest", Email: "gittest@example.com", When: r.now}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: tree}
	n := plumbing.NewBranchReferenceName(branch)
	if ref, err := bare.Storer.Reference(n); err == nil {
		c.ParentHashes = []plumbing.Hash{ref.Hash()}
	}
	h := r.store(bare.Storer, c)
	if err := bare.Storer.SetReference(plumbing.NewHashReference(n, h)); err != nil {
		r.t.Fatalf("set %s: %v", n, err)
	}
	return h.String()
}

type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func (r *Repo) store(s storer.EncodedObjectStorer, o encoder) plumbing.Hash {
	r.t.Helper()
	obj := s.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		r.t.Fatalf("encode: %v", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		r.t.Fatalf("store: %v", err)
	}
	return h
}

func (r *Repo) rawTree(s storer.EncodedObjectStorer, entries []RawEntry) plumbing.Hash {
	r.t.Helper()
	t := &object.Tree{}
	for _, e := range entries {
		var h plumbing.Hash
		switch {
		case e.Hash != "":
			h = plumbing.NewHash(e.Hash)
		case e.Mode == filemode.Dir:
			h = r.rawTree(s, e.Entries)
		default:
			obj := s.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, err := obj.Writer()
			if err != nil {
				r.t.Fatalf("blob: %v", err)
			}
			_, _ = w.Write([]byte(e.Content))
			_ = w.Close()
			if h, err = s.SetEncodedObject(obj); err != nil {
				r.t.Fatalf("store blob: %v", err)
			}
		}
		t.Entries = append(t.Entries, object.TreeEntry{Name: e.Name, Mode: e.Mode, Hash: h})
	}
	// git sorts entries by name, directories as if suffixed with "/".
	sort.SliceStable(t.Entries, func(i, j int) bool {
		return sortName(t.Entries[i]) < sortName(t.Entries[j])
	})
	return r.store(s, t)
}

func sortName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// OpenPGPKey is a signing key generated for a test.
type OpenPGPKey struct {
	// Entity signs commits (SignedBy).
	Entity *openpgp.Entity
	// PublicArmored is the armored public key, what a verification key ring
	// holds.
	PublicArmored string
}

// NewOpenPGPKey generates an OpenPGP key pair named after name.
func NewOpenPGPKey(t testing.TB, name string) *OpenPGPKey {
	t.Helper()
	e, err := openpgp.NewEntity(name, "gittest", strings.ReplaceAll(name, " ", ".")+"@example.com", nil)
	if err != nil {
		t.Fatalf("generate openpgp key: %v", err)
	}
	return &OpenPGPKey{Entity: e, PublicArmored: armorPublic(t, e)}
}

// SetRemoteHEAD points the bare remote's HEAD at a branch name or, given a
// full commit hash, detaches it there.
func (r *Repo) SetRemoteHEAD(ref string) {
	r.t.Helper()
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		r.t.Fatalf("open bare: %v", err)
	}
	head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(ref))
	if h := plumbing.NewHash(ref); len(ref) == 40 && h.String() == strings.ToLower(ref) {
		head = plumbing.NewHashReference(plumbing.HEAD, h)
	}
	if err := bare.Storer.SetReference(head); err != nil {
		r.t.Fatalf("set remote HEAD: %v", err)
	}
}

// RemoteHead returns the commit the bare remote's branch points at: what a
// test expects a writer (a human, the operator) to have pushed.
func (r *Repo) RemoteHead(branch string) *object.Commit {
	r.t.Helper()
	cm := r.LookupRemoteHead(branch)
	if cm == nil {
		r.t.Fatalf("read remote %s: no such branch", branch)
	}
	return cm
}

// LookupRemoteHead is RemoteHead, or nil while the branch does not exist.
//
// A push rewrites the ref file in place (go-git truncates, then writes), so
// a read that races it can find no branch for a moment: a missing branch is
// read again for up to 100 ms before it counts as missing.
func (r *Repo) LookupRemoteHead(branch string) *object.Commit {
	r.t.Helper()
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		r.t.Fatalf("open bare: %v", err)
	}
	name := plumbing.NewBranchReferenceName(branch)
	ref, err := bare.Reference(name, true)
	for i := 0; i < 20 && errors.Is(err, plumbing.ErrReferenceNotFound); i++ {
		time.Sleep(5 * time.Millisecond)
		ref, err = bare.Reference(name, true)
	}
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil
	}
	if err != nil {
		r.t.Fatalf("read remote %s: %v", branch, err)
	}
	cm, err := bare.CommitObject(ref.Hash())
	if err != nil {
		r.t.Fatalf("read remote %s commit: %v", branch, err)
	}
	return cm
}

// SetRemoteBranch points the bare remote's branch at hash, as a person's
// merge or force push would, or deletes the branch when hash is "". The
// working repository does not see it.
func (r *Repo) SetRemoteBranch(branch, hash string) {
	r.t.Helper()
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		r.t.Fatalf("open bare: %v", err)
	}
	n := plumbing.NewBranchReferenceName(branch)
	if hash == "" {
		err = bare.Storer.RemoveReference(n)
	} else {
		err = bare.Storer.SetReference(plumbing.NewHashReference(n, plumbing.NewHash(hash)))
	}
	if err != nil {
		r.t.Fatalf("set remote %s to %q: %v", branch, hash, err)
	}
}

// RemoteLog returns every commit reachable from the remote's branch, newest
// first (git log order).
func (r *Repo) RemoteLog(branch string) []*object.Commit {
	r.t.Helper()
	head := r.RemoteHead(branch)
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		r.t.Fatalf("open bare: %v", err)
	}
	iter, err := bare.Log(&gogit.LogOptions{From: head.Hash})
	if err != nil {
		r.t.Fatalf("log: %v", err)
	}
	var out []*object.Commit
	if err := iter.ForEach(func(c *object.Commit) error { out = append(out, c); return nil }); err != nil {
		r.t.Fatalf("log: %v", err)
	}
	return out
}

// FileAt returns the contents of name in commit cm.
func (r *Repo) FileAt(cm *object.Commit, name string) string {
	r.t.Helper()
	f, err := cm.File(name)
	if err != nil {
		r.t.Fatalf("%s at %s: %v", name, cm.Hash, err)
	}
	s, err := f.Contents()
	if err != nil {
		r.t.Fatalf("read %s at %s: %v", name, cm.Hash, err)
	}
	return s
}

// Occurrences returns where s occurs in the bare remote's objects: the
// message, author, committer or signature of a commit, the message or
// tagger of a tag, the names in a tree and the contents of a blob. Every
// object stored counts, reachable from a branch or not, so nothing that a
// writer ever pushed there escapes. Each place is named, e.g. "commit
// <hash> message".
func (r *Repo) Occurrences(s string) []string {
	r.t.Helper()
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		r.t.Fatalf("open bare: %v", err)
	}
	var out []string
	found := func(where string, hash plumbing.Hash, texts ...string) {
		for _, text := range texts {
			if strings.Contains(text, s) {
				out = append(out, where+" "+hash.String())
				return
			}
		}
	}
	commits, err := bare.CommitObjects()
	if err != nil {
		r.t.Fatalf("list commits: %v", err)
	}
	r.each(commits.ForEach(func(c *object.Commit) error {
		found("commit message of", c.Hash, c.Message)
		found("commit identity or signature of", c.Hash, c.Author.String(), c.Committer.String(), c.PGPSignature)
		return nil
	}))
	tags, err := bare.TagObjects()
	if err != nil {
		r.t.Fatalf("list tags: %v", err)
	}
	r.each(tags.ForEach(func(tg *object.Tag) error {
		found("tag", tg.Hash, tg.Message, tg.Tagger.String(), tg.PGPSignature)
		return nil
	}))
	trees, err := bare.TreeObjects()
	if err != nil {
		r.t.Fatalf("list trees: %v", err)
	}
	r.each(trees.ForEach(func(tr *object.Tree) error {
		names := make([]string, 0, len(tr.Entries))
		for _, e := range tr.Entries {
			names = append(names, e.Name)
		}
		found("tree entry name in", tr.Hash, names...)
		return nil
	}))
	blobs, err := bare.BlobObjects()
	if err != nil {
		r.t.Fatalf("list blobs: %v", err)
	}
	r.each(blobs.ForEach(func(b *object.Blob) error {
		rd, err := b.Reader()
		if err != nil {
			return err
		}
		defer func() { _ = rd.Close() }()
		data, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		found("blob", b.Hash, string(data))
		return nil
	}))
	return out
}

func (r *Repo) each(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatalf("read the remote's objects: %v", err)
	}
}

// Hook installs a server-side hook (pre-receive, update, ...) in the bare
// remote: a shell script that git runs when a push arrives over a server
// that runs git itself (HTTPServer, SSHServer), not over file:// URLs,
// which go-git serves on its own.
func (r *Repo) Hook(name, script string) {
	r.t.Helper()
	p := filepath.Join(r.bare, "hooks", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		r.t.Fatalf("hook %s: %v", name, err)
	}
	if err := os.WriteFile(p, []byte(script), 0o700); err != nil { // #nosec G306 -- git runs it
		r.t.Fatalf("hook %s: %v", name, err)
	}
}

// ChangedPaths lists the paths commit cm changes against its first parent,
// in the order of its patch.
func ChangedPaths(t testing.TB, cm *object.Commit) []string {
	t.Helper()
	parent, err := cm.Parent(0)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := parent.Patch(cm)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fp := range patch.FilePatches() {
		from, to := fp.Files()
		switch {
		case to != nil:
			out = append(out, to.Path())
		case from != nil:
			out = append(out, from.Path())
		}
	}
	return out
}
