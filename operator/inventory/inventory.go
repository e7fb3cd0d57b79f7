// Package inventory reads a GitSync's inventory — the objects its last
// apply made, kept in status or, when large, in a ConfigMap beside it — for
// the GitSync controller, which writes it, and for the fluxd API, which
// lists the workloads of every GitSync from it.
package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// Digest is the digest of an inventory ConfigMap's entries that
// status.inventory.digest keeps: "sha256:<hex>".
func Digest(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// UntrustedError says an inventory ConfigMap is not used: it is gone, or its
// entries are not those status.inventory.digest names. Anyone who may write
// ConfigMaps in the namespace may write it, while only helmflux writes
// status, so such an inventory lists nothing.
type UntrustedError struct {
	// Name is the ConfigMap's.
	Name string
	// Why says what is wrong with it.
	Why string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("inventory ConfigMap %s %s; its entries are not used", e.Name, e.Why)
}

// Load reads the inventory of obj's last apply, from status or its
// ConfigMap; nil when there is none yet. A ConfigMap that is gone or does
// not match the digest in status is an *UntrustedError, once a fresh read
// of obj confirms the status: c should read GitSyncs uncached, so that a
// status older than the ConfigMap is not taken for a forgery.
func Load(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync) ([]Entry, error) {
	entries, err := load(ctx, c, obj)
	var untrusted *UntrustedError
	if !errors.As(err, &untrusted) {
		return entries, err
	}
	fresh := &helmfluxv1alpha1.GitSync{}
	if ferr := c.Get(ctx, client.ObjectKeyFromObject(obj), fresh); ferr != nil || equality.Semantic.DeepEqual(fresh.Status.Inventory, obj.Status.Inventory) {
		return nil, err
	}
	return load(ctx, c, fresh)
}

func load(ctx context.Context, c client.Reader, obj *helmfluxv1alpha1.GitSync) ([]Entry, error) {
	inv := obj.Status.Inventory
	if inv == nil {
		return nil, nil
	}
	var lines []string
	if inv.ConfigMapRef != nil {
		name := inv.ConfigMapRef.Name
		cm := &corev1.ConfigMap{}
		err := c.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: name}, cm)
		switch {
		case apierrors.IsNotFound(err):
			return nil, &UntrustedError{Name: name, Why: "is gone"}
		case err != nil:
			return nil, fmt.Errorf("read inventory ConfigMap %s: %w", name, err)
		}
		text := cm.Data[ConfigMapKey]
		// An inventory written before status kept digests has none: it is
		// trusted once, and the next apply writes the digest.
		if inv.Digest != "" && Digest(text) != inv.Digest {
			return nil, &UntrustedError{Name: name, Why: "does not match the digest in the GitSync's status: someone other than helmflux changed it"}
		}
		lines = strings.Split(strings.TrimSpace(text), "\n")
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
