package gitsync

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// states keeps, per GitSync, what its last passes applied (apply.State):
// with the Watcher, a pass skips the objects nobody changed, and a change
// by anyone else to an applied object brings its GitSync round at once
// instead of at its next interval. A GitSync's state starts again when its
// spec changes (another service account, other paths) and goes with it.
type states struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*syncState
	// queue is the controller's work queue, set when the controller starts.
	queue atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
}

type syncState struct {
	generation int64
	state      *apply.State
	rendered   *rendered
}

// of returns obj's state for its current generation.
func (s *states) of(obj *helmfluxv1alpha1.GitSync) *apply.State {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]*syncState{}
	}
	st, ok := s.m[key]
	if !ok || st.generation != obj.Generation {
		st = &syncState{generation: obj.Generation, state: apply.NewState()}
		s.m[key] = st
	}
	return st.state
}

// forget drops the state of a GitSync that is gone.
func (s *states) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

func (s *states) get(key types.NamespacedName) *apply.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[key]; ok {
		return st.state
	}
	return nil
}

// source hands the controller's queue to the drift handler.
func (s *states) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		s.queue.Store(&q)
		return nil
	})
}

// Heard is the Watcher's change handler: an applied object that someone
// changed or deleted (it differs from what its GitSync's last pass left)
// queues that GitSync. The helmflux.dev/sync annotation only picks whose
// state to ask; an object whose annotation names a GitSync that did not
// apply it is not in that state and queues nothing.
func (r *Reconciler) Heard(gk schema.GroupKind, m *metav1.PartialObjectMetadata) {
	owner, ok := m.GetAnnotations()[helmfluxv1alpha1.SyncAnnotation]
	if !ok || r.Watcher == nil {
		return
	}
	ns, name, ok := strings.Cut(owner, "/")
	if !ok {
		return
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	st := r.states.get(key)
	if st == nil {
		return
	}
	id := apply.ObjectID{Group: gk.Group, Kind: gk.Kind, Namespace: m.GetNamespace(), Name: m.GetName()}
	fp, exists, watched := r.Watcher.Lookup(id)
	if !watched || !st.Drifted(id, fp, exists) {
		return
	}
	if q := r.states.queue.Load(); q != nil {
		(*q).Add(reconcile.Request{NamespacedName: key})
	}
}

// rendered is a GitSync's last rendered revision, its objects kept as JSON
// (a fraction of their decoded size): a pass at the same revision and
// generation, a drift correction above all, reuses them instead of
// checking out and parsing every file again.
type rendered struct {
	revision string
	docs     [][]byte
	sources  []string
	lines    []int
	report   manifest.Report
}

// renderedAt returns obj's objects as last rendered at revision, or false.
func (s *states) renderedAt(obj *helmfluxv1alpha1.GitSync, revision string) ([]manifest.Object, manifest.Report, bool) {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	s.mu.Lock()
	st, ok := s.m[key]
	var rd *rendered
	if ok && st.generation == obj.Generation {
		rd = st.rendered
	}
	s.mu.Unlock()
	if rd == nil || rd.revision != revision {
		return nil, manifest.Report{}, false
	}
	objs := make([]manifest.Object, len(rd.docs))
	for i, doc := range rd.docs {
		m := map[string]any{}
		if err := utiljson.Unmarshal(doc, &m); err != nil {
			return nil, manifest.Report{}, false
		}
		objs[i] = manifest.Object{Object: &unstructured.Unstructured{Object: m}, Source: rd.sources[i], Line: rd.lines[i]}
	}
	return objs, rd.report, true
}

// keepRendered remembers obj's objects rendered at revision.
func (s *states) keepRendered(obj *helmfluxv1alpha1.GitSync, revision string, objs []manifest.Object, rep manifest.Report) {
	rd := &rendered{revision: revision, report: rep, docs: make([][]byte, len(objs)),
		sources: make([]string, len(objs)), lines: make([]int, len(objs))}
	for i, o := range objs {
		b, err := json.Marshal(o.Object.Object)
		if err != nil {
			return
		}
		rd.docs[i], rd.sources[i], rd.lines[i] = b, o.Source, o.Line
	}
	s.of(obj) // the state of this generation exists
	key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[key]; ok && st.generation == obj.Generation {
		st.rendered = rd
	}
}
