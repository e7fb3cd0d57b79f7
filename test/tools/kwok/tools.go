//go:build tools

// Blank import of kwok's main package, so that "go mod tidy" keeps its
// module. Never compiled: main packages cannot be imported.

package kwok

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
