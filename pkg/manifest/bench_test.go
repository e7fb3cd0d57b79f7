package manifest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoad1000 loads 1,000 small Deployments spread over 100 files of
// ten documents each, the shape of a large plain-YAML repository.
func BenchmarkLoad1000(b *testing.B) {
	root := b.TempDir()
	files := tree{}
	for f := range 100 {
		var sb strings.Builder
		for d := range 10 {
			if d > 0 {
				sb.WriteString("---\n")
			}
			sb.WriteString(deployment(fmt.Sprintf("app-%03d-%d", f, d)))
		}
		files[filepath.ToSlash(filepath.Join(fmt.Sprintf("team-%d", f%10), fmt.Sprintf("apps-%03d.yaml", f)))] = sb.String()
	}
	writeTree(b, root, files)
	b.ReportAllocs()
	for b.Loop() {
		objs, err := Load(context.Background(), root, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(objs) != 1000 {
			b.Fatalf("got %d objects", len(objs))
		}
	}
}
