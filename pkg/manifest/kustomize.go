package manifest

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// kustomizeMu serialises kustomize builds. Kustomize keeps process-wide state
// (the OpenAPI schema a kustomization may replace, and maps that race under
// concurrent builds, kubernetes-sigs/kustomize#3659); Flux's
// kustomize-controller serialises builds for the same reason.
var kustomizeMu sync.Mutex

// build runs kustomize on the kustomization directory real (rel in messages)
// and adds its output objects, with Source rel and no line.
func (l *loader) build(rel, real string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	fsys := &confinedFS{l: l}
	docs, err := runKustomize(fsys, real)
	if fsys.refusal != nil {
		// A refusal explains a failure better than kustomize's wrapping of
		// it, and fails the build even when kustomize shrugged it off.
		return fileErr(rel, 0, fmt.Errorf("kustomize build: %w", fsys.refusal))
	}
	if err != nil {
		return fileErr(rel, 0, fmt.Errorf("kustomize build: %w", l.relativize(err)))
	}
	for _, j := range docs {
		objs, err := objectsFromJSON(j)
		if err != nil {
			return fileErr(rel, 0, fmt.Errorf("kustomize output: %w", err))
		}
		for _, o := range objs {
			if err := l.add(rel, 0, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// runKustomize builds dir with the settings that make kustomize safe for
// untrusted content, and returns each output object as JSON:
//   - the file system is fsys, which refuses paths outside the checkout,
//     refuses remote references before kustomize acts on them, bounds reads
//     and never writes;
//   - LoadRestrictionsRootOnly: files (patches, generator sources, ...) must
//     sit below the kustomization that names them; other kustomizations
//     (../base) may be anywhere in the checkout;
//   - builtin plugins only, so no exec plugins, Go plugins or KRM functions
//     in containers, and Helm chart inflation off;
//   - no reordering, so the output follows the kustomization's order.
func runKustomize(fsys filesys.FileSystem, dir string) (docs [][]byte, err error) {
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	// A kustomization's openapi field replaces the process-wide schema;
	// put the builtin one back so the next build (or other users of kyaml
	// in this process) does not inherit it.
	defer openapi.ResetOpenAPI()
	// Kustomize has panicked on odd input before; a repository must not be
	// able to crash the operator.
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("kustomize panicked: %v", r)
		}
	}()
	k := krusty.MakeKustomizer(&krusty.Options{
		Reorder:          krusty.ReorderOptionNone,
		LoadRestrictions: types.LoadRestrictionsRootOnly,
		PluginConfig:     types.DisabledPluginConfig(),
	})
	m, err := k.Run(fsys, dir)
	if err != nil {
		return nil, err
	}
	for _, r := range m.Resources() {
		j, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.CurId(), err)
		}
		docs = append(docs, j)
	}
	return docs, nil
}

// relativize rewrites the absolute checkout path out of an error message
// while keeping the error chain.
func (l *loader) relativize(err error) error {
	msg := err.Error()
	clean := strings.ReplaceAll(msg, l.root+"/", "")
	clean = strings.ReplaceAll(clean, l.root, ".")
	if clean == msg {
		return err
	}
	return &relError{msg: clean, err: err}
}

type relError struct {
	msg string
	err error
}

func (e *relError) Error() string { return e.msg }
func (e *relError) Unwrap() error { return e.err }

// errWrite is what every writing call of confinedFS returns: a build only
// reads, and the checkout belongs to pkg/git.
var errWrite = fmt.Errorf("kustomize may not write to the checkout: %w", ErrNotAllowed)

// compile-time check that confinedFS is a kustomize file system.
var _ filesys.FileSystem = (*confinedFS)(nil)

// isRefusal tells whether err is one of the policy errors confinedFS returns.
func isRefusal(err error) bool {
	return errors.Is(err, ErrOutsideCheckout) || errors.Is(err, ErrSymlinkLoop) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrRemoteReference) || errors.Is(err, ErrNotAllowed)
}
