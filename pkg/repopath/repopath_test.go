package repopath

import (
	"errors"
	"path"
	"strings"
	"testing"
)

// testCase is one path, what it cleans to, or the class of its refusal.
type testCase struct {
	in, want string
	class    error
}

func TestCleanAndCleanDir(t *testing.T) {
	for _, f := range []struct {
		name  string
		clean func(string) (string, error)
		cases []testCase
	}{{
		name: "Clean", clean: Clean, cases: []testCase{
			{in: "values.yaml", want: "values.yaml"},
			{in: "./x.yaml", want: "x.yaml"},
			{in: "a/b/../c.yaml", want: "a/c.yaml"},
			{in: "a//b/./c", want: "a/b/c"},
			{in: "charts/app/", want: "charts/app"},
			{in: "..x/y", want: "..x/y"},
			{in: "", class: ErrInvalid},
			{in: ".", class: ErrInvalid},
			{in: "./", class: ErrInvalid},
			{in: "a/..", class: ErrInvalid},
			{in: "a\x00b", class: ErrInvalid},
			{in: `a\..\x`, class: ErrInvalid},
			{in: `values\prod.yaml`, class: ErrInvalid},
			{in: "..", class: ErrEscapes},
			{in: "../x", class: ErrEscapes},
			{in: "a/../../x", class: ErrEscapes},
			{in: "/etc/passwd", class: ErrEscapes},
			{in: "//x", class: ErrEscapes},
		},
	}, {
		name: "CleanDir", clean: CleanDir, cases: []testCase{
			{in: "", want: "."},
			{in: ".", want: "."},
			{in: "./", want: "."},
			{in: "charts/app", want: "charts/app"},
			{in: "charts/app/", want: "charts/app"},
			{in: "./charts//app/./templates", want: "charts/app/templates"},
			{in: "..x", want: "..x"},
			{in: "a\x00b", class: ErrInvalid},
			{in: `charts\app`, class: ErrInvalid},
			{in: "..", class: ErrEscapes},
			{in: "../x", class: ErrEscapes},
			{in: "charts/..", class: ErrEscapes},
			{in: "a/../b", class: ErrEscapes},
			{in: "/charts/app", class: ErrEscapes},
		},
	}} {
		for _, tt := range f.cases {
			got, err := f.clean(tt.in)
			switch {
			case tt.class != nil && (!errors.Is(err, tt.class) || got != ""):
				t.Errorf("%s(%q) = %q, %v; want a refusal of class %v", f.name, tt.in, got, err, tt.class)
			case tt.class == nil && (err != nil || got != tt.want):
				t.Errorf("%s(%q) = %q, %v; want %q", f.name, tt.in, got, err, tt.want)
			}
		}
	}
}

// TestRefusalMessages checks what a user reads in a status: the path, quoted
// and bounded, and the reason.
func TestRefusalMessages(t *testing.T) {
	for in, want := range map[string]string{
		"../x":                         `path "../x" leaves its root`,
		"/etc/passwd":                  `path "/etc/passwd" is absolute`,
		".":                            `path "." names no file`,
		"":                             `path "" is empty`,
		"a\x00":                        `path "a\x00" contains a NUL byte`,
		`a\b`:                          `path "a\\b" contains a backslash (the separator is "/")`,
		"/" + strings.Repeat("x", 300): `path "/` + strings.Repeat("x", maxQuoted-1) + `..." is absolute`,
	} {
		if _, err := Clean(in); err == nil || err.Error() != want {
			t.Errorf("Clean(%q): %v, want %s", in, err, want)
		}
	}
	if _, err := CleanDir("a/../b"); err == nil || err.Error() != `path "a/../b" has a ".." element` {
		t.Errorf(`CleanDir("a/../b"): %v`, err)
	}
}

// escapes reports whether a cleaned path could reach outside its root.
func escapes(p string) bool {
	if p == "" || path.IsAbs(p) || strings.ContainsAny(p, "\x00\\") || path.Clean(p) != p {
		return true
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"values.yaml", "a/b/../c", "../x", "a/../../x", "/etc", "a//b/./c", ".", "..", "a/..", "\x00", `a\..\x`, "", "./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if c, err := Clean(p); err == nil {
			if escapes(c) || c == "." {
				t.Fatalf("Clean(%q) = %q", p, c)
			}
			if again, err := Clean(c); err != nil || again != c {
				t.Fatalf("Clean(%q) = %q, but Clean(%q) = %q, %v", p, c, c, again, err)
			}
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrEscapes) {
			t.Fatalf("Clean(%q): %v has no class", p, err)
		}
		if c, err := CleanDir(p); err == nil {
			if escapes(c) {
				t.Fatalf("CleanDir(%q) = %q", p, c)
			}
			if strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("CleanDir(%q) = %q accepted a \"..\" element", p, c)
			}
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrEscapes) {
			t.Fatalf("CleanDir(%q): %v has no class", p, err)
		}
	})
}
