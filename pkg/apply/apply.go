package apply

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// DefaultNamespace is given to namespaced objects that name none, as kubectl does.
const DefaultNamespace = "default"

var (
	crdGK       = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	namespaceGK = schema.GroupKind{Kind: "Namespace"}
)

// Applier applies sets of objects with server-side apply.
type Applier struct {
	client       client.Client
	fieldManager string
	concurrency  int
	waitTimeout  time.Duration
	watcher      *Watcher
}

// Option configures an Applier.
type Option func(*Applier)

// WithConcurrency sets how many objects are dry-run or applied at once (default 8).
func WithConcurrency(n int) Option { return func(a *Applier) { a.concurrency = max(1, n) } }

// WithWatcher lets Sync skip objects the Watcher saw unchanged since the
// State's last Sync, and apply changed ones without reading them first.
func WithWatcher(w *Watcher) Option { return func(a *Applier) { a.watcher = w } }

// WithWaitTimeout bounds the wait for new CRDs to be established (default 30s).
func WithWaitTimeout(d time.Duration) Option { return func(a *Applier) { a.waitTimeout = d } }

// New returns an Applier that applies as fieldManager. The client must not
// read from a cache: Apply compares with the live objects.
func New(c client.Client, fieldManager string, opts ...Option) *Applier {
	a := &Applier{client: c, fieldManager: fieldManager, concurrency: 8, waitTimeout: 30 * time.Second}
	for _, o := range opts {
		o(a)
	}
	return a
}

// With returns a copy of a with opts applied.
func (a *Applier) With(opts ...Option) *Applier {
	c := *a
	for _, o := range opts {
		o(&c)
	}
	return &c
}

// InvalidError lists the objects the API server refused as invalid in the
// dry-run. When Apply returns it nothing was changed, except, when
// FirstStageApplied, the new Namespaces and CRDs the invalid objects needed
// before they could be checked.
type InvalidError struct {
	Objects           []Result
	FirstStageApplied bool
}

func (e *InvalidError) Error() string {
	msgs := make([]string, 0, len(e.Objects))
	for _, r := range e.Objects {
		msgs = append(msgs, describe(r))
	}
	what := "nothing applied"
	if e.FirstStageApplied {
		what = "only the new Namespaces and CRDs they need applied"
	}
	return fmt.Sprintf("%d invalid object(s), %s: %s", len(e.Objects), what, strings.Join(msgs, "; "))
}

func describe(r Result) string {
	where := r.ID.Display()
	if r.Source != "" {
		where += " (" + r.Source + ")"
	}
	return where + ": " + r.Err.Error()
}

// entry is one object on its way through Apply.
type entry struct {
	obj      *unstructured.Unstructured // desired
	result   Result
	dryRun   *unstructured.Unstructured // what the API server would store; only its version is kept for watched kinds
	dryRunRV string                     // the dry-run's resourceVersion: "" for a create
	dryRunOK bool                       // the dry-run passed
	left     Fingerprint                // what the apply (or the unchanged live object) left, for the State
	live     *unstructured.Unstructured // nil when absent
	deferred bool                       // waits for a Namespace or CRD of the same set
	// watched is set when a Watcher knows the object's kind: it is dry-run
	// and applied without being read, and what the API server answers says
	// whether it was created, changed or left as it was.
	watched  bool
	skip     bool // unchanged since the State's last Sync, on both sides
	digest   [32]byte
	digested bool
}

// Apply makes the cluster hold objs. It first dry-runs every object; if the
// API server refuses any as invalid it returns an *InvalidError and changes
// nothing. Objects refused for other reasons (an admission webhook, a
// conflict) fail alone: their Result says why and the others are applied.
// Namespaces and CRDs go first; objects that need one of them are validated
// once it exists. Objects whose dry-run equals the live object are not written.
// The ChangeSet holds one Result per object, in the order of objs.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) (*ChangeSet, error) {
	return a.apply(ctx, objs, nil)
}

// Sync is Apply for a set that is applied again and again (a GitSync's
// objects), with the State its last Sync left. With a Watcher, an object
// whose desired form is the one last applied and whose live object nobody
// changed since (as the watch saw it) is neither read nor written: it is
// Unchanged at no cost. Other objects of watched kinds are dry-run and
// applied without being read first; a server-side apply that changes
// nothing writes nothing, and the resourceVersion it answers with says so.
// Objects of kinds the Watcher cannot watch are handled as by Apply.
func (a *Applier) Sync(ctx context.Context, objs []*unstructured.Unstructured, state *State) (*ChangeSet, error) {
	return a.apply(ctx, objs, state)
}

func (a *Applier) apply(ctx context.Context, objs []*unstructured.Unstructured, state *State) (*ChangeSet, error) {
	all, err := a.prepare(objs)
	if err != nil {
		return nil, err
	}
	entries := all
	if state != nil {
		entries = a.known(ctx, all, state)
	}
	first, rest := split(entries)

	// Dry-run everything that can be checked now: the first stage, and the rest
	// unless it waits for a Namespace or CRD that this set creates.
	newKinds, newNamespaces := declared(first)
	a.dropExisting(ctx, newNamespaces)
	var deferred []*entry
	for _, e := range rest {
		if e.deferred = needsNew(e, newKinds, newNamespaces, a.client.RESTMapper()); e.deferred {
			deferred = append(deferred, e)
		}
	}
	a.each(ctx, entries, func(ctx context.Context, e *entry) {
		if !e.deferred {
			a.dryRun(ctx, e)
		}
	})
	if invalid := collectInvalid(entries); len(invalid) > 0 {
		return nil, &InvalidError{Objects: invalid}
	}

	a.each(ctx, first, a.write)
	if err := a.waitEstablished(ctx, first); err != nil {
		return nil, err
	}
	// Objects that waited for the first stage are checked before any of the
	// rest is written: an invalid one still stops them all.
	a.each(ctx, deferred, a.dryRun)
	if invalid := collectInvalid(deferred); len(invalid) > 0 {
		return nil, &InvalidError{Objects: invalid, FirstStageApplied: true}
	}
	a.each(ctx, rest, a.write)
	if state != nil {
		state.update(all)
	}

	cs := &ChangeSet{Results: make([]Result, 0, len(all))}
	for _, e := range all {
		cs.Results = append(cs.Results, e.result)
	}
	return cs, ctx.Err()
}

// known marks the entries the Watcher and state show unchanged (skip) and
// those of watched kinds, and returns the entries left to dry-run and apply.
func (a *Applier) known(ctx context.Context, entries []*entry, state *State) []*entry {
	watched := map[schema.GroupKind]bool{}
	work := make([]*entry, 0, len(entries))
	for _, e := range entries {
		e.digest, e.digested = digest(e.obj)
		if a.watcher != nil && e.digested {
			gk := e.result.ID.GroupKind()
			w, seen := watched[gk]
			if !seen {
				w = a.watcher.Watched(ctx, gk)
				watched[gk] = w
			}
			if w {
				if fp, exists, ok := a.watcher.Lookup(e.result.ID); ok {
					e.watched = true
					if exists && state.current(e.result.ID, e.digest, fp) {
						e.skip = true
						e.result.Action = Unchanged
						continue
					}
				}
			}
		}
		work = append(work, e)
	}
	return work
}

// prepare copies the objects, defaults namespaces from the REST mapping and
// refuses unknown kinds and duplicates.
func (a *Applier) prepare(objs []*unstructured.Unstructured) ([]*entry, error) {
	setScopes := crdScopes(objs)
	seen := make(map[ObjectID]string, len(objs))
	entries := make([]*entry, 0, len(objs))
	var invalid []Result
	for _, in := range objs {
		obj := in.DeepCopy()
		gvk := obj.GroupVersionKind()
		res := Result{Version: gvk.GroupVersion().String(), Source: obj.GetAnnotations()[helmfluxv1alpha1.SourceAnnotation]}

		namespaced, err := isNamespaced(a.client.RESTMapper(), gvk.GroupKind(), setScopes)
		switch {
		case err != nil:
			res.ID, res.Err = IDOf(obj), err
			invalid = append(invalid, res)
			continue
		case namespaced && obj.GetNamespace() == "":
			obj.SetNamespace(DefaultNamespace)
		case !namespaced:
			obj.SetNamespace("")
		}
		res.ID = IDOf(obj)
		if other, dup := seen[res.ID]; dup {
			res.Err = fmt.Errorf("defined twice, also in %s", other)
			invalid = append(invalid, res)
			continue
		}
		seen[res.ID] = res.Source
		entries = append(entries, &entry{obj: obj, result: res})
	}
	if len(invalid) > 0 {
		return nil, &InvalidError{Objects: invalid}
	}
	return entries, nil
}

// crdScopes maps the kinds that CRDs of the set define to whether they are namespaced.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != crdGK {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		out[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
	}
	return out
}

func isNamespaced(mapper meta.RESTMapper, gk schema.GroupKind, setScopes map[schema.GroupKind]bool) (bool, error) {
	if namespaced, ok := setScopes[gk]; ok {
		return namespaced, nil
	}
	m, err := mapper.RESTMapping(gk)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return false, fmt.Errorf("unknown kind %s: no CRD defines it", gk)
		}
		return false, fmt.Errorf("look up kind %s: %w", gk, err)
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// split puts Namespaces and CRDs in the first stage, everything else in the second.
func split(entries []*entry) (first, rest []*entry) {
	for _, e := range entries {
		if gk := e.result.ID.GroupKind(); gk == crdGK || gk == namespaceGK {
			first = append(first, e)
		} else {
			rest = append(rest, e)
		}
	}
	return first, rest
}

// declared returns the kinds and namespaces that the first stage creates or changes.
func declared(first []*entry) (map[schema.GroupKind]bool, map[string]bool) {
	kinds, namespaces := map[schema.GroupKind]bool{}, map[string]bool{}
	for _, e := range first {
		if e.result.ID.GroupKind() == namespaceGK {
			namespaces[e.obj.GetName()] = true
			continue
		}
		for gk := range crdScopes([]*unstructured.Unstructured{e.obj}) {
			kinds[gk] = true
		}
	}
	return kinds, namespaces
}

// dropExisting removes from namespaces those that already exist: objects in
// them can be checked before the first stage.
func (a *Applier) dropExisting(ctx context.Context, namespaces map[string]bool) {
	for name := range namespaces {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"})
		if a.client.Get(ctx, client.ObjectKey{Name: name}, ns) == nil {
			delete(namespaces, name)
		}
	}
}

// needsNew tells whether an object can only be validated after the first
// stage: its kind is defined by a CRD of the set and not served yet, or its
// namespace is created by the set.
func needsNew(e *entry, kinds map[schema.GroupKind]bool, namespaces map[string]bool, mapper meta.RESTMapper) bool {
	if namespaces[e.obj.GetNamespace()] {
		return true
	}
	gk := e.result.ID.GroupKind()
	if !kinds[gk] {
		return false
	}
	_, err := mapper.RESTMapping(gk, e.obj.GroupVersionKind().Version)
	return err != nil
}

// each runs fn over entries, a.concurrency at a time.
func (a *Applier) each(ctx context.Context, entries []*entry, fn func(context.Context, *entry)) {
	sem := make(chan struct{}, a.concurrency)
	var wg sync.WaitGroup
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(ctx, e)
		}()
	}
	wg.Wait()
}

// dryRun reads the live object (unless its kind is watched) and dry-run
// applies the desired one.
func (a *Applier) dryRun(ctx context.Context, e *entry) {
	if !e.watched {
		a.readLive(ctx, e)
		if e.result.Action == Failed {
			return
		}
	}
	dry := e.obj.DeepCopy()
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(dry),
		client.FieldOwner(a.fieldManager), client.ForceOwnership, client.DryRunAll); err != nil {
		e.fail(fmt.Errorf("dry-run: %w", err))
		return
	}
	e.dryRunOK, e.dryRunRV = true, dry.GetResourceVersion()
	if e.watched {
		// Only the version is needed: thousands of dry-run answers are not
		// held until the write phase.
		return
	}
	e.dryRun = dry
}

// readLive reads the live object into e.live (nil when it is absent).
func (a *Applier) readLive(ctx context.Context, e *entry) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(e.obj.GroupVersionKind())
	switch err := a.client.Get(ctx, client.ObjectKeyFromObject(e.obj), live); {
	case apierrors.IsNotFound(err):
		e.live = nil
	case err != nil:
		e.fail(fmt.Errorf("read live object: %w", err))
		return
	default:
		e.live = live
	}
}

// write applies an object whose dry-run differs from the live object.
func (a *Applier) write(ctx context.Context, e *entry) {
	if e.result.Action == Failed {
		return
	}
	if !e.watched && e.live != nil && sameObject(e.live, e.dryRun) {
		e.result.Action = Unchanged
		e.left, e.dryRun, e.live = FingerprintOf(e.live), nil, nil
		return
	}
	applied := e.obj.DeepCopy()
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied),
		client.FieldOwner(a.fieldManager), client.ForceOwnership); err != nil {
		e.fail(fmt.Errorf("apply: %w", err))
		return
	}
	switch {
	case e.watched && e.dryRunRV == "":
		// A dry-run of a create answers without a resourceVersion.
		e.result.Action = Created
	case e.watched && applied.GetResourceVersion() == e.dryRunRV:
		// An apply that changes nothing is not stored: the version stays.
		e.result.Action = Unchanged
	case e.watched, e.live != nil:
		e.result.Action = Configured
	default:
		e.result.Action = Created
	}
	e.left, e.dryRun, e.live = FingerprintOf(applied), nil, nil
}

func (e *entry) fail(err error) {
	e.result.Action = Failed
	e.result.Err = err
}

// sameObject compares two versions of an object, ignoring the fields the API
// server changes on every write.
func sameObject(live, next *unstructured.Unstructured) bool {
	return reflect.DeepEqual(stripVolatile(live), stripVolatile(next))
}

func stripVolatile(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	return c.Object
}

// isInvalid tells whether the API server refused an object as invalid: the
// set is wrong, not the cluster. An admission webhook or policy answers 400 or
// 422 too, but its refusal is the cluster's rule about one object.
func isInvalid(err error) bool {
	if err == nil || isAdmissionRefusal(err) {
		return false
	}
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || meta.IsNoMatchError(err)
}

// isAdmissionRefusal recognises the API server's fixed messages for a denial
// by an admission webhook or a ValidatingAdmissionPolicy; no status field
// tells them apart from schema errors.
func isAdmissionRefusal(err error) bool {
	msg := err.Error()
	return (strings.Contains(msg, "admission webhook \"") && strings.Contains(msg, "denied the request")) ||
		(strings.Contains(msg, "ValidatingAdmissionPolicy '") && strings.Contains(msg, "denied request"))
}

// collectInvalid returns the results of objects refused as invalid.
func collectInvalid(entries []*entry) []Result {
	var out []Result
	for _, e := range entries {
		if e.result.Action == Failed && isInvalid(e.result.Err) {
			out = append(out, e.result)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// waitEstablished waits until the CRDs among entries are established, so that
// their kinds can be applied.
func (a *Applier) waitEstablished(ctx context.Context, entries []*entry) error {
	for _, e := range entries {
		if e.result.ID.GroupKind() != crdGK || e.result.Action == Failed {
			continue
		}
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(e.obj.GroupVersionKind())
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, a.waitTimeout, true, func(ctx context.Context) (bool, error) {
			if err := a.client.Get(ctx, client.ObjectKeyFromObject(e.obj), crd); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return a.mapped(e.obj), nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s to be established: %w", e.obj.GetName(), err)
		}
	}
	return nil
}

// mapped reports whether the REST mapper knows the kind a CRD defines. The
// API server's discovery can lag behind Established for a moment, and the
// mapper reloads discovery on a miss, so a kind applied right after its CRD
// would otherwise fail with "no matches for kind".
func (a *Applier) mapped(crd *unstructured.Unstructured) bool {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	_, err := a.client.RESTMapper().RESTMapping(schema.GroupKind{Group: group, Kind: kind})
	return err == nil
}

// Diff dry-runs objs and reports, without writing anything, which of them
// differ from the live objects: Configured for an object that would change,
// Created for one that is missing, Unchanged otherwise. It is how drift
// between a desired set and the cluster is measured.
func (a *Applier) Diff(ctx context.Context, objs []*unstructured.Unstructured) (*ChangeSet, error) {
	entries, err := a.prepare(objs)
	if err != nil {
		return nil, err
	}
	a.each(ctx, entries, a.dryRun)
	cs := &ChangeSet{Results: make([]Result, 0, len(entries))}
	for _, e := range entries {
		switch {
		case e.result.Action == Failed:
		case e.live == nil:
			e.result.Action = Created
		case sameObject(e.live, e.dryRun):
			e.result.Action = Unchanged
		default:
			e.result.Action = Configured
		}
		cs.Results = append(cs.Results, e.result)
	}
	return cs, ctx.Err()
}
