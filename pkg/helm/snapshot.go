package helm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// History is the storage records of one release as read at one moment:
// what a caller decides on, handed to the Install or Upgrade that follows
// (Request.History) so that Helm's own reads of the records during the
// action (its history check, the revision to supersede, the history limit)
// are answered from them rather than by another list of Secrets each. The
// action's own writes keep them current. Someone else's record written in
// between shows when the action creates its record: the create conflicts
// and the action fails, as two helm commands racing do.
type History struct {
	namespace, name string

	mu       sync.Mutex
	releases []*release.Release
	used     bool
}

// History reads the storage records of a release (one list of Secrets).
func (r *Runner) History(ctx context.Context, namespace, name string) (*History, error) {
	cfg, err := r.configuration(ctx, namespace, false)
	if err != nil {
		return nil, err
	}
	h, err := cfg.Releases.History(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("read release %s/%s: %w", namespace, name, err)
	}
	return &History{namespace: namespace, name: name, releases: h}, nil
}

// NoHistory is the history of a release known to have no records, such as from
// a synced watch of the records' labels: an install then reads nothing.
func NoHistory(namespace, name string) *History {
	return &History{namespace: namespace, name: name}
}

// Last returns the newest revision, nil when there is none.
func (s *History) Last() *Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.releases) == 0 {
		return nil
	}
	h := append([]*release.Release(nil), s.releases...)
	releaseutil.Reverse(h, releaseutil.SortByRevision)
	return summarize(h[0])
}

// driver returns a storage driver that answers the release's queries from
// the records and passes everything else, and every write, to next. The
// records serve one action: a second use is refused (nil).
func (s *History) driver(namespace, name string, next driver.Driver) driver.Driver {
	if s == nil || s.namespace != namespace || s.name != name {
		return next
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used {
		return next
	}
	s.used = true
	return &recordsDriver{Driver: next, s: s}
}

// recordsDriver is a storage driver primed with one release's History.
type recordsDriver struct {
	driver.Driver
	s *History
}

// recordLabel is the value of a storage record's label as the Secrets
// driver sets it from the release.
func recordLabel(rel *release.Release, key string) string {
	switch key {
	case RecordNameLabel:
		return rel.Name
	case RecordOwnerLabel:
		return RecordOwner
	case RecordStatusLabel:
		if rel.Info == nil {
			return ""
		}
		return rel.Info.Status.String()
	case RecordVersionLabel:
		return strconv.Itoa(rel.Version)
	}
	return rel.Labels[key]
}

// Query answers a query of the primed release (name and owner=helm, maybe
// more labels) from the records; any other goes to the Secrets.
func (d *recordsDriver) Query(labels map[string]string) ([]*release.Release, error) {
	if labels[RecordNameLabel] != d.s.name || labels[RecordOwnerLabel] != RecordOwner {
		return d.Driver.Query(labels)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	var out []*release.Release
	for _, rel := range d.s.releases {
		match := true
		for k, v := range labels {
			if recordLabel(rel, k) != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, rel)
		}
	}
	if len(out) == 0 {
		return nil, driver.ErrReleaseNotFound
	}
	return out, nil
}

func (d *recordsDriver) Create(key string, rel *release.Release) error {
	if err := d.Driver.Create(key, rel); err != nil {
		return err
	}
	d.put(rel)
	return nil
}

func (d *recordsDriver) Update(key string, rel *release.Release) error {
	if err := d.Driver.Update(key, rel); err != nil {
		return err
	}
	d.put(rel)
	return nil
}

func (d *recordsDriver) Delete(key string) (*release.Release, error) {
	rel, err := d.Driver.Delete(key)
	if err != nil {
		return rel, err
	}
	if rel != nil && rel.Name == d.s.name {
		d.s.mu.Lock()
		defer d.s.mu.Unlock()
		for i, r := range d.s.releases {
			if r.Version == rel.Version {
				d.s.releases = append(d.s.releases[:i], d.s.releases[i+1:]...)
				break
			}
		}
	}
	return rel, nil
}

// put records a revision of the primed release the action wrote.
func (d *recordsDriver) put(rel *release.Release) {
	if rel.Name != d.s.name {
		return
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	for i, r := range d.s.releases {
		if r.Version == rel.Version {
			d.s.releases[i] = rel
			return
		}
	}
	d.s.releases = append(d.s.releases, rel)
}
