package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrPushRejected means every attempt to push lost a race with another
// writer of the branch (or the remote refused the update); nothing was forced.
var ErrPushRejected = errors.New("push rejected")

// DefaultPushAttempts is how many times CommitAndPush redoes an edit on a
// new head after a rejected push.
const DefaultPushAttempts = 6

// Signature names the author and committer of a commit.
type Signature struct {
	Name, Email string
}

// Edit is what an EditFunc wants committed.
type Edit struct {
	// Files maps slash-separated paths of existing regular files to their
	// new contents. Files whose contents do not change are ignored.
	Files map[string][]byte
	// Message is the whole commit message.
	Message string
}

// EditFunc edits a fresh checkout of head in dir. CommitAndPush calls it
// again, on a new checkout of the new head, after a rejected push, so it must
// work from what it reads in dir rather than from an earlier call.
type EditFunc func(ctx context.Context, dir string, head Revision) (Edit, error)

// PushOptions say where and as whom CommitAndPush writes.
type PushOptions struct {
	// Branch whose head the edit starts from; "" is the remote's default
	// branch.
	Branch string
	// PushBranch receives the commit; "" is Branch. When it differs and
	// exists, the edit starts from its head instead, so consecutive passes
	// stack up on it.
	PushBranch string
	Auth       *Auth
	// Author signs as author and committer.
	Author Signature
	// SigningKey is an armored OpenPGP private key; nil leaves the commit
	// unsigned. SigningPassphrase decrypts it when it is encrypted.
	SigningKey, SigningPassphrase []byte
	// MaxAttempts bounds the edit-commit-push rounds (DefaultPushAttempts).
	MaxAttempts int
	// Now stamps the commit (time.Now when nil).
	Now func() time.Time
}

// PushResult says what CommitAndPush did.
type PushResult struct {
	// Base is the head the last edit started from.
	Base Revision
	// Commit is the pushed commit; empty when the edit changed nothing.
	Commit Revision
	// Attempts counts edit-commit-push rounds.
	Attempts int
	// Files are the paths the commit changed, sorted.
	Files []string
}

// CommitAndPush commits an edit of the branch head and pushes it, the way a
// careful human would: edit a fresh checkout of what the remote has now,
// commit only real changes (never an empty commit), push without force, and
// when someone else pushed first, fetch their commit and redo the edit on
// top of it. Rounds are bounded (MaxAttempts) and spaced with jitter; when
// they run out the error matches ErrPushRejected and nothing was forced.
// Errors never contain credentials.
func (c *Cache) CommitAndPush(ctx context.Context, url string, opts PushOptions, edit EditFunc) (PushResult, error) {
	r, err := parseRemote(url)
	if err != nil {
		return PushResult{}, scrub(fmt.Errorf("push: %w", err), opts.Auth.secrets(nil)...)
	}
	if err := c.refuseLocalRemote(r); err != nil {
		return PushResult{}, fmt.Errorf("push: %w", err)
	}
	secrets := append(opts.Auth.secrets(r), string(opts.SigningPassphrase))
	res, err := c.commitAndPush(c.netContext(ctx), r, opts, edit)
	if err != nil {
		return res, scrub(fmt.Errorf("push to %s: %w", r.display, err), secrets...)
	}
	return res, nil
}

func (c *Cache) commitAndPush(ctx context.Context, r *remote, opts PushOptions, edit EditFunc) (PushResult, error) {
	if err := opts.validate(); err != nil {
		return PushResult{}, err
	}
	var signer *openpgp.Entity
	if len(opts.SigningKey) > 0 {
		var err error
		if signer, err = signingEntity(opts.SigningKey, opts.SigningPassphrase); err != nil {
			return PushResult{}, err
		}
	}
	attempts := opts.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultPushAttempts
	}
	var res PushResult
	for res.Attempts < attempts {
		res.Attempts++
		base, err := c.pushBase(ctx, r, opts)
		if err != nil {
			return res, err
		}
		res.Base = base
		ed, err := c.editCheckout(ctx, r, base, edit)
		if err != nil {
			return res, err
		}
		commit, files, err := c.writeCommit(ctx, r, base, ed, opts, signer)
		if err != nil || commit.IsZero() {
			return res, err
		}
		err = c.push(ctx, r, opts, base, commit)
		if err == nil {
			res.Commit = Revision{Ref: pushBranchOf(opts, base), Hash: commit.String()}
			res.Files = files
			if c.observe != nil {
				c.observe.Pushed(observedHost(r), res.Attempts-1)
			}
			return res, nil
		}
		if !errors.Is(err, errLostRace) {
			return res, err
		}
		if err := sleepJitter(ctx, res.Attempts); err != nil {
			return res, err
		}
	}
	if c.observe != nil {
		c.observe.Pushed(observedHost(r), res.Attempts-1)
	}
	return res, fmt.Errorf("%w: the branch moved during each of %d attempts", ErrPushRejected, attempts)
}

func (o PushOptions) validate() error {
	for _, b := range []string{o.Branch, o.PushBranch} {
		if b != "" {
			if err := (Ref{Branch: b}).validate(); err != nil {
				return err
			}
		}
	}
	if strings.TrimSpace(o.Author.Name) == "" || strings.TrimSpace(o.Author.Email) == "" {
		return invalidf("commit author needs a name and an email")
	}
	if strings.ContainsAny(o.Author.Name+o.Author.Email, "<>\n") {
		return invalidf("commit author name and email must not contain '<', '>' or newlines")
	}
	return nil
}

// pushBranchOf is the branch a commit on base is pushed to.
func pushBranchOf(opts PushOptions, base Revision) string {
	if opts.PushBranch != "" {
		return opts.PushBranch
	}
	return base.Ref
}

// pushBase fetches the head an edit starts from: PushBranch's when it is a
// separate branch that exists, else Branch's.
func (c *Cache) pushBase(ctx context.Context, r *remote, opts PushOptions) (Revision, error) {
	if opts.PushBranch != "" && opts.PushBranch != opts.Branch {
		rev, err := c.fetchLocked(ctx, r, Ref{Branch: opts.PushBranch}, opts.Auth)
		if err == nil || !errors.Is(err, ErrRefNotFound) {
			return rev, err
		}
	}
	return c.fetchLocked(ctx, r, Ref{Branch: opts.Branch}, opts.Auth)
}

// editCheckout runs edit on a fresh checkout of base, removed afterwards.
func (c *Cache) editCheckout(ctx context.Context, r *remote, base Revision, edit EditFunc) (Edit, error) {
	tmp, err := c.tmpDir()
	if err != nil {
		return Edit{}, fmt.Errorf("prepare worktree: %w", err)
	}
	parent, err := os.MkdirTemp(tmp, "worktree-")
	if err != nil {
		return Edit{}, fmt.Errorf("prepare worktree: %w", err)
	}
	defer func() { _ = os.RemoveAll(parent) }()
	dir := parent + string(os.PathSeparator) + "tree"
	if err := c.checkout(ctx, r, base, dir); err != nil {
		c.noteDamage(r, err)
		return Edit{}, fmt.Errorf("check out %s: %w", base, err)
	}
	ed, err := edit(ctx, dir, base)
	if err != nil {
		return Edit{}, fmt.Errorf("edit %s: %w", base, err)
	}
	return ed, nil
}

// writeCommit stores a commit of ed on base and returns its hash, or the
// zero hash when no file's contents change.
func (c *Cache) writeCommit(ctx context.Context, r *remote, base Revision, ed Edit, opts PushOptions, signer *openpgp.Entity) (plumbing.Hash, []string, error) {
	if len(ed.Files) == 0 {
		return plumbing.ZeroHash, nil, nil
	}
	if strings.TrimSpace(ed.Message) == "" {
		return plumbing.ZeroHash, nil, invalidf("empty commit message")
	}
	baseHash, err := base.hashOf()
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	unlock, err := c.lock(ctx, r, true)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	defer unlock()
	repo, err := c.openRepo(r)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	parent, err := readCommit(repo, baseHash)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	tb := &treeBuilder{s: repo.Storer}
	tree, changed, err := tb.apply(parent.TreeHash, ed.Files)
	if err != nil || len(changed) == 0 {
		return plumbing.ZeroHash, nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	sig := object.Signature{Name: opts.Author.Name, Email: opts.Author.Email, When: now()}
	cm := &object.Commit{Author: sig, Committer: sig, Message: ed.Message, TreeHash: tree, ParentHashes: []plumbing.Hash{baseHash}}
	if signer != nil {
		if cm.PGPSignature, err = sign(cm, signer); err != nil {
			return plumbing.ZeroHash, nil, err
		}
	}
	h, err := store(repo.Storer, cm)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("store commit: %w", err)
	}
	return h, changed, nil
}

// errLostRace means the branch moved between our fetch and our push.
var errLostRace = errors.New("the branch moved")

// push sends commit to the push branch, only if the branch is still at base
// (or absent, for a new push branch). A refusal while the remote branch has
// moved is errLostRace; other refusals are errors.
func (c *Cache) push(ctx context.Context, r *remote, opts PushOptions, base Revision, commit plumbing.Hash) error {
	branch := plumbing.NewBranchReferenceName(pushBranchOf(opts, base))
	tmp, err := c.tmpDir()
	if err != nil {
		return fmt.Errorf("prepare push: %w", err)
	}
	ta, err := transportAuth(ctx, r, opts.Auth, tmp)
	if err != nil {
		return err
	}
	var ca []byte
	if opts.Auth != nil {
		ca = opts.Auth.CABundle
	}
	unlock, err := c.lock(ctx, r, true)
	if err != nil {
		return err
	}
	defer unlock()
	repo, err := c.openRepo(r)
	if err != nil {
		return err
	}
	rem, err := repo.CreateRemoteAnonymous(&config.RemoteConfig{Name: "anonymous", URLs: []string{r.fetchURL}})
	if err != nil {
		return fmt.Errorf("configure remote: %w", err)
	}
	// The lease: the branch must still be where the edit started (a new
	// push branch must still be absent).
	lease := base.Hash
	if pushBranchOf(opts, base) != base.Ref {
		lease = plumbing.ZeroHash.String()
	}
	po := &gogit.PushOptions{
		RemoteName: "anonymous",
		RefSpecs:   []config.RefSpec{config.RefSpec(commit.String() + ":" + branch.String())},
		Auth:       ta,
		CABundle:   ca,
	}
	if lease != plumbing.ZeroHash.String() {
		// go-git checks this against the advertisement; the server checks
		// the old value again when it updates the ref.
		po.RequireRemoteRefs = []config.RefSpec{config.RefSpec(lease + ":" + branch.String())}
	}
	err = rem.PushContext(ctx, po)
	if err == nil {
		// Keep the cache's copy in step, so the next Fetch transfers nothing.
		local := plumbing.NewHashReference(branch, commit)
		if serr := repo.Storer.SetReference(local); serr != nil {
			return fmt.Errorf("record pushed %s: %w", branch.Short(), serr)
		}
		return nil
	}
	if isRemoteFailure(err) {
		return fmt.Errorf("push %s: %w", branch.Short(), err)
	}
	// Whatever go-git or the server said, a branch no longer at the lease
	// means someone else pushed first: redo the edit on their commit.
	refs, lerr := rem.ListContext(ctx, &gogit.ListOptions{Auth: ta, CABundle: ca})
	if lerr != nil {
		return fmt.Errorf("push %s: %w (and listing the remote failed: %w)", branch.Short(), err, lerr)
	}
	now := plumbing.ZeroHash.String()
	for _, ref := range refs {
		if ref.Name() == branch {
			now = ref.Hash().String()
		}
	}
	if now != lease {
		return fmt.Errorf("%w: %w", errLostRace, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrPushRejected, branch.Short(), err)
}

// sleepJitter waits before attempt n+1: a growing, randomised pause so that
// two writers racing for a branch do not keep colliding.
func sleepJitter(ctx context.Context, n int) error {
	base := time.Duration(50<<min(n, 6)) * time.Millisecond
	d := base/2 + rand.N(base) //nolint:gosec // jitter, not cryptography
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// signingEntity reads an armored private key and decrypts it.
func signingEntity(armored, passphrase []byte) (*openpgp.Entity, error) {
	if len(armored) > maxKeyRing {
		return nil, invalidf("signing key larger than %d bytes", maxKeyRing)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, invalidf("signing key: %s", scrubText(err.Error(), string(passphrase)))
	}
	if len(ring) != 1 || ring[0].PrivateKey == nil {
		return nil, invalidf("signing key: want exactly one armored private key")
	}
	e := ring[0]
	if e.PrivateKey.Encrypted {
		if len(passphrase) == 0 {
			return nil, invalidf("signing key is encrypted and no passphrase was given")
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			return nil, invalidf("signing key: wrong passphrase")
		}
	}
	return e, nil
}

// sign returns an armored detached signature of cm as git expects it.
func sign(cm *object.Commit, e *openpgp.Entity) (string, error) {
	enc := &plumbing.MemoryObject{}
	if err := cm.EncodeWithoutSignature(enc); err != nil {
		return "", fmt.Errorf("encode commit: %w", err)
	}
	rd, err := enc.Reader()
	if err != nil {
		return "", fmt.Errorf("encode commit: %w", err)
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, e, rd, nil); err != nil {
		return "", fmt.Errorf("sign commit: %w", err)
	}
	return sig.String(), nil
}

// encoder is a git object that can write itself.
type encoder interface {
	Encode(plumbing.EncodedObject) error
}

// store writes o into s and returns its hash.
func store(s storer.EncodedObjectStorer, o encoder) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// treeBuilder writes new trees that differ from an old one in a few files.
type treeBuilder struct {
	s storer.EncodedObjectStorer
}

// apply returns the hash of root with files replaced and the paths whose
// contents really changed. Only existing regular files may be replaced: an
// edit never creates, deletes or follows anything.
func (b *treeBuilder) apply(root plumbing.Hash, files map[string][]byte) (plumbing.Hash, []string, error) {
	byDir := map[string]map[string][]byte{}
	for p, data := range files {
		parts, err := confine(p)
		if err != nil || len(parts) == 0 {
			return plumbing.ZeroHash, nil, invalidf("edit path %q is not a path inside the repository", p)
		}
		dir := path.Join(parts[:len(parts)-1]...)
		if byDir[dir] == nil {
			byDir[dir] = map[string][]byte{}
		}
		byDir[dir][parts[len(parts)-1]] = data
	}
	var changed []string
	h, err := b.rewrite(root, "", byDir, &changed, 0)
	sort.Strings(changed)
	return h, changed, err
}

// rewrite rebuilds the tree h found at dir, descending only into
// directories that hold edited files.
func (b *treeBuilder) rewrite(h plumbing.Hash, dir string, byDir map[string]map[string][]byte, changed *[]string, depth int) (plumbing.Hash, error) {
	if depth > maxTreeDepth {
		return plumbing.ZeroHash, fmt.Errorf("%w: tree deeper than %d", ErrTooLarge, maxTreeDepth)
	}
	t, err := object.GetTree(b.s, h)
	if err != nil {
		return plumbing.ZeroHash, damaged(fmt.Errorf("read tree %s: %w", dir, err))
	}
	edits := byDir[dir]
	seen := 0
	entries := make([]object.TreeEntry, len(t.Entries))
	copy(entries, t.Entries)
	for i, e := range entries {
		p := path.Join(dir, e.Name)
		if data, ok := edits[e.Name]; ok {
			seen++
			if e.Mode != filemode.Regular && e.Mode != filemode.Executable {
				return plumbing.ZeroHash, invalidf("edit path %q is not a regular file", p)
			}
			blob := b.s.NewEncodedObject()
			blob.SetType(plumbing.BlobObject)
			w, err := blob.Writer()
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if _, err := w.Write(data); err != nil {
				return plumbing.ZeroHash, err
			}
			if err := w.Close(); err != nil {
				return plumbing.ZeroHash, err
			}
			if blob.Hash() == e.Hash {
				continue
			}
			nh, err := b.s.SetEncodedObject(blob)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("store %s: %w", p, err)
			}
			entries[i].Hash = nh
			*changed = append(*changed, p)
			continue
		}
		if e.Mode == filemode.Dir && holdsEdits(p, byDir) {
			nh, err := b.rewrite(e.Hash, p, byDir, changed, depth+1)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries[i].Hash = nh
		}
	}
	if seen != len(edits) {
		for name := range edits {
			if findEntry(t, name) == nil {
				return plumbing.ZeroHash, invalidf("edit path %q does not exist", path.Join(dir, name))
			}
		}
	}
	if !holdsEdits(dir, byDir) {
		return h, nil
	}
	return store(b.s, &object.Tree{Entries: entries})
}

// holdsEdits reports whether dir or a directory below it has edited files.
func holdsEdits(dir string, byDir map[string]map[string][]byte) bool {
	for d := range byDir {
		if d == dir || dir == "" || strings.HasPrefix(d, dir+"/") {
			return true
		}
	}
	return false
}
