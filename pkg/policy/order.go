package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Order says how candidates are ranked. Flux v1 ranked semver filters by
// version and everything else by image creation time; numeric and
// alphabetical orders let helmflux follow tags that carry their own sequence
// (build numbers, timestamps, dates) without trusting registry timestamps.
type Order string

// The orders an order annotation may name.
const (
	// OrderSemver ranks tags by semantic version, highest first. Only tags
	// that parse as versions are candidates.
	OrderSemver Order = "semver"
	// OrderTime ranks tags by image creation time, newest first; it needs the
	// creation time of every candidate from the registry.
	OrderTime Order = "time"
	// OrderNumeric ranks tags by a decimal number taken from the tag (see
	// ContainerPolicy.Extract), highest first. Numbers of any length compare
	// exactly, so 30-digit build numbers and millisecond timestamps work.
	OrderNumeric Order = "numeric"
	// OrderAlphabetical ranks tags by a string taken from the tag, the one
	// that sorts last (byte-wise) first; suits ISO dates such as 2024-05-01.
	OrderAlphabetical Order = "alphabetical"
)

// hasDirection reports whether an order accepts ":asc" and ":desc": for
// versions and times only "newest wins" makes sense.
func (o Order) hasDirection() bool {
	return o == OrderNumeric || o == OrderAlphabetical
}

func (o Order) valid() bool {
	switch o {
	case OrderSemver, OrderTime, OrderNumeric, OrderAlphabetical:
		return true
	}
	return false
}

// defaultOrder is Flux v1's ordering: semver filters by version, the others
// by creation time.
func defaultOrder(k FilterKind) Order {
	if k == FilterSemver {
		return OrderSemver
	}
	return OrderTime
}

// parseOrder reads an order annotation value such as "numeric:asc".
func parseOrder(s string) (Order, bool, error) {
	name, dir, hasDir := strings.Cut(strings.TrimSpace(s), ":")
	o := Order(name)
	if !o.valid() {
		return "", false, fmt.Errorf("unknown order %q (want semver, time, numeric or alphabetical)", name)
	}
	if !hasDir {
		return o, false, nil
	}
	if !o.hasDirection() {
		return "", false, fmt.Errorf("order %s takes no direction; :asc and :desc apply to numeric and alphabetical only", o)
	}
	switch dir {
	case "asc":
		return o, true, nil
	case "desc":
		return o, false, nil
	}
	return "", false, fmt.Errorf("unknown direction %q (want asc or desc)", dir)
}

// decimal is an exactly comparable decimal number: no float rounding, no
// exponent (so "1e999999999" cannot make helmflux allocate a huge number).
type decimal struct {
	neg   bool
	whole string // no leading zeros
	frac  string // no trailing zeros
}

// parseDecimal accepts [+-]digits[.digits].
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	if s != "" && (s[0] == '+' || s[0] == '-') {
		d.neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if !allDigits(whole) || (dot && !allDigits(frac)) {
		return decimal{}, false
	}
	d.whole = strings.TrimLeft(whole, "0")
	d.frac = strings.TrimRight(frac, "0")
	if d.whole == "" && d.frac == "" {
		d.neg = false // -0 == 0
	}
	return d, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (d decimal) cmp(o decimal) int {
	if d.neg != o.neg {
		if d.neg {
			return -1
		}
		return 1
	}
	c := len(d.whole) - len(o.whole)
	if c == 0 {
		c = strings.Compare(d.whole, o.whole)
	}
	if c == 0 {
		// Without trailing zeros, digit strings compare like the fractions.
		c = strings.Compare(d.frac, o.frac)
	}
	if d.neg {
		return -c
	}
	return c
}

// rank is a tag with the key it is ordered by; which field counts depends
// on the order.
type rank struct {
	tag     string
	version *semver.Version
	created time.Time
	num     decimal
	key     string
}

// plan is a validated ContainerPolicy, ready to rank tags.
type plan struct {
	filter  Filter
	match   *compiledFilter
	order   Order
	asc     bool
	extract string
}

// newPlan validates c; a ContainerPolicy from Container always passes, but a
// hand-built one may not.
func newPlan(c ContainerPolicy) (*plan, error) {
	m, err := c.Filter.compiled()
	if err != nil {
		return nil, fmt.Errorf("invalid filter: %w", err)
	}
	o := c.Order
	if o == "" {
		o = defaultOrder(m.kind)
	}
	if !o.valid() {
		return nil, fmt.Errorf("unknown order %q", o)
	}
	if c.Ascending && !o.hasDirection() {
		return nil, fmt.Errorf("ascending applies to numeric and alphabetical order only, not %s", o)
	}
	if err := checkExtract(m, o, c.Extract); err != nil {
		return nil, fmt.Errorf("invalid extract %q: %w", c.Extract, err)
	}
	return &plan{filter: c.Filter, match: m, order: o, asc: c.Ascending, extract: c.Extract}, nil
}

// matches reports whether tag passes the filter and the "latest" rule:
// Flux v1 never moved a workload to "latest" unless it asked for exactly
// that tag.
func (p *plan) matches(tag string) bool {
	if tag == latest && !p.filter.isGlobLatest() {
		return false
	}
	return p.match.match(tag)
}

// rankOf computes the ordering key of a tag that passed the filter; ok is
// false when the tag has no usable key (not a version, not a number, empty
// extraction). For OrderTime the caller supplies created and checks it.
func (p *plan) rankOf(tag string, created time.Time) (rank, bool) {
	r := rank{tag: tag, created: created}
	switch p.order {
	case OrderSemver:
		v, err := semver.NewVersion(tag)
		if err != nil {
			return r, false
		}
		r.version = v
	case OrderNumeric:
		k, ok := p.key(tag)
		if !ok {
			return r, false
		}
		if r.num, ok = parseDecimal(k); !ok {
			return r, false
		}
	case OrderAlphabetical:
		k, ok := p.key(tag)
		if !ok {
			return r, false
		}
		r.key = k
	}
	return r, true
}

// key applies the extract template; an empty result is no key, because it
// means the template's groups did not take part in the match.
func (p *plan) key(tag string) (string, bool) {
	if p.extract == "" {
		return tag, tag != ""
	}
	idx := p.match.re.FindStringSubmatchIndex(tag)
	if idx == nil {
		return "", false
	}
	k := string(p.match.re.ExpandString(nil, p.extract, tag, idx))
	return k, k != ""
}

// compare ranks a against b by key alone: >0 when a wins. Ties are left to
// the caller, which breaks them by tag string for candidates and lets the
// current tag keep its place.
func (p *plan) compare(a, b rank) int {
	var c int
	switch p.order {
	case OrderSemver:
		c = a.version.Compare(b.version)
	case OrderTime:
		c = a.created.Compare(b.created)
	case OrderNumeric:
		c = a.num.cmp(b.num)
	case OrderAlphabetical:
		c = strings.Compare(a.key, b.key)
	}
	if p.asc {
		c = -c
	}
	return c
}

// better is the total order used to pick the best candidate: key first,
// then the tag string that sorts last, whatever the direction, so that
// v1.0.0 beats 1.0.0 and the outcome never depends on input order.
func (p *plan) better(a, b rank) bool {
	if c := p.compare(a, b); c != 0 {
		return c > 0
	}
	return a.tag > b.tag
}

// describe says why the winner won, for decision reasons.
func (p *plan) describe() string {
	switch {
	case p.order == OrderSemver:
		return "is the highest version"
	case p.order == OrderTime:
		return "is the newest"
	case p.order == OrderNumeric && p.asc:
		return "has the lowest numeric key"
	case p.order == OrderNumeric:
		return "has the highest numeric key"
	case p.asc:
		return "has the alphabetically first key"
	default:
		return "has the alphabetically last key"
	}
}
