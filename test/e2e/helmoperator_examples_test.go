package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/git/gittest"
	"github.com/helmflux/helmflux/pkg/helm/helmtest"
)

// examplesDir holds the Flux Helm Operator's documented HelmReleases.
// test/integration checks that the API server stores them unchanged; this
// suite checks that they reconcile. Its invalid/ subdirectory holds
// refusals, which are the API server's business and not read here.
var examplesDir = filepath.Join("..", "integration", "testdata", "helm-operator-examples")

// readyTimeout bounds the wait for one HelmRelease and for its objects: far
// more than a release takes, for a loaded 2-core machine.
const readyTimeout = 2 * time.Minute

// gitAccess says which local git server stands in for an example's chart.git.
type gitAccess int

const (
	// gitAnonymous is a smart HTTP server without auth.
	gitAnonymous gitAccess = iota
	// gitHTTPSBasic is an HTTPS server with basic auth; the Secret the
	// example's chart.secretRef names holds username, password and the
	// server's CA (caFile).
	gitHTTPSBasic
	// gitURLCredentials is an HTTP server with basic auth whose credentials
	// are in the URL's userinfo.
	gitURLCredentials
	// gitSSHKey is an SSH server with public-key auth; chart.secretRef is
	// added, naming a Secret with the key (identity) and known_hosts.
	gitSSHKey
)

// sshWithoutKey explains the examples whose chart.git is an SSH URL without a
// chart.secretRef.
const sshWithoutKey = "chart.git is an SSH URL without chart.secretRef: the Helm Operator " +
	"authenticated with its own deploy key (the flux-git-deploy Secret mounted into the operator), " +
	"and helmflux's operator-wide key (--git-identity-secret) would need a test SSH server that trusts it; " +
	"this suite reads the chart anonymously over smart HTTP instead (same repository, branch and path)"

// rollbackHealthy explains the rollback examples.
const rollbackHealthy = "the chart is healthy, so there is nothing to roll back: the release installs " +
	"(and waits for its resources, which rollback.enable implies)"

// example says how one documented file is adapted here, and why.
type example struct {
	// git picks the git server for chart.git.
	git gitAccess
	// adapted explains what is adapted beyond pointing the sources at the
	// local servers, or why a field has no visible effect here.
	adapted string
	// refused, when set, says that the example's documented purpose cannot
	// work in helmflux and what the user sees instead of Ready.
	refused *refusal
	// requiredSourceMissing also runs the example with its required values
	// source missing, to check that "required" holds.
	requiredSourceMissing bool
}

// refusal is a Ready=False the user must see, with the reason and the texts
// its message must hold.
type refusal struct {
	reason   string
	messages []string
}

// examples lists every documented file; a file missing from the list fails
// the test, so none is left out silently.
var examples = map[string]example{
	"chart-pull-secret.yaml": {adapted: "the repository requires basic auth, and Secret flux-helm-repositories holds " +
		"a repositories.yaml entry (the Helm Operator's format) with the credentials for it. The Helm Operator " +
		"documented chartPullSecret but never implemented it; helmflux does"},
	"disable-openapi-validation.yaml": {},
	"e2e-empty-values.yaml":           {},
	"e2e-git-chart.yaml":              {git: gitAnonymous, adapted: sshWithoutKey},
	"e2e-migrate-v2-to-v3.yaml": {adapted: "the helm.fluxcd.io/migrate annotation has no effect: helmflux manages " +
		"Helm v3 releases only and there is no Helm 2 release to convert, so the release installs as any helmVersion v3 one"},
	"e2e-repo-chart-rollback.yaml": {adapted: rollbackHealthy},
	"e2e-test-ignore-failures.yaml": {adapted: "faults.testFail makes the chart's test Pod fail, as in podinfo; " +
		"test.ignoreFailures keeps the release Ready, with Tested=False"},
	"flux-image-automation-annotations.yaml": {adapted: "the fluxcd.io/automated and filter.fluxcd.io/chart-image " +
		"annotations are for image automation; the HelmRelease controller ignores them and installs the release"},
	"force-upgrade.yaml": {},
	"git-chart-https-secret-ref.yaml": {git: gitHTTPSBasic, adapted: "Secret git-https-credentials holds the local " +
		"HTTPS git server's username and password, and its CA certificate (caFile)"},
	"git-chart-netrc.yaml": {git: gitURLCredentials, adapted: "helmflux reads no ~/.netrc (the Helm Operator's " +
		"operator-wide HTTPS git credentials); the credentials go into the URL's userinfo instead, for a git server " +
		"with basic auth over plain HTTP, since without a Secret there is no place for the test server's CA; " +
		"chart.allowInsecureHTTP lets those credentials go over plain HTTP"},
	"git-chart-secret-ref-namespace.yaml": {git: gitHTTPSBasic, adapted: "Secret flux/git-https-credentials holds " +
		"the local HTTPS git server's credentials and CA; the operator allows cross-namespace references, as the Helm Operator did"},
	"git-chart-skip-dep-update.yaml": {git: gitAnonymous, adapted: sshWithoutKey + ". skipDepUpdate: the chart's " +
		"redis 1.0.0 vendored in charts/ is installed, not the repository's newer 1.0.1"},
	"git-chart-ssh-host-alias.yaml": {git: gitSSHKey, adapted: "the ssh_config Host alias github-repository1 picked " +
		"a private key for the Helm Operator; helmflux reads no ssh_config and has no operator-wide key, and gives a " +
		"repository its own key through chart.secretRef. The URL becomes ssh://git@127.0.0.1:<port>/repo.git (an " +
		"alias cannot name the local server's port) and chart.secretRef names a Secret with identity and known_hosts"},
	"git-chart-ssh-port.yaml": {git: gitSSHKey, adapted: "keeps the ssh:// form with an explicit port, the local SSH " +
		"server's; helmflux takes an SSH key only from chart.secretRef (it has no operator-wide one), so " +
		"chart.secretRef is added, naming a Secret with identity and known_hosts"},
	"git-chart-with-secret.yaml": {git: gitHTTPSBasic, adapted: "Secret git-https-credentials holds the local HTTPS " +
		"git server's credentials and CA; skipDepUpdate installs the vendored redis 1.0.0, not the repository's 1.0.1"},
	"git-chart-without-ref.yaml": {git: gitAnonymous, adapted: sshWithoutKey + ". The chart is on branch master " +
		"only (the remote's HEAD is main), so the release shows that an omitted ref means master"},
	"git-chart.yaml":       {git: gitAnonymous, adapted: sshWithoutKey},
	"helm-version-v3.yaml": {},
	"inline-values.yaml":   {},
	"max-history.yaml":     {},
	"multi-document.yaml":  {git: gitAnonymous, adapted: "HelmRelease foobar: " + sshWithoutKey},
	"release-configuration-all.yaml": {adapted: "skipCRDs: runs before the parallel examples, while no release " +
		"has installed the podinfo chart's CRD, and checks that it is still absent"},
	"release-name-and-target-namespace.yaml": {adapted: "the stable repository (kubernetes-charts.storage.googleapis.com, " +
		"shut down in 2020) is a local repository holding rabbitmq 3.3.6"},
	"release-name.yaml": {},
	"repo-chart-downloader-plugin.yaml": {
		adapted: "s3:// is served by a Helm downloader plugin (helm-s3) installed into the Helm Operator's " +
			"image; helmflux fetches charts itself, over http(s):// and oci:// only, and runs no Helm plugins. " +
			"The URL is kept and the HelmRelease must say clearly why it cannot fetch the chart",
		refused: &refusal{
			reason:   helmv1.ChartFetchFailedReason,
			messages: []string{"s3://bucket-name/charts", "want an http(s):// or oci:// URL"},
		},
	},
	"repo-chart-with-values.yaml": {},
	"repo-chart.yaml":             {},
	"reset-values-false.yaml":     {},
	"rollback-enable.yaml":        {adapted: rollbackHealthy},
	"rollback-retry.yaml":         {adapted: rollbackHealthy},
	"rollback.yaml":               {adapted: rollbackHealthy},
	"skip-crds.yaml": {adapted: "runs before the parallel examples, while no release has installed the podinfo " +
		"chart's CRD, and checks that it is still absent"},
	"target-namespace.yaml":                     {},
	"test-ignore-failures.yaml":                 {},
	"test-timeout.yaml":                         {},
	"test.yaml":                                 {},
	"timeout.yaml":                              {},
	"value-file-secrets-deprecated.yaml":        {git: gitAnonymous, adapted: sshWithoutKey},
	"values-from-all.yaml":                      {git: gitAnonymous, adapted: sshWithoutKey},
	"values-from-chart-file-required.yaml":      {git: gitAnonymous, adapted: sshWithoutKey, requiredSourceMissing: true},
	"values-from-chart-file.yaml":               {git: gitAnonymous, adapted: sshWithoutKey},
	"values-from-configmap-name-only.yaml":      {},
	"values-from-configmap.yaml":                {},
	"values-from-external-source-required.yaml": {requiredSourceMissing: true},
	"values-from-external-source.yaml":          {},
	"values-from-secret-name-only.yaml":         {},
	"values-from-secret.yaml":                   {},
	"wait.yaml":                                 {},
}

// TestHelmOperatorExamples installs every HelmRelease of the Flux Helm
// Operator's documentation against local chart sources and checks what a
// user would see: Ready for the generation, the release deployed under the
// name the Helm Operator would have given it, its objects rolled out with the
// values from every source, tests run, CRDs skipped or not.
//
// Only the source locations are rewritten (chart.repository, chart.git,
// externalSourceRef URLs) and the Secrets they reference are made to match
// the local servers; everything else stays as documented, except where an
// example's entry in examples explains why not. Each example runs in its own
// namespace (its documented namespace, usually default, becomes
// "ex-<file>"), so generated release names read "ex-<file>-<name>".
func TestHelmOperatorExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s (%v)", examplesDir, err)
	}
	for _, f := range files {
		if _, ok := examples[filepath.Base(f)]; !ok {
			t.Errorf("%s has no entry in examples: say how it runs here", filepath.Base(f))
		}
	}
	for name := range examples {
		if !slices.Contains(files, filepath.Join(examplesDir, name)) {
			t.Errorf("examples lists %s, which is not in %s", name, examplesDir)
		}
	}
	if t.Failed() {
		return
	}
	src := newSources(t)
	for _, f := range files {
		ex := examples[filepath.Base(f)]
		// Examples that skip CRDs run one after another before the
		// parallel ones start (parallel subtests wait for this loop to
		// end), while no release has installed the podinfo chart's CRD.
		serial := skipsCRDs(t, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			if !serial {
				t.Parallel()
			}
			src.runExample(t, f, ex)
		})
	}
}

// skipsCRDs tells whether a HelmRelease of the file sets skipCRDs.
func skipsCRDs(t *testing.T, path string) bool {
	for _, d := range readDocs(t, path) {
		if skip, _, _ := unstructured.NestedBool(d.Object, "spec", "skipCRDs"); skip {
			return true
		}
	}
	return false
}

// Names shared by the local charts and the checks.
const (
	// crdName is the CRD in the podinfo chart's crds/ directory
	// (testdata/podinfo-crd.yaml).
	crdName = "podinfoconfigs.charts.e2e.helmflux.dev"
	// chartFile is the values file in the git chart that chartFileRef examples name.
	chartFile = "overrides/environment-prod.yaml"
	// vendoredRedis is the version of the redis subchart committed in the
	// git chart's charts/; repositoryRedis the newest in the repository,
	// which a dependency update picks for the range 1.0.x.
	vendoredRedis, repositoryRedis = "1.0.0", "1.0.1"
	// sshSecret is the Secret added as chart.secretRef for SSH examples.
	sshSecret = "git-ssh-credentials"
	// externalValuesPath is where the values server serves the
	// externalSourceRef values, the documented URL's path.
	externalValuesPath = "/static/raw/values.yaml"
)

// sources are the local stand-ins for the chart repositories, git servers
// and values URL of the examples.
type sources struct {
	// repos maps a documented repository URL to a local one.
	repos map[string]string
	// private is the repository that needs the chartPullSecret's credentials.
	private                  string
	privateUser, privatePass string

	// gitCommit is the commit of branch master, which all git URLs serve.
	gitCommit string
	// gitAnonymous, gitHTTPS, gitWithUserinfo and gitSSH are the chart.git
	// URLs for each gitAccess.
	gitAnonymous, gitHTTPS, gitWithUserinfo, gitSSH string
	gitHTTPSUser, gitHTTPSPass                      string
	gitCA                                           []byte
	sshIdentity, sshKnownHosts                      []byte
	// gitWithoutChartFile serves the same chart without chartFile.
	gitWithoutChartFile string

	// values is the base URL of the externalSourceRef server.
	values string
	// credentials are every password and key here: none may show in a status.
	credentials []string
}

// newSources starts the local chart repositories, git servers and values
// server, which stop when t ends.
func newSources(t *testing.T) *sources {
	s := &sources{privateUser: "flux", privatePass: rand.Text(), gitHTTPSUser: "git", gitHTTPSPass: rand.Text()}

	// The podinfo repository holds the versions the examples name.
	podinfo := helmtest.NewRepoServer(t, helmtest.WithTLS())
	for _, v := range []string{"3.2.0", "3.2.2", "4.0.1"} {
		podinfo.Add(t, podinfoChart(t, v))
	}
	// The old stable repository: rabbitmq for its example, redis for the
	// git chart's dependency.
	stable := helmtest.NewRepoServer(t, helmtest.WithTLS())
	stable.Add(t, appChart(t, "rabbitmq", "3.3.6", "docker.io/bitnami/rabbitmq", "3.8.2", "replicas"))
	stable.Add(t, redisChart(vendoredRedis, "chart repository"))
	stable.Add(t, redisChart(repositoryRedis, "chart repository"))
	private := helmtest.NewRepoServer(t, helmtest.WithTLS(), helmtest.WithBasicAuth(s.privateUser, s.privatePass))
	private.Add(t, podinfoChart(t, "3.2.0"))
	s.repos = map[string]string{
		"https://stefanprodan.github.io/podinfo":           podinfo.URL(),
		"https://kubernetes-charts.storage.googleapis.com": stable.URL(),
	}
	s.private = private.URL()

	// The git repository has the charts on branch master only; its HEAD is main.
	repo := gittest.NewRepo(t, map[string]string{"README.md": "The charts are on branch master.\n"})
	repo.Branch("master")
	writeChart(t, repo, "charts/podinfo", gitPodinfoChart(t, stable.URL(), true))
	writeChart(t, repo, "charts/foobar", appChart(t, "foobar", "0.1.0", "example.com/foobar", "v0", "replicaCount"))
	s.gitCommit = repo.Commit("Add the podinfo and foobar charts")
	s.gitAnonymous = gittest.NewHTTPServer(t, repo.Root()).URL(gittest.RepoName)

	https := gittest.NewHTTPSServer(t, repo.Root(), gittest.WithBasicAuth(s.gitHTTPSUser, s.gitHTTPSPass))
	s.gitHTTPS, s.gitCA = https.URL(gittest.RepoName), https.CACert()

	netrcPass := rand.Text()
	withUserinfo := gittest.NewHTTPServer(t, repo.Root(), gittest.WithBasicAuth("netrc", netrcPass))
	u, err := url.Parse(withUserinfo.URL(gittest.RepoName))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("netrc", netrcPass)
	s.gitWithUserinfo = u.String()

	key := gittest.NewSSHKey(t, "")
	ssh := gittest.NewSSHServer(t, repo.Root(), key.Public)
	s.gitSSH, s.sshIdentity, s.sshKnownHosts = ssh.URL(gittest.RepoName), key.PrivatePEM, ssh.KnownHosts()

	bare := gittest.NewRepo(t, nil)
	bare.Branch("master")
	writeChart(t, bare, "charts/podinfo", gitPodinfoChart(t, stable.URL(), false))
	bare.Commit("Add the podinfo chart, without " + chartFile)
	s.gitWithoutChartFile = gittest.NewHTTPServer(t, bare.Root()).URL(gittest.RepoName)

	valuesSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != externalValuesPath {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, externalValues)
	}))
	t.Cleanup(valuesSrv.Close)
	s.values = valuesSrv.URL

	// A line of the SSH key's PEM stands for the key: JSON (statuses, the
	// operator's logs) escapes its line breaks.
	pem := strings.Split(strings.TrimSpace(string(key.PrivatePEM)), "\n")
	s.credentials = []string{s.privatePass, s.gitHTTPSPass, netrcPass, pem[len(pem)/2]}
	return s
}

// writeChart writes a chart into the repository's worktree.
func writeChart(t *testing.T, repo *gittest.Repo, dir string, c helmtest.Chart) {
	t.Helper()
	if err := c.WriteDir(filepath.Join(repo.WorkDir(), filepath.FromSlash(dir))); err != nil {
		t.Fatal(err)
	}
}

// runExample applies one documented file with its sources rewritten and
// checks every HelmRelease in it.
func (s *sources) runExample(t *testing.T, path string, ex example) {
	base := filepath.Base(path)
	ns := exampleNamespace(base)
	if ex.adapted != "" {
		t.Logf("adapted: %s", ex.adapted)
	}
	ensureNamespace(t, ns)
	t.Cleanup(func() {
		if t.Failed() {
			dumpDiagnostics(t, ns)
		}
	})
	var hrs []*unstructured.Unstructured
	for _, d := range readDocs(t, path) {
		if d.GetKind() == helmv1.HelmReleaseKind {
			hrs = append(hrs, d)
		}
	}
	// The file's other objects (Secrets, ConfigMaps) come first, as
	// written; those in a HelmRelease's documented namespace (or in none,
	// which kubectl reads as default) move with it.
	for _, d := range readDocs(t, path) {
		if d.GetKind() == helmv1.HelmReleaseKind {
			continue
		}
		namespaced, err := k8s.IsObjectNamespaced(d)
		if err != nil {
			t.Fatalf("%s %s: %v", d.GetKind(), d.GetName(), err)
		}
		if namespaced {
			if d.GetNamespace() == "" || slices.ContainsFunc(hrs, func(hr *unstructured.Unstructured) bool {
				return hr.GetNamespace() == d.GetNamespace()
			}) {
				d.SetNamespace(ns)
			}
			ensureNamespace(t, d.GetNamespace())
		}
		if err := k8s.Create(context.Background(), d, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("create %s %s from %s: %v", d.GetKind(), d.GetName(), base, err)
		}
	}
	for _, hr := range hrs {
		s.rewrite(t, ex, hr, ns)
		s.prerequisites(t, ex, typed(t, hr))
	}
	for _, hr := range hrs {
		if err := k8s.Create(context.Background(), hr, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("create HelmRelease %s: %v", hr.GetName(), err)
		}
	}
	for _, hr := range hrs {
		if ex.refused != nil {
			s.assertRefused(t, ns, hr.GetName(), ex.refused)
			continue
		}
		s.assertReleased(t, waitReady(t, ns, hr.GetName()))
	}
	if ex.requiredSourceMissing {
		t.Run("required source missing", func(t *testing.T) {
			s.runWithoutRequiredSource(t, path, ex)
		})
	}
}

// exampleNamespace is the namespace an example runs in.
func exampleNamespace(file string) string {
	return "ex-" + strings.TrimSuffix(file, ".yaml")
}

// rewrite points an example HelmRelease at the local sources and moves it
// into namespace ns.
func (s *sources) rewrite(t *testing.T, ex example, hr *unstructured.Unstructured, ns string) {
	t.Helper()
	hr.SetNamespace(ns)
	set := func(value any, fields ...string) {
		t.Helper()
		old, _, _ := unstructured.NestedFieldCopy(hr.Object, fields...)
		if err := unstructured.SetNestedField(hr.Object, value, fields...); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s: %v → %v", hr.GetName(), strings.Join(fields, "."), old, redact(value))
	}
	chart, _, _ := unstructured.NestedMap(hr.Object, "spec", "chart")
	if repo, ok := chart["repository"].(string); ok {
		local, found := s.repos[strings.TrimSuffix(repo, "/")]
		switch {
		case chart["chartPullSecret"] != nil:
			set(s.private, "spec", "chart", "repository")
		case found:
			set(local, "spec", "chart", "repository")
		case ex.refused == nil:
			t.Fatalf("no local stand-in for repository %s", repo)
		}
	}
	if _, ok := chart["git"].(string); ok {
		switch ex.git {
		case gitAnonymous:
			set(s.gitAnonymous, "spec", "chart", "git")
		case gitHTTPSBasic:
			set(s.gitHTTPS, "spec", "chart", "git")
		case gitURLCredentials:
			set(s.gitWithUserinfo, "spec", "chart", "git")
			set(true, "spec", "chart", "allowInsecureHTTP") // the URL's credentials go over plain http://
		case gitSSHKey:
			set(s.gitSSH, "spec", "chart", "git")
			set(map[string]any{"name": sshSecret}, "spec", "chart", "secretRef")
		}
	}
	from, _, _ := unstructured.NestedSlice(hr.Object, "spec", "valuesFrom")
	for i, v := range from {
		m, _ := v.(map[string]any)
		ext, _ := m["externalSourceRef"].(map[string]any)
		raw, _ := ext["url"].(string)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		ext["url"] = s.values + u.Path
		t.Logf("%s: spec.valuesFrom[%d].externalSourceRef.url: %s → %s", hr.GetName(), i, raw, ext["url"])
	}
	if len(from) > 0 {
		if err := unstructured.SetNestedSlice(hr.Object, from, "spec", "valuesFrom"); err != nil {
			t.Fatal(err)
		}
	}
}

// redact hides the password of a URL in a log line.
func redact(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return s
}

// typed reads an unstructured HelmRelease into the Go type.
func typed(t *testing.T, obj *unstructured.Unstructured) *helmv1.HelmRelease {
	t.Helper()
	hr := &helmv1.HelmRelease{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, hr); err != nil {
		t.Fatalf("read HelmRelease %s: %v", obj.GetName(), err)
	}
	return hr
}

// The values each kind of source holds. Each sets its own marker and the
// message, so the merged values show every source and which one came last.
const (
	externalValues  = "message: from externalSourceRef\nfromExternalSource: true\n"
	chartFileValues = "message: from chart file " + chartFile + "\nfromChartFile: true\n"
)

func configMapValues(name string) string {
	return fmt.Sprintf("message: from ConfigMap %s\nfromConfigMap: %s\n", name, name)
}

func secretValues(name string) string {
	return fmt.Sprintf("message: from Secret %s\nfromSecret: %s\n", name, name)
}

// prerequisites creates what a HelmRelease reads: its target namespace, the
// ConfigMaps and Secrets of its values sources, and credentials matching the
// local servers. Objects that exist already (the file brought them, or
// another example shares the namespace) are kept.
func (s *sources) prerequisites(t *testing.T, ex example, hr *helmv1.HelmRelease) {
	t.Helper()
	ensureNamespace(t, hr.GetTargetNamespace())
	nsOf := func(ns string) string {
		if ns == "" {
			return hr.Namespace
		}
		ensureNamespace(t, ns)
		return ns
	}
	for _, v := range hr.Spec.GetValuesFrom() {
		switch {
		case v.ConfigMapKeyRef != nil:
			ref := v.ConfigMapKeyRef
			createIfMissing(t, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: nsOf(ref.Namespace), Name: ref.Name},
				Data:       map[string]string{ref.GetKey(): configMapValues(ref.Name)},
			})
		case v.SecretKeyRef != nil:
			ref := v.SecretKeyRef
			createIfMissing(t, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: nsOf(ref.Namespace), Name: ref.Name},
				Data:       map[string][]byte{ref.GetKey(): []byte(secretValues(ref.Name))},
			})
		}
	}
	c := hr.Spec.Chart
	if ref := c.ChartPullSecret; ref != nil {
		repositories, err := yaml.Marshal(map[string]any{"apiVersion": "", "repositories": []map[string]any{{
			"name": "podinfo", "url": s.private, "username": s.privateUser, "password": s.privatePass,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		createIfMissing(t, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: hr.Namespace, Name: ref.Name},
			Data:       map[string][]byte{"repositories.yaml": repositories},
		})
	}
	if ref := c.SecretRef; ref != nil {
		data := map[string][]byte{"username": []byte(s.gitHTTPSUser), "password": []byte(s.gitHTTPSPass), "caFile": s.gitCA}
		if ex.git == gitSSHKey {
			data = map[string][]byte{"identity": s.sshIdentity, "known_hosts": s.sshKnownHosts}
		}
		createIfMissing(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsOf(ref.Namespace), Name: ref.Name}, Data: data})
	}
}

// assertRefused checks that a HelmRelease that cannot work says why, and
// installs nothing.
func (s *sources) assertRefused(t *testing.T, ns, name string, want *refusal) {
	hr := waitDecided(t, ns, name)
	ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
	if ready.Status != metav1.ConditionFalse || ready.Reason != want.reason {
		t.Fatalf("Ready = %s, want False %s", condition(hr, meta.ReadyCondition), want.reason)
	}
	for _, m := range want.messages {
		if !strings.Contains(ready.Message, m) {
			t.Errorf("Ready's message does not say %q: %s", m, ready.Message)
		}
	}
	if hr.Spec.Chart.Repository != "" {
		if c := condition(hr, helmv1.ChartFetchedCondition); !strings.HasPrefix(c, "False "+helmv1.ChartFetchFailedReason) {
			t.Errorf("ChartFetched = %s, want False %s", c, helmv1.ChartFetchFailedReason)
		}
	}
	if c := condition(hr, meta.StalledCondition); !strings.HasPrefix(c, "True ") {
		t.Errorf("Stalled = %s, want True: only a change of the spec helps, so the user must see it "+
			"(and observedGeneration %d must reach generation %d) rather than a reconcile retried forever",
			c, hr.Status.ObservedGeneration, hr.Generation)
	}
	if records := releaseRecords(t, hr.GetTargetNamespace(), hr.GetReleaseName()); len(records) > 0 {
		t.Errorf("release %s has records %v, want none", hr.GetReleaseName(), records)
	}
	s.assertNoCredentials(t)
}

// runWithoutRequiredSource runs the example again in its own namespace,
// with its required values source missing: the release must not be
// installed, and the HelmRelease must say which source is missing.
func (s *sources) runWithoutRequiredSource(t *testing.T, path string, ex example) {
	docs := readDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: want one HelmRelease", path)
	}
	hr := docs[0]
	ns := exampleNamespace(filepath.Base(path)) + "-missing"
	ensureNamespace(t, ns)
	t.Cleanup(func() {
		if t.Failed() {
			dumpDiagnostics(t, ns)
		}
	})
	s.rewrite(t, ex, hr, ns)
	var what string
	switch {
	case typed(t, hr).Spec.Chart.IsGit():
		// The same chart, without the file.
		if err := unstructured.SetNestedField(hr.Object, s.gitWithoutChartFile, "spec", "chart", "git"); err != nil {
			t.Fatal(err)
		}
		what = "chartFileRef " + chartFile
	default:
		// The same server answers 404 for any other path.
		missing := s.values + "/static/raw/missing.yaml"
		from, _, _ := unstructured.NestedSlice(hr.Object, "spec", "valuesFrom")
		for _, v := range from {
			if ext, ok := v.(map[string]any)["externalSourceRef"].(map[string]any); ok {
				ext["url"] = missing
				what = "externalSourceRef " + missing
			}
		}
		if err := unstructured.SetNestedSlice(hr.Object, from, "spec", "valuesFrom"); err != nil {
			t.Fatal(err)
		}
	}
	if what == "" {
		t.Fatalf("%s has no required chartFileRef or externalSourceRef to leave out", path)
	}
	s.prerequisites(t, ex, typed(t, hr))
	if err := k8s.Create(context.Background(), hr, client.FieldValidation("Strict")); err != nil {
		t.Fatal(err)
	}
	got := waitDecided(t, ns, hr.GetName())
	if c := condition(got, meta.ReadyCondition); !strings.HasPrefix(c, "False "+helmv1.ValuesFailedReason) || !strings.Contains(c, what) {
		t.Fatalf("the documented example leaves optional unset, so %s is required (the Helm Operator's "+
			"default, and docs/helmrelease.md's): with it missing, want Ready False %s naming it; got Ready %s",
			what, helmv1.ValuesFailedReason, c)
	}
	if records := releaseRecords(t, got.GetTargetNamespace(), got.GetReleaseName()); len(records) > 0 {
		t.Errorf("release %s was installed without its required values: %v", got.GetReleaseName(), records)
	}
}

// wantReleaseName is the release name the Helm Operator documented:
// spec.releaseName, else "<namespace>-<name>", with the target namespace in
// between when it differs.
func wantReleaseName(hr *helmv1.HelmRelease) string {
	switch {
	case hr.Spec.ReleaseName != "":
		return hr.Spec.ReleaseName
	case hr.Spec.TargetNamespace != "" && hr.Spec.TargetNamespace != hr.Namespace:
		return hr.Namespace + "-" + hr.Spec.TargetNamespace + "-" + hr.Name
	}
	return hr.Namespace + "-" + hr.Name
}

// fullname is the charts' name for their objects, as podinfo's _helpers.tpl
// makes it.
func fullname(release, chart string) string {
	n := release
	if !strings.Contains(release, chart) {
		n = release + "-" + chart
	}
	if len(n) > 63 {
		n = n[:63]
	}
	return strings.TrimSuffix(n, "-")
}

// assertReleased checks what a user sees of a Ready HelmRelease: the status,
// the release record, the objects rolled out with the merged values, the
// tests, the CRDs and the dependencies.
func (s *sources) assertReleased(t *testing.T, hr *helmv1.HelmRelease) {
	release, ns := wantReleaseName(hr), hr.GetTargetNamespace()
	st := hr.Status
	if st.ReleaseName != release || st.ReleaseStatus != "deployed" {
		t.Errorf("status: release %q %q, want %q deployed", st.ReleaseName, st.ReleaseStatus, release)
	}
	chartName, wantRevision := hr.Spec.Chart.Name, hr.Spec.Chart.Version
	if hr.Spec.Chart.IsGit() {
		chartName, wantRevision = filepath.Base(hr.Spec.Chart.Path), "@sha1:"+s.gitCommit
	}
	if !strings.HasSuffix(st.Revision, wantRevision) {
		t.Errorf("status.revision = %q, want it to end in %q", st.Revision, wantRevision)
	}
	if records := releaseRecords(t, ns, release); !slices.Equal(records, []string{"deployed"}) {
		t.Errorf("release %s in namespace %s has records %v, want one, deployed", release, ns, records)
	}
	name := fullname(release, chartName)
	values := renderedValues(t, ns, name)
	s.assertValues(t, hr, values)
	assertRolledOut(t, ns, name, values)
	assertService(t, ns, name, values)

	testFails := lookup(values, "faults", "testFail") == true
	wantPhase := helmv1.PhaseSucceeded
	if hr.Spec.Test.Enable {
		assertTested(t, hr, ns, name, testFails)
		if testFails {
			wantPhase = helmv1.PhaseTestFailed
		}
	}
	if st.Phase != wantPhase {
		t.Errorf("status.phase = %s, want %s", st.Phase, wantPhase)
	}
	if chartName == "podinfo" {
		assertCRD(t, !hr.Spec.SkipCRDs)
	}
	if chartName == "podinfo" && hr.Spec.Chart.IsGit() {
		want := repositoryRedis
		if hr.Spec.Chart.SkipDepUpdate {
			want = vendoredRedis
		}
		assertRedis(t, ns, release, want)
	}
	s.assertNoCredentials(t)
}

// renderedValues returns the values the release's ConfigMap shows (the
// charts render them there).
func renderedValues(t *testing.T, ns, name string) map[string]any {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatalf("the release's ConfigMap: %v", err)
	}
	out := map[string]any{}
	if err := json.Unmarshal([]byte(cm.Data["values.json"]), &out); err != nil {
		t.Fatalf("ConfigMap %s values.json: %v", name, err)
	}
	return out
}

// assertValues checks that every values source reached the release, merged
// in the documented order (valueFileSecrets, then valuesFrom in order, then
// spec.values), and that spec.values is there as written.
func (s *sources) assertValues(t *testing.T, hr *helmv1.HelmRelease, have map[string]any) {
	want := map[string]any{}
	merge := func(doc string) {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			want[k] = v
		}
	}
	for _, v := range hr.Spec.GetValuesFrom() {
		switch {
		case v.ConfigMapKeyRef != nil:
			merge(configMapValues(v.ConfigMapKeyRef.Name))
		case v.SecretKeyRef != nil:
			merge(secretValues(v.SecretKeyRef.Name))
		case v.ExternalSourceRef != nil:
			merge(externalValues)
		case v.ChartFileRef != nil:
			merge(chartFileValues)
		}
	}
	if hr.Spec.Values != nil {
		inline, err := hr.Spec.Values.Map()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range inline {
			want[k] = v
		}
	}
	if !contains(normalized(t, have), normalized(t, want)) {
		t.Errorf("the release's values miss some of the sources'\nwant (at least): %v\nhave: %v", want, have)
	}
}

// contains tells whether have holds everything in want, recursively; a nil
// in want (a YAML key without a value) must be nil or absent in have.
func contains(have, want any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(have, want)
	}
	hm, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, w := range wm {
		h, found := hm[k]
		if w == nil && (!found || h == nil) {
			continue
		}
		if !found || !contains(h, w) {
			return false
		}
	}
	return true
}

// normalized makes numbers and maps comparable by a JSON round trip.
func normalized(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// lookup returns values[k1][k2]..., or nil.
func lookup(values map[string]any, keys ...string) any {
	var cur any = values
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// assertRolledOut waits until the release's Deployment runs the image and
// replicas its values ask for, all of them ready.
func assertRolledOut(t *testing.T, ns, name string, values map[string]any) {
	replicas := lookup(values, "replicaCount")
	if replicas == nil {
		replicas = lookup(values, "replicas") // the rabbitmq chart's name for it
	}
	image := fmt.Sprintf("%v:%v", lookup(values, "image", "repository"), lookup(values, "image", "tag"))
	eventually(t, readyTimeout, "Deployment "+ns+"/"+name+" rolled out", func() (bool, bool, string) {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, !apierrors.IsNotFound(err), err.Error()
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
			return false, true, fmt.Sprintf("image %s, want %s", got, image)
		}
		if d.Spec.Replicas == nil || float64(*d.Spec.Replicas) != replicas {
			return false, true, fmt.Sprintf("spec.replicas %v, want %v", d.Spec.Replicas, replicas)
		}
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == *d.Spec.Replicas &&
				d.Status.UpdatedReplicas == *d.Spec.Replicas,
			false, fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, *d.Spec.Replicas)
	})
}

// assertService checks the release's Service against service.* values.
func assertService(t *testing.T, ns, name string, values map[string]any) {
	if lookup(values, "service", "enabled") != true {
		return
	}
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatalf("the release's Service: %v", err)
	}
	if want := fmt.Sprint(lookup(values, "service", "type")); string(svc.Spec.Type) != want {
		t.Errorf("Service type %s, want %s", svc.Spec.Type, want)
	}
	if want := lookup(values, "service", "nodePort"); want != nil && float64(svc.Spec.Ports[0].NodePort) != want {
		t.Errorf("Service nodePort %d, want %v", svc.Spec.Ports[0].NodePort, want)
	}
}

// assertTested checks the Tested condition and the test Pod's end.
func assertTested(t *testing.T, hr *helmv1.HelmRelease, ns, name string, fails bool) {
	wantCond, wantPhase := "True "+helmv1.TestSucceededReason, corev1.PodSucceeded
	if fails {
		wantCond, wantPhase = "False "+helmv1.TestFailedReason, corev1.PodFailed
	}
	if c := condition(hr, helmv1.TestedCondition); !strings.HasPrefix(c, wantCond) {
		t.Errorf("Tested = %s, want %s", c, wantCond)
	}
	pod := &corev1.Pod{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-test"}, pod); err != nil {
		t.Fatalf("the test Pod: %v", err)
	}
	if pod.Status.Phase != wantPhase {
		t.Errorf("test Pod %s is %s, want %s", pod.Name, pod.Status.Phase, wantPhase)
	}
}

// assertCRD checks whether the podinfo chart's CRD is installed.
func assertCRD(t *testing.T, want bool) {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	err := k8s.Get(context.Background(), client.ObjectKey{Name: crdName}, crd)
	switch {
	case want && err != nil:
		t.Errorf("CRD %s from the chart's crds/: %v", crdName, err)
	case !want && err == nil:
		t.Errorf("CRD %s is installed, but skipCRDs is set", crdName)
	case !want && !apierrors.IsNotFound(err):
		t.Errorf("CRD %s: %v", crdName, err)
	}
}

// assertRedis checks which redis subchart the git chart was installed with.
func assertRedis(t *testing.T, ns, release, version string) {
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: release + "-redis"}, cm); err != nil {
		t.Fatalf("the redis subchart's ConfigMap: %v", err)
	}
	if got := cm.Labels["helm.sh/chart"]; got != "redis-"+version {
		t.Errorf("redis subchart %s (%s), want redis-%s", got, cm.Data["origin"], version)
	}
}

// assertNoCredentials checks that no password or key shows in the
// operator's logs, or in an Event or a status of any namespace.
func (s *sources) assertNoCredentials(t *testing.T) {
	t.Helper()
	for _, c := range s.credentials {
		testenv.AssertNoLeak(t, k8s, c, testenv.Leaks{Logs: []string{logs.String()}})
	}
}

// dumpDiagnostics logs the HelmReleases of a namespace and what the
// operator logged about them.
func dumpDiagnostics(t *testing.T, ns string) {
	list := &helmv1.HelmReleaseList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err == nil {
		for _, hr := range list.Items {
			b, _ := json.MarshalIndent(hr.Status, "", "  ")
			t.Logf("HelmRelease %s/%s generation %d status:\n%s", ns, hr.Name, hr.Generation, b)
		}
	}
	lines := logs.LinesWith(`"` + ns + `"`)
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("operator log lines about namespace %s:\n%s", ns, strings.Join(lines, "\n"))
}

// podinfoChart is the podinfo chart the repositories serve: appChart, with a
// CRD in crds/ so that skipCRDs shows.
func podinfoChart(t *testing.T, version string) helmtest.Chart {
	t.Helper()
	c := appChart(t, "podinfo", version, "ghcr.io/stefanprodan/podinfo", version, "replicaCount")
	crd, err := os.ReadFile(filepath.Join("testdata", "podinfo-crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.Files = map[string]string{"crds/podinfoconfig.yaml": string(crd)}
	return c
}

// gitPodinfoChart is the podinfo chart in git: the repositories' one, plus
// the values file chartFileRef examples name (when withChartFile) and a redis
// dependency from the chart repository at stableURL, vendored in charts/ at
// an older version than the repository has.
func gitPodinfoChart(t *testing.T, stableURL string, withChartFile bool) helmtest.Chart {
	t.Helper()
	c := podinfoChart(t, "3.2.0")
	c.Dependencies = []helmtest.Dependency{{Name: "redis", Version: "1.0.x", Repository: stableURL}}
	vendored := redisChart(vendoredRedis, "vendored in git")
	c.Files["charts/redis/Chart.yaml"] = "apiVersion: v2\nname: redis\nversion: " + vendoredRedis + "\n"
	c.Files["charts/redis/templates/configmap.yaml"] = vendored.Templates["configmap.yaml"]
	if withChartFile {
		c.Files[chartFile] = chartFileValues
	}
	return c
}

// redisChart is a subchart with one ConfigMap that says where it came from.
func redisChart(version, origin string) helmtest.Chart {
	return helmtest.Chart{
		Name: "redis", Version: version, AppVersion: "5.0.7",
		Templates: map[string]string{"configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-redis
  labels:
    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
data:
  origin: ` + origin + "\n"},
	}
}

// appChartDir holds the files of appChart, with placeholders.
var appChartDir = filepath.Join("testdata", "app-chart")

// appChart returns the chart in appChartDir, a small one shaped like
// podinfo: a Deployment whose image and replicas come from values, a
// Service, a ConfigMap that also shows the merged values (values.json) so
// that tests can read them, and a test hook Pod that fails when
// faults.testFail is set. replicas names the replicas value (the old stable
// charts called it "replicas").
func appChart(t *testing.T, name, version, image, tag, replicas string) helmtest.Chart {
	t.Helper()
	r := strings.NewReplacer("@NAME@", name, "@REPLICAS@", replicas, "@IMAGE@", image, "@TAG@", tag,
		"@TESTFAIL@", testenv.TestFailAnnotation)
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(appChartDir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return r.Replace(string(b))
	}
	c := helmtest.Chart{Name: name, Version: version, AppVersion: tag, Values: read("values.yaml"), Templates: map[string]string{}}
	for _, f := range []string{"_helpers.tpl", "configmap.yaml", "deployment.yaml", "service.yaml", "tests/test-pod.yaml", "NOTES.txt"} {
		c.Templates[f] = read("templates/" + f)
	}
	return c
}
