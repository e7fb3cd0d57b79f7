// Package e2e holds helmflux's end-to-end user stories, told on real parts
// only: the local control plane with workloads (kube-apiserver and etcd, plus
// kube-controller-manager, kube-scheduler and kwok's fake nodes, so that
// Deployments roll out and Helm test Pods finish), real Helm chart
// repositories over HTTPS, real git servers (smart HTTP(S) and SSH running the
// git binary), and the operator's controllers wired in the test process
// exactly as operator/main.go wires them.
//
// A story starts from what a user writes (a HelmRelease from the Flux Helm
// Operator's documentation, say) and asserts what the user would see: the
// HelmRelease's status and conditions, the release's objects in the cluster,
// the values that reached them. Nothing in here mocks helmflux's own code.
//
// The suite needs the control plane binaries in ./bin (`make controlplane`)
// and the git binary; run it with
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test ./test/e2e/ -count=1 -v
package e2e
