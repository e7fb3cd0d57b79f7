package registry

import (
	"context"
	"fmt"
	"testing"

	"github.com/helmflux/helmflux/pkg/registry/registrytest"
)

// BenchmarkScanRepositories scans 1,000 repositories of 100 tags each on
// one registry, the operator's benchmark target, and reports the requests
// one pass costs (the target: at most 2,000).
func BenchmarkScanRepositories(b *testing.B) {
	const repos, tags = 1000, 100
	srv := registrytest.NewServer(b)
	for i := range repos {
		srv.PushTags(b, fmt.Sprintf("team/app%04d", i), numbered("v", tags)...)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		srv.Reset()
		c, err := New(Options{Transport: srv.Transport(), RPS: 1e6, Burst: 1e6})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i := range repos {
			res, err := c.Scan(context.Background(), fmt.Sprintf("%s/team/app%04d", srv.Host(), i), ScanOptions{})
			if err != nil || len(res.Tags) != tags {
				b.Fatalf("scan %d: %d tags, %v", i, len(res.Tags), err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(len(srv.Requests())), "requests/op")
		b.StartTimer()
	}
}
