package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// tarGz builds a gzipped tar from headers and contents (nil content for
// non-regular entries).
func tarGz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func file(name, body string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name}, body: []byte(body)}
}

const chartYAML = "apiVersion: v2\nname: app\nversion: 1.0.0\n"

func TestLoadArchiveRefusesHostileArchives(t *testing.T) {
	for _, kind := range helmtest.HostileKinds() {
		t.Run(kind, func(t *testing.T) {
			_, err := loadArchive(helmtest.HostileArchive(kind), DefaultArchiveLimits())
			if !errors.Is(err, ErrHostileChart) {
				t.Fatalf("got %v, want ErrHostileChart", err)
			}
			if entry := helmtest.HostileEntry(kind); entry != "" && !strings.Contains(err.Error(), strconv.Quote(entry)) {
				t.Errorf("%v does not name the entry %q", err, entry)
			}
			switch kind {
			case "bigfile", "bomb", "manyfiles":
				if !errors.Is(err, ErrTooLarge) {
					t.Errorf("got %v, want ErrTooLarge as well", err)
				}
			}
		})
	}
}

func TestLoadArchiveLoadsCharts(t *testing.T) {
	tgz, err := helmtest.Simple("podinfo", "6.5.0+build.1").Package()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loadArchive(tgz, DefaultArchiveLimits())
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "podinfo" || ch.Metadata.Version != "6.5.0+build.1" || len(ch.Templates) != 4 {
		t.Errorf("loaded %s %s with %d templates", ch.Name(), ch.Metadata.Version, len(ch.Templates))
	}

	// What `git archive` and GNU tar write around a chart is fine: a PAX
	// global header, directory entries, "." components, long names.
	tgz = tarGz(t,
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "abc"}}},
		tarEntry{hdr: tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755}},
		file("app/Chart.yaml", chartYAML),
		file("app/./templates/cm.yaml", "kind: ConfigMap\n"),
		file("app/"+strings.Repeat("long/", 30)+"x.txt", "a long name, written with a PAX record"),
	)
	ch, err = loadArchive(tgz, DefaultArchiveLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Templates) != 1 || len(ch.Files) != 1 {
		t.Errorf("got %d templates and %d files", len(ch.Templates), len(ch.Files))
	}
}

func TestCheckArchiveLimits(t *testing.T) {
	tgz := tarGz(t,
		file("app/Chart.yaml", chartYAML),
		file("app/a.txt", strings.Repeat("a", 100)),
		file("app/b.txt", strings.Repeat("b", 100)),
	)
	tests := []struct {
		name    string
		lim     ArchiveLimits
		entry   string
		wantErr bool
	}{
		{"within", ArchiveLimits{MaxFiles: 3, MaxFileSize: 100, MaxTotalSize: 300}, "", false},
		{"files", ArchiveLimits{MaxFiles: 2, MaxFileSize: 100, MaxTotalSize: 300}, "app/b.txt", true},
		{"file size", ArchiveLimits{MaxFiles: 3, MaxFileSize: 99, MaxTotalSize: 300}, "app/a.txt", true},
		{"total", ArchiveLimits{MaxFiles: 3, MaxFileSize: 100, MaxTotalSize: 200}, "app/b.txt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkArchive(bytes.NewReader(tgz), tt.lim)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrHostileChart) || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), strconv.Quote(tt.entry)) {
				t.Fatalf("got %v, want ErrHostileChart and ErrTooLarge naming %q", err, tt.entry)
			}
		})
	}
}

func TestCheckArchiveRefusesOddEntries(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
	}{
		{"dot dot inside", []tarEntry{file("app/Chart.yaml", chartYAML), file("app/templates/../x.yaml", "")}},
		{"drive letter", []tarEntry{file("C:/app/Chart.yaml", chartYAML)}},
		{"dot top", []tarEntry{file("./Chart.yaml", chartYAML)}},
		{"only dirs", []tarEntry{{hdr: tar.Header{Name: "app/", Typeflag: tar.TypeDir}}}},
		{"empty", nil},
		{"sparse", []tarEntry{file("app/Chart.yaml", chartYAML), {hdr: tar.Header{Name: "app/s", Typeflag: tar.TypeGNUSparse}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgz := tarGz(t, tt.entries...)
			if err := checkArchive(bytes.NewReader(tgz), DefaultArchiveLimits()); !errors.Is(err, ErrHostileChart) {
				t.Fatalf("got %v, want ErrHostileChart", err)
			}
		})
	}
}

func TestLoadArchiveInvalidChart(t *testing.T) {
	tgz := tarGz(t, file("app/values.yaml", "a: 1\n"))
	_, err := loadArchive(tgz, DefaultArchiveLimits())
	if !errors.Is(err, ErrInvalidChart) || errors.Is(err, ErrHostileChart) {
		t.Fatalf("got %v, want ErrInvalidChart only", err)
	}
}

// FuzzCheckArchive feeds arbitrary bytes to the archive checker (and, when
// it passes, to Helm's loader): nothing may panic, and the work is bounded
// by the limits.
func FuzzCheckArchive(f *testing.F) {
	good, err := helmtest.Simple("app", "1.0.0").Package()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b, 0x08})
	for _, kind := range []string{"traversal", "absolute", "backslash", "symlink", "hardlink", "device", "duplicate", "tworoots", "toplevel", "truncated"} {
		f.Add(helmtest.HostileArchive(kind))
	}
	lim := ArchiveLimits{MaxFiles: 64, MaxFileSize: 256 << 10, MaxTotalSize: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkArchive(bytes.NewReader(b), lim)
		if err != nil && !errors.Is(err, ErrHostileChart) {
			t.Fatalf("refusal without ErrHostileChart: %v", err)
		}
		if err == nil {
			_, _ = loadArchive(b, lim)
		}
	})
}
