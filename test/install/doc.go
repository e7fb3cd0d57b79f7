// Package install checks the two ways the README installs the operator,
// `kubectl apply -k config/default` and the Helm chart charts/helmflux: that
// they run the same operator (flags, environment, probes, ports, mounts,
// permissions, CRDs), and that the operator starts as they run it, on a root
// filesystem it cannot write, with only its mounted volumes writable.
//
// The two are written by hand in two template languages, so they drift apart
// unless something compares them; and an install that lints and applies can
// still give an operator that never becomes ready, which only running it
// shows. The operator runs as its own process (built from ./operator) against
// the local control plane; run the suite with
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test ./test/install/ -count=1 -v
package install
