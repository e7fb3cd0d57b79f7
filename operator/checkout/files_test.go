package checkout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReaderBoundsWhatAPassReads: a file over the per-file limit is
// reported as ErrFileTooLarge and the others are still read; YAML over the
// total limit stops the pass with ErrTooMuch.
func TestReaderBoundsWhatAPassReads(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"apps/a.yaml": 8, "apps/b.yaml": 30, "apps/c.yaml": 8, "apps/d.yaml": 8} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("#", size)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func(maxFile, total int64) ([]string, []error) {
		rd, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rd.Close() }()
		rd.maxFile, rd.bytesLeft = maxFile, total
		files, errs := rd.YAMLUnder([]string{"apps"})
		var names []string
		for _, f := range files {
			names = append(names, f.Path)
		}
		return names, errs
	}

	names, errs := read(20, 100)
	if strings.Join(names, ",") != "apps/a.yaml,apps/c.yaml,apps/d.yaml" {
		t.Errorf("read %v, want every file but the large one", names)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrFileTooLarge) || !strings.Contains(errs[0].Error(), "apps/b.yaml") {
		t.Errorf("errors %v, want one ErrFileTooLarge naming apps/b.yaml", errs)
	}

	_, errs = read(100, 40)
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooMuch) {
		t.Errorf("errors %v, want ErrTooMuch once the total passes the limit", errs)
	}
}
