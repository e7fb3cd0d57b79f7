package helm

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/resource"
)

// Helm's ownership annotations: Helm sets them on every object a release
// creates, and refuses to adopt an object that lacks them.
const (
	ReleaseNameAnnotation      = "meta.helm.sh/release-name"
	ReleaseNamespaceAnnotation = "meta.helm.sh/release-namespace"
)

// OwnedBy tells whether an object's annotations name the release name in
// namespace as its Helm owner: the release created it.
func OwnedBy(annotations map[string]string, namespace, name string) bool {
	return annotations[ReleaseNameAnnotation] == name && annotations[ReleaseNamespaceAnnotation] == namespace
}

// Outside returns the objects of a release record that lie outside the
// release's namespace: cluster-scoped ones (returned without a namespace)
// and those of other namespaces. namespaced tells a kind's scope; a kind
// the cluster does not serve is left out, as Helm cannot act on it either,
// unless it is a list kind (see isList): it is kept, to be refused.
// Whoever may write the record (a Secret in the release's namespace) may
// list anything in it, so these are the objects an action must not touch
// on the record's word alone.
func Outside(objs []*unstructured.Unstructured, namespace string, namespaced func(schema.GroupVersionKind) (bool, error)) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		ns, err := namespaced(o.GroupVersionKind())
		switch {
		case meta.IsNoMatchError(err) && isList(o):
			// Helm's mapper knows kind List (of any group version) and
			// flattens it; Objects flattened what it could. What is left
			// cannot be told: outside, to be refused (see Unowned).
			out = append(out, o.DeepCopy())
			continue
		case meta.IsNoMatchError(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("tell the scope of %s: %w", o.GetKind(), err)
		case ns && o.GetNamespace() == namespace:
			continue
		}
		c := o.DeepCopy()
		if !ns {
			c.SetNamespace("")
		}
		out = append(out, c)
	}
	return out, nil
}

// isList tells a list kind ("List", "ConfigMapList"), which Helm's mapper
// maps and flattens, from an object of a kind the cluster does not serve.
func isList(o *unstructured.Unstructured) bool {
	return strings.HasSuffix(o.GetKind(), "List")
}

// Live reads an object's annotations from the cluster; found is false when
// it does not exist.
type Live func(*unstructured.Unstructured) (annotations map[string]string, found bool, err error)

// Unowned names ("Kind/namespace/name", or "Kind/name") the objects of
// outside (see Outside) that the release name in namespace did not create:
// those found live without its ownership annotations and, when mustExist
// (objects an action would create or overwrite), those not found at all.
// An object to be deleted that does not exist is no harm.
func Unowned(outside []*unstructured.Unstructured, namespace, name string, live Live, mustExist bool) ([]string, error) {
	var out []string
	for _, o := range outside {
		ann, found, err := live(o)
		if meta.IsNoMatchError(err) {
			out = append(out, Display(o)) // an object nobody can tell
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", Display(o), err)
		}
		if (found && !OwnedBy(ann, namespace, name)) || (!found && mustExist) {
			out = append(out, Display(o))
		}
	}
	return out, nil
}

// Display names an object for people, by kind, namespace and name only.
func Display(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// ErrRecordRefused marks an action helmflux refused because a release
// record (from storage, so written by whoever may write Secrets in the
// release's namespace) lists objects outside the release's namespace that
// the release did not create. Errors that wrap it are *RefusedError.
var ErrRecordRefused = errors.New("release record refused")

// maxNamed bounds the objects a refusal names.
const maxNamed = 10

// RefusedError is a refused action: what it was, of which release, and the
// objects ("Kind/namespace/name", or "Kind/name") that made it refuse.
type RefusedError struct {
	Verb      string // "upgrade", "roll back", "uninstall", "test"
	Namespace string
	Release   string
	// Revision is the record's revision, when one record is to blame; 0 when
	// the objects came from Helm's acting on the records of the action.
	Revision int
	Objects  []string
}

func (e *RefusedError) Error() string {
	list := strings.Join(e.Objects, ", ")
	if len(e.Objects) > maxNamed {
		list = fmt.Sprintf("%s and %d more", strings.Join(e.Objects[:maxNamed], ", "), len(e.Objects)-maxNamed)
	}
	which := "its record"
	if e.Revision > 0 {
		which = fmt.Sprintf("revision %d of its record", e.Revision)
	}
	return fmt.Sprintf("refused to %s release %s: %s lists %d object(s) outside namespace %s that the release did not create: %s; "+
		"acting as the operator (no service account), helmflux does not trust a release record for these, as anyone who may write Secrets in %s may have written it",
		e.Verb, e.Release, which, len(e.Objects), e.Namespace, list, e.Namespace)
}

// Unwrap makes a RefusedError match ErrRecordRefused.
func (e *RefusedError) Unwrap() error { return ErrRecordRefused }

// trust says which of the resource lists Helm hands its kube client during
// one action come from the chart rendered now (trusted) and which from a
// stored release record (not).
type trust int

const (
	// trustChart: install and upgrade. What they create, update and delete
	// (their objects and hooks) is the chart's; only an upgrade's deletions,
	// the objects of the base record that the new manifest no longer lists,
	// come from a record.
	trustChart trust = iota
	// trustNothing: rollback (its target record and that record's hooks),
	// uninstall (the record's objects and delete hooks) and test (the
	// record's test hooks).
	trustNothing
)

// recordGuard holds the rule of a Runner acting as the operator itself on
// the lists Helm acts on, after Helm built them (flattened `items` lists,
// REST mappings and namespaces resolved): every object of an untrusted list
// that is cluster-scoped or outside the release's namespace must exist live
// with this release's ownership annotations (or, to be deleted, not exist),
// else nothing of the list is acted on. It remembers the first refusal, as
// Helm does not always pass a kube client's error on.
type recordGuard struct {
	verb, namespace, release string
	trust                    trust

	mu      sync.Mutex
	refusal *RefusedError
}

// refused returns the first refusal of the action, nil if none.
func (g *recordGuard) refused() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refusal == nil {
		return nil
	}
	return g.refusal
}

// check refuses list (see recordGuard); mustExist for objects Helm would
// create or overwrite.
func (g *recordGuard) check(list kube.ResourceList, mustExist bool) error {
	var names []string
	for _, info := range list {
		if info.Mapping == nil {
			names = append(names, info.ObjectName())
			continue
		}
		namespaced := info.Mapping.Scope.Name() == meta.RESTScopeNameNamespace
		if namespaced && info.Namespace == g.namespace {
			continue
		}
		kind, ns := info.Mapping.GroupVersionKind.Kind, info.Namespace
		if !namespaced {
			ns = ""
		}
		display := kind + "/" + info.Name
		if ns != "" {
			display = kind + "/" + ns + "/" + info.Name
		}
		live, err := resource.NewHelper(info.Client, info.Mapping).Get(ns, info.Name)
		switch {
		case apierrors.IsNotFound(err):
			if mustExist {
				names = append(names, display)
			}
			continue
		case err != nil:
			return fmt.Errorf("read %s before acting on it: %w", display, err)
		}
		acc, err := meta.Accessor(live)
		if err != nil || !OwnedBy(acc.GetAnnotations(), g.namespace, g.release) {
			names = append(names, display)
		}
	}
	if len(names) == 0 {
		return nil
	}
	refusal := &RefusedError{Verb: g.verb, Namespace: g.namespace, Release: g.release, Objects: names}
	g.mu.Lock()
	if g.refusal == nil {
		g.refusal = refusal
	}
	g.mu.Unlock()
	return refusal
}

// guardedClient is the kube client of a Runner acting as the operator: its
// writes are checked by a recordGuard. Reads, waits and every optional
// interface Helm looks for (InterfaceExt, InterfaceLogs, InterfaceResources)
// are the embedded client's; each write method Helm's actions call
// (Create, Update, UpdateThreeWayMerge, Delete, DeleteWithPropagationPolicy)
// is defined here, so none reaches the cluster unchecked.
type guardedClient struct {
	reachable
	g *recordGuard
}

var (
	_ kube.Interface                    = guardedClient{}
	_ kube.InterfaceExt                 = guardedClient{}
	_ kube.InterfaceThreeWayMerge       = guardedClient{}
	_ kube.InterfaceLogs                = guardedClient{}
	_ kube.InterfaceDeletionPropagation = guardedClient{}
	_ kube.InterfaceResources           = guardedClient{}
)

// Create creates resources; untrusted ones (hooks of a record) must be
// the release's own where they lie outside its namespace.
func (c guardedClient) Create(resources kube.ResourceList) (*kube.Result, error) {
	if c.g.trust != trustChart {
		if err := c.g.check(resources, true); err != nil {
			return &kube.Result{}, err
		}
	}
	return c.reachable.Create(resources)
}

// Update checks the deletions (original − target) always, and the target
// too when it comes from a record (a rollback).
func (c guardedClient) Update(original, target kube.ResourceList, force bool) (*kube.Result, error) {
	if err := c.checkUpdate(original, target); err != nil {
		return &kube.Result{}, err
	}
	return c.reachable.Update(original, target, force)
}

// UpdateThreeWayMerge is Update with a three-way merge; checked as Update.
func (c guardedClient) UpdateThreeWayMerge(original, target kube.ResourceList, force bool) (*kube.Result, error) {
	if err := c.checkUpdate(original, target); err != nil {
		return &kube.Result{}, err
	}
	return c.reachable.UpdateThreeWayMerge(original, target, force)
}

func (c guardedClient) checkUpdate(original, target kube.ResourceList) error {
	if c.g.trust != trustChart {
		if err := c.g.check(target, true); err != nil {
			return err
		}
	}
	return c.g.check(original.Difference(target), false)
}

// Delete deletes resources; untrusted ones are checked first.
func (c guardedClient) Delete(resources kube.ResourceList) (*kube.Result, []error) {
	if c.g.trust != trustChart {
		if err := c.g.check(resources, false); err != nil {
			return &kube.Result{}, []error{err}
		}
	}
	return c.reachable.Delete(resources)
}

// DeleteWithPropagationPolicy is Delete with a propagation policy (what
// uninstall uses); checked as Delete.
func (c guardedClient) DeleteWithPropagationPolicy(resources kube.ResourceList, policy metav1.DeletionPropagation) (*kube.Result, []error) {
	if c.g.trust != trustChart {
		if err := c.g.check(resources, false); err != nil {
			return &kube.Result{}, []error{err}
		}
	}
	return c.reachable.DeleteWithPropagationPolicy(resources, policy)
}
