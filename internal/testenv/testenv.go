// Package testenv starts the local control plane (etcd and kube-apiserver built
// into ./bin by `make controlplane`) with helmflux's CRDs, for the tests,
// benchmarks and demo of every package. It lives in internal/ so that
// nothing outside the module depends on it.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	helmv1 "github.com/helmflux/helmflux/api/helm/v1"
	helmfluxv1alpha1 "github.com/helmflux/helmflux/api/helmflux/v1alpha1"
)

// RepoRoot finds the repository root: the nearest directory upwards holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// New returns an environment for the control plane in <root>/bin (or
// $KUBEBUILDER_ASSETS) that installs helmflux's CRDs. Start it with Start.
func New() (*envtest.Environment, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin")
		if err := os.Setenv("KUBEBUILDER_ASSETS", assets); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		// #nosec G703 -- the developer's own control plane directory
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("control plane binary %s missing in %s: run `make controlplane` (or `make test`)", b, assets)
		}
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}, nil
}

// Scheme returns a scheme with the Kubernetes types and helmflux's APIs.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(helmv1.AddToScheme(s))
	utilruntime.Must(helmfluxv1alpha1.AddToScheme(s))
	return s
}
