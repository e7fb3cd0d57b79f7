package helmrelease_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// Without --allow-local-urls, a chart.repository on 127.0.0.1 (http(s) or
// oci://) and an externalSourceRef on 127.0.0.1 are refused with reason
// LocalURLRefused (Stalled) and a Warning Event naming the flag, and the
// loopback servers get no request. The chart of the values case comes from
// the same server reached under a name that is not loopback (the operator's
// client dials 127.0.0.1 for example.com, as an /etc/hosts entry would), so
// the refusal is the values URL's.
func TestLocalURLsRefusedWithoutTheFlag(t *testing.T) {
	ns := strictNamespace
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	mustCreate(t, namespace)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), namespace) })

	opts := operatorOptions(t.TempDir())
	opts.AllowLocalURLs = false
	opts.HTTPClient = viaExampleCom(tlsClient)
	ctx, cancel := context.WithCancel(context.Background())
	done, err := testenv.StartInProcessWith(ctx, cfg, testLogger(), opts,
		cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}})
	t.Cleanup(func() {
		cancel()
		if done != nil {
			<-done
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	repo := helmtest.NewRepoServer(t)
	repo.Add(t, appChart("1.0.0"))
	reg := helmtest.NewRegistry(t)
	reg.Push(t, "charts", appChart("1.0.0"))
	pushed := reg.Requests("", "/")
	var valuesHits atomic.Int32
	valuesSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		valuesHits.Add(1)
		_, _ = w.Write([]byte("a: 1\n"))
	}))
	t.Cleanup(valuesSrv.Close)
	values := valuesSrv.URL

	mustCreateHR(t, repoRelease(ns, "repo", repo.URL(), "1.0.0", ""))
	mustCreateHR(t, repoRelease(ns, "oci", reg.URL("charts"), "1.0.0", ""))
	vals := repoRelease(ns, "values", strings.Replace(repo.URL(), "127.0.0.1", "example.com", 1), "1.0.0", "")
	vals.Spec.ValuesFrom = []helmv1.ValuesFromSource{{ExternalSourceRef: &helmv1.ExternalSourceSelector{URL: values}}}
	mustCreateHR(t, vals)

	for name, field := range map[string]string{"repo": "chart.repository", "oci": "chart.repository", "values": "valuesFrom[0]"} {
		hr := waitCondition(t, ns, name, meta.ReadyCondition, "False "+helmv1.LocalURLRefusedReason)
		if msg := condition(hr, meta.ReadyCondition); !strings.Contains(msg, "--allow-local-urls") || !strings.Contains(msg, field) {
			t.Errorf("%s: Ready is %q, want it to name %s and the flag", name, msg, field)
		}
		if got := condition(hr, meta.StalledCondition); !strings.HasPrefix(got, "True "+helmv1.LocalURLRefusedReason) {
			t.Errorf("%s: Stalled is %q", name, got)
		}
		eventually(t, time.Minute, name+" Warning Event", func() (bool, string) {
			ev := events(t, ns, name)
			return containsAny(ev, helmv1.LocalURLRefusedReason+": "), strings.Join(ev, "; ")
		})
	}
	if n := repo.Requests("/index.yaml"); n != 1 {
		t.Errorf("the repository saw %d index requests, want 1 (as example.com, for the values case)", n)
	}
	if n := valuesHits.Load(); n != 0 {
		t.Errorf("the loopback values server saw %d requests", n)
	}
	if n := reg.Requests("", "/") - pushed; n != 0 {
		t.Errorf("the loopback registry saw %d requests", n)
	}
}

// viaExampleCom returns a copy of base that dials 127.0.0.1 for
// example.com (httptest's certificates are valid for that name).
func viaExampleCom(base *http.Client) *http.Client {
	tr := base.Transport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && host == "example.com" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Timeout: base.Timeout}
}
