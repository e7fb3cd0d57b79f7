package manifest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Four loads at once of a checkout at the bounds (MaxTotalSize of YAML in
// files of MaxFileSize, MaxObjects nearly reached) keep the heap within a
// bound derived from the limits: each load holds at most its MaxTotalSize
// of input and the objects parsed from it, so four hold at most
// 4 × parsedFactor × MaxTotalSize. The heap is sampled in-process while
// they run (runtime.ReadMemStats), not timed.
func TestParallelLoadsAtTheBoundsStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 4 × 16 MiB of YAML")
	}
	const (
		loads     = 4
		fileSize  = 1 << 20
		totalSize = 16 << 20
		// parsedFactor bounds what the parsed objects of n bytes of YAML
		// take (maps, strings and the YAML decoder's nodes; about 5 measured) next to the
		// bytes themselves.
		parsedFactor = 8
	)
	opts := Options{MaxFileSize: fileSize, MaxTotalSize: totalSize, MaxObjects: DefaultMaxObjects}
	value := strings.Repeat("v", 1000)
	doc := func(f, i int) string {
		return fmt.Sprintf("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f%d-c%d\n  namespace: app\ndata:\n  v: %s\n", f, i, value)
	}
	files := tree{}
	perFile := fileSize / len(doc(99, 9999))
	for f := range totalSize / fileSize {
		var b strings.Builder
		for i := range perFile {
			b.WriteString(doc(f, i))
		}
		files[fmt.Sprintf("f%02d.yaml", f)] = b.String()
	}
	roots := make([]string, loads)
	for i := range roots {
		roots[i] = t.TempDir()
		writeTree(t, roots[i], files)
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var (
		peak uint64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	results := make([][]Object, loads)
	errs := make([]error, loads)
	for i := range loads {
		wg.Go(func() { results[i], errs[i] = Load(context.Background(), roots[i], nil, opts) })
	}
	wg.Wait()
	close(stop)
	<-sampled
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		if want := perFile * (totalSize / fileSize); len(results[i]) != want {
			t.Fatalf("load %d: %d objects, want %d", i, len(results[i]), want)
		}
	}
	grew := int64(peak) - int64(base.HeapAlloc)
	bound := int64(loads * parsedFactor * totalSize)
	t.Logf("peak heap %d MiB above the start, bound %d MiB", grew>>20, bound>>20)
	if grew > bound {
		t.Errorf("four loads at the bounds grew the heap by %d MiB, over %d MiB (%d × %d × MaxTotalSize)", grew>>20, bound>>20, loads, parsedFactor)
	}
	runtime.KeepAlive(results)
}
