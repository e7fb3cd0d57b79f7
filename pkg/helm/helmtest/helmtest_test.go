package helmtest

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

// render renders a chart as `helm template r` would and returns the
// objects by "Kind/name".
func render(t *testing.T, ch *chart.Chart, vals map[string]any) map[string]map[string]any {
	t.Helper()
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "r", Namespace: "ns", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]any{}
	for name, doc := range out {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, doc)
		}
		md, _ := obj["metadata"].(map[string]any)
		objs[obj["kind"].(string)+"/"+md["name"].(string)] = obj
	}
	return objs
}

func TestSimpleRenders(t *testing.T) {
	tgz, err := Simple("app", "1.2.3").Package()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.APIVersion != chart.APIVersionV2 || ch.Metadata.AppVersion != "6.5.0" {
		t.Errorf("metadata %+v", ch.Metadata)
	}
	objs := render(t, ch, map[string]any{"replicaCount": 3, "image": map[string]any{"tag": "6.6.0"}})
	if len(objs) != 2 {
		t.Fatalf("rendered %v, want a ConfigMap and a Deployment", objs)
	}
	dep := objs["Deployment/r-app"]
	if dep == nil || objs["ConfigMap/r-app"] == nil {
		t.Fatalf("rendered %v", objs)
	}
	spec := dep["spec"].(map[string]any)
	if spec["replicas"] != float64(3) {
		t.Errorf("replicas = %v", spec["replicas"])
	}
	ctr := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if ctr["image"] != "ghcr.io/stefanprodan/podinfo:6.6.0" || ctr["name"] != "app" {
		t.Errorf("container %v", ctr)
	}
	labels := dep["metadata"].(map[string]any)["labels"].(map[string]any)
	if labels["helm.sh/chart"] != "app-1.2.3" || labels["app.kubernetes.io/instance"] != "r" {
		t.Errorf("labels %v", labels)
	}
}

func TestChartWithFilesAndDependencies(t *testing.T) {
	c := Simple("parent", "1.0.0")
	c.Files = map[string]string{"crds/crd.yaml": "kind: CustomResourceDefinition\n", "charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n"}
	c.Dependencies = []Dependency{{Name: "sub", Version: "0.x"}}
	tgz, err := c.Package()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.CRDObjects()) != 1 || len(ch.Dependencies()) != 1 || len(ch.Metadata.Dependencies) != 1 {
		t.Errorf("crds %d, subcharts %d, declared %d", len(ch.CRDObjects()), len(ch.Dependencies()), len(ch.Metadata.Dependencies))
	}
	c.Files = map[string]string{"../escape": "x"}
	if _, err := c.Package(); err == nil {
		t.Error("a file outside the chart was written")
	}
}

func TestRepoServerValidators(t *testing.T) {
	s := NewRepoServer(t, WithBasicAuth("u", "p"))
	tgz := s.Add(t, Simple("app", "1.0.0"))
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	get := func(hdr map[string]string) answer {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/index.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("u", "p")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return answer{StatusCode: resp.StatusCode, Header: resp.Header}
	}
	first := get(nil)
	if first.StatusCode != http.StatusOK || first.Header.Get("ETag") == "" || first.Header.Get("Last-Modified") == "" {
		t.Fatalf("status %d, headers %v", first.StatusCode, first.Header)
	}
	if r := get(map[string]string{"If-None-Match": first.Header.Get("ETag")}); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d", r.StatusCode)
	}
	if r := get(map[string]string{"If-Modified-Since": first.Header.Get("Last-Modified")}); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-Modified-Since: status %d", r.StatusCode)
	}
	s.Add(t, Simple("app", "1.1.0"))
	r := get(map[string]string{"If-None-Match": first.Header.Get("ETag"), "If-Modified-Since": first.Header.Get("Last-Modified")})
	if r.StatusCode != http.StatusOK || r.Header.Get("ETag") == first.Header.Get("ETag") {
		t.Errorf("after Add: status %d, ETag %s", r.StatusCode, r.Header.Get("ETag"))
	}
	if s.Requests("/index.yaml") != 4 || s.Responses("/index.yaml", http.StatusNotModified) != 2 {
		t.Errorf("%d requests, %d 304s", s.Requests("/index.yaml"), s.Responses("/index.yaml", http.StatusNotModified))
	}
	if len(tgz) == 0 {
		t.Error("Add returned no archive")
	}
}

func TestHostileArchivePanicsOnUnknownKind(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("no panic")
		}
	}()
	HostileArchive("nope")
	t.Error(errors.New("unreachable"))
}
