// Package controlplane pins the source of the Kubernetes control plane used
// by the envtest-based tests: kube-apiserver, kube-controller-manager,
// kube-scheduler, kubectl and etcd. hack/controlplane.sh builds them from this
// module with the Go toolchain alone, so no prebuilt binaries, container
// images or setup-envtest downloads are needed. (kwok, the fake kubelet, is
// pinned in its own module, test/tools/kwok.)
//
// This is deliberately a separate Go module. k8s.io/kubernetes is not meant
// to be imported: it requires its staging modules (k8s.io/api,
// k8s.io/client-go, ...) at v0.0.0 and only resolves with a replace directive
// per staging module, and it drags in hundreds of dependencies (containerd,
// cadvisor, the full etcd server, ...). Keeping it here means none of that
// ever enters the main module's go.mod or go.sum, and the main module can
// pick its k8s.io/* versions independently of the control plane under test.
//
// etcd is built from the go.etcd.io/etcd/server/v3 main package. It cannot be
// built with "go install module@version" because the etcd modules carry
// replace directives, but it builds fine as a dependency of this module. Its
// version is the one Kubernetes itself selects for its etcd client modules.
//
// To move to another Kubernetes release, bump k8s.io/kubernetes, point every
// replace directive in go.mod at the matching v0.x.y staging release, run
// "go mod tidy" and rerun hack/controlplane.sh; the binaries are rebuilt and
// stamped with the new version automatically.
//
// tools.go holds the blank imports (behind the "tools" build tag) that keep
// "go mod tidy" from dropping the requirements.
package controlplane
