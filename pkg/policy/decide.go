package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// latest is the tag Flux v1 never chose on its own: it moves under the
// workload's feet, so automation writing it to git would pin nothing.
const latest = "latest"

// maxTagLen is the longest tag the OCI distribution spec allows.
const maxTagLen = 128

// Sentinel errors for the controller's result switch; match with errors.Is.
var (
	// ErrIncompleteScan means Decide refused to decide: the registry scan
	// missed pages, or time ordering lacks a candidate's creation time. A
	// decision from part of the tags could pick a tag that only looks newest.
	ErrIncompleteScan = errors.New("incomplete registry scan")
	// ErrNoCandidates means no scanned tag passes the filter (with a usable
	// ordering key); the message names the filter so the user can fix it.
	ErrNoCandidates = errors.New("no candidate tags")
)

// ContainerPolicy is the tag policy of one container, from Policy.Container
// or built by hand; the zero value is Flux v1's default, glob:* by time.
type ContainerPolicy struct {
	// Filter selects the candidate tags.
	Filter Filter
	// Order ranks candidates; "" means OrderSemver for a semver filter and
	// OrderTime otherwise.
	Order Order
	// Ascending makes the lowest key win; numeric and alphabetical only.
	Ascending bool
	// Extract is a regexp.Expand template ("$ts", "${1}") over the regex
	// filter's submatches giving the key numeric and alphabetical orders
	// compare; "" uses the whole tag.
	Extract string
}

// NeedsCreated tells the registry client whether it must fetch the creation
// time of every matching tag (one config blob per tag) before Decide can
// decide; skipping that for other orders saves most registry requests.
func (c ContainerPolicy) NeedsCreated() bool {
	o := c.Order
	if o == "" {
		if m, err := c.Filter.compiled(); err == nil {
			o = defaultOrder(m.kind)
		}
	}
	return o == OrderTime
}

// Candidate is one tag listed by the registry.
type Candidate struct {
	Tag string
	// Created is the image creation time; the zero time means unknown.
	Created time.Time
}

// Scan is what the registry client found for one image repository.
type Scan struct {
	Tags []Candidate
	// Complete is true only when every page of the tag list was read and,
	// when the policy NeedsCreated, every tag passing its filter has Created.
	Complete bool
}

// Decision is the outcome of Decide for one container.
type Decision struct {
	// Tag is the tag to run: the current tag when nothing changes.
	Tag string
	// Changed is true when Tag differs from the current tag.
	Changed bool
	// Reason explains the outcome in a sentence fit for an event or commit.
	Reason string
}

// Decide picks the tag a container currently running current (the tag in
// git; "" for an untagged image, which runs "latest") should run, given a
// complete registry scan. It never downgrades: when current passes the
// filter and ranks at least as high as every candidate it stays, and with
// time ordering a current tag missing from the scan also stays, since its
// age is unknown. A current tag that does not pass the filter (or has no
// ordering key) moves to the best candidate, which is how a workload is
// put on a policy.
//
// Scan tags that are not valid OCI tags are never candidates, so a hostile
// registry cannot make helmflux write arbitrary text into git. Duplicate
// tags count once, with the newest known creation time. The result depends
// only on the set of scanned tags, never on their order.
func Decide(c ContainerPolicy, current string, scan Scan) (Decision, error) {
	if !scan.Complete {
		return Decision{}, fmt.Errorf("%w: the tag list was not read to the end", ErrIncompleteScan)
	}
	p, err := newPlan(c)
	if err != nil {
		return Decision{}, err
	}
	created := dedupe(scan.Tags)
	best, err := p.best(created)
	if err != nil {
		return Decision{}, err
	}
	keep := Decision{Tag: current}
	cur, shown := current, current
	if cur == "" {
		cur, shown = latest, "latest (untagged)"
	}
	why := fmt.Sprintf("; current tag %s does not match", shown)
	if p.matches(cur) {
		curRank, ok := p.rankOf(cur, created[cur])
		switch {
		case p.order == OrderTime && !hasTag(created, cur):
			keep.Reason = fmt.Sprintf("current tag %s is not in the registry, so its creation time cannot be compared", shown)
			return keep, nil
		case !ok:
			why = fmt.Sprintf("; current tag %s has no %s key", shown, p.order)
		case cur == best.tag:
			keep.Reason = fmt.Sprintf("current tag %s %s among tags matching %s", shown, p.describe(), p.filter)
			return keep, nil
		case p.compare(curRank, best) >= 0:
			keep.Reason = fmt.Sprintf("current tag %s ranks at least as high as every tag matching %s (best %s)", shown, p.filter, best.tag)
			return keep, nil
		default:
			why = ""
		}
	}
	reason := fmt.Sprintf("%s %s among tags matching %s%s", best.tag, p.describe(), p.filter, why)
	return Decision{Tag: best.tag, Changed: true, Reason: reason}, nil
}

// dedupe maps each valid tag to its newest known creation time (zero when
// unknown), dropping tags that are not valid OCI tags.
func dedupe(tags []Candidate) map[string]time.Time {
	m := make(map[string]time.Time, len(tags))
	for _, t := range tags {
		if !ValidTag(t.Tag) {
			continue
		}
		switch old, seen := m[t.Tag]; {
		case !seen:
			m[t.Tag] = t.Created
		case t.Created.IsZero():
			// Keep the time another listing of the tag gave.
		case old.IsZero() || t.Created.After(old):
			m[t.Tag] = t.Created
		}
	}
	return m
}

func hasTag(m map[string]time.Time, tag string) bool {
	_, ok := m[tag]
	return ok
}

// best returns the winning candidate. It walks tags in sorted order so that
// errors, like decisions, do not depend on the order of the scan.
func (p *plan) best(created map[string]time.Time) (rank, error) {
	tags := make([]string, 0, len(created))
	for t := range created {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	var (
		best    rank
		found   bool
		missing []string
	)
	for _, t := range tags {
		if !p.matches(t) {
			continue
		}
		if p.order == OrderTime && created[t].IsZero() {
			missing = append(missing, t)
			continue
		}
		r, ok := p.rankOf(t, created[t])
		if !ok {
			continue
		}
		if !found || p.better(r, best) {
			best, found = r, true
		}
	}
	if len(missing) > 0 {
		return rank{}, fmt.Errorf("%w: creation time unknown for %d of the tags matching %s (first %s)", ErrIncompleteScan, len(missing), p.filter, missing[0])
	}
	if !found {
		if p.order == OrderTime || (p.order == OrderSemver && p.match.kind == FilterSemver) {
			return rank{}, fmt.Errorf("%w matching %s", ErrNoCandidates, p.filter)
		}
		return rank{}, fmt.Errorf("%w matching %s with a %s key", ErrNoCandidates, p.filter, p.order)
	}
	return best, nil
}

// ValidTag reports whether s is a tag as the OCI distribution spec's
// grammar allows, [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. Decide never picks
// another tag; what writes a tag into a file or trusts a stored one checks
// it with this same grammar, so a tag one part accepts is never refused by
// the next.
func ValidTag(s string) bool {
	if s == "" || len(s) > maxTagLen || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTagByte(s[i]) {
			return false
		}
	}
	return true
}

func isTagByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '_' || c == '.' || c == '-'
}
