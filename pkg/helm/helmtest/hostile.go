package helmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"sort"
)

// hostileKinds maps each kind HostileArchive builds to the entry that makes
// it hostile (what a refusal should name).
var hostileKinds = map[string]string{
	"traversal": "app/../../evil.yaml",
	"absolute":  "/etc/evil.yaml",
	"backslash": `app\..\..\evil.yaml`,
	"symlink":   "app/templates/link.yaml",
	"hardlink":  "app/templates/hard.yaml",
	"device":    "app/templates/dev",
	"fifo":      "app/templates/fifo",
	"duplicate": "app/values.yaml",
	"tworoots":  "other/Chart.yaml",
	"toplevel":  "Chart.yaml",
	"bigfile":   "app/files/big.bin",
	"bomb":      "app/files/bomb-15.bin",
	"manyfiles": "app/files/f10000.txt",
	"notgzip":   "",
	"truncated": "",
}

// HostileKinds lists the kinds HostileArchive knows, sorted.
func HostileKinds() []string {
	kinds := make([]string, 0, len(hostileKinds))
	for k := range hostileKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// HostileEntry is the name of the entry that makes kind's archive hostile
// ("" for the kinds that are not a gzipped tar at all).
func HostileEntry(kind string) string { return hostileKinds[kind] }

// HostileArchive returns a chart archive (chart "app", version 1.0.0, valid
// apart from the attack) that a safe loader must refuse:
//
//	traversal  an entry named app/../../evil.yaml
//	absolute   an entry named /etc/evil.yaml
//	backslash  a Windows-style app\..\..\evil.yaml
//	symlink    templates/link.yaml -> /etc/passwd
//	hardlink   templates/hard.yaml, a hard link to /etc/passwd
//	device     a character device; fifo a named pipe
//	duplicate  values.yaml twice (the second would win)
//	tworoots   files under two top-level directories
//	toplevel   a Chart.yaml outside any directory
//	bigfile    one file of 5 MiB + 1 byte (Helm's per-file limit)
//	bomb       17 files of 4 MiB of zeros: 68 MiB from ~70 KiB, over the
//	           64 MiB default total
//	manyfiles  10,001 files, over the default of 10,000
//	notgzip    plain text; truncated a gzip stream cut short
//
// It panics on an unknown kind.
func HostileArchive(kind string) []byte {
	if _, ok := hostileKinds[kind]; !ok {
		panic(fmt.Sprintf("helmtest: unknown hostile archive kind %q", kind))
	}
	switch kind {
	case "notgzip":
		return []byte("apiVersion: v2\nname: app\nversion: 1.0.0\n")
	case "truncated":
		b := archive(nil)
		return b[:len(b)/2]
	}
	return archive(func(tw *tar.Writer) {
		entry := hostileKinds[kind]
		switch kind {
		case "traversal", "absolute", "backslash", "toplevel", "tworoots":
			writeFile(tw, entry, []byte("kind: ConfigMap\n"))
		case "duplicate":
			writeFile(tw, entry, []byte("evil: true\n"))
		case "symlink":
			must(tw.WriteHeader(&tar.Header{Name: entry, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777}))
		case "hardlink":
			must(tw.WriteHeader(&tar.Header{Name: entry, Typeflag: tar.TypeLink, Linkname: "/etc/passwd", Mode: 0o644}))
		case "device":
			must(tw.WriteHeader(&tar.Header{Name: entry, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}))
		case "fifo":
			must(tw.WriteHeader(&tar.Header{Name: entry, Typeflag: tar.TypeFifo, Mode: 0o644}))
		case "bigfile":
			writeFile(tw, entry, make([]byte, 5<<20+1))
		case "bomb":
			zeros := make([]byte, 4<<20)
			for i := range 17 {
				writeFile(tw, fmt.Sprintf("app/files/bomb-%02d.bin", i), zeros)
			}
		case "manyfiles":
			for i := range 10_001 - 2 { // Chart.yaml and values.yaml are there already
				writeFile(tw, fmt.Sprintf("app/files/f%05d.txt", i+2), []byte("x"))
			}
		}
	})
}

// archive writes a valid chart "app" 1.0.0 and then whatever extra adds.
func archive(extra func(*tar.Writer)) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	must(err)
	tw := tar.NewWriter(zw)
	writeFile(tw, "app/Chart.yaml", []byte("apiVersion: v2\nname: app\nversion: 1.0.0\n"))
	writeFile(tw, "app/values.yaml", []byte("replicaCount: 1\n"))
	if extra != nil {
		extra(tw)
	}
	must(tw.Close())
	must(zw.Close())
	return buf.Bytes()
}

func writeFile(tw *tar.Writer, name string, b []byte) {
	must(tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}))
	_, err := tw.Write(b)
	must(err)
}

// must panics on errors that writing to memory cannot produce.
func must(err error) {
	if err != nil {
		panic("helmtest: " + err.Error())
	}
}
