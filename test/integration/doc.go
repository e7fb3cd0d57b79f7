// Package integration holds tests that run against the real local control plane
// (kube-apiserver and etcd built into ./bin by `make controlplane`), through
// controller-runtime's envtest.
package integration
