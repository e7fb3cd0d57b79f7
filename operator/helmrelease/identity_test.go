package helmrelease

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
)

func TestServiceAccountOf(t *testing.T) {
	for _, tc := range []struct{ own, def, want string }{
		{"", "", ""},
		{"", "tenant", "tenant"},
		{"own", "tenant", "own"},
		{"own", "", "own"},
	} {
		hr := &helmv1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "a"}, Spec: helmv1.HelmReleaseSpec{ServiceAccountName: tc.own}}
		if got := serviceAccountOf(hr, tc.def); got != tc.want {
			t.Errorf("serviceAccountOf(own %q, default %q) = %q, want %q", tc.own, tc.def, got, tc.want)
		}
	}
}

func TestRefused(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "x", errors.New("nope"))
	lookup := errors.New(`error calling lookup: secrets "canary" is forbidden: User "system:serviceaccount:a:sa" cannot get resource "secrets"`)
	tenant := &actor{serviceAccount: "a/sa"}
	for _, tc := range []struct {
		name       string
		a          *actor
		err        error
		wantReason string
		wantPrefix bool
	}{
		{"forbidden to a service account", tenant, fmt.Errorf("install: %w", forbidden), helmv1.ForbiddenReason, true},
		{"a lookup's refusal, as text", tenant, lookup, helmv1.ForbiddenReason, true},
		{"another error keeps its reason", tenant, errors.New("timed out"), helmv1.InstallFailedReason, false},
		{"forbidden to the operator keeps its reason", &actor{}, forbidden, helmv1.InstallFailedReason, false},
	} {
		reason, err := tc.a.refused(helmv1.InstallFailedReason, tc.err)
		if again, err2 := tc.a.refused(reason, err); again != reason || err2 != err {
			t.Errorf("%s: refused twice: %s %q", tc.name, again, err2)
		}
		if reason != tc.wantReason {
			t.Errorf("%s: reason %s, want %s", tc.name, reason, tc.wantReason)
		}
		if want := "refused to service account a/sa: " + tc.err.Error(); tc.wantPrefix != (err.Error() == want) {
			t.Errorf("%s: message %q", tc.name, err)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: the error does not wrap the original", tc.name)
		}
	}
}
