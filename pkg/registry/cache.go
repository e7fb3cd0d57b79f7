package registry

import (
	"bytes"
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
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/helmflux/helmflux/pkg/policy"
)

// cacheVersion is the file format; a file of another version is ignored.
const cacheVersion = 1

// entry is what is known of one repository. Stored entries are never
// mutated: a scan works on a clone and stores it whole.
type entry struct {
	Repository string `json:"repository"`
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
// scan could have stored for key under maxTags.
func (e *entry) validate(key string, maxTags int) error {
	switch {
	case e.Repository != key:
		return errors.New("entry is for another repository")
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

// cache keeps entries in memory, least recently used evicted beyond a bound,
// and, with a directory, in one file per repository that survives restarts
// and is read lazily on first use.
type cache struct {
	dir     string // "" = memory only
	maxTags int
	log     logr.Logger

	mu   sync.Mutex
	mem  *simplelru.LRU[string, *entry]
	gens map[string]uint64 // bumped by forget

	// wmu orders file writes like the memory updates they follow: taken
	// before mu is released, held while writing.
	wmu sync.Mutex
}

func newCache(dir string, maxEntries, maxTags int, log logr.Logger) (*cache, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create cache dir %s: %w", dir, err)
		}
		// Temporary files of writes a crash interrupted.
		if stale, err := filepath.Glob(filepath.Join(dir, ".tmp-*")); err == nil {
			for _, f := range stale {
				_ = os.Remove(f)
			}
		}
	}
	mem, err := simplelru.NewLRU[string, *entry](maxEntries, nil)
	if err != nil {
		return nil, fmt.Errorf("registry cache of %d entries: %w", maxEntries, err)
	}
	return &cache{dir: dir, maxTags: maxTags, log: log, mem: mem, gens: map[string]uint64{}}, nil
}

// get returns the entry of key (never to be mutated), reading its file on
// a memory miss; nil if there is none or it cannot be trusted.
func (c *cache) get(key string) *entry {
	c.mu.Lock()
	e, ok := c.mem.Get(key)
	c.mu.Unlock()
	if ok || c.dir == "" {
		return e
	}
	e, err := c.read(key)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.V(1).Info("Ignoring unusable registry cache file", "repository", key, "reason", err.Error())
			c.wmu.Lock()
			_ = os.Remove(c.path(key))
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
// its listing predates a Forget.
func (c *cache) generation(key string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[key]
}

// put stores e for key. If key was forgotten since gen, e is stored as
// never listed: the listing may have missed what the Forget announced.
func (c *cache) put(key string, e *entry, gen uint64) {
	c.mu.Lock()
	if c.gens[key] != gen {
		e = e.clone()
		e.ScannedAt = time.Time{}
	}
	c.mem.Add(key, e)
	if c.dir == "" {
		c.mu.Unlock()
		return
	}
	c.wmu.Lock()
	c.mu.Unlock()
	defer c.wmu.Unlock()
	if err := c.write(key, e); err != nil {
		c.log.Error(err, "Could not write registry cache file", "repository", key)
	}
}

// forget marks key's listing as never made, in memory and on disk, keeping
// its digests and times.
func (c *cache) forget(key string) {
	c.mu.Lock()
	c.gens[key]++
	e, inMem := c.mem.Get(key)
	if inMem {
		e = e.clone()
		e.ScannedAt = time.Time{}
		c.mem.Add(key, e)
	}
	if c.dir == "" {
		c.mu.Unlock()
		return
	}
	c.wmu.Lock()
	c.mu.Unlock()
	defer c.wmu.Unlock()
	if !inMem {
		var err error
		if e, err = c.read(key); err != nil {
			return // nothing usable on disk either
		}
		e.ScannedAt = time.Time{}
	}
	if err := c.write(key, e); err != nil {
		c.log.Error(err, "Could not write registry cache file", "repository", key)
	}
}

// path is key's file: the SHA-256 of the repository name, so no name can
// escape the directory or collide with another's file.
func (c *cache) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".json")
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

func (c *cache) read(key string) (*entry, error) {
	f, err := os.Open(c.path(key))
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
	if err := e.validate(key, c.maxTags); err != nil {
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

// write replaces key's file atomically: a temporary file (0600) renamed
// over it, so a reader or a crash never sees half a file.
func (c *cache) write(key string, e *entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	data, err := json.Marshal(fileEnvelope{Version: cacheVersion, SHA256: hex.EncodeToString(sum[:]), Entry: raw})
	if err != nil {
		return err
	}
	final := c.path(key)
	tmp, err := os.CreateTemp(c.dir, ".tmp-"+filepath.Base(final)+"-*")
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
