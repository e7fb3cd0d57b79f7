package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/sync/semaphore"

	"github.com/helmflux/helmflux/pkg/sweep"
)

func init() {
	// go-git's default file:// transport execs git-upload-pack, which the
	// operator image does not have; its in-process server speaks the same
	// protocol from Go. Installed at init, before any goroutine can read the
	// (unsynchronised) protocol table.
	client.InstallProtocol("file", server.NewClient(server.DefaultLoader))
}

// Defaults for the limits a Cache enforces on untrusted repository content.
const (
	// DefaultMaxCheckoutSize caps the bytes one Checkout writes.
	DefaultMaxCheckoutSize int64 = 1 << 30
	// DefaultMaxCheckoutFiles caps the entries one Checkout writes.
	DefaultMaxCheckoutFiles = 200_000
	// DefaultMaxVerifyCommits caps how many commits one Verify walks.
	DefaultMaxVerifyCommits = 10_000
	// DefaultLogCacheEntries caps the parsed commits and path states the
	// history cache behind Log and PathChanges keeps, over all remotes.
	DefaultLogCacheEntries = 200_000
	// DefaultLogCacheBytes caps the estimated memory of that cache: entries
	// alone do not bound it, since a hostile commit may carry 64 KiB of
	// trailers.
	DefaultLogCacheBytes int64 = 16 << 20
)

// readers is the weight of the per-URL semaphore: Fetch takes all of it
// (exclusive), reads take one each (shared).
const readers = 1 << 20

// Cache keeps one bare repository per remote URL under a directory and
// updates it incrementally, so a reconcile costs a ref advertisement instead
// of a clone. It is safe for concurrent use.
type Cache struct {
	dir string

	maxCheckoutSize  int64
	maxCheckoutFiles int
	maxVerifyCommits int

	logCacheEntries int
	logCacheBytes   int64
	// refuseLocal refuses remotes on the operator's machine (WithoutLocalURLs).
	refuseLocal bool
	// observe is told of fetches and pushes (WithObserver); nil for none.
	observe Observer
	// dial opens http(s) connections when set (WithDialContext).
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	history *historyCache
	// objectReads counts the commit and tree objects Log and PathChanges
	// read from disk (tests check that warm walks read none).
	objectReads atomic.Int64

	mu      sync.Mutex
	locks   map[string]*semaphore.Weighted
	damaged map[string]bool   // keys whose objects failed to read
	logIDs  map[string]uint32 // remote key -> its id in the history cache
}

// Option tunes a Cache's limits.
type Option func(*Cache)

// WithMaxCheckoutSize caps the bytes one Checkout may write (default
// DefaultMaxCheckoutSize), so a huge repository cannot fill the disk.
func WithMaxCheckoutSize(n int64) Option { return func(c *Cache) { c.maxCheckoutSize = n } }

// WithMaxCheckoutFiles caps the files, directories and symlinks one Checkout
// may write (default DefaultMaxCheckoutFiles).
func WithMaxCheckoutFiles(n int) Option { return func(c *Cache) { c.maxCheckoutFiles = n } }

// WithMaxVerifyCommits caps the first-parent commits one Verify or
// LastVerified walks (default DefaultMaxVerifyCommits).
func WithMaxVerifyCommits(n int) Option { return func(c *Cache) { c.maxVerifyCommits = n } }

// WithLogCacheEntries caps how many parsed commits and path states the
// history cache of Log and PathChanges keeps (default DefaultLogCacheEntries).
func WithLogCacheEntries(n int) Option { return func(c *Cache) { c.logCacheEntries = n } }

// WithLogCacheBytes caps the estimated memory of that history cache (default
// DefaultLogCacheBytes).
func WithLogCacheBytes(n int64) Option { return func(c *Cache) { c.logCacheBytes = n } }

// Observer is told what a Cache's fetches and pushes did, by remote host
// (the host name alone: no port, user, path or credential; "local" for a
// file:// remote or a local path), for metrics. Its methods must be quick
// and safe for concurrent use.
type Observer interface {
	// Fetched: a fetch from host took took (the remote's ref
	// advertisement, and the transfer when something was new), ending with
	// err (nil on success).
	Fetched(host string, took time.Duration, err error)
	// Pushed: a CommitAndPush to host pushed a commit, or gave up, after
	// redoing its edit retries times because another writer pushed first.
	Pushed(host string, retries int)
}

// WithObserver reports fetches and pushes to o.
func WithObserver(o Observer) Option { return func(c *Cache) { c.observe = o } }

// observedHost is the host r is reported under.
func observedHost(r *remote) string {
	if r.scheme == "file" || r.host == "" {
		return "local"
	}
	return r.host
}

// NewCache returns a Cache rooted at dir, creating it (0700: it holds private
// repositories) if needed.
func NewCache(dir string, opts ...Option) (*Cache, error) {
	if dir == "" {
		return nil, invalidf("cache dir is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("new cache %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("new cache %s: %w", dir, err)
	}
	// Leftovers of a process that died mid-Fetch.
	if err := os.RemoveAll(filepath.Join(abs, ".tmp")); err != nil {
		return nil, fmt.Errorf("new cache %s: %w", dir, err)
	}
	c := &Cache{
		dir:              abs,
		maxCheckoutSize:  DefaultMaxCheckoutSize,
		maxCheckoutFiles: DefaultMaxCheckoutFiles,
		maxVerifyCommits: DefaultMaxVerifyCommits,
		logCacheEntries:  DefaultLogCacheEntries,
		logCacheBytes:    DefaultLogCacheBytes,
		locks:            map[string]*semaphore.Weighted{},
		damaged:          map[string]bool{},
		logIDs:           map[string]uint32{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.logCacheEntries <= 0 || c.logCacheBytes <= 0 {
		return nil, invalidf("log cache bounds must be positive")
	}
	c.history = newHistoryCache(c.logCacheEntries, c.logCacheBytes)
	return c, nil
}

// refuseLocalRemote returns an error matching ErrLocalURL when the cache
// refuses local remotes and r is one.
func (c *Cache) refuseLocalRemote(r *remote) error {
	if c.refuseLocal && r.isLocal() {
		return fmt.Errorf("%s is on the operator's machine (file://, a local path or a loopback host): %w", r.display, ErrLocalURL)
	}
	return nil
}

// DirOf is where a Cache rooted at cacheDir keeps the repository of url, so
// that tests and operators can tell whether it is cached.
func DirOf(cacheDir, url string) (string, error) {
	r, err := parseRemote(url)
	if err != nil {
		return "", err
	}
	return filepath.Join(cacheDir, r.dirName()), nil
}

// repoDir is where the bare repository of r lives.
func (c *Cache) repoDir(r *remote) string { return filepath.Join(c.dir, r.dirName()) }

// tmpDir is a scratch directory inside the cache (same filesystem, and
// writable even where /tmp is not).
func (c *Cache) tmpDir() (string, error) {
	d := filepath.Join(c.dir, ".tmp")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	return d, nil
}

// lock takes r's lock, exclusively or shared, giving up when ctx ends.
func (c *Cache) lock(ctx context.Context, r *remote, exclusive bool) (func(), error) {
	c.mu.Lock()
	s, ok := c.locks[r.key]
	if !ok {
		s = semaphore.NewWeighted(readers)
		c.locks[r.key] = s
	}
	c.mu.Unlock()
	var n int64 = 1
	if exclusive {
		n = readers
	}
	if err := s.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("wait for cache lock of %s: %w", r.display, err)
	}
	_ = sweep.Touch(c.repoDir(r)) // its last use, for Sweep; absent before the first fetch
	return func() { s.Release(n) }, nil
}

// Sweep evicts cached repositories by policy (see package sweep), the
// least recently used first; one in use is left for the next sweep. A
// later Fetch of an evicted repository clones it again.
func (c *Cache) Sweep(policy sweep.Policy) (sweep.Result, error) {
	return sweep.Run(policy, time.Now(), c.SweepArea())
}

// SweepArea is the cache as an area of a sweep with other caches under one
// size bound: a repository in use is skipped.
func (c *Cache) SweepArea() sweep.Area { return sweep.Area{Dir: c.dir, Remove: c.removeDir} }

// removeDir removes one repository directory of the cache unless an
// operation holds its lock. c.mu is held throughout, so no operation on the
// repository can start meanwhile (lock takes c.mu first).
func (c *Cache) removeDir(path string) error {
	name := filepath.Base(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, s := range c.locks {
		if dirNameOf(key) != name {
			continue
		}
		if !s.TryAcquire(readers) {
			return sweep.ErrInUse
		}
		defer s.Release(readers)
		if id, ok := c.logIDs[key]; ok {
			c.history.forget(id)
		}
	}
	return os.RemoveAll(path)
}

// Remove deletes url's cached repository, for when no GitSync uses the URL
// any more. It waits for operations on url in flight; a later Fetch clones
// again.
func (c *Cache) Remove(ctx context.Context, url string) error {
	r, err := parseRemote(url)
	if err != nil {
		return fmt.Errorf("remove from cache: %w", err)
	}
	unlock, err := c.lock(ctx, r, true)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.RemoveAll(c.repoDir(r)); err != nil {
		return fmt.Errorf("remove cache of %s: %w", r.display, err)
	}
	c.history.forget(c.logID(r))
	return nil
}

// damagedError marks a failure to read an object the cache should have (a
// tree or blob of a commit it holds): the cache entry is damaged.
type damagedError struct{ err error }

func (e *damagedError) Error() string { return e.err.Error() }
func (e *damagedError) Unwrap() error { return e.err }

func damaged(err error) error { return &damagedError{err: err} }

// noteDamage remembers that r's cache entry is damaged if err says so; the
// next Fetch of r then clones afresh.
func (c *Cache) noteDamage(r *remote, err error) {
	var d *damagedError
	if errors.As(err, &d) {
		c.mu.Lock()
		c.damaged[r.key] = true
		c.mu.Unlock()
	}
}

// takeDamage reports and forgets whether r's cache entry was noted damaged.
func (c *Cache) takeDamage(r *remote) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.damaged[r.key]
	delete(c.damaged, r.key)
	return d
}

// readCommit reads the commit a caller asked for: absent means not fetched
// (the caller's mistake), any other failure means a damaged cache.
func readCommit(repo *gogit.Repository, h plumbing.Hash) (*object.Commit, error) {
	cm, err := repo.CommitObject(h)
	switch {
	case errors.Is(err, plumbing.ErrObjectNotFound):
		return nil, notFetched(h)
	case err != nil:
		return nil, damaged(fmt.Errorf("read commit %s: %w", h, err))
	}
	return cm, nil
}

// notFetched says that commit h, which a caller asked for, is not in the
// cache.
func notFetched(h plumbing.Hash) error {
	return fmt.Errorf("commit %s is not in the cache; fetch it first: %w", h, fs.ErrNotExist)
}

// errNotCached means a read asked for a remote that was never fetched.
var errNotCached = errors.New("not in cache; fetch it first")

// openRepo opens r's cached repository for reading.
func (c *Cache) openRepo(r *remote) (*gogit.Repository, error) {
	repo, err := gogit.PlainOpen(c.repoDir(r))
	if errors.Is(err, gogit.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w", r.display, errNotCached)
	}
	if err != nil {
		return nil, fmt.Errorf("open cache of %s: %w", r.display, err)
	}
	return repo, nil
}

// streamObjectsOver is the size above which openRepoForWalk streams an
// object instead of reading it into memory whole.
const streamObjectsOver = 1 << 20

// openRepoForWalk is openRepo for a long run of small reads, such as a
// history walk: pack files stay open until close is called instead of
// being opened again for every object, and objects over streamObjectsOver
// bytes are streamed, so a huge hostile commit costs only what is read of
// it.
func (c *Cache) openRepoForWalk(r *remote) (repo *gogit.Repository, closeRepo func(), err error) {
	st := filesystem.NewStorageWithOptions(osfs.New(c.repoDir(r)), cache.NewObjectLRUDefault(),
		filesystem.Options{KeepDescriptors: true, LargeObjectThreshold: streamObjectsOver})
	closeRepo = func() { _ = st.Close() }
	repo, err = gogit.Open(st, nil)
	if err != nil {
		closeRepo()
		if errors.Is(err, gogit.ErrRepositoryNotExists) {
			return nil, nil, fmt.Errorf("%s: %w", r.display, errNotCached)
		}
		return nil, nil, fmt.Errorf("open cache of %s: %w", r.display, err)
	}
	return repo, closeRepo, nil
}

// openOrInit opens r's cached repository, initialising an empty bare one if
// there is none and replacing one that cannot be opened. Callers hold the
// exclusive lock.
func (c *Cache) openOrInit(r *remote) (*gogit.Repository, error) {
	dir := c.repoDir(r)
	repo, err := gogit.PlainOpen(dir)
	if err == nil {
		return repo, nil
	}
	if !errors.Is(err, gogit.ErrRepositoryNotExists) {
		// Unreadable config, HEAD or layout: start over.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return nil, fmt.Errorf("remove corrupted cache of %s: %w", r.display, rerr)
		}
	}
	repo, err = gogit.PlainInit(dir, true)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("init cache of %s: %w", r.display, err)
	}
	return repo, nil
}

// healthy reports whether every ref of repo resolves to a readable commit,
// tag or tree: a cheap check that catches truncated or garbage packfiles,
// missing loose objects and broken refs.
func healthy(repo *gogit.Repository) bool {
	if _, err := repo.Config(); err != nil {
		return false
	}
	refs, err := repo.References()
	if err != nil {
		return false
	}
	ok := true
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		obj, err := repo.Object(plumbing.AnyObject, ref.Hash())
		if err != nil {
			ok = false
			return err
		}
		if cm, isCommit := obj.(*object.Commit); isCommit {
			if _, err := cm.Tree(); err != nil {
				ok = false
				return err
			}
		}
		return nil
	})
	return ok
}
