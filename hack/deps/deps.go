//go:build tools

// Package deps pins the core libraries DESIGN.md chose for pkg/registry until
// that package imports them, so that `go mod tidy` keeps the chosen versions in
// go.mod. Delete an import here once real code uses it.
package deps

import (
	_ "github.com/google/go-containerregistry/pkg/registry"
)
