package apply

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Fingerprint is what a Watcher knows of a live object: enough to tell
// whether anyone changed it since it was last applied. An object with a
// generation is known by its generation and its labels and annotations, so
// that a controller writing its status does not count as a change; any
// other object by its resourceVersion.
type Fingerprint struct {
	ResourceVersion string
	Generation      int64
	Meta            uint64
	Deleting        bool
}

// FingerprintOf returns the fingerprint of an object's metadata.
func FingerprintOf(m metav1.Object) Fingerprint {
	fp := Fingerprint{Deleting: m.GetDeletionTimestamp() != nil}
	if g := m.GetGeneration(); g > 0 {
		fp.Generation, fp.Meta = g, hashMeta(m.GetLabels(), m.GetAnnotations())
		return fp
	}
	fp.ResourceVersion = m.GetResourceVersion()
	return fp
}

func hashMeta(maps ...map[string]string) uint64 {
	h := sha256.New()
	for _, m := range maps {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(m[k]), m[k])
		}
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// DefaultSyncTimeout is how long Watch waits for a new kind's first list.
const DefaultSyncTimeout = 10 * time.Second

// refusedRetry is how long a kind the operator may not list or watch is
// left unwatched before it is tried again.
const refusedRetry = 10 * time.Minute

// Watcher keeps a metadata-only, cluster-wide view of the kinds that were
// applied (one informer per kind, started on first use), so that Sync can
// tell an object nobody changed since it was last applied without asking
// the API server, and so that a change by anyone else is heard at once:
// OnChange is called for every update and delete after a kind's first list,
// and for objects created after it.
//
// A kind the operator may not list or watch stays unwatched (and is tried
// again after ten minutes): its objects are compared with the live objects
// on every pass, as without a Watcher.
type Watcher struct {
	client   metadata.Interface
	mapper   meta.RESTMapper
	onChange func(schema.GroupKind, *metav1.PartialObjectMetadata)

	mu    sync.Mutex
	ctx   context.Context
	kinds map[schema.GroupKind]*watchedKind
}

type watchedKind struct {
	gvr      schema.GroupVersionResource
	informer cache.SharedIndexInformer
	stop     chan struct{}
	refused  chan struct{} // closed when the API server refused the list or watch
	since    time.Time
	halted   sync.Once
}

// halt stops the informer; refused says whether the API server refused it.
func (k *watchedKind) halt(refused bool) {
	k.halted.Do(func() {
		if refused {
			close(k.refused)
		}
		close(k.stop)
	})
}

// NewWatcher returns a Watcher over client. onChange, which must not block,
// hears every change to an object of a watched kind; nil until OnChange
// sets it.
func NewWatcher(client metadata.Interface, mapper meta.RESTMapper, onChange func(schema.GroupKind, *metav1.PartialObjectMetadata)) *Watcher {
	return &Watcher{client: client, mapper: mapper, onChange: onChange, kinds: map[schema.GroupKind]*watchedKind{}}
}

// OnChange sets the change handler; call it before Start.
func (w *Watcher) OnChange(fn func(schema.GroupKind, *metav1.PartialObjectMetadata)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onChange = fn
}

// Start runs the Watcher until ctx ends (a manager.Runnable that needs the
// lead: only the leader applies, so only it watches).
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	for gk, k := range w.kinds {
		k.halt(false)
		delete(w.kinds, gk)
	}
	return nil
}

// NeedLeaderElection makes the Watcher run on the leader only.
func (w *Watcher) NeedLeaderElection() bool { return true }

// Watched starts watching gk when it is not yet and reports whether its
// informer has listed: only then does Lookup answer for it. It waits for a
// new kind's first list until ctx ends or for DefaultSyncTimeout.
func (w *Watcher) Watched(ctx context.Context, gk schema.GroupKind) bool {
	k := w.watch(gk)
	if k == nil {
		return false
	}
	if k.informer.HasSynced() {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultSyncTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cache.WaitForCacheSync(ctx.Done(), k.informer.HasSynced)
	}()
	select {
	case <-done:
	case <-k.refused:
		cancel()
		<-done
	}
	return k.informer.HasSynced()
}

func (w *Watcher) watch(gk schema.GroupKind) *watchedKind {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.ctx.Err() != nil {
		return nil
	}
	if k, ok := w.kinds[gk]; ok {
		select {
		case <-k.refused:
			if time.Since(k.since) < refusedRetry {
				return nil
			}
			delete(w.kinds, gk)
		default:
			return k
		}
	}
	m, err := w.mapper.RESTMapping(gk)
	if err != nil {
		return nil
	}
	k := &watchedKind{gvr: m.Resource, stop: make(chan struct{}), refused: make(chan struct{}), since: time.Now()}
	k.informer = metadatainformer.NewFilteredMetadataInformer(w.client, m.Resource, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	// Nothing reads managed fields from this view; without them it is a
	// fraction of the size.
	_ = k.informer.SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			m.ManagedFields = nil
		}
		return obj, nil
	})
	_ = k.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		if errors.Is(err, context.Canceled) {
			return
		}
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) {
			k.halt(true)
			return
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	onChange := w.onChange
	notify := func(obj any) {
		if m, ok := asMetadata(obj); ok && onChange != nil {
			onChange(gk, m)
		}
	}
	_, _ = k.informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial {
				notify(obj)
			}
		},
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	stop := k.stop
	go func() {
		ctx, cancel := context.WithCancel(w.ctx)
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		k.informer.RunWithContext(ctx)
	}()
	w.kinds[gk] = k
	return k
}

func asMetadata(obj any) (*metav1.PartialObjectMetadata, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	return m, ok
}

// Lookup returns the fingerprint of the object id and whether it exists, as
// the watch last saw it; ok is false when id's kind is not watched or has
// not listed yet.
func (w *Watcher) Lookup(id ObjectID) (fp Fingerprint, exists, ok bool) {
	w.mu.Lock()
	k := w.kinds[id.GroupKind()]
	w.mu.Unlock()
	if k == nil || !k.informer.HasSynced() {
		return Fingerprint{}, false, false
	}
	select {
	case <-k.refused:
		return Fingerprint{}, false, false
	default:
	}
	key := id.Name
	if id.Namespace != "" {
		key = id.Namespace + "/" + id.Name
	}
	obj, exists, err := k.informer.GetStore().GetByKey(key)
	if err != nil {
		return Fingerprint{}, false, false
	}
	if !exists {
		return Fingerprint{}, false, true
	}
	m, isMeta := asMetadata(obj)
	if !isMeta {
		return Fingerprint{}, false, false
	}
	return FingerprintOf(m), true, true
}
