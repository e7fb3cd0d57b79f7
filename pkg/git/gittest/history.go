package gittest

import (
	"fmt"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"
)

// The files NewLongHistory's commits change.
const (
	// LongHistoryFile is set to "<i>\n" by commit i.
	LongHistoryFile = "counter.txt"
	// LongHistoryEveryFile is set to "<i>\n" by every every-th commit i.
	LongHistoryEveryFile = "every.txt"
)

// NewLongHistory returns a Repo whose remote branch main holds n commits
// on top of NewRepo's initial (empty) one, for tests and benchmarks of
// history walks that need thousands of commits: 10,000 take about a
// second, since they are built in memory and written into the bare remote
// as one packfile (no worktree, no push, no loose objects).
//
// Commit i (1 ≤ i ≤ n) sets LongHistoryFile to "<i>\n" and, when every > 0
// and i is a multiple of every, LongHistoryEveryFile too, so a path that
// changes sparsely is there to look for. msg(i) is its message (nil means
// "commit <i>"). Commits are one minute apart and each has one parent. The
// working repository does not see them; RawCommit and SetRemoteBranch keep
// working on the remote's branch.
func NewLongHistory(t testing.TB, n, every int, msg func(i int) string) *Repo {
	t.Helper()
	r := NewRepo(t, nil)
	if n <= 0 {
		return r
	}
	bare, err := gogit.PlainOpen(r.bare)
	if err != nil {
		t.Fatalf("open bare: %v", err)
	}
	branch := plumbing.NewBranchReferenceName(DefaultBranch)
	ref, err := bare.Storer.Reference(branch)
	if err != nil {
		t.Fatalf("read %s: %v", branch, err)
	}
	mem := memory.NewStorage()
	hashes := make([]plumbing.Hash, 0, 3*n)
	put := func(o encoder) plumbing.Hash {
		h := r.store(mem, o)
		hashes = append(hashes, h)
		return h
	}
	parent := ref.Hash()
	var everyBlob plumbing.Hash
	for i := 1; i <= n; i++ {
		counter := put(blob(fmt.Sprintf("%d\n", i)))
		if every > 0 && i%every == 0 {
			everyBlob = counter // same contents, same object
		}
		// Entries sorted by name, as git requires.
		tree := &object.Tree{Entries: []object.TreeEntry{{Name: LongHistoryFile, Mode: filemode.Regular, Hash: counter}}}
		if !everyBlob.IsZero() {
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: LongHistoryEveryFile, Mode: filemode.Regular, Hash: everyBlob})
		}
		text := fmt.Sprintf("commit %d", i)
		if msg != nil {
			text = msg(i)
		}
		r.now = r.now.Add(time.Minute)
		sig := object.Signature{Name: "gittest", Email: "gittest@example.com", When: r.now}
		parent = put(&object.Commit{
			Author: sig, Committer: sig, Message: text,
			TreeHash: put(tree), ParentHashes: []plumbing.Hash{parent},
		})
	}
	pw, ok := bare.Storer.(storer.PackfileWriter)
	if !ok {
		t.Fatalf("the bare remote's storage cannot write packfiles")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		t.Fatalf("write packfile: %v", err)
	}
	// No delta search: the objects are tiny and speed is the point.
	if _, err := packfile.NewEncoder(w, mem, false).Encode(hashes, 0); err != nil {
		t.Fatalf("write packfile: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("write packfile: %v", err)
	}
	if err := bare.Storer.SetReference(plumbing.NewHashReference(branch, parent)); err != nil {
		t.Fatalf("set %s: %v", branch, err)
	}
	return r
}

// blobObject is a blob to store.
type blobObject string

func blob(s string) blobObject { return blobObject(s) }

// Encode implements encoder.
func (b blobObject) Encode(o plumbing.EncodedObject) error {
	o.SetType(plumbing.BlobObject)
	w, err := o.Writer()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(b)); err != nil {
		return err
	}
	return w.Close()
}
