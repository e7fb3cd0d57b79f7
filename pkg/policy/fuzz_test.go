package policy

import (
	"errors"
	"hash/fnv"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
)

// FuzzParseFilter checks that ParseFilter never panics, that String() is
// canonical (it parses back to the same filter, which matches the same
// tags), and, for globs, that matching agrees with path.Match wherever '*'
// stopping at '/' cannot make a difference.
func FuzzParseFilter(f *testing.F) {
	seeds := [][2]string{
		{"glob:*", "1.2.3"},
		{"*", "latest"},
		{"main-*", "main-abc"},
		{"glob:v[0-9].*", "v1.0"},
		{"glob:v[^0-9]?", "vab"},
		{"glob:[ab\\-]x", "-x"},
		{"glob:a*b*c*d", "aXbYcZd"},
		{"glob:[", "["},
		{"glob:a\\", "a"},
		{"semver:~1.2", "v1.2.3"},
		{"semver: >=1.0 <2 || ^3", "3.1"},
		{"semver:>=1.0.0-0", "1.0.0-rc.1"},
		{"regex:^main-(?P<ts>\\d+)$", "main-1700000000000"},
		{"regexp:^v\\d+$", "v1"},
		{"regex:(", ""},
		{"semvr:~1", "1"},
		{"glob:semver:1", "semver:1"},
		{"  ", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, s, tag string) {
		flt, err := ParseFilter(s)
		if err != nil {
			return
		}
		again, err := ParseFilter(flt.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", flt.String(), s, err)
		}
		if again.String() != flt.String() || again.Kind != flt.Kind || again.Pattern != flt.Pattern {
			t.Fatalf("round trip of %q: %q (%s, %q) became %q (%s, %q)", s, flt, flt.Kind, flt.Pattern, again, again.Kind, again.Pattern)
		}
		got := flt.Match(tag)
		if again.Match(tag) != got {
			t.Fatalf("%q and its round trip disagree on %q", s, tag)
		}
		if flt.Kind == FilterGlob && !strings.Contains(tag, "/") && utf8.ValidString(tag) && utf8.ValidString(flt.Pattern) {
			if want, err := path.Match(flt.Pattern, tag); err == nil && want != got {
				t.Fatalf("glob %q on %q: Match = %v, path.Match = %v", flt.Pattern, tag, got, want)
			}
		}
	})
}

// FuzzDecide runs Decide on tag lists split from a fuzzed string. It must
// never panic, must not depend on the order of the scan, must refuse
// incomplete scans, must only pick valid, matching tags, and a changed
// decision must rank strictly above a current tag that is a candidate.
func FuzzDecide(f *testing.F) {
	f.Add("semver:~1.2", uint8(0), "1.2.3", "1.2.0,1.2.3,v1.2.9,1.3.0,latest", uint8(0))
	f.Add("semver:^1", uint8(1), "1.0.0", "1.0.0,v1.0.0,1.0,1", uint8(0))
	f.Add("glob:*", uint8(0), "", "latest,a,b,c", uint8(1))
	f.Add("glob:*", uint8(2), "gone", "a,b,c", uint8(0))
	f.Add(`regex:^main-(?P<ts>\d+)$`, uint8(3+16), "main-1700000000000", "main-1700000000001,main-999999999999", uint8(0))
	f.Add(`regex:^b-(\d+)`, uint8(4+8+16), "b-2", "b-1,b-3,b-10", uint8(0))
	f.Add("glob:1.*", uint8(2), "1.0", "1.0,1.1,2.0", uint8(2))
	f.Add("semver:>=0", uint8(1), "latest", "", uint8(0))
	orders := []Order{"", OrderSemver, OrderTime, OrderNumeric, OrderAlphabetical}
	f.Fuzz(func(t *testing.T, filter string, opts uint8, current, list string, scanOpts uint8) {
		flt, err := ParseFilter(filter)
		if err != nil {
			flt, _ = ParseFilter("glob:*")
		}
		c := ContainerPolicy{Filter: flt, Order: orders[int(opts)%len(orders)]}
		o := c.Order
		if o == "" {
			o = defaultOrder(flt.Kind)
		}
		c.Ascending = opts&8 != 0 && o.hasDirection()
		if opts&16 != 0 && o.hasDirection() && flt.Kind == FilterRegex && flt.c.re.NumSubexp() > 0 {
			c.Extract = "${1}"
		}
		scan := Scan{Complete: scanOpts&2 == 0}
		for _, tag := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
			scan.Tags = append(scan.Tags, Candidate{Tag: tag, Created: fuzzTime(tag, scanOpts)})
		}

		// Half the inputs hold the last listed tag: a hold must neither
		// make the outcome depend on order nor let the held tag be written.
		var holds []Hold
		if scanOpts&4 != 0 && len(scan.Tags) > 0 {
			holds = []Hold{{Tag: scan.Tags[len(scan.Tags)-1].Tag, By: "fuzz"}}
		}
		d, err := Decide(c, current, scan, holds...)
		rev := scan
		rev.Tags = slices.Clone(scan.Tags)
		slices.Reverse(rev.Tags)
		d2, err2 := Decide(c, current, rev, holds...)
		if !reflect.DeepEqual(d, d2) || errText(err) != errText(err2) {
			t.Fatalf("order matters: %+v, %v vs reversed %+v, %v", d, err, d2, err2)
		}
		if err == nil && d.Held != nil && d.Changed && d.Tag == d.Held.Tag {
			t.Fatalf("the held tag %s was written: %+v", d.Held.Tag, d)
		}
		if !scan.Complete {
			if !errors.Is(err, ErrIncompleteScan) {
				t.Fatalf("incomplete scan gave %+v, %v", d, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrIncompleteScan) && !errors.Is(err, ErrNoCandidates) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if !d.Changed {
			if d.Tag != current {
				t.Fatalf("unchanged decision with tag %q, current %q", d.Tag, current)
			}
			return
		}
		checkChanged(t, c, current, scan, d)
	})
}

// checkChanged verifies a changed decision against the scan and, through
// independent code where possible, against the current tag's rank.
func checkChanged(t *testing.T, c ContainerPolicy, current string, scan Scan, d Decision) {
	t.Helper()
	if d.Tag == current || !ValidTag(d.Tag) || !slices.ContainsFunc(scan.Tags, func(x Candidate) bool { return x.Tag == d.Tag }) {
		t.Fatalf("changed to %q, current %q: not a valid scanned tag", d.Tag, current)
	}
	if !c.Filter.Match(d.Tag) || d.Tag == latest && !c.Filter.isGlobLatest() {
		t.Fatalf("changed to %q, which %s does not allow", d.Tag, c.Filter)
	}
	p, err := newPlan(c)
	if err != nil {
		t.Fatal(err)
	}
	if current == "" {
		current = latest // what an untagged image runs, as in Decide
	}
	if !p.matches(current) {
		return
	}
	if p.order == OrderSemver && c.Filter.Kind == FilterSemver {
		// Checked with the semver library directly, not with plan.compare.
		cv, err := semver.NewVersion(current)
		if err != nil {
			t.Fatalf("current %q matches %s but is not a version", current, c.Filter)
		}
		if nv := semver.MustParse(d.Tag); !nv.GreaterThan(cv) {
			t.Fatalf("downgrade or sideways move: %q -> %q", current, d.Tag)
		}
	}
	cr, ok := p.rankOf(current, newestCreated(scan, current))
	if !ok || p.order == OrderTime && cr.created.IsZero() {
		return
	}
	nr, _ := p.rankOf(d.Tag, newestCreated(scan, d.Tag))
	if p.compare(nr, cr) <= 0 {
		t.Fatalf("%s order: changed %q -> %q, which does not rank higher", p.order, current, d.Tag)
	}
}

func newestCreated(scan Scan, tag string) time.Time {
	var newest time.Time
	for _, c := range scan.Tags {
		if c.Tag == tag && c.Created.After(newest) {
			newest = c.Created
		}
	}
	return newest
}

// fuzzTime gives a tag a creation time that depends only on the tag, so
// reversing the scan changes nothing; a few collide to exercise ties, and
// with scanOpts&1 some are unknown.
func fuzzTime(tag string, scanOpts uint8) time.Time {
	h := fnv.New32a()
	h.Write([]byte(tag))
	v := h.Sum32()
	if scanOpts&1 != 0 && v%5 == 0 {
		return time.Time{}
	}
	return time.Unix(1700000000+int64(v%16), 0)
}

// tagGrammar is the OCI distribution spec's tag rule as it writes it.
var tagGrammar = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

func FuzzValidTag(f *testing.F) {
	for _, s := range []string{"1.2.3", "v1-rc.1", "", ".x", "-x", "a:b", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidTag(s), tagGrammar.MatchString(s); got != want {
			t.Fatalf("ValidTag(%q) = %v, the spec's grammar says %v", s, got, want)
		}
	})
}
