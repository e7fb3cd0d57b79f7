// Package fluxctl pins the source of fluxctl v1.25.4, the archived Flux v1
// command-line tool, which the compatibility tests run unmodified against
// helmflux's fluxd API. hack/fluxctl.sh builds
// github.com/fluxcd/flux/cmd/fluxctl from this module into ./bin/fluxctl.
//
// It is a separate Go module, like test/tools/controlplane, for two reasons.
// "go install github.com/fluxcd/flux/cmd/fluxctl@v1.25.4" refuses to run
// because github.com/fluxcd/flux's go.mod has replace directives, which only a
// main module may apply; here they are mirrored in go.mod. And fluxctl brings
// k8s.io/* v0.21 with the rest of Flux v1's dependencies, which must never
// enter the main module's go.mod.
//
// The nested module github.com/fluxcd/flux/pkg/install (replaced by a path
// in flux's own go.mod) is not served by the Go module proxy. Only the
// offline "fluxctl install" command uses it, so install-stub/ provides the
// same TemplateParameters type and FillInTemplates signature and returns an
// error saying that helmflux does not support fluxctl install. Every command
// that talks to an operator is fluxctl's own code.
//
// fluxctl reports the version set with -ldflags "-X main.version=...", as
// flux's release build does; hack/fluxctl.sh sets it to the pinned version
// without its "v" (1.25.4), which is what the released binary prints.
//
// To move to another flux release, bump github.com/fluxcd/flux in go.mod,
// mirror the replace directives of that release's go.mod, check the stub
// against that release's cmd/fluxctl/install_cmd.go, run "go mod tidy" here
// and rerun hack/fluxctl.sh.
//
// tools.go holds the blank import (behind the "tools" build tag) that keeps
// "go mod tidy" from dropping the requirement.
package fluxctl
