package sweep

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Policy bounds the caches one Run sweeps. A zero field is no bound.
type Policy struct {
	// MaxAge removes the entries not used for longer.
	MaxAge time.Duration
	// MaxSize bounds the bytes of all the areas' entries together; the
	// least recently used go first until the rest fit.
	MaxSize int64
}

// Area is one cache directory. Entries whose name starts with "." (scratch
// directories, which their cache empties at start) are never swept.
type Area struct {
	Dir string
	// Remove deletes one entry (a path under Dir); nil is os.RemoveAll. A
	// cache whose entries may be in use supplies its own, which may refuse
	// (ErrInUse) an entry in use: it is skipped this time.
	Remove func(path string) error
	// Keep, when set, names entries never swept (a cache's key file).
	Keep func(name string) bool
}

// ErrInUse is what an Area's Remove returns for an entry in use.
var ErrInUse = errors.New("cache entry in use")

// Result says what a Run did.
type Result struct {
	Removed []string // paths of the entries removed
	Freed   int64    // their bytes
	Size    int64    // the bytes left in all the areas
}

type entry struct {
	path   string
	size   int64
	used   time.Time
	remove func(string) error
}

// Run sweeps the areas with policy as of now. A missing area is empty. It
// returns the first error it met after trying every entry it meant to remove.
func Run(policy Policy, now time.Time, areas ...Area) (Result, error) {
	var all []entry
	var res Result
	for _, a := range areas {
		des, err := os.ReadDir(a.Dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("sweep %s: %w", a.Dir, err)
		}
		remove := a.Remove
		if remove == nil {
			remove = os.RemoveAll
		}
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".") || (a.Keep != nil && a.Keep(de.Name())) {
				continue
			}
			p := filepath.Join(a.Dir, de.Name())
			info, err := os.Lstat(p)
			if err != nil {
				continue // gone meanwhile
			}
			all = append(all, entry{path: p, size: size(p, info), used: info.ModTime(), remove: remove})
			res.Size += all[len(all)-1].size
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	var firstErr error
	for _, e := range all {
		old := policy.MaxAge > 0 && now.Sub(e.used) > policy.MaxAge
		big := policy.MaxSize > 0 && res.Size > policy.MaxSize
		if !old && !big {
			continue
		}
		if err := e.remove(e.path); err != nil {
			if !errors.Is(err, ErrInUse) && firstErr == nil {
				firstErr = fmt.Errorf("sweep %s: %w", e.path, err)
			}
			continue
		}
		res.Removed = append(res.Removed, e.path)
		res.Freed += e.size
		res.Size -= e.size
	}
	return res, firstErr
}

// size is the bytes of the files under p (p itself for a file).
func size(p string, info fs.FileInfo) int64 {
	if !info.IsDir() {
		return info.Size()
	}
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // an entry that went meanwhile counts nothing
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Touch marks path used now, for the caches that track use by modification
// time.
func Touch(path string) error {
	now := time.Now()
	return os.Chtimes(path, now, now)
}
