package testenv

import (
	"embed"
	"fmt"
	"net"
	"strconv"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// kwokCRDs are kwok v0.8.0's PortForward and ClusterPortForward CRDs
// (kustomize/crd/bases of sigs.k8s.io/kwok@v0.8.0, unchanged), which kwok
// watches with --enable-crds.
//
//go:embed kwokcrds/*.yaml
var kwokCRDs embed.FS

// portForwardArgs installs kwok's port-forward CRDs and returns the kwok
// flags that serve the kubelet API on a free loopback port the nodes
// advertise (see WorkloadOptions.PortForward).
func portForwardArgs(env *envtest.Environment) ([]string, error) {
	entries, err := kwokCRDs.ReadDir("kwokcrds")
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, e := range entries {
		b, err := kwokCRDs.ReadFile("kwokcrds/" + e.Name())
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			return nil, fmt.Errorf("kwok CRD %s: %w", e.Name(), err)
		}
		crds = append(crds, crd)
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{CRDs: crds}); err != nil {
		return nil, fmt.Errorf("install kwok's port-forward CRDs: %w", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("free port %q: %w", port, err)
	}
	return []string{
		// The node-initialize stage writes NodeIP as the nodes' InternalIP
		// and NodePort as their kubelet port; the API server dials that.
		"--node-ip=127.0.0.1",
		"--node-port=" + port,
		"--server-address=" + addr,
		"--enable-crds=PortForward,ClusterPortForward",
	}, nil
}
