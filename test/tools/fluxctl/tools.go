//go:build tools

// Blank import of fluxctl's main package, so that "go mod tidy" keeps its
// module. Never compiled: main packages cannot be imported.

package fluxctl

import (
	_ "github.com/fluxcd/flux/cmd/fluxctl"
)
