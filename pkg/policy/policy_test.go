package policy

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// cp builds a ContainerPolicy from a filter string, failing the test on a
// bad filter.
func cp(t *testing.T, filter string, order Order, asc bool, extract string) ContainerPolicy {
	t.Helper()
	f, err := ParseFilter(filter)
	if err != nil {
		t.Fatalf("ParseFilter(%q): %v", filter, err)
	}
	return ContainerPolicy{Filter: f, Order: order, Ascending: asc, Extract: extract}
}

// names lists tags without creation times.
func names(tags ...string) []Candidate {
	out := make([]Candidate, len(tags))
	for i, t := range tags {
		out[i] = Candidate{Tag: t}
	}
	return out
}

// at is a tag created at the given minute past a fixed base time.
func at(tag string, minute int) Candidate {
	return Candidate{Tag: tag, Created: time.Date(2024, 1, 1, 0, minute, 0, 0, time.UTC)}
}

func complete(c ...Candidate) Scan { return Scan{Tags: c, Complete: true} }

type decideCase struct {
	name    string
	policy  ContainerPolicy
	current string
	scan    Scan
	want    string // expected Decision.Tag
	changed bool
	err     error  // expected sentinel (errors.Is), or nil
	errText string // substring of the error, when err is not a sentinel or to check the message
	reason  string // substring of Decision.Reason
	holds   []Hold
	held    string   // expected Decision.Held.Tag ("" for none)
	passed  []string // expected Decision.PassedOver as "tag:Why"
	best    string   // expected Decision.Best, when set
}

func decideCases(t *testing.T) []decideCase {
	const tsRe = `regex:^main-(?P<ts>\d+)$`
	return []decideCase{
		// Rule 1: incomplete scans.
		{
			name:   "incomplete scan is refused even with a clear winner",
			policy: cp(t, "semver:~1.2", "", false, ""), current: "1.2.0",
			scan: Scan{Tags: names("1.2.0", "1.2.5")},
			err:  ErrIncompleteScan,
		},
		{
			name:   "incomplete scan is refused before the policy is checked",
			policy: ContainerPolicy{Filter: Filter{Kind: "bogus", Pattern: "x"}}, current: "1",
			scan: Scan{Tags: names("1")},
			err:  ErrIncompleteScan,
		},
		{
			name:   "time order with a matching candidate lacking Created",
			policy: cp(t, "glob:1.*", "", false, ""), current: "1.0",
			scan: complete(at("1.0", 1), Candidate{Tag: "1.1"}, at("2.0", 5)),
			err:  ErrIncompleteScan, errText: "first 1.1",
		},
		{
			name:   "time order ignores missing Created on tags that do not match",
			policy: cp(t, "glob:1.*", "", false, ""), current: "1.0",
			scan: complete(at("1.0", 1), at("1.1", 2), Candidate{Tag: "2.0"}),
			want: "1.1", changed: true, reason: "1.1 is the newest among tags matching glob:1.*",
		},
		{
			name:   "semver order does not need Created",
			policy: cp(t, "semver:>=1", "", false, ""), current: "1.0.0",
			scan: complete(names("1.0.0", "1.1.0")...),
			want: "1.1.0", changed: true,
		},
		// Rule 2: latest, duplicates, invalid tags.
		{
			name:   "latest is never a candidate of glob:*",
			policy: cp(t, "glob:*", "", false, ""), current: "a",
			scan: complete(at("a", 1), at("b", 2), at("latest", 9)),
			want: "b", changed: true,
		},
		{
			name:   "latest is never a candidate of a regex that matches it",
			policy: cp(t, "regex:^l", "", false, ""), current: "",
			scan: complete(at("latest", 9), at("lts", 2)),
			want: "lts", changed: true,
		},
		{
			name:   "glob:latest picks latest",
			policy: cp(t, "glob:latest", "", false, ""), current: "1.0",
			scan: complete(at("latest", 1), at("1.0", 2)),
			want: "latest", changed: true,
		},
		{
			name:   "glob:latest keeps an untagged image",
			policy: cp(t, "latest", "", false, ""), current: "",
			scan: complete(at("latest", 1)),
			want: "", changed: false,
		},
		{
			name:   "duplicate tags count once with the known creation time",
			policy: cp(t, "glob:*", "", false, ""), current: "a",
			scan: complete(Candidate{Tag: "b"}, at("a", 1), at("b", 3), at("b", 2), Candidate{Tag: "b"}),
			want: "b", changed: true,
		},
		{
			name:   "tags that are not valid OCI tags are never candidates",
			policy: cp(t, "glob:*", "", false, ""), current: "a",
			scan: complete(at("a", 1), at("b: evil\nc", 9), at("-x", 9), at(".x", 9), at(strings.Repeat("z", 129), 9), at("", 9)),
			want: "a", changed: false,
		},
		// Rule 3: semver.
		{
			name:   "semver accepts the v prefix",
			policy: cp(t, "semver:~1.2", "", false, ""), current: "v1.2.0",
			scan: complete(names("v1.2.0", "1.2.4", "v1.2.5", "v1.3.0", "latest")...),
			want: "v1.2.5", changed: true, reason: "v1.2.5 is the highest version among tags matching semver:~1.2",
		},
		{
			name:   "semver ties prefer the tag that sorts last",
			policy: cp(t, "semver:^1", "", false, ""), current: "0.9.0",
			scan: complete(names("1.0.0", "v1.0.0", "1.0")...),
			want: "v1.0.0", changed: true,
		},
		{
			name:   "semver accepts short versions like NewVersion does",
			policy: cp(t, "semver:>=1", "", false, ""), current: "1.1.9",
			scan: complete(names("1.1.9", "1.2", "1")...),
			want: "1.2", changed: true,
		},
		{
			name:   "semver filter leaves out pre-releases unless the range names one",
			policy: cp(t, "semver:>=1.0", "", false, ""), current: "1.0.0",
			scan: complete(names("1.0.0", "1.1.0-rc.1")...),
			want: "1.0.0",
		},
		{
			name:   "semver order on a glob filter skips tags that are not versions",
			policy: cp(t, "glob:*", OrderSemver, false, ""), current: "1.0.0",
			scan: complete(names("1.0.0", "zzz", "main-9", "1.10.0", "1.9.0")...),
			want: "1.10.0", changed: true,
		},
		// Rule 3: time.
		{
			name:   "time order picks the newest",
			policy: cp(t, "glob:*", "", false, ""), current: "a",
			scan: complete(at("a", 1), at("z", 2), at("m", 7)),
			want: "m", changed: true,
		},
		{
			name:   "time order breaks equal times by the highest tag",
			policy: cp(t, "regex:^b", "", false, ""), current: "a",
			scan: complete(at("b1", 5), at("b3", 5), at("b2", 5)),
			want: "b3", changed: true, reason: "current tag a does not match",
		},
		{
			name:   "time order on a semver filter",
			policy: cp(t, "semver:^1", OrderTime, false, ""), current: "1.0.0",
			scan: complete(at("1.0.0", 1), at("1.5.0", 2), at("1.2.0", 3)),
			want: "1.2.0", changed: true,
		},
		// Rule 3: numeric.
		{
			name:   "numeric extract compares timestamps as numbers, not strings",
			policy: cp(t, tsRe, OrderNumeric, false, "$ts"), current: "main-1699999999999",
			scan: complete(names("main-1699999999999", "main-1700000000001", "main-999999999999", "main-1700000000000", "feature-9999999999999")...),
			want: "main-1700000000001", changed: true, reason: "has the highest numeric key",
		},
		{
			name:   "numeric compares 30-digit numbers exactly",
			policy: cp(t, "glob:*", OrderNumeric, true, ""), current: "",
			scan: complete(names("123456789012345678901234567891", "123456789012345678901234567890", "123456789012345678901234567892")...),
			want: "123456789012345678901234567890", changed: true,
		},
		{
			name:   "numeric skips tags without a number",
			policy: cp(t, "glob:*", OrderNumeric, false, ""), current: "3",
			scan: complete(names("3", "12", "9", "abc", "1e9", "0x10", "latest", "1.5.2")...),
			want: "12", changed: true,
		},
		{
			name:   "numeric compares decimals",
			policy: cp(t, `regex:^r(\d+\.\d+)$`, OrderNumeric, false, "${1}"), current: "r1.25",
			scan: complete(names("r1.25", "r1.5", "r1.125", "r01.49")...),
			want: "r1.5", changed: true,
		},
		{
			name:   "numeric ascending picks the lowest",
			policy: cp(t, "glob:*", OrderNumeric, true, ""), current: "",
			scan: complete(names("10", "2", "05", "7")...),
			want: "2", changed: true, reason: "has the lowest numeric key",
		},
		{
			name:   "numeric equal keys prefer the tag that sorts last",
			policy: cp(t, "glob:*", OrderNumeric, false, ""), current: "1",
			scan: complete(names("1", "007", "7", "7.0")...),
			want: "7.0", changed: true,
		},
		// Rule 3: alphabetical.
		{
			name:   "alphabetical descending picks the last date",
			policy: cp(t, `regex:^build-(\d{4}-\d{2}-\d{2})`, OrderAlphabetical, false, "$1"), current: "build-2024-01-02",
			scan: complete(names("build-2024-01-02", "build-2024-03-01", "build-2023-12-31", "other-2099-01-01")...),
			want: "build-2024-03-01", changed: true, reason: "alphabetically last",
		},
		{
			name:   "alphabetical ascending picks the first",
			policy: cp(t, "glob:rel-*", OrderAlphabetical, true, ""), current: "x",
			scan: complete(names("rel-b", "rel-a", "rel-c")...),
			want: "rel-a", changed: true, reason: "alphabetically first",
		},
		// Rule 4: no downgrade.
		{
			name:   "semver never downgrades when the registry lost the current tag",
			policy: cp(t, "semver:~1.2", "", false, ""), current: "1.2.9",
			scan: complete(names("1.2.3", "1.2.8")...),
			want: "1.2.9", reason: "current tag 1.2.9 ranks at least as high as every tag matching semver:~1.2 (best 1.2.8)",
		},
		{
			name:   "semver keeps the current tag when it is the best",
			policy: cp(t, "semver:~1.2", "", false, ""), current: "1.2.8",
			scan: complete(names("1.2.3", "1.2.8")...),
			want: "1.2.8", reason: "current tag 1.2.8 is the highest version",
		},
		{
			name:   "semver keeps the current tag on an equal version",
			policy: cp(t, "semver:^1", "", false, ""), current: "1.0.0",
			scan: complete(names("1.0.0", "v1.0.0")...),
			want: "1.0.0",
		},
		{
			name:   "time never downgrades from the newest tag",
			policy: cp(t, "glob:*", "", false, ""), current: "b",
			scan: complete(at("a", 1), at("b", 9), at("c", 5)),
			want: "b",
		},
		{
			name:   "time keeps the current tag on an equal time",
			policy: cp(t, "glob:*", "", false, ""), current: "a",
			scan: complete(at("a", 5), at("b", 5)),
			want: "a",
		},
		{
			name:   "time keeps a current tag missing from the scan",
			policy: cp(t, "glob:*", "", false, ""), current: "gone",
			scan: complete(at("a", 1), at("b", 9)),
			want: "gone", reason: "current tag gone is not in the registry",
		},
		{
			name:   "numeric never downgrades when the registry lost the current tag",
			policy: cp(t, tsRe, OrderNumeric, false, "$ts"), current: "main-1700000000005",
			scan: complete(names("main-1700000000001", "main-1700000000004")...),
			want: "main-1700000000005",
		},
		{
			name:   "numeric ascending never moves to a higher number",
			policy: cp(t, "glob:*", OrderNumeric, true, ""), current: "1",
			scan: complete(names("2", "3")...),
			want: "1",
		},
		{
			name:   "alphabetical never downgrades",
			policy: cp(t, "glob:*", OrderAlphabetical, false, ""), current: "zeta",
			scan: complete(names("alpha", "beta")...),
			want: "zeta",
		},
		{
			name:   "alphabetical ascending never moves up",
			policy: cp(t, "glob:*", OrderAlphabetical, true, ""), current: "alpha",
			scan: complete(names("beta", "gamma")...),
			want: "alpha",
		},
		// Rule 5: moving onto the policy.
		{
			name:   "current latest moves to the best candidate",
			policy: cp(t, "semver:^1", "", false, ""), current: "latest",
			scan: complete(names("latest", "1.0.0", "1.4.0")...),
			want: "1.4.0", changed: true, reason: "current tag latest does not match",
		},
		{
			name:   "untagged image moves to the best candidate",
			policy: cp(t, "glob:*", "", false, ""), current: "",
			scan: complete(at("latest", 9), at("a", 1)),
			want: "a", changed: true, reason: "current tag latest (untagged) does not match",
		},
		{
			name:   "current outside the semver range moves into it",
			policy: cp(t, "semver:~1.2", "", false, ""), current: "2.0.0",
			scan: complete(names("1.2.1", "1.2.4", "2.0.0")...),
			want: "1.2.4", changed: true,
		},
		{
			name:   "current without a key moves to the best candidate",
			policy: cp(t, "glob:*", OrderSemver, false, ""), current: "main",
			scan: complete(names("main", "1.0.0")...),
			want: "1.0.0", changed: true, reason: "current tag main has no semver key",
		},
		{
			name:   "time order moves a current tag that is not a candidate even if missing from the scan",
			policy: cp(t, "glob:1.*", "", false, ""), current: "0.9",
			scan: complete(at("1.0", 1)),
			want: "1.0", changed: true,
		},
		// Rule 6: no candidates.
		{
			name:   "no tag matches the filter",
			policy: cp(t, "semver:~3", "", false, ""), current: "1.0.0",
			scan: complete(names("1.0.0", "2.0.0", "latest")...),
			err:  ErrNoCandidates, errText: "semver:~3",
		},
		{
			name:   "empty scan",
			policy: cp(t, "glob:*", "", false, ""), current: "a",
			scan: complete(),
			err:  ErrNoCandidates, errText: "glob:*",
		},
		{
			name:   "matching tags without a numeric key",
			policy: cp(t, "glob:*", OrderNumeric, false, ""), current: "1",
			scan: complete(names("a", "b")...),
			err:  ErrNoCandidates, errText: "numeric key",
		},
		// Hand-built policies.
		{
			name:   "zero policy is glob:* by time",
			policy: ContainerPolicy{}, current: "a",
			scan: complete(at("a", 1), at("b", 2)),
			want: "b", changed: true, reason: "glob:*",
		},
		{
			name:   "hand-built filter is compiled",
			policy: ContainerPolicy{Filter: Filter{Kind: FilterSemver, Pattern: "~1.2"}}, current: "1.2.0",
			scan: complete(names("1.2.0", "1.2.7", "1.3.0")...),
			want: "1.2.7", changed: true,
		},
		{
			name:   "hand-built ascending semver is refused",
			policy: ContainerPolicy{Filter: Filter{Kind: FilterSemver, Pattern: "^1"}, Ascending: true}, current: "1.0.0",
			scan:    complete(names("1.0.0")...),
			errText: "ascending applies to numeric and alphabetical order only",
		},
		{
			name:   "hand-built extract on a glob filter is refused",
			policy: ContainerPolicy{Filter: Filter{Kind: FilterGlob, Pattern: "*"}, Order: OrderNumeric, Extract: "$1"}, current: "1",
			scan:    complete(names("1")...),
			errText: "extract needs a regex filter",
		},
		{
			name:   "hand-built invalid filter is refused",
			policy: ContainerPolicy{Filter: Filter{Kind: FilterRegex, Pattern: "("}}, current: "1",
			scan:    complete(names("1")...),
			errText: "invalid filter",
		},
		// Holds: a rollback or a quarantine keeps every tag at or below the
		// held one out while the current tag ranks below it.
		{
			name:   "a rollback below the held tag stays there",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.0",
			scan:  complete(names("1.0.0", "1.0.1")...),
			holds: []Hold{{Tag: "1.0.1", By: "rollback in abc1234"}},
			want:  "1.0.0", held: "1.0.1", reason: "held (rollback in abc1234)",
			passed: []string{"1.0.1:Held"},
		},
		{
			name:   "a tag ranking above the held one ends the hold's effect",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.0",
			scan:  complete(names("1.0.0", "1.0.1", "1.0.2")...),
			holds: []Hold{{Tag: "1.0.1", By: "rollback in abc1234"}},
			want:  "1.0.2", changed: true, held: "1.0.1", best: "1.0.2",
		},
		{
			name:   "tags between the current and the held one are held too",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.0",
			scan:  complete(names("1.0.0", "1.0.1", "1.0.2", "1.0.3")...),
			holds: []Hold{{Tag: "1.0.3", By: "quarantine"}},
			want:  "1.0.0", held: "1.0.3", best: "",
			passed: []string{"1.0.3:Held", "1.0.2:Held", "1.0.1:Held"},
		},
		{
			name:   "the held tag written again ends the hold",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.1",
			scan:  complete(names("1.0.0", "1.0.1", "1.0.2")...),
			holds: []Hold{{Tag: "1.0.1", By: "rollback"}},
			want:  "1.0.2", changed: true,
		},
		{
			name:   "a current tag above the held one ends the hold",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.2",
			scan:  complete(names("1.0.1", "1.0.2", "1.0.3")...),
			holds: []Hold{{Tag: "1.0.1", By: "rollback"}},
			want:  "1.0.3", changed: true,
		},
		{
			name:   "the highest of two holds binds",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.0",
			scan:  complete(names("1.0.0", "1.0.1", "1.0.2", "1.0.3")...),
			holds: []Hold{{Tag: "1.0.1", By: "a"}, {Tag: "1.0.2", By: "b"}},
			want:  "1.0.3", changed: true, held: "1.0.2",
		},
		{
			name:   "a held tag that cannot be ranked holds everything",
			policy: cp(t, "glob:build-*", "", false, ""), current: "build-1",
			scan:  complete(at("build-1", 1), at("build-3", 3)),
			holds: []Hold{{Tag: "build-2", By: "quarantine"}},
			want:  "build-1", held: "build-2", reason: "cannot be ranked",
			passed: []string{"build-3:Held"},
		},
		{
			name:   "time order: a newer build than the held one moves on",
			policy: cp(t, "glob:build-*", "", false, ""), current: "build-1",
			scan:  complete(at("build-1", 1), at("build-2", 2), at("build-3", 3)),
			holds: []Hold{{Tag: "build-2", By: "rollback"}},
			want:  "build-3", changed: true, held: "build-2",
		},
		{
			name:   "numeric order honours a hold",
			policy: cp(t, `regex:^main-(?P<ts>\d+)$`, "numeric", false, "$ts"), current: "main-10",
			scan:  complete(names("main-10", "main-20")...),
			holds: []Hold{{Tag: "main-20", By: "rollback"}},
			want:  "main-10", held: "main-20", passed: []string{"main-20:Held"},
		},
		{
			name:   "passed over: a higher version outside the filter",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.0",
			scan: complete(names("1.0.0", "1.0.1", "2.0.0")...),
			want: "1.0.1", changed: true,
			passed: []string{"2.0.0:Filter"},
		},
		{
			name:   "an empty hold is no hold",
			policy: cp(t, "semver:~1.0", "", false, ""), current: "1.0.0",
			scan:  complete(names("1.0.0", "1.0.1")...),
			holds: []Hold{{}},
			want:  "1.0.1", changed: true,
		},
		{
			name:   "hand-built unknown order is refused",
			policy: ContainerPolicy{Order: "newest"}, current: "1",
			scan:    complete(names("1")...),
			errText: `unknown order "newest"`,
		},
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range decideCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(tc.policy, tc.current, tc.scan, tc.holds...)
			checkDecision(t, tc, d, err)
		})
	}
}

func checkDecision(t *testing.T, tc decideCase, d Decision, err error) {
	t.Helper()
	if tc.err != nil || tc.errText != "" {
		if err == nil {
			t.Fatalf("Decide = %+v, want error %v %q", d, tc.err, tc.errText)
		}
		if tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("error %q is not %v", err, tc.err)
		}
		if !strings.Contains(err.Error(), tc.errText) {
			t.Errorf("error %q does not contain %q", err, tc.errText)
		}
		return
	}
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if d.Tag != tc.want || d.Changed != tc.changed {
		t.Errorf("Decide = {Tag: %q, Changed: %v}, want {Tag: %q, Changed: %v} (reason %q)", d.Tag, d.Changed, tc.want, tc.changed, d.Reason)
	}
	if d.Changed != (d.Tag != tc.current) {
		t.Errorf("Changed = %v but Tag %q vs current %q", d.Changed, d.Tag, tc.current)
	}
	if d.Reason == "" || !strings.Contains(d.Reason, tc.reason) {
		t.Errorf("Reason %q does not contain %q", d.Reason, tc.reason)
	}
	var held string
	if d.Held != nil {
		held = d.Held.Tag
	}
	if held != tc.held {
		t.Errorf("Held = %q, want %q", held, tc.held)
	}
	if tc.best != "" && d.Best != tc.best {
		t.Errorf("Best = %q, want %q", d.Best, tc.best)
	}
	if tc.passed != nil || tc.holds != nil {
		var got []string
		for _, p := range d.PassedOver {
			got = append(got, p.Tag+":"+p.Why)
		}
		if !slices.Equal(got, tc.passed) {
			t.Errorf("PassedOver = %v, want %v", got, tc.passed)
		}
	}
}

// TestDecideShuffled runs every case with its scan shuffled: the decision
// and the error text must not depend on the order the registry listed tags.
func TestDecideShuffled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range decideCases(t) {
		if len(tc.scan.Tags) < 2 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := Decide(tc.policy, tc.current, tc.scan, tc.holds...)
			for range 20 {
				s := tc.scan
				s.Tags = append([]Candidate(nil), tc.scan.Tags...)
				rng.Shuffle(len(s.Tags), func(i, j int) { s.Tags[i], s.Tags[j] = s.Tags[j], s.Tags[i] })
				got, err := Decide(tc.policy, tc.current, s, tc.holds...)
				if !reflect.DeepEqual(got, want) || errText(err) != errText(wantErr) {
					t.Fatalf("shuffled %v: Decide = %+v, %v; unshuffled = %+v, %v", tags(s.Tags), got, err, want, wantErr)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func tags(c []Candidate) []string {
	out := make([]string, len(c))
	for i, x := range c {
		out[i] = x.Tag
	}
	return out
}

func TestNeedsCreated(t *testing.T) {
	tests := []struct {
		name   string
		policy ContainerPolicy
		want   bool
	}{
		{"zero policy is time", ContainerPolicy{}, true},
		{"glob default is time", cp(t, "glob:*", "", false, ""), true},
		{"regex default is time", cp(t, "regex:.", "", false, ""), true},
		{"semver default is semver", cp(t, "semver:^1", "", false, ""), false},
		{"explicit time on semver", cp(t, "semver:^1", OrderTime, false, ""), true},
		{"numeric", cp(t, "glob:*", OrderNumeric, false, ""), false},
		{"alphabetical", cp(t, "glob:*", OrderAlphabetical, false, ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.policy.NeedsCreated(); got != tc.want {
				t.Errorf("NeedsCreated = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign of cmp(a, b); 2 = a does not parse
	}{
		{"1", "2", -1},
		{"10", "9", 1},
		{"007", "7", 0},
		{"-0", "0", 0},
		{"0.0", "0", 0},
		{"-1", "1", -1},
		{"-10", "-9", -1},
		{"1.5", "1.25", 1},
		{"1.50", "1.5", 0},
		{"+3", "3", 0},
		{"1700000000001", "999999999999", 1},
		{"123456789012345678901234567891", "123456789012345678901234567890", 1},
		{"", "0", 2},
		{"1.", "0", 2},
		{".5", "0", 2},
		{"1e3", "0", 2},
		{"0x10", "0", 2},
		{"--1", "0", 2},
		{"1.2.3", "0", 2},
		{"NaN", "0", 2},
	}
	for _, tc := range tests {
		a, okA := parseDecimal(tc.a)
		b, okB := parseDecimal(tc.b)
		if !okB {
			t.Fatalf("parseDecimal(%q) failed", tc.b)
		}
		if !okA {
			if tc.want != 2 {
				t.Errorf("parseDecimal(%q) failed", tc.a)
			}
			continue
		}
		if tc.want == 2 {
			t.Errorf("parseDecimal(%q) = %+v, want failure", tc.a, a)
			continue
		}
		if got := sign(a.cmp(b)); got != tc.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := sign(b.cmp(a)); got != -tc.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestValidTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"1.2.3": true, "v1.2.3-rc.1": true, "_x": true, "latest": true, "A_b.c-D": true,
		strings.Repeat("a", 128): true,
		"":                       false, ".1": false, "-1": false, "1:2": false, "a/b": false, "a+b": false, "é": false,
		"a b": false, strings.Repeat("a", 129): false,
	} {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
