package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/helmflux/helmflux/internal/testenv"
)

// Every ```yaml block of the API reference is a whole object that applies as
// written, so the docs cannot drift from the CRDs.
func TestDocExamplesApply(t *testing.T) {
	for _, doc := range []string{"helmrelease.md", "gitsync.md", "automation.md", "quickstart.md"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, "docs", doc))
		if err != nil {
			t.Fatal(err)
		}
		blocks := yamlBlocks(string(data))
		if len(blocks) == 0 {
			t.Fatalf("docs/%s has no ```yaml example", doc)
		}
		for i, block := range blocks {
			t.Run(doc+"#"+strconv.Itoa(i+1), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "example.yaml")
				if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
					t.Fatal(err)
				}
				assertAcceptedUnchanged(t, path)
			})
		}
	}
}

// yamlBlocks returns the bodies of the ```yaml fenced blocks of a Markdown text.
func yamlBlocks(md string) []string {
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```yaml":
			cur = &strings.Builder{}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// docs/flags.md names every flag the operator has: a new flag without a
// line there fails here.
func TestEveryOperatorFlagIsDocumented(t *testing.T) {
	bin, err := testenv.OperatorBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-help").CombinedOutput() // #nosec G204 -- the test's own build
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "flags.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, "  -") {
			continue
		}
		name := "--" + strings.TrimPrefix(f[0], "-")
		n++
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/flags.md does not document %s", name)
		}
	}
	if n < 20 {
		t.Fatalf("found only %d flags in the operator's -help output:\n%s", n, out)
	}
}

// Every relative link of README.md and docs/*.md names a file of the
// repository, and every #anchor a heading of its target.
func TestDocLinksResolve(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(repoRoot, "README.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		data, err := os.ReadFile(f) // #nosec G304 -- the repository's own docs
		if err != nil {
			t.Fatal(err)
		}
		text := inlineCode.ReplaceAllString(stripCode(string(data)), "")
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := f
			if file != "" {
				path = filepath.Join(filepath.Dir(f), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links %s, which does not exist", rel(f), target)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			body, err := os.ReadFile(path) // #nosec G304 -- the repository's own docs
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(anchors(string(body)), anchor) {
				t.Errorf("%s links %s: %s has no heading #%s", rel(f), target, rel(path), anchor)
			}
		}
	}
}

// inlineCode matches `code spans`, whose brackets are not links either.
var inlineCode = regexp.MustCompile("`[^`\n]*`")

func rel(p string) string {
	r, err := filepath.Rel(repoRoot, p)
	if err != nil {
		return p
	}
	return r
}

// stripCode drops fenced code blocks, whose brackets are not links.
func stripCode(md string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// anchors are the GitHub anchors of a Markdown text's headings.
func anchors(md string) []string {
	var out []string
	seen := map[string]int{}
	for _, line := range strings.Split(stripCode(md), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", a, n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}
