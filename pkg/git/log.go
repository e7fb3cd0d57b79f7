package git

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultLogCommits is how many commits one Log or PathChanges walks when
// LogOptions.MaxCommits is zero.
const DefaultLogCommits = 10_000

// LogOptions bound a history walk.
type LogOptions struct {
	// MaxCommits ends the walk after this many commits (default
	// DefaultLogCommits = 10_000).
	MaxCommits int
	// Since ends the walk at commits whose committer time is before it
	// (zero: no age bound).
	Since time.Time
}

// LogEntry is one commit of a walk. Its text fields come from the commit
// as written, bounded but not otherwise cleaned: quote them, never
// interpret them.
type LogEntry struct {
	// Hash is the commit's full lower-case hex SHA-1.
	Hash string
	// Parents are the parents' hashes in the commit's order (the first is
	// the branch a merge was made on). At most maxParents are kept; a
	// commit with more makes the walk Shallow.
	Parents []string
	// Time is the committer time, which orders the walk.
	Time time.Time
	// Author is the author's name and email, each at most 256 bytes.
	Author Signature
	// Subject is the first line of the message, at most 200 bytes, never
	// with a line break.
	Subject string
	// Trailers are the "Key: value" lines of the message's last paragraph,
	// found as git interpret-trailers finds them (see Trailer).
	Trailers []Trailer
}

// Trailer is one "Key: value" line of a commit message's trailer block, so
// that facts about a commit (who signed it off, which tag it quarantines)
// travel with the commit itself and survive restarts and failover.
//
// The block is the message's last paragraph, never its first (a message of
// one paragraph has no trailers), and it counts as git interpret-trailers
// counts it: every line must be a trailer or a continuation of one (a line
// starting with whitespace, unfolded into the value with one space), except
// that when a git-generated line ("Signed-off-by: ", "(cherry picked from
// commit ") is present, at least a quarter of the lines being trailers is
// enough and the other lines are skipped. Lines starting with '#' are
// ignored, and CRLF line ends read as LF. A key is [A-Za-z0-9-]+ (spaces may
// separate it from the colon); the value is trimmed, and a line whose value
// is longer than 1 KiB is not a trailer. Only the first 64 KiB of a message
// are read, so a longer message has no trailers; at most 100 trailers of a
// commit are kept.
type Trailer struct{ Key, Value string }

// LogResult is what Log found.
type LogResult struct {
	// Entries are newest first: by committer time, ties broken by hash, and
	// never before a commit that has them as a parent.
	Entries []LogEntry
	// Truncated is true when a bound (MaxCommits or Since) ended the walk
	// before the root commits.
	Truncated bool
	// Shallow is true when a parent was missing from the repository (a
	// shallow or damaged history): the caller must treat what lies beyond
	// as unknown.
	Shallow bool
}

// Bounds on what one commit may put into the history cache: commits are
// untrusted, and their parsed form is kept for many passes.
const (
	maxMessageRead   = 64 << 10 // bytes of a message looked at
	maxTrailers      = 100      // trailers kept per commit
	maxTrailerValue  = 1 << 10  // bytes of a trailer value
	maxSubject       = 200      // bytes of a subject
	maxIdentity      = 256      // bytes of an author name or email
	maxParents       = 1024     // parents kept per commit
	maxHeaderLine    = 8 << 10  // bytes of a tree, parent, author or committer line read
	historyEntryCost = 128      // estimated bytes of an entry besides its strings
)

// Log walks every commit reachable from rev (all parents, not only the
// first: a person may merge an automation commit in on a second parent),
// newest committer time first, within the bounds. rev must have been
// fetched; a rev the cache does not hold matches fs.ErrNotExist.
//
// Commits are immutable, so their parsed form is kept in a bounded cache
// (WithLogCacheEntries, WithLogCacheBytes) shared by all walks: a pass
// over a history walked before reads only the commits that are new since.
// A missing parent is not an error: the walk goes on without it and says
// Shallow (and, when the repository is not a shallow clone, the cache
// entry is noted damaged, so the next Fetch clones it afresh).
func (c *Cache) Log(ctx context.Context, url string, rev Revision, opts LogOptions) (LogResult, error) {
	r, err := parseRemote(url)
	if err != nil {
		return LogResult{}, fmt.Errorf("log: %w", err)
	}
	var res LogResult
	err = c.withWalk(ctx, r, rev, func(w *walker, head *commitNode) error {
		nodes, truncated, err := w.walk(ctx, head, opts, plumbing.ZeroHash)
		if err != nil {
			return err
		}
		res = LogResult{Entries: make([]LogEntry, len(nodes)), Truncated: truncated, Shallow: w.shallow}
		for i, n := range nodes {
			res.Entries[i] = n.entry()
		}
		return nil
	})
	if err != nil {
		return LogResult{}, fmt.Errorf("log %s of %s: %w", rev, r.display, err)
	}
	return res, nil
}

// PathChanges returns the commits of Log(rev, opts) that are newer than
// until in the walk (until itself excluded; until == "" means the whole
// walk) and whose entry at path (a slash-separated path in the tree; a blob,
// a missing entry or a tree all count as states) differs from their first
// parent's (a root commit differs when the path exists). Newest first.
//
// The walk stops at until; an until it never meets (not reachable, or
// beyond a bound) means the whole walk. path is taken literally: symlinks
// on the way are not followed, a path below a file is missing, and a
// commit whose first parent is missing (the edge of a shallow history)
// counts as a root, as git log does. Entry states are cached like commits.
func (c *Cache) PathChanges(ctx context.Context, url string, rev Revision, path string, until string, opts LogOptions) ([]LogEntry, error) {
	r, err := parseRemote(url)
	if err != nil {
		return nil, fmt.Errorf("path changes: %w", err)
	}
	parts, err := confine(path)
	if err != nil {
		return nil, fmt.Errorf("path changes: %w", err)
	}
	stop := plumbing.ZeroHash
	if until != "" {
		if !isHash(until) {
			return nil, fmt.Errorf("path changes: %w", invalidf("until %q is not 40 hex digits", until))
		}
		stop = plumbing.NewHash(strings.ToLower(until))
	}
	var out []LogEntry
	err = c.withWalk(ctx, r, rev, func(w *walker, head *commitNode) error {
		nodes, _, err := w.walk(ctx, head, opts, stop)
		if err != nil {
			return err
		}
		key := strings.Join(parts, "/")
		for _, n := range nodes {
			if err := ctx.Err(); err != nil {
				return err
			}
			changed, err := w.changes(n, parts, key)
			if err != nil {
				return err
			}
			if changed {
				out = append(out, n.entry())
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("changes of %q at %s of %s: %w", path, rev, r.display, err)
	}
	return out, nil
}

// withWalk runs fn with a walker over r's cached repository and rev's
// commit, under the shared lock, noting damage on the way out.
func (c *Cache) withWalk(ctx context.Context, r *remote, rev Revision, fn func(*walker, *commitNode) error) (err error) {
	defer func() { c.noteDamage(r, err) }()
	h, err := rev.hashOf()
	if err != nil {
		return err
	}
	unlock, err := c.lock(ctx, r, false)
	if err != nil {
		return err
	}
	defer unlock()
	repo, closeRepo, err := c.openRepoForWalk(r)
	if err != nil {
		return err
	}
	defer closeRepo()
	w := &walker{c: c, r: r, id: c.logID(r), repo: repo, nodes: map[plumbing.Hash]*commitNode{}}
	head, err := w.read(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return notFetched(h)
	}
	if err != nil {
		return err
	}
	return fn(w, head)
}

// logID is r's small, stable number in the history cache, so that cache
// keys do not each carry a copy of the URL.
func (c *Cache) logID(r *remote) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.logIDs[r.key]
	if !ok {
		id = uint32(len(c.logIDs) + 1) //nolint:gosec // one id per remote URL a process uses
		c.logIDs[r.key] = id
	}
	return id
}

// walker is the state of one walk of one cached repository.
type walker struct {
	c    *Cache
	r    *remote
	id   uint32
	repo *gogit.Repository
	// nodes holds every commit the walk met; nil for a missing one.
	nodes map[plumbing.Hash]*commitNode
	// shallow records that a parent was missing (or not recorded).
	shallow bool
	// shallowList is the repository's shallow file, read on first need.
	shallowList map[plumbing.Hash]bool
}

// walk returns the commits reachable from head, newest first, ending at
// stop (excluded) or at a bound (truncated is then true).
func (w *walker) walk(ctx context.Context, head *commitNode, opts LogOptions, stop plumbing.Hash) (nodes []*commitNode, truncated bool, err error) {
	limit := opts.MaxCommits
	switch {
	case limit < 0:
		return nil, false, invalidf("max commits %d is negative", limit)
	case limit == 0:
		limit = DefaultLogCommits
	}
	w.nodes[head.hash] = head
	q := commitQueue{head}
	for q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		n := heap.Pop(&q).(*commitNode) //nolint:forcetypeassert // the queue holds nothing else
		if n.hash == stop {
			return nodes, false, nil
		}
		if !opts.Since.IsZero() && n.time.Before(opts.Since) {
			return nodes, true, nil
		}
		nodes = append(nodes, n)
		if n.partial {
			w.shallow = true
		}
		if len(nodes) == limit {
			// Stop before reading parents no one will see.
			return nodes, q.Len() > 0 || w.unseenParent(n), nil
		}
		for _, p := range n.parents {
			if _, seen := w.nodes[p]; seen {
				continue
			}
			pn, err := w.read(p)
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				w.missing(n.hash, p)
			} else if err != nil {
				return nil, false, err
			}
			w.nodes[p] = pn
			if pn != nil {
				heap.Push(&q, pn)
			}
		}
	}
	return nodes, false, nil
}

// unseenParent reports whether n has a parent the walk has not met.
func (w *walker) unseenParent(n *commitNode) bool {
	for _, p := range n.parents {
		if _, seen := w.nodes[p]; !seen {
			return true
		}
	}
	return false
}

// missing records that child's parent is not in the repository. In a
// shallow clone that is the edge of the history; anywhere else the cache
// entry lost objects, and the next Fetch should clone it afresh.
func (w *walker) missing(child, parent plumbing.Hash) {
	w.shallow = true
	if w.shallowList == nil {
		w.shallowList = map[plumbing.Hash]bool{}
		list, _ := w.repo.Storer.Shallow() // unreadable: nothing is explained
		for _, h := range list {
			w.shallowList[h] = true
		}
	}
	if !w.shallowList[child] {
		w.c.noteDamage(w.r, damaged(fmt.Errorf("commit %s: parent %s is missing", child, parent)))
	}
}

// read returns commit h from the history cache or, parsing it, from the
// repository. A commit that is absent (or is not a commit) matches
// plumbing.ErrObjectNotFound; any other failure means a damaged cache.
func (w *walker) read(h plumbing.Hash) (*commitNode, error) {
	key := historyKey{remote: w.id, hash: h}
	if v, ok := w.c.history.get(key); ok {
		return v.node, nil
	}
	w.c.objectReads.Add(1)
	obj, err := w.repo.Storer.EncodedObject(plumbing.CommitObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, damaged(fmt.Errorf("read commit %s: %w", h, err))
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, damaged(fmt.Errorf("read commit %s: %w", h, err))
	}
	defer func() { _ = rd.Close() }()
	n, err := parseCommit(h, rd)
	if err != nil {
		return nil, damaged(fmt.Errorf("read commit %s: %w", h, err))
	}
	w.c.history.add(key, historyValue{node: n})
	return n, nil
}

// changes reports whether n's entry at path differs from its first
// parent's.
func (w *walker) changes(n *commitNode, parts []string, path string) (bool, error) {
	mine, err := w.entryAt(n.tree, parts, path)
	if err != nil {
		return false, err
	}
	var parent *commitNode
	if len(n.parents) > 0 {
		p := n.parents[0]
		pn, seen := w.nodes[p]
		if !seen {
			// Beyond the walk's bound: read it now.
			pn, err = w.read(p)
			if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
				return false, err
			}
			w.nodes[p] = pn
		}
		parent = pn
	}
	if parent == nil {
		return mine != pathEntry{}, nil
	}
	theirs, err := w.entryAt(parent.tree, parts, path)
	if err != nil {
		return false, err
	}
	return mine != theirs, nil
}

// pathEntry is the state of a path in a tree: its mode and object hash, or
// the zero value when nothing is there.
type pathEntry struct {
	mode filemode.FileMode
	hash plumbing.Hash
}

// entryAt returns the entry at parts in tree, from the history cache or by
// reading the trees on the way.
func (w *walker) entryAt(tree plumbing.Hash, parts []string, path string) (pathEntry, error) {
	if tree.IsZero() {
		return pathEntry{}, nil
	}
	key := historyKey{remote: w.id, hash: tree, path: path}
	if v, ok := w.c.history.get(key); ok {
		return v.entry, nil
	}
	var e pathEntry
	h := tree
	for i, part := range parts {
		w.c.objectReads.Add(1)
		t, err := object.GetTree(w.repo.Storer, h)
		if err != nil {
			return pathEntry{}, damaged(fmt.Errorf("read tree %s: %w", h, err))
		}
		te := findEntry(t, part)
		if te == nil {
			break
		}
		if i == len(parts)-1 {
			e = pathEntry{mode: te.Mode, hash: te.Hash}
			break
		}
		if te.Mode != filemode.Dir {
			break
		}
		h = te.Hash
	}
	w.c.history.add(key, historyValue{entry: e})
	return e, nil
}

// commitNode is what a walk needs of one commit: parsed once, kept in the
// history cache, never changed afterwards.
type commitNode struct {
	hash    plumbing.Hash
	tree    plumbing.Hash
	parents []plumbing.Hash
	// partial is true when some parents could not be recorded (too many,
	// or malformed): what lies beyond is unknown.
	partial  bool
	time     time.Time
	author   Signature
	subject  string
	trailers []Trailer
}

// entry is n as a caller sees it, sharing nothing with the cache.
func (n *commitNode) entry() LogEntry {
	e := LogEntry{
		Hash:     n.hash.String(),
		Time:     n.time,
		Author:   n.author,
		Subject:  n.subject,
		Trailers: slices.Clone(n.trailers),
	}
	if len(n.parents) > 0 {
		e.Parents = make([]string, len(n.parents))
		for i, p := range n.parents {
			e.Parents[i] = p.String()
		}
	}
	return e
}

// size estimates n's memory.
func (n *commitNode) size() int64 {
	s := historyEntryCost + len(n.parents)*len(plumbing.Hash{}) + len(n.author.Name) + len(n.author.Email) + len(n.subject)
	for _, t := range n.trailers {
		s += 32 + len(t.Key) + len(t.Value)
	}
	return int64(s)
}

// commitQueue orders commits newest committer time first, ties broken by
// hash, so a walk is deterministic.
type commitQueue []*commitNode

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	if !q[i].time.Equal(q[j].time) {
		return q[i].time.After(q[j].time)
	}
	return bytes.Compare(q[i].hash[:], q[j].hash[:]) < 0
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any) {
	*q = append(*q, x.(*commitNode)) //nolint:forcetypeassert // heap.Push gets commits only
}
func (q *commitQueue) Pop() any {
	old := *q
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return n
}

// historyKey names an entry of the history cache: a commit (path == "") or
// the state of path in a tree, of one remote. Remotes are kept apart so a
// hostile repository cannot plant entries for another one's hashes.
type historyKey struct {
	remote uint32
	hash   plumbing.Hash
	path   string
}

// historyValue is a cached commit or path state.
type historyValue struct {
	node  *commitNode
	entry pathEntry
}

// historyCache is a least-recently-used cache of parsed commits and path
// states, bounded both in entries and in estimated bytes.
type historyCache struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[historyKey, historyValue]
	bytes    int64
	maxBytes int64
}

func newHistoryCache(entries int, maxBytes int64) *historyCache {
	hc := &historyCache{maxBytes: maxBytes}
	// NewLRU fails only for a size below one, which NewCache refuses.
	hc.lru, _ = simplelru.NewLRU(entries, func(k historyKey, v historyValue) {
		hc.bytes -= historyCost(k, v)
	})
	return hc
}

// historyCost estimates the memory of one entry.
func historyCost(k historyKey, v historyValue) int64 {
	if v.node != nil {
		return v.node.size() + int64(len(k.path))
	}
	return historyEntryCost + int64(len(k.path))
}

func (hc *historyCache) get(k historyKey) (historyValue, bool) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.lru.Get(k)
}

// add stores an entry (entries are immutable: an existing one is kept) and
// evicts the least recently used ones while over the byte bound.
func (hc *historyCache) add(k historyKey, v historyValue) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.lru.Contains(k) {
		return
	}
	hc.lru.Add(k, v)
	hc.bytes += historyCost(k, v)
	for hc.bytes > hc.maxBytes && hc.lru.Len() > 1 {
		hc.lru.RemoveOldest()
	}
}

// forget drops every entry of a remote.
func (hc *historyCache) forget(remote uint32) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for _, k := range hc.lru.Keys() {
		if k.remote == remote {
			hc.lru.Remove(k)
		}
	}
}
