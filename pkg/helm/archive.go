package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// Defaults for ArchiveLimits. Helm's own loader allows 100 MiB decompressed
// and 5 MiB per file; ours are tighter in total and also bound the number of
// entries, which Helm does not.
const (
	// DefaultMaxChartFiles caps the entries (files and directories) of a
	// chart archive, subcharts included.
	DefaultMaxChartFiles = 10_000
	// DefaultMaxChartFileSize caps one decompressed file (Helm's limit).
	DefaultMaxChartFileSize int64 = 5 << 20
	// DefaultMaxChartSize caps the decompressed size of a whole chart.
	DefaultMaxChartSize int64 = 64 << 20
)

// ArchiveLimits bound what one chart archive may decompress to, so that a
// hostile chart repository cannot exhaust the operator's memory.
type ArchiveLimits struct {
	// MaxFiles caps the tar entries (files and directories).
	MaxFiles int
	// MaxFileSize caps one decompressed file.
	MaxFileSize int64
	// MaxTotalSize caps the decompressed size of all files together.
	MaxTotalSize int64
}

// DefaultArchiveLimits returns the limits a Charts uses unless told
// otherwise.
func DefaultArchiveLimits() ArchiveLimits {
	return ArchiveLimits{MaxFiles: DefaultMaxChartFiles, MaxFileSize: DefaultMaxChartFileSize, MaxTotalSize: DefaultMaxChartSize}
}

// tarOverhead is what tar headers and padding may add to the decompressed
// stream per entry, beyond the file contents (a header block, a PAX or GNU
// long-name record and padding).
const tarOverhead = 4 << 10

// maxEntryNameInError bounds entry names quoted in errors.
const maxEntryNameInError = 200

// hostile returns an ErrHostileChart naming the entry.
func hostile(name, format string, args ...any) error {
	if len(name) > maxEntryNameInError {
		name = name[:maxEntryNameInError] + "..."
	}
	return fmt.Errorf("%w: entry %q: %s", ErrHostileChart, name, fmt.Sprintf(format, args...))
}

// checkArchive reads a gzipped tar chart archive to its end-of-archive marker
// and refuses anything Helm's loader might mishandle or that costs more than
// lim: entries other than regular files and directories (symlinks, hard
// links, devices, FIFOs, sparse files), names that are absolute, contain ".."
// components, backslashes, NUL or a drive letter, entries outside the single
// top-level directory, duplicate files, too many entries, and files or
// totals over the size caps (counted on the bytes actually decompressed, not
// on what headers claim). Every refusal wraps ErrHostileChart and names the
// entry. It reads at most lim.MaxTotalSize plus the tar overhead of
// lim.MaxFiles entries from the decompressor, whatever the input.
func checkArchive(r io.Reader, lim ArchiveLimits) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: not a gzip archive: %w", ErrHostileChart, err)
	}
	defer func() { _ = zr.Close() }()
	// Bound the raw decompressed stream too: headers, padding and the data
	// tar skips between entries all come out of the decompressor.
	budget := lim.MaxTotalSize + int64(lim.MaxFiles+1)*tarOverhead
	raw := &cappedReader{r: zr, left: budget}
	tr := tar.NewReader(raw)

	var (
		top   string
		files int
		total int64
		seen  = map[string]bool{}
	)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if raw.exceeded {
				return fmt.Errorf("%w: %w: decompresses to more than %d bytes", ErrHostileChart, ErrTooLarge, budget)
			}
			return fmt.Errorf("%w: read archive: %w", ErrHostileChart, err)
		}
		files++
		if files > lim.MaxFiles {
			return fmt.Errorf("%w: %w", hostile(hd.Name, "more than %d entries", lim.MaxFiles), ErrTooLarge)
		}
		if hd.Typeflag == tar.TypeXGlobalHeader {
			continue // metadata (git archive writes one), skipped by Helm too
		}
		name, err := checkEntryName(hd.Name)
		if err != nil {
			return hostile(hd.Name, "%s", err.Error())
		}
		first, rest, _ := strings.Cut(name, "/")
		if top == "" {
			top = first
		} else if first != top {
			return hostile(hd.Name, "outside the chart's top-level directory %q", top)
		}
		switch hd.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg: // the reader turns legacy TypeRegA into TypeReg
		case tar.TypeSymlink:
			return hostile(hd.Name, "symlink to %q", truncate(hd.Linkname))
		case tar.TypeLink:
			return hostile(hd.Name, "hard link to %q", truncate(hd.Linkname))
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return hostile(hd.Name, "device or FIFO")
		default:
			return hostile(hd.Name, "unsupported entry type %q", hd.Typeflag)
		}
		if rest == "" {
			return hostile(hd.Name, "a file outside the chart directory")
		}
		if seen[name] {
			return hostile(hd.Name, "appears twice")
		}
		seen[name] = true
		if hd.Size < 0 || hd.Size > lim.MaxFileSize {
			return fmt.Errorf("%w: %w", hostile(hd.Name, "%d bytes, over the %d-byte file limit", hd.Size, lim.MaxFileSize), ErrTooLarge)
		}
		n, err := io.Copy(io.Discard, io.LimitReader(tr, lim.MaxFileSize+1))
		if err != nil {
			if raw.exceeded {
				return fmt.Errorf("%w: %w", hostile(hd.Name, "archive decompresses to more than %d bytes", budget), ErrTooLarge)
			}
			return hostile(hd.Name, "read: %s", err.Error())
		}
		if n > lim.MaxFileSize {
			return fmt.Errorf("%w: %w", hostile(hd.Name, "over the %d-byte file limit", lim.MaxFileSize), ErrTooLarge)
		}
		total += n
		if total > lim.MaxTotalSize {
			return fmt.Errorf("%w: %w", hostile(hd.Name, "chart decompresses to more than %d bytes", lim.MaxTotalSize), ErrTooLarge)
		}
	}
	if len(seen) == 0 {
		return fmt.Errorf("%w: the archive holds no files", ErrHostileChart)
	}
	return nil
}

// checkEntryName validates a tar entry name and returns it cleaned of a
// trailing slash. "." components are tolerated (path.Clean removes them, as
// Helm's loader does); anything that could leave the chart is not.
func checkEntryName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.ContainsAny(name, "\\\x00"):
		return "", errors.New("name contains a backslash or NUL")
	case path.IsAbs(name):
		return "", errors.New("absolute name")
	case len(name) >= 2 && name[1] == ':':
		return "", errors.New("name starts with a drive letter")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New("name has a \"..\" component")
		}
	}
	clean := path.Clean(name)
	if clean == "." || strings.HasPrefix(clean, "./") {
		return "", errors.New("name outside any chart directory")
	}
	return clean, nil
}

// truncate shortens untrusted text quoted in an error.
func truncate(s string) string {
	if len(s) > maxEntryNameInError {
		return s[:maxEntryNameInError] + "..."
	}
	return s
}

// cappedReader fails once more than left bytes have been read.
type cappedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

// errCapExceeded is what cappedReader returns past its budget.
var errCapExceeded = errors.New("decompressed size limit exceeded")

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.exceeded = true
		return 0, errCapExceeded
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// loadArchive checks tgz and, if it passes, loads it with Helm's loader.
// Failures of the check wrap ErrHostileChart; a safe archive that is not a
// valid chart wraps ErrInvalidChart.
func loadArchive(tgz []byte, lim ArchiveLimits) (ch *chart.Chart, err error) {
	if err := checkArchive(bytes.NewReader(tgz), lim); err != nil {
		return nil, err
	}
	defer func() {
		// Helm's loader is not ours to fix; a panic on a chart must not
		// take the operator down.
		if r := recover(); r != nil {
			ch, err = nil, fmt.Errorf("%w: helm's loader failed: %v", ErrInvalidChart, r)
		}
	}()
	ch, err = loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidChart, err.Error())
	}
	return ch, nil
}
