package update

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/helmflux/helmflux/pkg/policy"
)

// ErrStale marks a change whose image is no longer written as Find saw it:
// the file changed (or went away) since, so the change was not made. The
// caller finds images again on the new checkout and retries.
var ErrStale = errors.New("image changed since it was found")

// Change sets one image's tag.
type Change struct {
	Image  Image
	NewTag string
}

// Apply applies changes to files and returns only the files whose bytes
// changed, by path as given in files. Each change rewrites just the scalar
// that holds the tag (see SetScalar); every other byte of the file stays.
//
// A change whose image no longer holds its old tag (nor NewTag already) is
// an error wrapping ErrStale, and the other changes still apply. A change
// whose NewTag is already written is a no-op, so applying the same changes
// twice gives what applying them once did. Changes apply in order; two
// changes of one node to different tags leave the first one written and
// report the second as stale.
func Apply(files []File, changes []Change) (map[string][]byte, []error) {
	type entry struct {
		path string
		orig []byte
		cur  []byte
	}
	byKey := map[string]*entry{}
	var order []string
	for _, f := range files {
		k := cleanKey(f.Path)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = &entry{path: f.Path, orig: f.Data, cur: f.Data}
	}

	var errs []error
	for _, c := range changes {
		loc := c.Image.Locator
		what := fmt.Sprintf("%s container %q", c.Image.Object, c.Image.Container)
		if loc.path == "" {
			errs = append(errs, fmt.Errorf("set tag of %s: the image has no locator (not found by Find)", what))
			continue
		}
		if !policy.ValidTag(c.NewTag) {
			errs = append(errs, fmt.Errorf("set tag of %s: %q is not a valid tag", what, c.NewTag))
			continue
		}
		e := byKey[loc.file]
		if e == nil {
			errs = append(errs, fmt.Errorf("set tag of %s: %s: %w: file not given", what, loc.file, ErrStale))
			continue
		}
		out, err := setTag(e.cur, loc, c.Image.Tag, c.NewTag)
		if err != nil {
			errs = append(errs, fmt.Errorf("set tag of %s: %s: %w", what, e.path, err))
			continue
		}
		e.cur = out
	}

	changed := map[string][]byte{}
	for _, k := range order {
		if e := byKey[k]; !bytes.Equal(e.cur, e.orig) {
			changed[e.path] = e.cur
		}
	}
	return changed, errs
}

// setTag writes newTag where loc says the tag is, if the node still holds
// oldTag; it returns data itself when newTag is already there.
func setTag(data []byte, loc Locator, oldTag, newTag string) ([]byte, error) {
	docs, err := parseDocs(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStale, err)
	}
	p := loc.nodePath()
	if loc.doc >= len(docs) {
		return nil, fmt.Errorf("%w: document %d is gone", ErrStale, loc.doc)
	}
	n, err := nodeAt(docs[loc.doc], p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStale, err)
	}
	current, want := n.Value, newTag
	if loc.whole {
		name, tag, ok := SplitRef(n.Value)
		if !ok || name != loc.name {
			return nil, fmt.Errorf("%w: %s no longer holds %s", ErrStale, pathString(p), loc.name)
		}
		current, want = tag, name+":"+newTag
	}
	switch current {
	case newTag:
		return data, nil
	case oldTag:
		return SetScalar(data, loc.doc, p, want)
	}
	return nil, fmt.Errorf("%w: %s holds another tag", ErrStale, pathString(p))
}
