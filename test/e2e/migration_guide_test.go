package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// migrationGuide quotes the files of testdata/migration.
var migrationGuide = filepath.Join("..", "..", "docs", "migrating.md")

// TestMigrationGuideQuotesTheExampleFiles: every ```yaml block of
// docs/migrating.md starts with "# <path>" and is that file of
// testdata/migration (repo/<path>, a file of the repository, or
// cluster/<path>, an object to apply) byte for byte, and every file there is
// quoted, so that the guide shows what TestMigrationGuideWorkedExample runs.
func TestMigrationGuideQuotesTheExampleFiles(t *testing.T) {
	blocks := yamlBlocks(t, migrationGuide)
	if len(blocks) == 0 {
		t.Fatalf("%s has no yaml block", migrationGuide)
	}
	repoFiles, clusterFiles := migrationFiles(t, "repo"), migrationFiles(t, "cluster")
	quoted := map[string]bool{}
	for _, b := range blocks {
		first, _, _ := strings.Cut(b.text, "\n")
		name, ok := strings.CutPrefix(first, "# ")
		if !ok {
			t.Errorf("%s:%d: a yaml block must start with \"# <path>\", naming its file of %s", migrationGuide, b.line, migrationDir)
			continue
		}
		key, want := "repo/"+name, repoFiles[name]
		if _, inRepo := repoFiles[name]; !inRepo {
			var inCluster bool
			key = "cluster/" + name
			if want, inCluster = clusterFiles[name]; !inCluster {
				t.Errorf("%s:%d: %s is in neither %s/repo nor %s/cluster", migrationGuide, b.line, name, migrationDir, migrationDir)
				continue
			}
		}
		quoted[key] = true
		if b.text != want {
			t.Errorf("%s:%d: the block differs from %s:\n%s\nthe file:\n%s", migrationGuide, b.line, filepath.Join(migrationDir, key), b.text, want)
		}
	}
	for prefix, files := range map[string]map[string]string{"repo/": repoFiles, "cluster/": clusterFiles} {
		for name := range files {
			if !quoted[prefix+name] {
				t.Errorf("%s is not quoted in %s", filepath.Join(migrationDir, prefix+name), migrationGuide)
			}
		}
	}
}

// block is a fenced code block: its first line's number and its text.
type block struct {
	line int
	text string
}

// yamlBlocks returns the ```yaml blocks of a markdown file.
func yamlBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *strings.Builder
	start, n := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur, start = &strings.Builder{}, n+1
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, block{line: start, text: cur.String()})
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: the yaml block at line %d is not closed", path, start)
	}
	return out
}
