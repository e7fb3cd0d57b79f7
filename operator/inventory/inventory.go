// Package inventory reads a GitSync's inventory — the objects its last
// apply made, kept in status or, when large, in a ConfigMap beside it — for
// the GitSync controller, which writes it, and for the fluxd API, which
// lists the workloads of every GitSync from it.
package inventory

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/pkg/apply"
)

// ConfigMapKey is the key of the inventory ConfigMap holding
// "<id> <version>" lines.
const ConfigMapKey = "inventory"

// Entry is one applied object and the API version it was applied with.
type Entry struct {
	ID      apply.ObjectID
	Version string
}

// ConfigMapName is the name of the ConfigMap a large inventory is kept in.
func ConfigMapName(obj *helmfluxv1alpha1.GitSync) string {
	return obj.Name + "-helmflux-inventory"
}

// Load reads the inventory of obj's last apply, from status or its
// ConfigMap; nil when there is none yet.
func Load(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync) ([]Entry, error) {
	inv := obj.Status.Inventory
	if inv == nil {
		return nil, nil
	}
	var lines []string
	if inv.ConfigMapRef != nil {
		cm := &corev1.ConfigMap{}
		err := c.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: inv.ConfigMapRef.Name}, cm)
		if err != nil {
			return nil, fmt.Errorf("read inventory ConfigMap %s: %w", inv.ConfigMapRef.Name, err)
		}
		lines = strings.Split(strings.TrimSpace(cm.Data[ConfigMapKey]), "\n")
	} else {
		for _, e := range inv.Entries {
			lines = append(lines, e.ID+" "+e.Version)
		}
	}
	out := make([]Entry, 0, len(lines))
	for _, line := range lines {
		if line == "" {
			continue
		}
		idText, version, _ := strings.Cut(line, " ")
		id, err := apply.ParseObjectID(idText)
		if err != nil {
			return nil, fmt.Errorf("read inventory: %w", err)
		}
		out = append(out, Entry{ID: id, Version: version})
	}
	return out, nil
}

// Lists reports whether the inventory of obj's last apply lists the object
// id. It is how the HelmRelease controller and the fluxd API tell that a
// GitSync really applied an object whose helmflux.dev/sync annotation names
// it: anyone who may write the object may write the annotation, while only
// the GitSync writes its inventory.
func Lists(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync, id apply.ObjectID) (bool, error) {
	entries, err := Load(ctx, c, obj)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.ID == id {
			return true, nil
		}
	}
	return false, nil
}
