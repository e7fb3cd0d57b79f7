// Package testenv starts the local control plane (etcd and kube-apiserver built
// into ./bin by `make controlplane`) with helmflux's CRDs, for the tests,
// benchmarks and demo of every package; StartWorkloads adds what makes
// workloads roll out (kube-controller-manager, kube-scheduler, kwok). It
// lives in internal/ so that nothing outside the module depends on it.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/helmflux/helmflux/operator/controllers"
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
	if err := checkBinaries(assets, "kube-apiserver", "etcd", "kubectl"); err != nil {
		return nil, err
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}, nil
}

// ErrMissingBinary is returned (wrapped) when a control plane binary is not
// built, so that a test can skip rather than fail.
var ErrMissingBinary = errors.New("control plane binary missing")

// checkBinaries reports the first of names that is not in the assets directory.
func checkBinaries(assets string, names ...string) error {
	for _, b := range names {
		// #nosec G703 -- the developer's own control plane directory
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return fmt.Errorf("%w: %s in %s: run `make controlplane` (or `make test`)", ErrMissingBinary, b, assets)
		}
	}
	return nil
}

// Scheme returns the operator's scheme: the Kubernetes types and helmflux's APIs.
func Scheme() *runtime.Scheme { return controllers.NewScheme() }

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
