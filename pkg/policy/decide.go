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
	// Best is the best candidate the filter and the holds allow; "" when
	// every candidate is held.
	Best string
	// Held is the hold in force, nil when none: the current tag ranks below
	// the hold's tag.
	Held *Hold
	// PassedOver are the tags ranking above Tag that were not chosen, best
	// first, at most MaxPassedOver.
	PassedOver []Passed
}

// Hold keeps a container from moving to any tag that ranks at or below Tag
// while its current tag ranks below Tag: how a person's rollback, or a tag
// quarantined after a failed release, stays in force. The hold ends by
// itself once the current tag is Tag again or ranks above it.
type Hold struct {
	// Tag is the held tag.
	Tag string
	// By names what set the hold ("rollback in 1a2b3c4"), for reasons.
	By string
}

// Why a better-ranked tag was passed over (Passed.Why).
const (
	// PassedFilter: the tag ranks higher but does not match the filter.
	PassedFilter = "Filter"
	// PassedHeld: the tag ranks at or below a hold's tag.
	PassedHeld = "Held"
	// PassedNotNewer: the tag ranks the same as the current one, which stays.
	PassedNotNewer = "NotNewer"
)

// MaxPassedOver bounds Decision.PassedOver.
const MaxPassedOver = 3

// Passed is one tag ranking above the chosen one that was not chosen.
type Passed struct {
	Tag string
	// Why is PassedFilter, PassedHeld or PassedNotNewer.
	Why string
	// Detail says why in words: the filter, the hold.
	Detail string
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
// A hold in force (the current tag ranks below the hold's tag, or either
// cannot be ranked) rules out every candidate that ranks at or below the
// hold's tag; a hold whose tag cannot be ranked rules out every candidate,
// so an unknown order never turns into a bump.
//
// Scan tags that are not valid OCI tags are never candidates, so a hostile
// registry cannot make helmflux write arbitrary text into git. Duplicate
// tags count once, with the newest known creation time. The result depends
// only on the set of scanned tags, never on their order.
func Decide(c ContainerPolicy, current string, scan Scan, holds ...Hold) (Decision, error) {
	if !scan.Complete {
		return Decision{}, fmt.Errorf("%w: the tag list was not read to the end", ErrIncompleteScan)
	}
	p, err := newPlan(c)
	if err != nil {
		return Decision{}, err
	}
	created := dedupe(scan.Tags)
	cur, shown := current, current
	if cur == "" {
		cur, shown = latest, "latest (untagged)"
	}
	curRank, curRanked := p.rankOf(cur, created[cur])
	curRanked = curRanked && p.matches(cur) && (p.order != OrderTime || hasTag(created, cur))
	h := p.holdInForce(holds, cur, curRank, curRanked, created)
	allowed := func(r rank) bool { return h == nil || (h.ranked && p.compare(r, h.rank) > 0) }
	best, err := p.best(created, allowed)
	if err != nil {
		return Decision{}, err
	}
	d := p.decide(current, cur, shown, curRank, curRanked, best, h)
	d.PassedOver = p.passedOver(created, d.Tag, h)
	return d, nil
}

// heldAt is a hold in force with its tag's rank, if it has one.
type heldAt struct {
	Hold
	rank   rank
	ranked bool
}

// holdInForce returns the hold that binds: of those whose tag the current
// one is not, and does not rank above, the one ranking highest (an
// unrankable one first, since it binds everything).
func (p *plan) holdInForce(holds []Hold, cur string, curRank rank, curRanked bool, created map[string]time.Time) *heldAt {
	var out *heldAt
	for _, h := range holds {
		if h.Tag == "" || h.Tag == cur {
			continue
		}
		hr, ok := p.rankOf(h.Tag, created[h.Tag])
		ok = ok && (p.order != OrderTime || !created[h.Tag].IsZero())
		if ok && curRanked && p.compare(curRank, hr) >= 0 {
			continue // the current tag ranks at or above it: over
		}
		switch {
		case out == nil:
			out = &heldAt{Hold: h, rank: hr, ranked: ok}
		case !ok:
			out = &heldAt{Hold: h, ranked: false}
		case out.ranked && p.compare(hr, out.rank) > 0:
			out = &heldAt{Hold: h, rank: hr, ranked: true}
		}
	}
	return out
}

// decide turns the best allowed candidate into a decision.
func (p *plan) decide(current, cur, shown string, curRank rank, curRanked bool, best *rank, h *heldAt) Decision {
	keep := Decision{Tag: current}
	if h != nil {
		keep.Held = &h.Hold
	}
	if best != nil {
		keep.Best = best.tag
	}
	heldWhy := ""
	if h != nil {
		heldWhy = fmt.Sprintf(" (tags ranking at or below %s are held: %s)", h.Tag, h.By)
	}
	if best == nil {
		keep.Reason = fmt.Sprintf("current tag %s stays: every tag matching %s ranks at or below %s, which is held (%s)", shown, p.filter, h.Tag, h.By)
		if !h.ranked {
			keep.Reason = fmt.Sprintf("current tag %s stays: the held tag %s cannot be ranked (%s)", shown, h.Tag, h.By)
		}
		return keep
	}
	why := fmt.Sprintf("; current tag %s does not match", shown)
	if p.matches(cur) {
		switch {
		case p.order == OrderTime && !curRanked:
			keep.Reason = fmt.Sprintf("current tag %s is not in the registry, so its creation time cannot be compared", shown)
			return keep
		case !curRanked:
			why = fmt.Sprintf("; current tag %s has no %s key", shown, p.order)
		case cur == best.tag:
			keep.Reason = fmt.Sprintf("current tag %s %s among tags matching %s%s", shown, p.describe(), p.filter, heldWhy)
			return keep
		case p.compare(curRank, *best) >= 0:
			keep.Reason = fmt.Sprintf("current tag %s ranks at least as high as every tag matching %s (best %s)%s", shown, p.filter, best.tag, heldWhy)
			return keep
		default:
			why = ""
		}
	}
	reason := fmt.Sprintf("%s %s among tags matching %s%s%s", best.tag, p.describe(), p.filter, why, heldWhy)
	d := Decision{Tag: best.tag, Changed: true, Reason: reason, Best: best.tag}
	if h != nil {
		d.Held = &h.Hold
	}
	return d
}

// passedOver lists the tags that rank above chosen (by the policy's order
// and its tie-break) and were not chosen, best first: those the filter
// rules out, those a hold rules out and those that only tie with chosen.
// A tag without a key in the policy's order (not a version, no creation
// time known) cannot rank and is left out.
func (p *plan) passedOver(created map[string]time.Time, chosen string, h *heldAt) []Passed {
	if chosen == "" {
		chosen = latest
	}
	at, ok := p.rankOf(chosen, created[chosen])
	if !ok || (p.order == OrderTime && created[chosen].IsZero()) {
		return nil
	}
	var above []rank
	for t, when := range created {
		if t == chosen || (p.order == OrderTime && when.IsZero()) {
			continue
		}
		r, ok := p.rankOf(t, when)
		if ok && p.better(r, at) {
			above = append(above, r)
		}
	}
	slices.SortFunc(above, func(a, b rank) int {
		if p.better(a, b) {
			return -1
		}
		return 1
	})
	var out []Passed
	for _, r := range above {
		if len(out) == MaxPassedOver {
			break
		}
		switch {
		case !p.matches(r.tag):
			out = append(out, Passed{Tag: r.tag, Why: PassedFilter, Detail: fmt.Sprintf("does not match %s", p.filter)})
		case h != nil && (!h.ranked || p.compare(r, h.rank) <= 0):
			out = append(out, Passed{Tag: r.tag, Why: PassedHeld, Detail: fmt.Sprintf("ranks at or below the held tag %s (%s)", h.Tag, h.By)})
		case p.compare(r, at) == 0:
			out = append(out, Passed{Tag: r.tag, Why: PassedNotNewer, Detail: fmt.Sprintf("ranks the same as %s, which stays", chosen)})
		}
	}
	return out
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

// best returns the winning candidate among those allowed, nil when tags
// match the filter but none is allowed. It walks tags in sorted order so
// that errors, like decisions, do not depend on the order of the scan.
func (p *plan) best(created map[string]time.Time, allowed func(rank) bool) (*rank, error) {
	tags := make([]string, 0, len(created))
	for t := range created {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	var (
		best    rank
		found   bool
		any     bool
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
		any = true
		if !allowed(r) {
			continue
		}
		if !found || p.better(r, best) {
			best, found = r, true
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: creation time unknown for %d of the tags matching %s (first %s)", ErrIncompleteScan, len(missing), p.filter, missing[0])
	}
	if !any {
		if p.order == OrderTime || (p.order == OrderSemver && p.match.kind == FilterSemver) {
			return nil, fmt.Errorf("%w matching %s", ErrNoCandidates, p.filter)
		}
		return nil, fmt.Errorf("%w matching %s with a %s key", ErrNoCandidates, p.filter, p.order)
	}
	if !found {
		return nil, nil
	}
	return &best, nil
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
