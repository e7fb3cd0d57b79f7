package gitsync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
	"github.com/helmflux/helmflux/operator/outcome"
	"github.com/helmflux/helmflux/pkg/apply"
	"github.com/helmflux/helmflux/pkg/git"
)

func TestSummarize(t *testing.T) {
	rev := git.Revision{Ref: "main", Hash: strings.Repeat("a", 40)}
	created := &apply.ChangeSet{Results: []apply.Result{{ID: apply.ObjectID{Kind: "ConfigMap", Namespace: "a", Name: "x"}, Action: apply.Created}}}
	unchanged := &apply.ChangeSet{Results: []apply.Result{{ID: apply.ObjectID{Kind: "ConfigMap", Namespace: "a", Name: "x"}, Action: apply.Unchanged}}}
	failed := &apply.ChangeSet{Results: []apply.Result{
		{ID: apply.ObjectID{Kind: "ConfigMap", Namespace: "a", Name: "x"}, Action: apply.Failed, Source: "x.yaml", Err: errors.New("denied by policy")},
		{ID: apply.ObjectID{Kind: "ConfigMap", Namespace: "a", Name: "y"}, Action: apply.Created},
	}}
	appliedMsg := "applied revision " + rev.String() + ": 1 created"

	tests := []struct {
		name         string
		readyBefore  string // message of a True Ready before the pass
		scope        scope
		err          error
		wantReady    string // "Status Reason: message prefix"
		wantStalled  bool
		wantObserved bool
		wantFailures int
	}{
		{name: "applied", scope: scope{revision: rev, changes: created},
			wantReady: "True Applied: " + appliedMsg, wantObserved: true},
		{name: "no-op keeps the message", readyBefore: appliedMsg, scope: scope{revision: rev, changes: unchanged},
			wantReady: "True Applied: " + appliedMsg, wantObserved: true},
		{name: "partial", scope: scope{revision: rev, changes: failed},
			wantReady:    "False PartiallyApplied: applied revision " + rev.String() + " except 1 object(s): ConfigMap/a/x: denied by policy",
			wantObserved: true, wantFailures: 1},
		{name: "prune failure", scope: scope{revision: rev, changes: created, pruned: &apply.ChangeSet{Results: []apply.Result{
			{ID: apply.ObjectID{Kind: "Secret", Namespace: "a", Name: "old"}, Action: apply.Failed, Err: errors.New("delete: forbidden")}}}},
			wantReady:    "False PartiallyApplied: applied revision " + rev.String() + " except 1 object(s): Secret/a/old: delete: forbidden",
			wantObserved: true, wantFailures: 1},
		{name: "forbidden named first", scope: scope{revision: rev, changes: &apply.ChangeSet{Results: []apply.Result{
			{ID: apply.ObjectID{Kind: "ConfigMap", Namespace: "a", Name: "x"}, Action: apply.Failed, Err: errors.New("denied by policy")},
			{ID: apply.ObjectID{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding", Name: "admin"}, Action: apply.Failed,
				Err: fmt.Errorf("read live object: %w", apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
					"admin", errors.New(`User "system:serviceaccount:a:deployer" cannot get resource "clusterrolebindings"`)))},
		}}},
			wantReady: "False Forbidden: applied revision " + rev.String() + " except 2 object(s): ClusterRoleBinding/admin: read live object: " +
				`clusterrolebindings.rbac.authorization.k8s.io "admin" is forbidden: User "system:serviceaccount:a:deployer" cannot get`,
			wantObserved: true, wantFailures: 2},
		{name: "retryable", err: outcome.Retry(helmfluxv1alpha1.FetchFailedReason, errors.New("connection refused")),
			wantReady: "False FetchFailed: connection refused"},
		{name: "bad commit", err: outcome.WaitForChange(helmfluxv1alpha1.BuildFailedReason, errors.New("a.yaml:3: yaml: bad")),
			wantReady: "False BuildFailed: a.yaml:3: yaml: bad", wantObserved: true},
		{name: "stalled", err: outcome.Stall(helmfluxv1alpha1.FetchFailedReason, errors.New("invalid semver range")),
			wantReady: "False FetchFailed: invalid semver range", wantStalled: true, wantObserved: true},
		{name: "verification stopped early", scope: scope{revision: rev, changes: created, unverified: errors.New("commit bbbbbbb is not signed")},
			wantReady: "False VerificationFailed: applied revision " + rev.String() + ", the last verified one", wantObserved: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &helmfluxv1alpha1.GitSync{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			conds(obj).Reconciling(helmfluxv1alpha1.ProgressingReason, "processing")
			if tt.readyBefore != "" {
				apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{Type: meta.ReadyCondition,
					Status: metav1.ConditionTrue, Reason: helmfluxv1alpha1.AppliedReason, Message: tt.readyBefore})
			}
			s := tt.scope
			s.obj = obj
			summarize(obj, &s, tt.err)

			if got := ready(obj); !strings.HasPrefix(got, tt.wantReady) {
				t.Errorf("Ready = %q, want prefix %q", got, tt.wantReady)
			}
			if apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReconcilingCondition) != nil {
				t.Error("Reconciling left behind")
			}
			if got := apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.StalledCondition); got != tt.wantStalled {
				t.Errorf("Stalled = %v, want %v", got, tt.wantStalled)
			}
			if got := obj.Status.ObservedGeneration == 3; got != tt.wantObserved {
				t.Errorf("observedGeneration moved = %v, want %v", got, tt.wantObserved)
			}
			if len(obj.Status.Failures) != tt.wantFailures {
				t.Errorf("failures = %v, want %d", obj.Status.Failures, tt.wantFailures)
			}
		})
	}
}

func ready(obj *helmfluxv1alpha1.GitSync) string {
	c := apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReadyCondition)
	if c == nil {
		return "none"
	}
	return string(c.Status) + " " + c.Reason + ": " + c.Message
}
