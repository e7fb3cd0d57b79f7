package outcome

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PatchStatus writes the difference between base and obj to obj's status
// subresource as a JSON merge patch, and nothing at all when there is none:
// an unchanged pass costs no write. onChange, when given, runs only when
// there is a difference, before the write (to stamp a time that must move
// only with a change). An object deleted meanwhile is not an error. It
// reports whether it wrote.
func PatchStatus(ctx context.Context, c client.Client, base, obj client.Object, onChange ...func()) (bool, error) {
	patch := client.MergeFrom(base)
	data, err := patch.Data(obj)
	if err != nil {
		return false, fmt.Errorf("compute the status patch: %w", err)
	}
	if string(data) == "{}" {
		return false, nil
	}
	if len(onChange) > 0 {
		for _, f := range onChange {
			f()
		}
		if data, err = patch.Data(obj); err != nil {
			return false, fmt.Errorf("compute the status patch: %w", err)
		}
	}
	if err := c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, data)); err != nil {
		return false, client.IgnoreNotFound(fmt.Errorf("patch status: %w", err))
	}
	return true, nil
}
