package outcome

import (
	"context"
	"errors"
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
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

// Object is a helmflux object with status conditions.
type Object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// copier is a pointer to an API type that deep-copies into its kind.
type copier[T any] interface {
	*T
	client.Object
	DeepCopyInto(*T)
}

// Checkpoint writes obj's status at once (progress a person should see
// while a long step runs) and makes it the new base of later patches.
func Checkpoint[T any, P copier[T]](ctx context.Context, c client.Client, base, obj P) error {
	if _, err := PatchStatus(ctx, c, base, obj); err != nil {
		return err
	}
	obj.DeepCopyInto(base)
	return nil
}

// Finish writes the outcome of a pass: summarize sets the conditions (Ready
// here and nowhere else) from err, report records the events given Ready
// before and after, and the status is patched. It returns err for Result,
// or a transient error (reason fallback) when the status could not be
// written, so the pass runs again.
func Finish(ctx context.Context, c client.Client, base, obj Object, err error, fallback string,
	summarize func(), report func(before, after *metav1.Condition)) error {
	before := apimeta.FindStatusCondition(base.GetConditions(), meta.ReadyCondition)
	summarize()
	report(before, apimeta.FindStatusCondition(obj.GetConditions(), meta.ReadyCondition))
	if _, perr := PatchStatus(ctx, c, base, obj); perr != nil {
		return Retry(fallback, errors.Join(err, perr))
	}
	LogWaiting(ctx, err)
	return err
}

// Begin opens a pass: it adds finalizer when missing (a patch whose response
// replaces obj, status included, so base becomes that response) and only then
// records a reconcile.fluxcd.io/requestedAt token in lastHandled, a field of
// obj's status. Recording it before the patch lost it, and the request was
// acted on twice. It reports whether the request was new.
func Begin[T any, P copier[T]](ctx context.Context, c client.Client, base, obj P, finalizer string, lastHandled *string) (bool, error) {
	if controllerutil.AddFinalizer(obj, finalizer) {
		if err := c.Patch(ctx, obj, client.MergeFrom(base)); err != nil {
			return false, fmt.Errorf("add finalizer: %w", err)
		}
		obj.DeepCopyInto(base)
	}
	return HandleRequest(obj.GetAnnotations(), lastHandled), nil
}
