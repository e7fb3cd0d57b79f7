package apply_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/internal/testenv"
	"github.com/helmflux/helmflux/pkg/apply"
)

var cfg *rest.Config

func TestMain(m *testing.M) {
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start the control plane:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// newApplier returns an Applier and a client on a counted connection, and a
// fresh namespace name (not created) for the test's objects.
func newApplier(t *testing.T) (*apply.Applier, client.Client, *testenv.RequestCounter, string) {
	t.Helper()
	counted, counter := testenv.Counted(cfg)
	c, err := client.New(counted, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("t-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	return apply.New(c, "helmflux"), c, counter, ns
}

// objects decodes a multi-document YAML text, with NS replaced by ns, and marks
// each object with its source the way the GitSync controller does.
func objects(t *testing.T, ns, text string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(strings.ReplaceAll(text, "NS", ns)), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); err != nil {
			break
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[helmfluxv1alpha1.SyncAnnotation] = "flux-system/test"
		ann[helmfluxv1alpha1.SourceAnnotation] = "apps/" + strings.ToLower(u.GetKind()) + ".yaml"
		u.SetAnnotations(ann)
		out = append(out, u)
	}
	return out
}

const appSet = `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {color: blue}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.example.com/web:1.0.0"}]
`

func actions(cs *apply.ChangeSet) map[string]apply.Action {
	out := map[string]apply.Action{}
	for _, r := range cs.Results {
		out[r.ID.Kind+"/"+r.ID.Name] = r.Action
	}
	return out
}

func TestApplyCreatesThenWritesNothingWhenUnchanged(t *testing.T) {
	a, c, counter, ns := newApplier(t)
	ctx := context.Background()

	cs, err := a.Apply(ctx, objects(t, ns, appSet))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	want := map[string]apply.Action{"Namespace/" + ns: apply.Created, "ConfigMap/settings": apply.Created, "Deployment/web": apply.Created}
	if got := actions(cs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first apply = %v, want %v", got, want)
	}
	var dep unstructured.Unstructured
	dep.SetAPIVersion("apps/v1")
	dep.SetKind("Deployment")
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &dep); err != nil {
		t.Fatalf("get applied Deployment: %v", err)
	}
	if got := dep.GetAnnotations()[helmfluxv1alpha1.SourceAnnotation]; got != "apps/deployment.yaml" {
		t.Errorf("source annotation = %q, want apps/deployment.yaml", got)
	}

	counter.Reset()
	cs, err = a.Apply(ctx, objects(t, ns, appSet))
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if cs.Count(apply.Unchanged) != 3 || cs.Changed() {
		t.Errorf("second apply = %s, want 3 unchanged", cs.Summary())
	}
	if w := counter.Writes(); w != 0 {
		t.Errorf("unchanged apply made %d writes, want 0", w)
	}
}

func TestApplyConfiguresOnlyWhatChangedAndRevertsDrift(t *testing.T) {
	a, c, counter, ns := newApplier(t)
	ctx := context.Background()
	if _, err := a.Apply(ctx, objects(t, ns, appSet)); err != nil {
		t.Fatal(err)
	}

	counter.Reset()
	cs, err := a.Apply(ctx, objects(t, ns, strings.Replace(appSet, "color: blue", "color: green", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs)["ConfigMap/settings"]; got != apply.Configured || cs.Count(apply.Unchanged) != 2 {
		t.Errorf("apply after a change = %s (ConfigMap %s), want 1 configured, 2 unchanged", cs.Summary(), got)
	}
	if w := counter.Writes(); w != 1 {
		t.Errorf("apply of one change made %d writes, want 1", w)
	}

	// Someone edits the ConfigMap by hand; the next pass puts git's value back.
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["color"] = "red"
	if err := c.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	cs, err = a.Apply(ctx, objects(t, ns, strings.Replace(appSet, "color: blue", "color: green", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(cs)["ConfigMap/settings"]; got != apply.Configured {
		t.Errorf("drifted ConfigMap = %s, want configured", got)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["color"] != "green" {
		t.Errorf("drift not corrected: color = %q, want green", cm.Data["color"])
	}
}

// brokenDeployment is schema-invalid: its selector does not match its template.
const brokenDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers: [{name: c, image: "registry.example.com/c:1"}]
`

func TestApplyChangesNothingWhenAnObjectIsInvalid(t *testing.T) {
	a, c, counter, ns := newApplier(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	set := `
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: NS}
data: {a: b}
---
` + brokenDeployment
	counter.Reset()
	_, err := a.Apply(ctx, objects(t, ns, set))
	var invalid *apply.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("apply of a set with an invalid Deployment = %v, want an InvalidError", err)
	}
	msg := err.Error()
	for _, want := range []string{"Deployment/" + ns + "/broken", "apps/deployment.yaml", "selector"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if w := counter.Writes(); w != 0 {
		t.Errorf("a refused set made %d writes, want 0", w)
	}
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fine"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the valid ConfigMap of a refused set exists (err %v); nothing may change", err)
	}
}

func TestApplyRefusesUnknownKindsAndDuplicates(t *testing.T) {
	a, _, _, ns := newApplier(t)
	tests := map[string]struct{ set, want string }{
		"unknown kind": {set: `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: NS}
`, want: "unknown kind Widget.example.com"},
		"duplicate": {set: `
apiVersion: v1
kind: ConfigMap
metadata: {name: twice, namespace: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: twice, namespace: NS}
`, want: "defined twice"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := a.Apply(context.Background(), objects(t, ns, tt.set))
			var invalid *apply.InvalidError
			if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("apply = %v, want an InvalidError saying %q", err, tt.want)
			}
		})
	}
}

func TestApplyInstallsCRDsBeforeTheirObjects(t *testing.T) {
	a, c, _, ns := newApplier(t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	set := strings.ReplaceAll(`
apiVersion: example.com/v1
kind: GadgetSUFFIX
metadata: {name: g, namespace: NS}
spec: {size: 3}
---
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgetsSUFFIX.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgetsSUFFIX, singular: gadgetSUFFIX, kind: GadgetSUFFIX, listKind: GadgetSUFFIXList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
`, "SUFFIX", suffix)
	cs, err := a.Apply(context.Background(), objects(t, ns, set))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if cs.Count(apply.Created) != 3 {
		t.Fatalf("apply = %s, want 3 created", cs.Summary())
	}
	t.Cleanup(func() {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		crd.SetName("gadgets" + suffix + ".example.com")
		_ = c.Delete(context.Background(), crd)
	})
	g := &unstructured.Unstructured{}
	g.SetAPIVersion("example.com/v1")
	g.SetKind("Gadget" + suffix)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "g"}, g); err != nil {
		t.Fatalf("get the custom object: %v", err)
	}
}

// An admission refusal (here a ValidatingAdmissionPolicy, as a webhook would
// refuse) fails that object alone; the others are applied.
func TestApplyReportsAdmissionRefusalPerObject(t *testing.T) {
	a, c, _, ns := newApplier(t)
	ctx := context.Background()
	policy := objects(t, ns, `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: deny-forbidden-NS}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  validations:
  - expression: "!has(object.data) || !('forbidden' in object.data)"
    message: configmaps may not hold the key forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deny-forbidden-NS}
spec:
  policyName: deny-forbidden-NS
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: NS}}
`)
	if _, err := a.Apply(ctx, policy); err != nil {
		t.Fatalf("apply the policy: %v", err)
	}
	t.Cleanup(func() {
		for _, p := range policy {
			_ = c.Delete(context.Background(), p)
		}
	})
	// Wait until the policy is enforced, so that the dry-run meets it too.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}, Data: map[string]string{"forbidden": "x"}}
		if err := c.Create(ctx, probe, client.DryRunAll); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the admission policy is not enforced after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	set := `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: refused, namespace: NS}
data: {forbidden: "yes"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: accepted, namespace: NS}
data: {fine: "yes"}
`
	cs, err := a.Apply(ctx, objects(t, ns, set))
	if err != nil {
		t.Fatalf("apply: %v (an admission refusal must not refuse the set)", err)
	}
	got := actions(cs)
	if got["ConfigMap/refused"] != apply.Failed {
		t.Fatalf("refused ConfigMap = %s, want failed (%s)", got["ConfigMap/refused"], cs.Summary())
	}
	if got["ConfigMap/accepted"] == apply.Failed {
		t.Errorf("the accepted ConfigMap failed too: %v", cs.Failures())
	}
	if f := cs.Failures(); len(f) != 1 || !strings.Contains(f[0].Err.Error(), "may not hold the key forbidden") {
		t.Errorf("failures = %v, want one saying why", f)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "accepted"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("accepted ConfigMap not applied: %v", err)
	}
}

// Objects in a Namespace the set creates can only be checked once it exists;
// an invalid one still keeps every other object from being written.
func TestApplyChecksObjectsOfNewNamespacesBeforeWritingAny(t *testing.T) {
	a, c, _, ns := newApplier(t)
	ctx := context.Background()
	set := `
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: NS}
data: {a: b}
---
` + brokenDeployment
	_, err := a.Apply(ctx, objects(t, ns, set))
	var invalid *apply.InvalidError
	if !errors.As(err, &invalid) || !invalid.FirstStageApplied || !strings.Contains(err.Error(), "Deployment/"+ns+"/broken") {
		t.Fatalf("apply = %v, want an InvalidError naming the Deployment after the Namespace was applied", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fine"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the valid ConfigMap of a refused set exists (err %v)", err)
	}
}
