package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/internal/testenv"
)

// The control plane starts with the first test that needs it, so that the
// comparison of the renders runs without ./bin.
var (
	startOnce sync.Once
	env       *envtest.Environment
	k8s       client.Client
	startErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// controlPlane starts the local control plane once and returns it with a client.
func controlPlane(t *testing.T) (*envtest.Environment, client.Client) {
	t.Helper()
	startOnce.Do(func() {
		e, err := testenv.New()
		if err != nil {
			startErr = err
			return
		}
		cfg, err := e.Start()
		if err != nil {
			startErr = fmt.Errorf("start the control plane: %w", err)
			return
		}
		env = e
		k8s, startErr = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	})
	if startErr != nil {
		t.Fatal(startErr)
	}
	return env, k8s
}

// The Helm release name the chart is rendered with: the README's
// `helm install helmflux charts/helmflux -n helmflux-system`.
const releaseName, releaseNamespace = "helmflux", "helmflux-system"

// rendered is what one way of installing puts into a cluster.
type rendered struct {
	name string
	objs []*unstructured.Unstructured
}

// renderKustomize builds config/default as `kubectl apply -k` would.
func renderKustomize(t *testing.T) rendered {
	t.Helper()
	return renderKustomization(t, "default")
}

// renderKustomization builds config/<dir> as `kubectl apply -k` would.
func renderKustomization(t *testing.T, dir string) rendered {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", dir))
	if err != nil {
		t.Fatalf("kustomize build config/%s: %v", dir, err)
	}
	out := rendered{name: "config/" + dir}
	for _, r := range m.Resources() {
		// Through JSON, as the chart's objects are decoded, so that numbers
		// are float64 in both.
		j, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize build config/default: %s: %v", r.CurId(), err)
		}
		out.objs = append(out.objs, decodeDocs(t, r.CurId().String(), j)...)
	}
	return out
}

// renderChart renders charts/helmflux with its default values, CRDs
// included, as `helm install` would.
func renderChart(t *testing.T) rendered {
	t.Helper()
	return renderChartWith(t, map[string]any{})
}

// renderChartWith renders charts/helmflux with values over its defaults,
// as `helm install --values` would.
func renderChartWith(t *testing.T, values map[string]any) rendered {
	t.Helper()
	out, err := tryRenderChart(t, values)
	if err != nil {
		t.Fatalf("render the chart: %v", err)
	}
	return out
}

// tryRenderChart is renderChartWith answering the render's error, for
// values the chart refuses.
func tryRenderChart(t *testing.T, values map[string]any) (rendered, error) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chrt, err := loader.Load(filepath.Join(root, "charts", "helmflux"))
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	vals, err := chartutil.ToRenderValues(chrt, values,
		chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNamespace, IsInstall: true}, nil)
	if err != nil {
		t.Fatalf("chart values: %v", err)
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return rendered{}, err
	}
	out := rendered{name: "charts/helmflux"}
	for _, crd := range chrt.CRDObjects() {
		out.objs = append(out.objs, decodeDocs(t, crd.Filename, crd.File.Data)...)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, ".yaml") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		out.objs = append(out.objs, decodeDocs(t, name, []byte(files[name]))...)
	}
	return out, nil
}

// decodeDocs reads every object of a multi-document YAML file.
func decodeDocs(t *testing.T, name string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		if len(obj) > 0 {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// typed converts every object of kind into T.
func typed[T any](t *testing.T, r rendered, kind string) []*T {
	t.Helper()
	var out []*T
	for _, u := range r.objs {
		if u.GetKind() != kind {
			continue
		}
		obj := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
			t.Fatalf("%s: %s %s: %v", r.name, kind, u.GetName(), err)
		}
		out = append(out, obj)
	}
	return out
}

// operatorDeployment returns the Deployment that runs the operator and its
// container named "operator".
func operatorDeployment(t *testing.T, r rendered) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range typed[appsv1.Deployment](t, r, "Deployment") {
		if slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "operator" }) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one Deployment with a container named operator, found %d", r.name, len(found))
	}
	d := found[0]
	i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "operator" })
	return d, d.Spec.Template.Spec.Containers[i]
}

// grant is one verb on one thing: the unit that rules are compared in, so
// that two ClusterRoles that group the same permissions differently agree.
// own marks a grant of a Role in the operator's own namespace.
type grant struct {
	group, resource, name, url, verb string
	own                              bool
}

func (g grant) String() string {
	if g.own {
		h := g
		h.own = false
		return h.String() + " in its own namespace"
	}
	switch {
	case g.url != "":
		return g.verb + " " + g.url
	case g.name != "":
		return fmt.Sprintf("%s %s (group %q) named %s", g.verb, g.resource, g.group, g.name)
	}
	return fmt.Sprintf("%s %s (group %q)", g.verb, g.resource, g.group)
}

// permissions are what an install lets the operator's service account do:
// the grants of the ClusterRoles it defines and binds to it, and the names
// of ClusterRoles it binds that it does not define (cluster-admin).
type permissions struct {
	grants   map[grant]bool
	external []string
}

func operatorPermissions(t *testing.T, r rendered, d *appsv1.Deployment) permissions {
	t.Helper()
	sa := d.Spec.Template.Spec.ServiceAccountName
	if sa == "" {
		t.Fatalf("%s: the operator's Deployment names no service account", r.name)
	}
	roles := map[string]*rbacv1.ClusterRole{}
	for _, role := range typed[rbacv1.ClusterRole](t, r, "ClusterRole") {
		roles[role.Name] = role
	}
	p := permissions{grants: map[grant]bool{}}
	bindsSA := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && s.Namespace == d.Namespace
		})
	}
	for _, b := range typed[rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding") {
		if !bindsSA(b.Subjects) {
			continue
		}
		role, ok := roles[b.RoleRef.Name]
		if !ok {
			p.external = append(p.external, b.RoleRef.Name)
			continue
		}
		p.add(role.Rules, false)
	}
	own := map[string]*rbacv1.Role{}
	for _, role := range typed[rbacv1.Role](t, r, "Role") {
		if role.Namespace == d.Namespace {
			own[role.Name] = role
		}
	}
	for _, b := range typed[rbacv1.RoleBinding](t, r, "RoleBinding") {
		if b.Namespace != d.Namespace || !bindsSA(b.Subjects) {
			continue
		}
		if role, ok := own[b.RoleRef.Name]; ok && b.RoleRef.Kind == "Role" {
			p.add(role.Rules, true)
		} else {
			p.external = append(p.external, b.RoleRef.Kind+" "+b.RoleRef.Name+" in its own namespace")
		}
	}
	slices.Sort(p.external)
	if len(p.grants) == 0 {
		t.Fatalf("%s: no ClusterRole of the install is bound to service account %s/%s", r.name, d.Namespace, sa)
	}
	return p
}

// add records every verb of rules.
func (p permissions) add(rules []rbacv1.PolicyRule, own bool) {
	for _, rule := range rules {
		for _, verb := range rule.Verbs {
			for _, url := range rule.NonResourceURLs {
				p.grants[grant{url: url, verb: verb, own: own}] = true
			}
			for _, group := range rule.APIGroups {
				for _, res := range rule.Resources {
					names := rule.ResourceNames
					if len(names) == 0 {
						names = []string{""} // every object
					}
					for _, name := range names {
						p.grants[grant{group: group, resource: res, name: name, verb: verb, own: own}] = true
					}
				}
			}
		}
	}
}

// Both installs must run the same operator. Names may differ (the chart
// prefixes them with the release name) and so may the image reference (the
// chart pins its appVersion, the kustomization an image a user sets with
// `kustomize edit set image`); everything the process sees must not.
func TestInstallsRunTheSameOperator(t *testing.T) {
	t.Run("default", func(t *testing.T) { assertSameOperator(t, renderKustomize(t), renderChart(t)) })
	t.Run("lockdown", func(t *testing.T) {
		kust, chart := renderKustomization(t, "lockdown"), renderChartWith(t, map[string]any{"lockdown": map[string]any{"enabled": true}})
		assertSameOperator(t, kust, chart)
		// The tenants' aggregated roles, whatever their names.
		kr, cr := aggregatedRules(t, kust), aggregatedRules(t, chart)
		if len(kr) == 0 || !equality.Semantic.DeepEqual(kr, cr) {
			t.Errorf("the tenants' aggregated ClusterRoles differ\n%s:\n%s\n%s:\n%s", kust.name, toYAML(t, kr), chart.name, toYAML(t, cr))
		}
	})
	// Without the lockdown profile a GitSync acts with the operator's rights:
	// nobody may get them by being edit or admin of some namespace.
	if r := aggregatedRules(t, renderChart(t)); len(r) != 0 {
		t.Errorf("the default chart aggregates rights on helmflux's kinds into the built-in roles: %v", r)
	}
	if r := aggregatedRules(t, renderKustomize(t)); len(r) != 0 {
		t.Errorf("config/default aggregates rights on helmflux's kinds into the built-in roles: %v", r)
	}
}

// aggregatedRules maps each aggregate-to-* label of the install's
// ClusterRoles to their rules.
func aggregatedRules(t *testing.T, r rendered) map[string][]rbacv1.PolicyRule {
	t.Helper()
	out := map[string][]rbacv1.PolicyRule{}
	for _, role := range typed[rbacv1.ClusterRole](t, r, "ClusterRole") {
		for k, v := range role.Labels {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") && v == "true" {
				out[k] = append(out[k], role.Rules...)
			}
		}
	}
	return out
}

// assertSameOperator fails unless the two installs run the same operator.
func assertSameOperator(t *testing.T, kust, chart rendered) {
	t.Helper()
	kd, kc := operatorDeployment(t, kust)
	cd, cc := operatorDeployment(t, chart)

	if !equality.Semantic.DeepEqual(kd.Spec.Replicas, cd.Spec.Replicas) {
		t.Errorf("the operator's replicas differ: %s %v, %s %v", kust.name, toYAML(t, kd.Spec.Replicas), chart.name, toYAML(t, cd.Spec.Replicas))
	}
	// Flag order does not matter to the operator, only the set of flags
	// (a repeated flag would, so duplicates are kept).
	ka, ca := slices.Sorted(slices.Values(kc.Args)), slices.Sorted(slices.Values(cc.Args))
	if !slices.Equal(ka, ca) {
		t.Errorf("the operator's args differ\nonly in %s: %q\nonly in %s: %q",
			kust.name, missing(ka, ca), chart.name, missing(ca, ka))
	}
	if !slices.Equal(kc.Command, cc.Command) {
		t.Errorf("the operator's command differs: %s %q, %s %q", kust.name, kc.Command, chart.name, cc.Command)
	}
	for _, f := range []struct {
		what string
		k, c any
	}{
		{"env", kc.Env, cc.Env},
		{"envFrom", kc.EnvFrom, cc.EnvFrom},
		{"ports", kc.Ports, cc.Ports},
		{"livenessProbe", kc.LivenessProbe, cc.LivenessProbe},
		{"readinessProbe", kc.ReadinessProbe, cc.ReadinessProbe},
		{"startupProbe", kc.StartupProbe, cc.StartupProbe},
		{"volumeMounts", kc.VolumeMounts, cc.VolumeMounts},
		{"container securityContext", kc.SecurityContext, cc.SecurityContext},
		{"pod securityContext", kd.Spec.Template.Spec.SecurityContext, cd.Spec.Template.Spec.SecurityContext},
		{"resources", kc.Resources, cc.Resources},
	} {
		if !equality.Semantic.DeepEqual(f.k, f.c) {
			t.Errorf("the operator's %s differs\n%s:\n%s\n%s:\n%s", f.what, kust.name, toYAML(t, f.k), chart.name, toYAML(t, f.c))
		}
	}
	// The volumes behind the mounts: the same kind of volume (emptyDir by
	// default in both) under each mount.
	kv, cv := mountedVolumes(kd, kc), mountedVolumes(cd, cc)
	if !equality.Semantic.DeepEqual(kv, cv) {
		t.Errorf("the operator's mounted volumes differ\n%s:\n%s\n%s:\n%s", kust.name, toYAML(t, kv), chart.name, toYAML(t, cv))
	}

	kp, cp := operatorPermissions(t, kust, kd), operatorPermissions(t, chart, cd)
	for g := range kp.grants {
		if !cp.grants[g] {
			t.Errorf("%s lets the operator %s, %s does not", kust.name, g, chart.name)
		}
	}
	for g := range cp.grants {
		if !kp.grants[g] {
			t.Errorf("%s lets the operator %s, %s does not", chart.name, g, kust.name)
		}
	}
	if !slices.Equal(kp.external, cp.external) {
		t.Errorf("the ClusterRoles bound to the operator from outside the install differ: %s %q, %s %q",
			kust.name, kp.external, chart.name, cp.external)
	}

	kcrd, ccrd := crds(kust), crds(chart)
	if len(kcrd) == 0 {
		t.Errorf("%s installs no CRD", kust.name)
	}
	for name, k := range kcrd {
		if c, ok := ccrd[name]; !ok {
			t.Errorf("%s installs CRD %s, %s does not", kust.name, name, chart.name)
		} else if !equality.Semantic.DeepEqual(k, c) {
			t.Errorf("CRD %s differs between %s and %s (run `make manifests`)", name, kust.name, chart.name)
		}
	}
	for name := range ccrd {
		if _, ok := kcrd[name]; !ok {
			t.Errorf("%s installs CRD %s, %s does not", chart.name, name, kust.name)
		}
	}
}

// missing returns the items of a (sorted) that b (sorted) lacks, counting repeats.
func missing(a, b []string) []string {
	var out []string
	for _, s := range a {
		if i, ok := slices.BinarySearch(b, s); ok {
			b = slices.Delete(slices.Clone(b), i, i+1)
		} else {
			out = append(out, s)
		}
	}
	return out
}

// mountedVolumes returns each mount path's volume source.
func mountedVolumes(d *appsv1.Deployment, c corev1.Container) map[string]corev1.VolumeSource {
	out := map[string]corev1.VolumeSource{}
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				out[m.MountPath] = v.VolumeSource
			}
		}
	}
	return out
}

func crds(r rendered) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, u := range r.objs {
		if u.GetKind() == "CustomResourceDefinition" {
			out[u.GetName()] = u.Object
		}
	}
	return out
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The operator starts and becomes ready when run exactly as each install
// runs it: its flags and environment from the rendered container, and a
// filesystem like the Pod's, where readOnlyRootFilesystem leaves only the
// mounted volumes writable.
func TestOperatorStartsAsInstalled(t *testing.T) {
	for _, r := range []rendered{renderKustomize(t), renderChart(t)} {
		t.Run(strings.ReplaceAll(r.name, "/", "-"), func(t *testing.T) {
			d, c := operatorDeployment(t, r)
			run := localRun(t, d, c)
			env, k8s := controlPlane(t)
			ensureNamespace(t, k8s, d.Namespace)
			testenv.StartOperatorWith(t, env, testenv.OperatorOptions{Args: run.args, Env: run.env, ReadyURL: run.readiness})
			// StartOperatorWith returns once the readiness probe answered 200;
			// the liveness probe must answer too, or the kubelet restarts it.
			if got := get(t, run.liveness); got != http.StatusOK {
				t.Errorf("the liveness probe %s answered %d", run.liveness, got)
			}
			for mount, dir := range run.mounts {
				if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
					t.Errorf("the operator wrote nothing into its volume at %s (%v); its caches are on the read-only root", mount, err)
				}
			}
		})
	}
}

// unwritable is a directory that cannot be created even by root, who is not
// stopped by mode bits: /proc accepts no new entries. It stands for every
// path of the Pod's read-only root filesystem.
const unwritable = "/proc/helmflux-nowhere"

// process is how the test runs the operator of one install.
type process struct {
	args, env           []string
	readiness, liveness string            // the probes' URLs
	mounts              map[string]string // the container's writable mount paths, and the temp dirs that stand for them
}

// localRun turns the rendered container into a process on this machine,
// changing only what a Pod provides and a process does not have:
//   - the container's own network: every flag that binds a declared
//     container port binds a free loopback port instead, so nothing here
//     clashes with another test;
//   - its volumes: a flag naming a path under a writable volume mount names
//     the same path under a temp dir instead (the test runs as root, so
//     /var/cache/helmflux itself would be writable and prove nothing), while
//     $TMPDIR and $HOME, on the read-only root in the Pod, point where nothing
//     can be created;
//   - the service account's namespace file, which tells controller-runtime
//     where the leader election Lease lives: --leader-election-namespace
//     names the Deployment's namespace instead.
//
// The container's env is passed as it is.
func localRun(t *testing.T, d *appsv1.Deployment, c corev1.Container) process {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(unwritable, "helmflux"), 0o700); err == nil {
		t.Fatalf("%s could be created: the test cannot tell a read-only root from a writable one", unwritable)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("the operator's root filesystem is writable; this test assumes readOnlyRootFilesystem: true")
	}
	p := process{env: []string{"TMPDIR=" + unwritable, "HOME=" + unwritable}, mounts: map[string]string{}}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Fatalf("env %s is set from %s; teach this test to supply it", e.Name, toYAML(t, e.ValueFrom))
		}
		p.env = append(p.env, e.Name+"="+e.Value)
	}
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly {
			p.mounts[m.MountPath] = t.TempDir()
		}
	}

	bound := map[int32]string{} // container port → the loopback address that stands for it
	leaderElect := false
	for _, arg := range c.Args {
		name, value, _ := strings.Cut(arg, "=")
		if name == "--leader-elect" || name == "-leader-elect" {
			leaderElect = value == "" || value == "true"
		}
		if port, ok := listenPort(value, c.Ports); ok {
			addr, err := testenv.FreeAddr()
			if err != nil {
				t.Fatal(err)
			}
			bound[port] = addr
			arg = name + "=" + addr
		}
		if mount, rel, ok := underMount(value, p.mounts); ok {
			arg = name + "=" + filepath.Join(p.mounts[mount], rel)
		}
		p.args = append(p.args, arg)
	}
	if leaderElect {
		p.args = append(p.args, "--leader-election-namespace="+d.Namespace)
	}

	for _, cp := range c.Ports {
		if _, ok := bound[cp.ContainerPort]; !ok {
			t.Errorf("container port %s (%d) is bound by no arg: it works only while the operator's default says so", cp.Name, cp.ContainerPort)
		}
	}
	cacheOnVolume := slices.ContainsFunc(c.Args, func(arg string) bool {
		name, value, _ := strings.Cut(arg, "=")
		_, _, ok := underMount(value, p.mounts)
		return name == "--cache-dir" && ok
	})
	if !cacheOnVolume {
		t.Errorf("no --cache-dir arg names a writable volume mount (%s): the operator's default, under $TMPDIR, is on the read-only root",
			strings.Join(slices.Sorted(maps.Keys(p.mounts)), ", "))
	}
	p.readiness = probeURL(t, "readiness", c.ReadinessProbe, c.Ports, bound)
	p.liveness = probeURL(t, "liveness", c.LivenessProbe, c.Ports, bound)
	return p
}

// listenPort reports whether value is a listen address ("host:port" or
// ":port") of one of the container's ports.
func listenPort(value string, ports []corev1.ContainerPort) (int32, bool) {
	_, port, err := net.SplitHostPort(value)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return 0, false
	}
	for _, p := range ports {
		if p.ContainerPort == int32(n) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// probeURL returns the URL of an HTTP probe, its port resolved through the
// container's named ports to the loopback address standing in for it.
func probeURL(t *testing.T, what string, probe *corev1.Probe, ports []corev1.ContainerPort, bound map[int32]string) string {
	t.Helper()
	if probe == nil || probe.HTTPGet == nil {
		t.Fatalf("the operator has no HTTP %s probe", what)
	}
	port := probe.HTTPGet.Port.IntVal
	if name := probe.HTTPGet.Port.StrVal; name != "" {
		i := slices.IndexFunc(ports, func(p corev1.ContainerPort) bool { return p.Name == name })
		if i < 0 {
			t.Fatalf("the %s probe's port %q is no container port", what, name)
		}
		port = ports[i].ContainerPort
	}
	addr, ok := bound[port]
	if !ok {
		t.Fatalf("the %s probe's port %d is bound by no arg", what, port)
	}
	if probe.HTTPGet.Scheme != "" && probe.HTTPGet.Scheme != corev1.URISchemeHTTP {
		t.Fatalf("the %s probe uses %s; teach this test to follow it", what, probe.HTTPGet.Scheme)
	}
	return "http://" + addr + probe.HTTPGet.Path
}

// underMount reports whether value is an absolute path at or under one of
// mounts, and which, and where below it.
func underMount(value string, mounts map[string]string) (mount, rel string, ok bool) {
	if !filepath.IsAbs(value) {
		return "", "", false
	}
	for mount := range mounts {
		if rel, err := filepath.Rel(mount, value); err == nil && filepath.IsLocal(rel) {
			return mount, rel, true
		}
	}
	return "", "", false
}

// ensureNamespace creates the operator's namespace, as both installs do
// (the kustomization holds it, `helm install --create-namespace` makes it):
// leader election writes its Lease there.
func ensureNamespace(t *testing.T, k8s client.Client, name string) {
	t.Helper()
	err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// get returns the status code of a GET, or 0 when there was no answer.
func get(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("GET %s: %v", url, err)
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
