// Package kwok pins the source of kwok (Kubernetes WithOut Kubelet), the
// fake kubelet that internal/testenv.StartWorkloads runs so that Pods on the
// test control plane get scheduled, start, become Ready and finish.
// hack/controlplane.sh builds sigs.k8s.io/kwok/cmd/kwok from this module into
// ./bin next to kube-apiserver and the others.
//
// It is a separate Go module for the same reason as test/tools/controlplane:
// kwok brings its own k8s.io/* versions (and cri-api, e2e-framework, ...),
// which must never enter the main module's go.mod nor be tied to
// k8s.io/kubernetes' replace directives in the control plane module.
//
// To move to another kwok release, bump sigs.k8s.io/kwok in go.mod, run
// "go mod tidy" here and rerun hack/controlplane.sh; the stamp and the cache
// directory carry the kwok version, so the binary is rebuilt.
//
// tools.go holds the blank import (behind the "tools" build tag) that keeps
// "go mod tidy" from dropping the requirement.
package kwok
