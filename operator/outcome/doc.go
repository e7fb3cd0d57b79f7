// Package outcome turns what a reconcile pass ended with into what every
// helmflux controller does next, in one place, the way Flux's runtime helpers
// do: the error classes (retry now, retry after a duration, wait for a
// change, stalled), the controller-runtime result they map to, the Ready,
// Reconciling and Stalled conditions they leave, and a status patch that
// writes nothing when nothing changed.
//
// The controllers only classify their failures (Retry, RetryAfter,
// WaitForChange, Stall) and call Result, Failed/Succeeded and PatchStatus;
// none of them keeps its own copy of these rules.
package outcome
