package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/internal/testenv"
)

// Every ```yaml block of the API reference is a whole object that applies as
// written, so the docs cannot drift from the CRDs.
func TestDocExamplesApply(t *testing.T) {
	for _, doc := range []string{"helmrelease.md", "gitsync.md", "automation.md"} {
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
