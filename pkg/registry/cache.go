package registry

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/helmflux/helmflux/pkg/policy"
)

// cacheVersion is the file format; a file of another version is ignored.
// Version 1 files were keyed by repository alone, whoever's login listed
// them; NewCache removes them.
const cacheVersion = 2

// anonymousLogin is the login id of scans without credentials.
const anonymousLogin = "anonymous"

// loginKeyFile holds the key of the login ids (see cache.loginID), so that
// files written before a restart are found after it.
const loginKeyFile = "login.key"

// entry is what is known of one repository. Stored entries are never
// mutated: a scan works on a clone and stores it whole.
type entry struct {
	Repository string `json:"repository"`
	// Login is the id of the login the listing was made with (loginID),
	// never the login itself: a listing is served only to scans with the
	// same login, since a private repository's tags, digests and times are
	// for those who may read it.
	Login string `json:"login"`
	// Complete says Tags is a whole listing. Only complete listings are
	// stored; a file that says otherwise is ignored.
	Complete bool `json:"complete"`
	// ScannedAt is when Tags was listed from the registry; zero after
	// Forget, so the next scan lists again.
	ScannedAt time.Time `json:"scannedAt"`
	// Tags is sorted and free of duplicates.
	Tags []string `json:"tags"`
	// Digests maps a tag to the manifest digest it was last seen at.
	Digests map[string]tagDigest `json:"digests,omitempty"`
	// Created maps a manifest digest to its image's creation time; a zero
	// time means the image has none. Digests are immutable, so a time is
	// kept as long as some tag points at its digest.
	Created map[string]time.Time `json:"created,omitempty"`
}

type tagDigest struct {
	Digest string `json:"digest"`
	// CheckedAt is when the registry last confirmed the tag's digest.
	CheckedAt time.Time `json:"checkedAt"`
}

func (e *entry) clone() *entry {
	c := *e
	c.Tags = slices.Clone(e.Tags)
	c.Digests = make(map[string]tagDigest, len(e.Digests))
	for k, v := range e.Digests {
		c.Digests[k] = v
	}
	c.Created = make(map[string]time.Time, len(e.Created))
	for k, v := range e.Created {
		c.Created[k] = v
	}
	return &c
}

// prune drops the digests of tags that are gone and the times of digests
// no tag points at, so an entry stays bounded by its tag list.
func (e *entry) prune() {
	for tag := range e.Digests {
		if _, ok := slices.BinarySearch(e.Tags, tag); !ok {
			delete(e.Digests, tag)
		}
	}
	used := make(map[string]bool, len(e.Digests))
	for _, d := range e.Digests {
		used[d.Digest] = true
	}
	for d := range e.Created {
		if !used[d] {
			delete(e.Created, d)
		}
	}
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// validate checks an entry read from disk: everything in it must be what a
// scan could have stored for repo and login under maxTags.
func (e *entry) validate(repo, login string, maxTags int) error {
	switch {
	case e.Repository != repo:
		return errors.New("entry is for another repository")
	case e.Login != login:
		return errors.New("entry is for another login")
	case !e.Complete:
		return errors.New("entry is not a complete listing")
	case len(e.Tags) > maxTags:
		return errors.New("entry has more tags than allowed")
	}
	for i, t := range e.Tags {
		if !policy.ValidTag(t) || (i > 0 && e.Tags[i-1] >= t) {
			return errors.New("entry has an invalid or unsorted tag")
		}
	}
	for t, d := range e.Digests {
		if _, ok := slices.BinarySearch(e.Tags, t); !ok || !digestPattern.MatchString(d.Digest) {
			return errors.New("entry has an invalid digest")
		}
	}
	for d := range e.Created {
		if !digestPattern.MatchString(d) {
			return errors.New("entry has an invalid digest")
		}
	}
	return nil
}

// newLRU returns an LRU map of max entries, not safe for concurrent use:
// each one here is used under a mutex that guards more than the map. max is
// a positive constant, and a positive size is all NewLRU checks.
func newLRU[V any](max int) *simplelru.LRU[string, V] {
	l, err := simplelru.NewLRU[string, V](max, nil)
	if err != nil {
		panic(fmt.Sprintf("registry: LRU of %d entries: %v", max, err))
	}
	return l
}

// cache keeps entries, one per repository and login, in memory, least
// recently used evicted beyond a bound, and, with a directory, in one file
// per repository and login that survives restarts and is read lazily on
// first use: <dir>/<sha256 of the repository>/<login id>.json.
type cache struct {
	dir     string // "" = memory only
	maxTags int
	log     logr.Logger
	// loginKey keys the login ids: random, kept in the directory.
	loginKey []byte

	mu   sync.Mutex
	mem  *simplelru.LRU[string, *entry] // by memKey
	gens map[string]uint64              // by repository, bumped by forget

	// wmu orders file writes like the memory updates they follow: taken
	// before mu is released, held while writing.
	wmu sync.Mutex
}

func newCache(dir string, maxEntries, maxTags int, log logr.Logger) (*cache, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make the login key: %w", err)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create cache dir %s: %w", dir, err)
		}
		// Temporary files of writes a crash interrupted, and version 1
		// files, which did not say whose login listed them.
		for _, pattern := range []string{".tmp-*", "*/.tmp-*", "*.json"} {
			if stale, err := filepath.Glob(filepath.Join(dir, pattern)); err == nil {
				for _, f := range stale {
					_ = os.Remove(f)
				}
			}
		}
		var err error
		if key, err = loadLoginKey(filepath.Join(dir, loginKeyFile), key); err != nil {
			return nil, err
		}
	}
	mem, err := simplelru.NewLRU[string, *entry](maxEntries, nil)
	if err != nil {
		return nil, fmt.Errorf("registry cache of %d entries: %w", maxEntries, err)
	}
	return &cache{dir: dir, maxTags: maxTags, log: log, loginKey: key, mem: mem, gens: map[string]uint64{}}, nil
}

// loadLoginKey reads the login key from file, or writes fresh there (0600)
// when there is none or it is not 32 bytes.
func loadLoginKey(file string, fresh []byte) ([]byte, error) {
	if key, err := os.ReadFile(file); err == nil && len(key) == len(fresh) {
		return key, nil
	}
	if err := os.WriteFile(file, fresh, 0o600); err != nil {
		return nil, fmt.Errorf("write the login key: %w", err)
	}
	return fresh, nil
}

// loginID names a login without revealing it: a keyed hash (HMAC-SHA256
// with the cache's random key) of its secret fields, so neither a cache
// file nor a log line holds something a guess can be checked against
// offline without the key. It keys cached listings and sessions.
func (c *cache) loginID(a authn.AuthConfig) string {
	h := hmac.New(sha256.New, c.loginKey)
	for _, s := range []string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// memKey is the memory key of repo's listing for login.
func memKey(repo, login string) string { return repo + "\x00" + login }

// get returns the entry of repo for login (never to be mutated), reading
// its file on a memory miss; nil if there is none or it cannot be trusted.
func (c *cache) get(repo, login string) *entry {
	key := memKey(repo, login)
	c.mu.Lock()
	e, ok := c.mem.Get(key)
	c.mu.Unlock()
	if ok || c.dir == "" {
		return e
	}
	e, err := c.read(repo, login)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.V(1).Info("Ignoring unusable registry cache file", "repository", repo, "reason", err.Error())
			c.wmu.Lock()
			_ = os.Remove(c.path(repo, login))
			c.wmu.Unlock()
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.mem.Get(key); ok { // stored meanwhile: newer
		return cur
	}
	c.mem.Add(key, e)
	return e
}

// generation returns a counter that forget bumps, so a scan can tell that
// its listing of repo predates a Forget.
func (c *cache) generation(repo string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[repo]
}

// put stores e (made with e.Login) for its repository. If the repository
// was forgotten since gen, e is stored as never listed: the listing may have
// missed what the Forget announced.
func (c *cache) put(e *entry, gen uint64) {
	c.mu.Lock()
	if c.gens[e.Repository] != gen {
		e = e.clone()
		e.ScannedAt = time.Time{}
	}
	c.mem.Add(memKey(e.Repository, e.Login), e)
	if c.dir == "" {
		c.mu.Unlock()
		return
	}
	c.wmu.Lock()
	c.mu.Unlock()
	defer c.wmu.Unlock()
	if err := c.write(e); err != nil {
		c.log.Error(err, "Could not write registry cache file", "repository", e.Repository)
	}
}

// forget marks every listing of repo, whatever the login, as never made,
// in memory and on disk, keeping their digests and times.
func (c *cache) forget(repo string) {
	c.mu.Lock()
	c.gens[repo]++
	forgotten := map[string]*entry{} // by login
	for _, k := range c.mem.Keys() {
		r, login, _ := strings.Cut(k, "\x00")
		if r != repo {
			continue
		}
		e, _ := c.mem.Peek(k)
		e = e.clone()
		e.ScannedAt = time.Time{}
		c.mem.Add(k, e)
		forgotten[login] = e
	}
	if c.dir == "" {
		c.mu.Unlock()
		return
	}
	c.wmu.Lock()
	c.mu.Unlock()
	defer c.wmu.Unlock()
	files, _ := os.ReadDir(c.repoDir(repo))
	for _, f := range files {
		login, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok || forgotten[login] != nil {
			continue
		}
		e, err := c.read(repo, login)
		if err != nil {
			continue // nothing usable
		}
		e.ScannedAt = time.Time{}
		forgotten[login] = e
	}
	for _, e := range forgotten {
		if err := c.write(e); err != nil {
			c.log.Error(err, "Could not write registry cache file", "repository", repo)
		}
	}
}

// repoDir is the directory of repo's files: the SHA-256 of the repository
// name, so no name can escape the directory or collide with another's.
func (c *cache) repoDir(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:]))
}

// path is the file of repo's listing for login (a login id: hex or
// anonymousLogin, so it is a plain file name).
func (c *cache) path(repo, login string) string {
	return filepath.Join(c.repoDir(repo), login+".json")
}

// fileEnvelope is a cache file: the entry and the SHA-256 of its bytes, so
// a file damaged in a way that still parses is not trusted either.
type fileEnvelope struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	Entry   json.RawMessage `json:"entry"`
}

// maxFileSize caps a cache file read: a full entry is about 300 bytes a
// tag, so this leaves room for long tags without trusting any size.
func (c *cache) maxFileSize() int64 { return 1<<20 + int64(c.maxTags)*1024 }

func (c *cache) read(repo, login string) (*entry, error) {
	f, err := os.Open(c.path(repo, login))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := c.maxFileSize()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errors.New("file too large")
	}
	var env fileEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, errors.New("file is not valid JSON")
	}
	if env.Version != cacheVersion {
		return nil, fmt.Errorf("file version %d is not %d", env.Version, cacheVersion)
	}
	sum := sha256.Sum256(env.Entry)
	if env.SHA256 != hex.EncodeToString(sum[:]) {
		return nil, errors.New("file checksum mismatch")
	}
	dec := json.NewDecoder(bytes.NewReader(env.Entry))
	dec.DisallowUnknownFields()
	var e entry
	if err := dec.Decode(&e); err != nil {
		return nil, errors.New("entry is not valid")
	}
	if err := e.validate(repo, login, c.maxTags); err != nil {
		return nil, err
	}
	if e.Digests == nil {
		e.Digests = map[string]tagDigest{}
	}
	if e.Created == nil {
		e.Created = map[string]time.Time{}
	}
	return &e, nil
}

// write replaces e's file atomically: a temporary file (0600) renamed
// over it, so a reader or a crash never sees half a file.
func (c *cache) write(e *entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	data, err := json.Marshal(fileEnvelope{Version: cacheVersion, SHA256: hex.EncodeToString(sum[:]), Entry: raw})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.repoDir(e.Repository), 0o700); err != nil {
		return fmt.Errorf("write cache file: %w", err)
	}
	final := c.path(e.Repository, e.Login)
	tmp, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-*")
	if err != nil {
		return fmt.Errorf("write cache file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write cache file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write cache file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write cache file: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("write cache file: %w", err)
	}
	return nil
}
