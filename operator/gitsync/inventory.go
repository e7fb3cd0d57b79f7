package gitsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/inventory"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/manifest"
)

// statusInventoryLimit is the largest inventory kept in status; a larger one
// goes to a ConfigMap so that status stays small.
const statusInventoryLimit = 1000

// item is one inventory entry.
type item = inventory.Entry

// inventoryOf returns the inventory of an applied set: every object but the
// sync_only ones, which are applied and never pruned, and those that failed
// and were not in the previous inventory: this sync never made them, so
// there is nothing of its own to prune (a refused ClusterRoleBinding would
// otherwise stay, unprunable, after it left git). A failed object of the
// previous inventory stays in it, so that it is not pruned for having failed.
// Results are in the order of the objects.
func inventoryOf(cs *apply.ChangeSet, objects []manifest.Object, previous []item) []item {
	had := make(map[apply.ObjectID]bool, len(previous))
	for _, it := range previous {
		had[it.ID] = true
	}
	out := make([]item, 0, len(cs.Results))
	for i, r := range cs.Results {
		if i < len(objects) && manifest.IsSyncOnly(objects[i].Object) {
			continue
		}
		if r.Action == apply.Failed && !had[r.ID] {
			continue
		}
		out = append(out, item{ID: r.ID, Version: r.Version})
	}
	return out
}

func ids(items []item) []apply.ObjectID {
	out := make([]apply.ObjectID, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// union returns a plus the items of b it lacks.
func union(a, b []item) []item {
	seen := make(map[apply.ObjectID]bool, len(a))
	for _, it := range a {
		seen[it.ID] = true
	}
	out := append([]item(nil), a...)
	for _, it := range b {
		if !seen[it.ID] {
			out = append(out, it)
			seen[it.ID] = true
		}
	}
	return out
}

// loadInventory reads the inventory of the last apply, from status or its
// ConfigMap. An inventory ConfigMap that is gone or forged lists nothing,
// with a Warning Event: no object is pruned for being in it, and the pass
// writes the inventory of what it applied.
func (r *Reconciler) loadInventory(ctx context.Context, obj *helmfluxv1alpha1.GitSync) ([]item, error) {
	items, err := inventory.Load(ctx, r.APIReader, obj)
	var untrusted *inventory.UntrustedError
	if !errors.As(err, &untrusted) {
		return items, err
	}
	msg := err.Error() + ": objects that left git since the last apply are not pruned"
	ctrl.LoggerFrom(ctx).Info("Not using the inventory ConfigMap", "configMap", untrusted.Name, "reason", untrusted.Why)
	r.Events.Eventf(obj, nil, corev1.EventTypeWarning, helmfluxv1alpha1.InventoryUntrustedReason, "Prune", "%s", msg)
	return nil, nil
}

// storeInventory records the inventory in status, or in a ConfigMap owned by
// the GitSync when it is too large for status.
func (r *Reconciler) storeInventory(ctx context.Context, obj *helmfluxv1alpha1.GitSync, items []item) error {
	sort.Slice(items, func(i, j int) bool { return items[i].ID.String() < items[j].ID.String() })
	inv := &helmfluxv1alpha1.Inventory{Count: len(items)}
	name := inventory.ConfigMapName(obj)
	if len(items) <= statusInventoryLimit {
		for _, it := range items {
			inv.Entries = append(inv.Entries, helmfluxv1alpha1.InventoryEntry{ID: it.ID.String(), Version: it.Version})
		}
		hadConfigMap := obj.Status.Inventory != nil && obj.Status.Inventory.ConfigMapRef != nil
		obj.Status.Inventory = inv
		if !hadConfigMap {
			return nil
		}
		err := r.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: name}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete inventory ConfigMap: %w", err)
		}
		return nil
	}

	var b strings.Builder
	for _, it := range items {
		b.WriteString(it.ID.String() + " " + it.Version + "\n")
	}
	text := b.String()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: name}}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, cm, func() error {
		cm.Data = map[string]string{inventory.ConfigMapKey: text}
		return controllerutil.SetControllerReference(obj, cm, r.Client.Scheme())
	})
	if err != nil {
		return fmt.Errorf("write inventory ConfigMap %s: %w", name, err)
	}
	inv.ConfigMapRef = &meta.LocalObjectReference{Name: name}
	inv.Digest = inventory.Digest(text)
	obj.Status.Inventory = inv
	return nil
}
