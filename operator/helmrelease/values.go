package helmrelease

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/gitcreds"
	"github.com/helmflux/helmflux/operator/inventory"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
	"github.com/helmflux/helmflux/pkg/helm"
	"github.com/helmflux/helmflux/pkg/repopath"
)

// maxValuesSize bounds each values document read from a ConfigMap, Secret,
// URL, chart or git file.
const maxValuesSize = 4 << 20

// externalTimeout bounds the fetch of an externalSourceRef.
const externalTimeout = 30 * time.Second

// errMissing marks a values source that does not exist; optional ones are skipped.
var errMissing = errors.New("not found")

// reconcileValues merges the values in the Helm Operator's order: each
// valuesFrom source in turn, then spec.values (the chart's defaults are
// Helm's to add). It writes no condition; a failure sets Ready through the
// error, which never quotes the values. The scalar values of Secrets
// (valuesFrom secretKeyRef, valueFileSecrets) go into the pass's mask.
func (r *Reconciler) reconcileValues(ctx context.Context, s *scope) error {
	obj := s.obj
	var layers []map[string]any
	for i, src := range obj.Spec.GetValuesFrom() {
		raw, what, optional, err := r.valuesSource(ctx, s, src)
		switch {
		case errors.Is(err, errMissing) && optional:
			continue
		case err != nil:
			// A refused reference stays a spec problem; the rest is retried.
			return outcome.Reclassify(fmt.Errorf("valuesFrom[%d] %s: %w", i, what, err), helmv1.ValuesFailedReason)
		}
		v, err := helm.ParseValues(raw)
		if src.SecretKeyRef != nil {
			// Masked wherever Helm's errors may quote them (see scope.mask).
			if err != nil {
				s.mask.Add(string(raw))
			}
			s.mask.Add(v)
		}
		if err != nil {
			return outcome.WaitForChange(helmv1.ValuesFailedReason, fmt.Errorf("valuesFrom[%d] %s: %w", i, what, err))
		}
		layers = append(layers, v)
	}
	if obj.Spec.Values != nil {
		v, err := obj.Spec.Values.Map()
		if err != nil {
			return outcome.Stall(helmv1.ValuesFailedReason, fmt.Errorf("spec.values: %w", err))
		}
		layers = append(layers, v)
	}
	s.values = helm.MergeValues(layers...)
	s.checksum = helm.Checksum(s.values)
	return nil
}

// valuesSource reads one valuesFrom source. what names it for messages.
func (r *Reconciler) valuesSource(ctx context.Context, s *scope, src helmv1.ValuesFromSource) (raw []byte, what string, optional bool, err error) {
	obj := s.obj
	switch {
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		what = fmt.Sprintf("ConfigMap %s key %s", ref.Name, ref.GetKey())
		raw, err = r.configMapKey(ctx, obj, ref)
		return raw, what, ref.Optional, err
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		what = fmt.Sprintf("Secret %s key %s", ref.Name, ref.GetKey())
		raw, err = r.secretKey(ctx, obj, ref)
		return raw, what, ref.Optional, err
	case src.ExternalSourceRef != nil:
		ref := src.ExternalSourceRef
		what = "externalSourceRef " + helm.RedactURL(ref.URL)
		raw, err = r.external(ctx, ref.URL)
		return raw, what, ref.Optional != nil && *ref.Optional, err
	case src.ChartFileRef != nil:
		ref := src.ChartFileRef
		what = "chartFileRef " + ref.Path
		raw, err = r.chartFile(ctx, s, ref.Path)
		return raw, what, ref.Optional != nil && *ref.Optional, err
	case src.GitFileRef != nil:
		ref := src.GitFileRef
		what = "gitFileRef " + ref.Path
		raw, err = r.gitFile(ctx, obj, ref.Path)
		return raw, what, ref.Optional != nil && *ref.Optional, err
	}
	return nil, "", false, outcome.Stall(helmv1.InvalidSpecReason, errors.New("a valuesFrom entry sets no source"))
}

func (r *Reconciler) configMapKey(ctx context.Context, obj *helmv1.HelmRelease, ref *helmv1.OptionalKeySelector) ([]byte, error) {
	ns, err := r.refNamespace(obj, ref.Namespace)
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errMissing
		}
		return nil, err
	}
	if v, ok := cm.Data[ref.GetKey()]; ok {
		return []byte(v), nil
	}
	if v, ok := cm.BinaryData[ref.GetKey()]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("key %w", errMissing)
}

func (r *Reconciler) secretKey(ctx context.Context, obj *helmv1.HelmRelease, ref *helmv1.OptionalKeySelector) ([]byte, error) {
	ns, err := r.refNamespace(obj, ref.Namespace)
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errMissing
		}
		return nil, err
	}
	v, ok := secret.Data[ref.GetKey()]
	if !ok {
		return nil, fmt.Errorf("key %w", errMissing)
	}
	return v, nil
}

// external fetches values over HTTPS through pkg/helm, size-capped, with the
// chart repositories' transport and local URL policy. A 404 counts as
// missing.
func (r *Reconciler) external(ctx context.Context, raw string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, externalTimeout)
	defer cancel()
	b, err := r.Charts.FetchValues(ctx, raw, maxValuesSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errMissing
	case errors.Is(err, helm.ErrLocalURL):
		return nil, outcome.Stall(helmv1.LocalURLRefusedReason, fmt.Errorf("%w; the operator flag --allow-local-urls allows it", err))
	case errors.Is(err, helm.ErrInvalidValuesURL):
		return nil, outcome.Stall(helmv1.InvalidSpecReason, err)
	}
	return b, err
}

// chartFile reads a values file from the chart, confined to it.
func (r *Reconciler) chartFile(ctx context.Context, s *scope, p string) ([]byte, error) {
	name, err := repopath.Clean(p)
	if err != nil {
		return nil, outcome.Stall(helmv1.InvalidSpecReason, err)
	}
	ch, err := s.loadChart(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range ch.Raw {
		if f.Name == name {
			if len(f.Data) > maxValuesSize {
				return nil, fmt.Errorf("larger than %d bytes", maxValuesSize)
			}
			return f.Data, nil
		}
	}
	return nil, fmt.Errorf("file %w in the chart", errMissing)
}

// gitFile reads a values file from the repository of the GitSync that
// applied the HelmRelease, at the revision it applied.
func (r *Reconciler) gitFile(ctx context.Context, obj *helmv1.HelmRelease, p string) ([]byte, error) {
	if _, err := repopath.Clean(p); err != nil {
		return nil, outcome.Stall(helmv1.InvalidSpecReason, err)
	}
	ann := obj.GetAnnotations()
	owner, revision := ann[helmfluxv1alpha1.SyncAnnotation], ann[helmv1.RevisionAnnotation]
	ns, name, ok := strings.Cut(owner, "/")
	if !ok || revision == "" {
		return nil, outcome.WaitForChange(helmv1.ValuesFailedReason,
			errors.New("gitFileRef needs a HelmRelease applied by a GitSync, which records the repository and revision"))
	}
	rev, err := git.ParseRevision(revision)
	if err != nil {
		return nil, outcome.WaitForChange(helmv1.ValuesFailedReason, fmt.Errorf("annotation %s: %w", helmv1.RevisionAnnotation, err))
	}
	gs, err := r.applyingSync(ctx, obj, client.ObjectKey{Namespace: ns, Name: name}, "gitFileRef reads only the repository that applied it")
	if err != nil {
		return nil, err
	}
	if err := r.verifyValuesRevision(ctx, gs, rev); err != nil {
		return nil, err
	}
	b, err := r.Git.ReadFile(ctx, gs.Spec.URL, rev, p, maxValuesSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file %w at %s", errMissing, rev)
	}
	if errors.Is(err, git.ErrInvalidInput) || errors.Is(err, git.ErrPathEscapes) {
		return nil, outcome.Stall(helmv1.InvalidSpecReason, err)
	}
	return b, err
}

// verifyValuesRevision holds the revision a gitFileRef reads at (from an
// annotation, which whoever may write the HelmRelease may write) to the
// rule of the GitSync that applied it, when it has spec.verify: the
// revision must be the one the GitSync applied last, or pass its
// verification as a git chart's commit does (signed by one of its keys; in
// "all" mode every first-parent commit since the revision it applied).
// Otherwise anyone who may edit the HelmRelease could point it at a commit
// the GitSync refused.
func (r *Reconciler) verifyValuesRevision(ctx context.Context, gs *helmfluxv1alpha1.GitSync, rev git.Revision) error {
	v := gs.Spec.Verify
	if v == nil || v.Mode == helmfluxv1alpha1.VerifyNone {
		return nil
	}
	applied, aerr := git.ParseRevision(gs.Status.LastAppliedRevision)
	if aerr == nil && applied.Hash == rev.Hash {
		return nil
	}
	key := client.ObjectKeyFromObject(gs)
	keyRing, err := gitcreds.KeyRing(ctx, r.Client, gs)
	if err != nil {
		return outcome.Retry(helmv1.ValuesVerificationFailedReason,
			fmt.Errorf("gitFileRef is verified as GitSync %s verifies its commits: %w", key, err))
	}
	since := ""
	if v.Mode == helmfluxv1alpha1.VerifyAll && aerr == nil {
		since = applied.Hash
	}
	err = r.Git.Verify(ctx, gs.Spec.URL, rev, since, keyRing)
	if errors.Is(err, git.ErrNotAncestor) {
		err = r.Git.Verify(ctx, gs.Spec.URL, rev, "", keyRing)
	}
	if err != nil {
		return outcome.WaitForChange(helmv1.ValuesVerificationFailedReason, fmt.Errorf(
			"revision %s (annotation %s) is not the one GitSync %s applied (%s) and is not verified as it verifies its commits: %w",
			rev, helmv1.RevisionAnnotation, key, orNone(gs.Status.LastAppliedRevision), err))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}

// inventoryPendingRetry is how long a HelmRelease waits for the GitSync
// named by its annotation to end its pass before looking again (the
// GitSync's status change usually wakes it sooner).
const inventoryPendingRetry = 10 * time.Second

// applyingSync returns the GitSync named key (from the helmflux.dev/sync
// annotation) once its inventory lists obj. The annotations are no proof:
// whoever may write a HelmRelease may write them too, naming another
// tenant's GitSync to read its repository. Only the GitSync writes its
// inventory, so that is what is trusted. A HelmRelease that a GitSync has
// just created is not listed until the GitSync's pass ends: while the
// GitSync is Reconciling, that waits (InventoryPending, no Event); otherwise
// not being listed is a refusal (NotInInventory). Either way the GitSync's
// next status change wakes the HelmRelease (waitingFor). Neither message
// says anything of the GitSync beyond its name, which the annotation gave;
// why says what the trust is for.
func (r *Reconciler) applyingSync(ctx context.Context, obj *helmv1.HelmRelease, key client.ObjectKey, why string) (*helmfluxv1alpha1.GitSync, error) {
	refused := outcome.WaitForChange(helmv1.NotInInventoryReason,
		fmt.Errorf("the HelmRelease is not in the inventory of GitSync %s: %s", key, why))
	gs := &helmfluxv1alpha1.GitSync{}
	if err := r.Client.Get(ctx, key, gs); err != nil {
		if apierrors.IsNotFound(err) && r.WatchLabelSelector != "" {
			// Said of every GitSync this shard does not see, whether it
			// exists or not: still no oracle.
			return nil, outcome.WaitForChange(helmv1.NotInInventoryReason, fmt.Errorf(
				"GitSync %s is not one this operator reconciles (--watch-label-selector %s): if it is another shard's, give the HelmRelease its %s label: %s",
				key, r.WatchLabelSelector, helmfluxv1alpha1.ShardLabel, why))
		}
		if apierrors.IsNotFound(err) {
			return nil, refused // the same answer as for another's GitSync: no oracle of what exists
		}
		return nil, fmt.Errorf("read GitSync %s: %w", key, err)
	}
	return r.listing(ctx, obj, gs, why)
}

// listing returns gs once its inventory lists obj, as applyingSync does.
func (r *Reconciler) listing(ctx context.Context, obj *helmv1.HelmRelease, gs *helmfluxv1alpha1.GitSync, why string) (*helmfluxv1alpha1.GitSync, error) {
	key := client.ObjectKeyFromObject(gs)
	refused := outcome.WaitForChange(helmv1.NotInInventoryReason,
		fmt.Errorf("the HelmRelease is not in the inventory of GitSync %s: %s", key, why))
	id := apply.ObjectID{Group: helmv1.GroupVersion.Group, Kind: helmv1.HelmReleaseKind, Namespace: obj.Namespace, Name: obj.Name}
	listed, err := inventory.Lists(ctx, r.APIReader, gs, id)
	if err != nil {
		return nil, fmt.Errorf("GitSync %s: %w", key, err)
	}
	switch {
	case listed:
		return gs, nil
	case apimeta.IsStatusConditionTrue(gs.Status.Conditions, meta.ReconcilingCondition):
		return nil, outcome.RetryAfter(helmv1.InventoryPendingReason, inventoryPendingRetry,
			fmt.Errorf("waiting for GitSync %s to list the HelmRelease in its inventory: %s", key, why))
	}
	return nil, refused
}
