package outcome

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestResult(t *testing.T) {
	const interval = time.Minute
	boom := errors.New("boom")
	tests := []struct {
		name      string
		err       error
		wantAfter [2]time.Duration // RequeueAfter within [min, max]
		wantErr   bool
	}{
		{name: "success waits the interval", wantAfter: [2]time.Duration{interval, interval * 11 / 10}},
		{name: "an unclassified error is retried with backoff", err: boom, wantErr: true},
		{name: "a transient error is retried with backoff", err: Retry("FetchFailed", boom), wantErr: true},
		// The defect this package fixed: a lock that expires was returned
		// beside an error, so controller-runtime dropped RequeueAfter.
		{name: "a delayed error comes back once, after its time, without an error",
			err: RetryAfter("ReleaseLocked", 10*time.Minute, boom), wantAfter: [2]time.Duration{10 * time.Minute, 11 * time.Minute}},
		{name: "a delayed error wrapped by a step keeps its time",
			err: fmt.Errorf("step: %w", RetryAfter("ReleaseLocked", 30*time.Second, boom)), wantAfter: [2]time.Duration{30 * time.Second, 33 * time.Second}},
		{name: "waiting for a change comes back at the interval", err: WaitForChange("BuildFailed", boom),
			wantAfter: [2]time.Duration{interval, interval * 11 / 10}},
		{name: "stalled is checked again at the interval", err: Stall("InvalidSpec", boom),
			wantAfter: [2]time.Duration{interval, interval * 11 / 10}},
		{name: "a join led by a transient error is retried", err: Retry("X", errors.Join(WaitForChange("Y", boom), boom)), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Result(tt.err, interval)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && res.RequeueAfter != 0 {
				t.Errorf("RequeueAfter %s beside an error is ignored by controller-runtime", res.RequeueAfter)
			}
			if errors.Is(err, reconcile.TerminalError(nil)) {
				t.Error("a terminal error: the documented check every interval would stop")
			}
			if !tt.wantErr && (res.RequeueAfter < tt.wantAfter[0] || res.RequeueAfter > tt.wantAfter[1]) {
				t.Errorf("RequeueAfter = %s, want within %v", res.RequeueAfter, tt.wantAfter)
			}
		})
	}
}

func TestObservedAndReclassify(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, true}, {boom, false}, {Retry("R", boom), false}, {RetryAfter("R", time.Second, boom), false},
		{WaitForChange("W", boom), true}, {Stall("S", boom), true},
	} {
		if got := Observed(tt.err); got != tt.want {
			t.Errorf("Observed(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	err := Reclassify(fmt.Errorf("valuesFrom[1]: %w", Stall("InvalidSpec", boom)), "ValuesFailed")
	if c, r := Of(err, ""); c != Stalled || r != "InvalidSpec" || err.Error() != "valuesFrom[1]: boom" {
		t.Errorf("Reclassify kept %v %q %q", c, r, err)
	}
	if c, r := Of(Reclassify(boom, "ValuesFailed"), ""); c != Transient || r != "ValuesFailed" {
		t.Errorf("Reclassify of a plain error = %v %q", c, r)
	}
}

func TestConditions(t *testing.T) {
	var list []metav1.Condition
	c := Conditions{List: &list, Generation: 7}
	c.Reconciling("Progressing", Processing(7))
	c.Failed(Stall("InvalidSpec", errors.New("bad path")), "ReconcileFailed")
	if apimeta.FindStatusCondition(list, meta.ReconcilingCondition) != nil {
		t.Error("Reconciling left after a failure")
	}
	stalled := apimeta.FindStatusCondition(list, meta.StalledCondition)
	ready := apimeta.FindStatusCondition(list, meta.ReadyCondition)
	if stalled == nil || stalled.Reason != "InvalidSpec" || ready.Status != metav1.ConditionFalse || ready.ObservedGeneration != 7 {
		t.Fatalf("conditions after a stall: %+v", list)
	}
	c.Failed(errors.New("connection refused"), "FetchFailed")
	if apimeta.FindStatusCondition(list, meta.StalledCondition) != nil || c.Get(meta.ReadyCondition).Reason != "FetchFailed" {
		t.Errorf("conditions after a transient failure: %+v", list)
	}
	c.Done(metav1.ConditionTrue, "Applied", "ok")
	if !apimeta.IsStatusConditionTrue(list, meta.ReadyCondition) || len(list) != 1 {
		t.Errorf("conditions after success: %+v", list)
	}

	long := strings.Repeat("é", MaxMessageLength) // two bytes each
	c.Set("Big", metav1.ConditionFalse, "R", long)
	msg := c.Get("Big").Message
	if len(msg) > MaxMessageLength || !utf8.ValidString(msg) || !strings.HasSuffix(msg, truncated) {
		t.Errorf("a long message was kept at %d bytes (valid UTF-8 %v)", len(msg), utf8.ValidString(msg))
	}
	if got := Trim("short", 10); got != "short" {
		t.Errorf("Trim changed a short message: %q", got)
	}
}

func TestHandleRequest(t *testing.T) {
	var last string
	ann := map[string]string{meta.ReconcileRequestAnnotation: "t1"}
	if !HandleRequest(ann, &last) || last != "t1" {
		t.Fatalf("a new token was not handled: %q", last)
	}
	if HandleRequest(ann, &last) {
		t.Error("a handled token asked again")
	}
	if HandleRequest(nil, &last) || last != "t1" {
		t.Error("no annotation changed the handled token")
	}
}
