package outcome

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Class says what may fix a failed pass, and so when it is tried again.
type Class int

const (
	// Transient failures (the network, a conflict) are retried at once, with
	// controller-runtime's exponential backoff.
	Transient Class = iota
	// Delayed failures are retried once, after a known time (a release lock
	// that expires), and not before.
	Delayed
	// Waiting failures need a change elsewhere (a new commit, a new chart, a
	// ConfigMap): retried at the interval, when such a change may have come.
	Waiting
	// Stalled failures need a change of the object's spec (or of what it
	// names): Stalled=True says so, and they are checked again at the interval.
	Stalled
)

// Error is a failed pass: the Ready reason it sets, its class and, for
// Delayed, when to try again. Its text is the wrapped error's, which must
// never hold a secret.
type Error struct {
	Reason string
	Class  Class
	After  time.Duration
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Retry marks err transient: retried at once with backoff.
func Retry(reason string, err error) error {
	return &Error{Reason: reason, Class: Transient, Err: err}
}

// RetryAfter marks err as fixed by time alone: retried once, after d.
func RetryAfter(reason string, d time.Duration, err error) error {
	return &Error{Reason: reason, Class: Delayed, After: d, Err: err}
}

// WaitForChange marks err as fixed only by a change elsewhere: retried at
// the interval.
func WaitForChange(reason string, err error) error {
	return &Error{Reason: reason, Class: Waiting, Err: err}
}

// Stall marks err as fixed only by a change of the spec or of what it names.
func Stall(reason string, err error) error {
	return &Error{Reason: reason, Class: Stalled, Err: err}
}

// Reclassify keeps err's class and reason when it has them and wraps the
// message of outer around it; otherwise it is a transient failure with
// reason fallback. For a step that adds context ("valuesFrom[2] ...") to an
// error a deeper step already classified.
func Reclassify(outer error, fallback string) error {
	var e *Error
	if errors.As(outer, &e) {
		return &Error{Reason: e.Reason, Class: e.Class, After: e.After, Err: outer}
	}
	return Retry(fallback, outer)
}

// Of returns err's class and reason; an error that was not classified is a
// transient failure with reason fallback.
func Of(err error, fallback string) (Class, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Class, e.Reason
	}
	return Transient, fallback
}

// Observed tells whether a pass that ended with err has dealt with the
// object's generation: on success, and on failures that retrying the same
// generation cannot fix (Waiting, Stalled). observedGeneration moves only then.
func Observed(err error) bool {
	if err == nil {
		return true
	}
	c, _ := Of(err, "")
	return c == Waiting || c == Stalled
}

// Result maps the outcome of a pass to what controller-runtime is told:
//
//   - success: the next pass after the interval (jittered);
//   - Transient: the error, so the request is retried with backoff;
//   - Delayed: one pass after its time (jittered) and no error, because
//     controller-runtime ignores RequeueAfter beside an error and would
//     retry in milliseconds, then minutes late;
//   - Waiting and Stalled: the next pass after the interval and no error.
//
// Stalled is not a terminal error (reconcile.TerminalError) although only a
// change helps: some of what stalls is not in the spec (a git chart's tree,
// a Secret's content), and the documented promise is a check every
// interval, which costs one pass.
func Result(err error, interval time.Duration) (ctrl.Result, error) {
	if err == nil {
		return ctrl.Result{RequeueAfter: Jitter(interval)}, nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return ctrl.Result{}, err
	}
	switch e.Class {
	case Delayed:
		return ctrl.Result{RequeueAfter: Jitter(max(e.After, time.Second))}, nil
	case Waiting, Stalled:
		return ctrl.Result{RequeueAfter: Jitter(interval)}, nil
	}
	return ctrl.Result{}, err
}

// Jitter returns d plus up to a tenth of d, so that many objects with the
// same interval do not all come due at once.
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d/10)+1)) // #nosec G404 -- spreading load, not a secret
}

// LogWaiting logs a failure that Result hands controller-runtime as a later
// pass rather than an error (Delayed, Waiting, Stalled), so that it is
// logged by the controller, as an error would be by controller-runtime.
func LogWaiting(ctx context.Context, err error) {
	var e *Error
	if errors.As(err, &e) && e.Class != Transient {
		ctrl.LoggerFrom(ctx).Info("Reconciliation waits", "reason", e.Reason, "error", err.Error())
	}
}
