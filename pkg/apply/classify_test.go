package apply

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The messages are the API server's own formats (k8s.io/apiserver's webhook
// ToStatusErr and the ValidatingAdmissionPolicy dispatcher).
func TestIsInvalidTellsSchemaErrorsFromAdmissionRefusals(t *testing.T) {
	status := func(code int32, reason metav1.StatusReason, msg string) error {
		return fmt.Errorf("dry-run: %w", &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}})
	}
	gk := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	tests := []struct {
		name    string
		err     error
		invalid bool
	}{
		{name: "schema", invalid: true, err: apierrors.NewInvalid(gk, "web", field.ErrorList{field.Required(field.NewPath("spec", "selector"), "")})},
		{name: "bad request", invalid: true, err: apierrors.NewBadRequest("json: cannot unmarshal string into Go struct field")},
		{name: "webhook denial (400 by default)", err: status(http.StatusBadRequest, "",
			`admission webhook "validate.example.com" denied the request: images must come from the internal registry`)},
		{name: "policy denial (422 by default)", err: status(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'require-limits' with binding 'all' denied request: limits are required`)},
		{name: "quota", err: apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "x", errors.New("exceeded quota"))},
		{name: "nil", err: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isInvalid(tt.err); got != tt.invalid {
				t.Errorf("isInvalid(%v) = %v, want %v", tt.err, got, tt.invalid)
			}
		})
	}
}
