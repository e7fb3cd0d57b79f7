#!/usr/bin/env bash
# Build the Kubernetes control plane used by envtest (kube-apiserver,
# kube-controller-manager, kubectl, etcd) from source, using only the Go
# toolchain and the Go module proxy. Versions are pinned in
# test/tools/controlplane/go.mod (see doc.go there).
#
# Usage: hack/controlplane.sh [BIN_DIR]     (default: <repo root>/bin)
#
# Binaries are rebuilt only when one is missing or the pinned versions
# changed (tracked in BIN_DIR/.controlplane-version). Point envtest at the
# result with KUBEBUILDER_ASSETS=BIN_DIR.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${REPO_ROOT}/test/tools/controlplane"
BIN_DIR="${1:-${REPO_ROOT}/bin}"
mkdir -p "${BIN_DIR}"
BIN_DIR="$(cd "${BIN_DIR}" && pwd)"
STAMP="${BIN_DIR}/.controlplane-version"

cd "${TOOLS_DIR}"
# Resolve against the tools module only, never a workspace or vendor dir.
export GOWORK=off

modver() { go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"; }

K8S_VERSION="$(modver k8s.io/kubernetes)"           # e.g. v1.36.3
ETCD_VERSION="$(modver go.etcd.io/etcd/server/v3)"  # e.g. v3.6.8
ETCD_CLIENT_VERSION="$(modver go.etcd.io/etcd/client/v3)"
if [[ "${ETCD_VERSION}" != "${ETCD_CLIENT_VERSION}" ]]; then
  echo "controlplane: etcd server ${ETCD_VERSION} != etcd client ${ETCD_CLIENT_VERSION} pinned by k8s.io/kubernetes ${K8S_VERSION}; fix ${TOOLS_DIR}/go.mod" >&2
  exit 1
fi

BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)
WANT="k8s.io/kubernetes ${K8S_VERSION}
go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"

up_to_date() {
  [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${BIN_DIR}/${b}" ]] || return 1; done
}
if up_to_date; then
  echo "controlplane: ${K8S_VERSION} / etcd ${ETCD_VERSION} up to date in ${BIN_DIR}"
  exit 0
fi

# Binaries built before for the same pins are kept per version outside the
# checkout (like setup-envtest's assets), so a fresh clone on this machine
# copies them in seconds instead of relinking for minutes.
# HELMFLUX_CACHE_DIR moves it; an empty value turns it off.
CACHE_ROOT="${HELMFLUX_CACHE_DIR-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/helmflux}"
CACHE_DIR=""
if [[ -n "${CACHE_ROOT}" ]]; then
  CACHE_DIR="${CACHE_ROOT}/controlplane/${K8S_VERSION}-etcd-${ETCD_VERSION}"
fi
cached() {
  [[ -n "${CACHE_DIR}" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${CACHE_DIR}/${b}" ]] || return 1; done
}
if cached; then
  for b in "${BINARIES[@]}"; do
    cp -f "${CACHE_DIR}/${b}" "${BIN_DIR}/.${b}.tmp"
    mv -f "${BIN_DIR}/.${b}.tmp" "${BIN_DIR}/${b}"
  done
  printf '%s\n' "${WANT}" > "${STAMP}"
  echo "controlplane: ${K8S_VERSION} / etcd ${ETCD_VERSION} copied from ${CACHE_DIR}"
  exit 0
fi

# Version stamping, as the Kubernetes release build does (hack/lib/version.sh).
# Module zips carry no git metadata, so gitCommit stays empty; the build date
# is the release's publication time, which keeps the build reproducible.
if [[ ! "${K8S_VERSION}" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
  echo "controlplane: cannot parse k8s.io/kubernetes version ${K8S_VERSION}" >&2
  exit 1
fi
GIT_MAJOR="${BASH_REMATCH[1]}"
GIT_MINOR="${BASH_REMATCH[2]}"
BUILD_DATE="$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"

LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
  LDFLAGS+=" -X ${pkg}.gitMajor=${GIT_MAJOR}"
  LDFLAGS+=" -X ${pkg}.gitMinor=${GIT_MINOR}"
  LDFLAGS+=" -X ${pkg}.gitCommit="
  LDFLAGS+=" -X ${pkg}.gitTreeState=clean"
  LDFLAGS+=" -X ${pkg}.buildDate=${BUILD_DATE}"
done
ETCD_LDFLAGS="-s -w"

declare -A PKGS=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [etcd]=go.etcd.io/etcd/server/v3
)

# Static binaries, like the upstream release builds.
export CGO_ENABLED=0
rm -f "${STAMP}"
for b in "${BINARIES[@]}"; do
  flags="${LDFLAGS}"
  version="${K8S_VERSION}"
  if [[ "${b}" == etcd ]]; then flags="${ETCD_LDFLAGS}"; version="${ETCD_VERSION}"; fi
  start=${SECONDS}
  # Build next to the target and rename, so an interrupted build never
  # leaves a truncated binary behind.
  go build -trimpath -buildvcs=false -ldflags "${flags}" -o "${BIN_DIR}/.${b}.tmp" "${PKGS[${b}]}"
  mv -f "${BIN_DIR}/.${b}.tmp" "${BIN_DIR}/${b}"
  echo "controlplane: built ${b} ${version} ($((SECONDS - start))s)"
done
printf '%s\n' "${WANT}" > "${STAMP}"
if [[ -n "${CACHE_DIR}" ]] && mkdir -p "${CACHE_DIR}" 2>/dev/null; then
  for b in "${BINARIES[@]}"; do
    cp -f "${BIN_DIR}/${b}" "${CACHE_DIR}/.${b}.tmp" && mv -f "${CACHE_DIR}/.${b}.tmp" "${CACHE_DIR}/${b}"
  done
fi
