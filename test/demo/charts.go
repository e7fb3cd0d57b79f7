package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"helm.sh/helm/v3/pkg/repo"

	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// demoChartVersions are the podinfo-like chart versions the demo repository
// serves: the HelmRelease starts on the first, a commit moves it to the second.
var demoChartVersions = []string{"6.5.0", "6.5.1"}

// startChartRepo writes a Helm chart repository (index.yaml and packaged
// charts) into dir and serves it over HTTP on addr, as `helm repo index` and
// any static web server would.
func startChartRepo(dir, addr string) (url string, shutdown func(), err error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s for the chart repository (is another demo running?): %w", addr, err)
	}
	url = "http://" + l.Addr().String()
	index := repo.NewIndexFile()
	for _, v := range demoChartVersions {
		c := helmtest.Simple("podinfo", v)
		c.AppVersion = v
		tgz, err := c.Package()
		if err != nil {
			_ = l.Close()
			return "", nil, fmt.Errorf("package the demo chart: %w", err)
		}
		name := fmt.Sprintf("podinfo-%s.tgz", v)
		if err := os.WriteFile(filepath.Join(dir, name), tgz, 0o600); err != nil {
			_ = l.Close()
			return "", nil, err
		}
		sum := sha256.Sum256(tgz)
		if err := index.MustAdd(c.Metadata(), name, url, hex.EncodeToString(sum[:])); err != nil {
			_ = l.Close()
			return "", nil, err
		}
	}
	index.SortEntries()
	if err := index.WriteFile(filepath.Join(dir, "index.yaml"), 0o600); err != nil {
		_ = l.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return url, func() { _ = srv.Close() }, nil
}
