package helmrelease

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/helm"
)

// maxActors bounds the service accounts whose clients are kept between
// passes; the least recently used one is dropped first and built again when
// needed (which costs no request: discovery is shared).
const maxActors = 256

// actor is who a pass acts as for everything done to the release: the Helm
// actions, Helm's release storage, the chart's lookup and drift detection.
// The status, Events, the finalizer and the values sources stay the
// operator's.
type actor struct {
	runner *helm.Runner
	drift  *apply.Applier
	// serviceAccount is "<namespace>/<name>" of the impersonated service
	// account; "" when the pass acts as the operator.
	serviceAccount string
}

// actors keeps the actor of each service account, at most maxActors.
type actors struct {
	once  sync.Once
	mu    sync.Mutex
	cache *lru.Cache[string, *actor]
}

// serviceAccountOf names the service account a HelmRelease acts as: its
// own, else the operator's default; "" for none (act as the operator).
func serviceAccountOf(obj *helmv1.HelmRelease, defaultServiceAccount string) string {
	if obj.Spec.ServiceAccountName != "" {
		return obj.Spec.ServiceAccountName
	}
	return defaultServiceAccount
}

// actorFor returns who the pass over obj acts as. A service account is
// always one of obj's own namespace, whatever targetNamespace says.
func (r *Reconciler) actorFor(obj *helmv1.HelmRelease) (*actor, error) {
	name := serviceAccountOf(obj, r.DefaultServiceAccount)
	if name == "" {
		return &actor{runner: r.Runner, drift: r.Drift}, nil
	}
	key := obj.Namespace + "/" + name
	r.actors.once.Do(func() {
		r.actors.cache, _ = lru.New[string, *actor](maxActors) // only a size ≤ 0 fails
	})
	r.actors.mu.Lock()
	defer r.actors.mu.Unlock()
	if a, ok := r.actors.cache.Get(key); ok {
		return a, nil
	}
	runner, err := r.Runner.As(fmt.Sprintf("system:serviceaccount:%s:%s", obj.Namespace, name))
	if err != nil {
		return nil, fmt.Errorf("act as service account %s: %w", key, err)
	}
	c, err := client.New(runner.Config(), client.Options{Scheme: r.Client.Scheme(), Mapper: r.Client.RESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("act as service account %s: %w", key, err)
	}
	a := &actor{runner: runner, drift: apply.New(c, DriftFieldManager), serviceAccount: key}
	r.actors.cache.Add(key, a)
	return a, nil
}

// refused maps an error of something done as the actor: when the API
// server refused it to the impersonated service account, the reason is
// Forbidden and the message names the service account (the API server's
// own text names what was refused: the verb, the resource, the namespace).
// Anything else, or an error refused already, keeps reason.
//
// An action pkg/helm refused as the operator because of what a release
// record lists (helm.ErrRecordRefused) has reason ReleaseRecordRefused.
func (a *actor) refused(reason string, err error) (string, error) {
	if errors.Is(err, helm.ErrRecordRefused) {
		return helmv1.ReleaseRecordRefusedReason, err
	}
	if a.serviceAccount == "" || err == nil || reason == helmv1.ForbiddenReason || !isForbidden(err) {
		return reason, err
	}
	return helmv1.ForbiddenReason, fmt.Errorf("refused to service account %s: %w", a.serviceAccount, err)
}

// isForbidden tells a 403 from the API server, also when it reaches us only
// as text (a template's lookup error, which Helm's engine rewrites).
func isForbidden(err error) bool {
	return apierrors.IsForbidden(err) || strings.Contains(err.Error(), " is forbidden: User \"system:serviceaccount:")
}
