package policy

import (
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical String(); "" when ParseFilter must fail
		err  string // substring of the error
	}{
		{in: "glob:*", want: "glob:*"},
		{in: "*", want: "glob:*"},
		{in: "main-*", want: "glob:main-*"},
		{in: "  glob: 1.*  ", want: "glob:1.*"},
		{in: "semver:~1.2", want: "semver:~1.2"},
		{in: "semver: >=1.0 <2", want: "semver:>=1.0 <2"},
		{in: "regex:^v\\d+$", want: "regex:^v\\d+$"},
		{in: "regexp:^v\\d+$", want: "regex:^v\\d+$"},
		{in: "glob:semver:1", want: "glob:semver:1"},
		{in: "1.2:3", want: "glob:1.2:3"},
		{in: "latest", want: "glob:latest"},
		{in: "", err: "empty filter"},
		{in: "   ", err: "empty filter"},
		{in: "glob:", err: "glob filter: empty filter"},
		{in: "semver:", err: "semver filter: empty filter"},
		{in: "regex: ", err: "regex filter: empty filter"},
		{in: "semver:~foo", err: `semver filter "~foo"`},
		{in: "semver:1.2.3.4", err: "semver filter"},
		{in: "regex:(", err: "missing closing )"},
		{in: "regexp:a{2,1}", err: "invalid repeat count"},
		{in: "Semver:~1", err: `unknown filter kind "Semver"`},
		{in: "semvr:~1", err: `unknown filter kind "semvr"`},
		{in: "glob:[", err: "malformed character class"},
		{in: "glob:[]", err: "malformed character class"},
		{in: "glob:[^]", err: "malformed character class"},
		{in: "glob:[z-a]", err: "malformed character class"},
		{in: "glob:[a-]", err: "malformed character class"},
		{in: "glob:a\\", err: "trailing backslash"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			f, err := ParseFilter(tc.in)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseFilter(%q) = %v, %v; want error containing %q", tc.in, f, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.in, err)
			}
			if f.String() != tc.want {
				t.Errorf("String() = %q, want %q", f.String(), tc.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	tests := []struct {
		filter string
		yes    []string
		no     []string
	}{
		{"glob:*", []string{"", "a", "1.2.3", "a/b", "latest"}, nil},
		{"glob:1.*", []string{"1.", "1.2", "1.2.3"}, []string{"1", "21.2", "v1.2"}},
		{"glob:*.*.*", []string{"1.2.3", "...", "a.b.c.d"}, []string{"1.2", "123"}},
		{"glob:a*b*c", []string{"abc", "aXbYc", "abbbc", "acbc"}, []string{"ab", "abcd", "cba"}},
		{"glob:main-????", []string{"main-abcd", "main-1234"}, []string{"main-abc", "main-abcde"}},
		{"glob:v[0-9].*", []string{"v1.0", "v9.x"}, []string{"va.0", "v10.0"}},
		{"glob:v[^0-9]*", []string{"va", "v-"}, []string{"v1", "v"}},
		{"glob:[ab\\-]x", []string{"ax", "bx", "-x"}, []string{"cx", "x"}},
		{"glob:a\\*", []string{"a*"}, []string{"ab", "a"}},
		{"glob:*/*", []string{"a/b", "/"}, []string{"ab"}},
		{"glob:ü?", []string{"üx", "üü"}, []string{"ü", "uxx"}},
		{"semver:~1.2", []string{"1.2.0", "v1.2.9", "1.2"}, []string{"1.3.0", "1.2.0-rc.1", "latest", "", "V1.2.0"}},
		{"semver:>=1.0.0-0", []string{"1.0.0-rc.1", "2.0.0"}, []string{"0.9.0"}},
		{"regex:^v\\d+$", []string{"v1", "v123"}, []string{"v", "xv1", "v1x"}},
		{"regex:rc", []string{"1.0-rc1", "rc"}, []string{"1.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			f, err := ParseFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tc.yes {
				if !f.Match(tag) {
					t.Errorf("%s does not match %q", f, tag)
				}
			}
			for _, tag := range tc.no {
				if f.Match(tag) {
					t.Errorf("%s matches %q", f, tag)
				}
			}
		})
	}
}

// TestFilterZeroAndHandBuilt checks the Filters a caller may build without
// ParseFilter: the zero Filter allows everything, an invalid one nothing,
// and one changed after parsing matches its new pattern.
func TestFilterZeroAndHandBuilt(t *testing.T) {
	var zero Filter
	if !zero.Match("anything") || zero.String() != "glob:*" {
		t.Errorf("zero Filter: Match = %v, String = %q", zero.Match("anything"), zero.String())
	}
	if (Filter{Kind: FilterRegex, Pattern: "("}).Match("(") {
		t.Error("invalid regex filter matches")
	}
	if (Filter{Kind: "bogus", Pattern: "*"}).Match("x") {
		t.Error("unknown kind matches")
	}
	if !(Filter{Kind: "regexp", Pattern: "^x"}).Match("xy") {
		t.Error("hand-built regexp kind does not match")
	}
	f, err := ParseFilter("glob:a*")
	if err != nil {
		t.Fatal(err)
	}
	f.Pattern = "b*"
	if f.Match("a1") || !f.Match("b1") {
		t.Error("changed Filter matches with its old pattern")
	}
}

// TestGlobIsNotExponential would hang (and hit the test timeout) with a
// backtracking matcher: each '*' would retry every split of the tag.
func TestGlobIsNotExponential(t *testing.T) {
	f, err := ParseFilter("glob:" + strings.Repeat("a*", 60) + "b")
	if err != nil {
		t.Fatal(err)
	}
	tag := strings.Repeat("a", 5000)
	for range 10 {
		if f.Match(tag) {
			t.Fatal("matched a tag without b")
		}
	}
}
