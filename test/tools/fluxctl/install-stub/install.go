// Package install stands in for github.com/fluxcd/flux/pkg/install when
// fluxctl is built for helmflux's tests (test/tools/fluxctl). The real package
// is a nested module of the flux repository that the Go module proxy does not
// serve; fluxctl uses it only for "fluxctl install", which prints manifests
// that install fluxd. helmflux is installed with its own Helm chart instead,
// so this stub keeps the real API and refuses.
package install

import "errors"

// TemplateParameters has the fields of the real type that fluxctl v1.25.4's
// install command sets from its flags.
type TemplateParameters struct {
	GitURL                  string
	GitBranch               string
	GitPaths                []string
	GitLabel                string
	GitUser                 string
	GitEmail                string
	GitReadOnly             bool
	RegistryDisableScanning bool
	Namespace               string
	ManifestGeneration      bool
	AdditionalFluxArgs      []string
	AddSecurityContext      bool
}

// ErrNotSupported is what FillInTemplates returns.
var ErrNotSupported = errors.New("helmflux does not support fluxctl install: install helmflux with its Helm chart (charts/helmflux)")

// FillInTemplates has the real signature and always fails with
// ErrNotSupported.
func FillInTemplates(params TemplateParameters) (map[string][]byte, error) {
	return nil, ErrNotSupported
}
