package helm

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bigIndex writes an index.yaml of charts×versions entries as a large
// public repository's looks (descriptions, maintainers, annotations), about
// entrySize bytes each.
func bigIndex(charts, versions, entrySize int) []byte {
	var b bytes.Buffer
	b.Grow(charts * versions * (entrySize + 200))
	pad := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", entrySize/57+1)[:entrySize]
	b.WriteString("apiVersion: v1\nentries:\n")
	for c := range charts {
		name := fmt.Sprintf("chart-%05d", c)
		fmt.Fprintf(&b, "  %s:\n", name)
		for v := versions - 1; v >= 0; v-- {
			ver := fmt.Sprintf("%d.%d.0", v/10+1, v%10)
			fmt.Fprintf(&b, `  - annotations:
      artifacthub.io/changes: |
        - kind: changed
          description: %s
      artifacthub.io/license: Apache-2.0
    apiVersion: v2
    appVersion: %s
    created: "2024-01-01T00:00:00Z"
    description: A chart for %s
    digest: %064x
    home: https://example.com/%s
    keywords:
    - web
    - example
    maintainers:
    - email: team@example.com
      name: team
    name: %s
    sources:
    - https://github.com/example/%s
    type: application
    urls:
    - https://example.com/charts/%s-%s.tgz
    version: %s
`, pad, ver, name, c*versions+v, name, name, name, name, ver, ver)
		}
	}
	b.WriteString("generated: \"2024-01-01T00:00:00Z\"\n")
	return b.Bytes()
}

// A large public repository's index (60 MB, 20,000 chart versions) is
// parsed once for every HelmRelease that resolves from it, concurrent first
// users included, and what stays in memory is the compact form Resolve
// needs: the heap after parsing grows by about a tenth of the index,
// bounded by what the compact form holds per version.
func TestRepoLargeIndexIsParsedOnceAndKeptCompact(t *testing.T) {
	if testing.Short() {
		t.Skip("parses a 60 MB index")
	}
	const (
		charts, versions = 2000, 10
		callers          = 8
	)
	raw := bigIndex(charts, versions, 2600)
	if len(raw) < 60<<20 {
		t.Fatalf("the index is %d bytes, want at least 60 MB", len(raw))
	}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("ETag", `"big"`)
		http.ServeContent(w, r, "index.yaml", time.Time{}, bytes.NewReader(raw))
	}))
	t.Cleanup(srv.Close)
	c := newCharts(t, WithIndexInterval(time.Hour))
	var joined atomic.Int64
	allIn := make(chan struct{})
	c.joined = func(key string) {
		if strings.HasPrefix(key, "index\n") && joined.Add(1) == callers {
			close(allIn)
		}
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	refs := make([]*ChartRef, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			refs[i], errs[i] = c.Resolve(testCtx(t), ChartSource{Repository: srv.URL, Name: fmt.Sprintf("chart-%05d", i*97), Version: "1.x"})
		})
	}
	<-allIn
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if refs[i].Version != "1.9.0" {
			t.Errorf("resolved %s %s, want 1.9.0", refs[i].Name, refs[i].Version)
		}
	}
	if st := c.Stats(); st.IndexRequests != 1 || st.IndexParses != 1 || requests.Load() != 1 {
		t.Errorf("%d concurrent first resolutions: stats %+v, %d requests served; want one request and one parse", callers, st, requests.Load())
	}
	// Twice: encoding/json keeps its last encoder's buffer (the whole
	// index as JSON, in Helm's YAML loader) in a sync.Pool until the
	// second collection.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapInuse) - int64(before)
	t.Logf("the heap grew by %.1f MiB for a %.1f MiB index", float64(grown)/(1<<20), float64(len(raw))/(1<<20))
	// What one version needs: its version, digest and URL strings, the
	// parsed SemVer and the slice element, with room for the map.
	const perVersion = 512
	if limit := int64(charts * versions * perVersion); grown > limit {
		t.Errorf("the heap grew by %d bytes after parsing a %d-byte index of %d versions, want at most %d (%d bytes each)",
			grown, len(raw), charts*versions, limit, perVersion)
	}
	runtime.KeepAlive(c)

	// Every later resolution is answered from the compact copy.
	mustResolve(t, c, ChartSource{Repository: srv.URL, Name: "chart-01999", Version: "1.0.0"})
	if st := c.Stats(); st.IndexRequests != 1 || st.IndexParses != 1 {
		t.Errorf("a later resolution: stats %+v", st)
	}
}
