#!/usr/bin/env bash
# Build the Kubernetes control plane used by envtest (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, etcd) and kwok, the fake
# kubelet, from source, using only the Go toolchain and the Go module proxy.
# Versions are pinned in test/tools/controlplane/go.mod and
# test/tools/kwok/go.mod (see doc.go in each).
#
# Usage: hack/controlplane.sh [BIN_DIR]     (default: <repo root>/bin)
#
# A binary is rebuilt only when it is missing or its pinned version changed
# (BIN_DIR/.controlplane-version records the versions in BIN_DIR). Point
# envtest at the result with KUBEBUILDER_ASSETS=BIN_DIR.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${REPO_ROOT}/test/tools/controlplane"
KWOK_TOOLS_DIR="${REPO_ROOT}/test/tools/kwok"
BIN_DIR="${1:-${REPO_ROOT}/bin}"
mkdir -p "${BIN_DIR}"
BIN_DIR="$(cd "${BIN_DIR}" && pwd)"
STAMP="${BIN_DIR}/.controlplane-version"

cd "${TOOLS_DIR}"
# Resolve against the tools modules only, never a workspace or vendor dir.
export GOWORK=off

modver() { go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"; }

K8S_VERSION="$(modver k8s.io/kubernetes)"           # e.g. v1.36.3
ETCD_VERSION="$(modver go.etcd.io/etcd/server/v3)"  # e.g. v3.6.8
ETCD_CLIENT_VERSION="$(modver go.etcd.io/etcd/client/v3)"
if [[ "${ETCD_VERSION}" != "${ETCD_CLIENT_VERSION}" ]]; then
  echo "controlplane: etcd server ${ETCD_VERSION} != etcd client ${ETCD_CLIENT_VERSION} pinned by k8s.io/kubernetes ${K8S_VERSION}; fix ${TOOLS_DIR}/go.mod" >&2
  exit 1
fi
KWOK_VERSION="$(cd "${KWOK_TOOLS_DIR}" && modver sigs.k8s.io/kwok)"  # e.g. v0.8.0

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)
K8S_PIN="k8s.io/kubernetes ${K8S_VERSION}"
ETCD_PIN="go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
KWOK_PIN="sigs.k8s.io/kwok ${KWOK_VERSION}"
WANT="${K8S_PIN}
${ETCD_PIN}
${KWOK_PIN}"
SUMMARY="${K8S_VERSION} / etcd ${ETCD_VERSION} / kwok ${KWOK_VERSION}"

up_to_date() {
  [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${BIN_DIR}/${b}" ]] || return 1; done
}
if up_to_date; then
  echo "controlplane: ${SUMMARY} up to date in ${BIN_DIR}"
  exit 0
fi

# pin_of BINARY: the stamp line of the source the binary is built from.
pin_of() {
  case "$1" in
    etcd) echo "${ETCD_PIN}" ;;
    kwok) echo "${KWOK_PIN}" ;;
    *) echo "${K8S_PIN}" ;;
  esac
}

# Binaries built before for the same pins are kept per version outside the
# checkout (like setup-envtest's assets), so a fresh clone on this machine
# copies them in seconds instead of relinking for minutes. kwok has its own
# directory per kwok version, so bumping one pin never invalidates the other.
# HELMFLUX_CACHE_DIR moves it; an empty value turns it off.
CACHE_ROOT="${HELMFLUX_CACHE_DIR-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/helmflux}"
cache_of() {
  [[ -n "${CACHE_ROOT}" ]] || return 0
  case "$1" in
    kwok) echo "${CACHE_ROOT}/controlplane/kwok-${KWOK_VERSION}" ;;
    *) echo "${CACHE_ROOT}/controlplane/${K8S_VERSION}-etcd-${ETCD_VERSION}" ;;
  esac
}

# A binary already in BIN_DIR is kept when the stamp says it was built from
# the pin wanted now. Before anything in BIN_DIR changes, the stamp is cut
# down to the pins that stay, so an interrupted run never leaves a line that
# claims a binary it replaced half-way.
OLD_STAMP=""
if [[ -f "${STAMP}" ]]; then OLD_STAMP="$(cat "${STAMP}")"; fi
KEEP_PINS=""
for pin in "${K8S_PIN}" "${ETCD_PIN}" "${KWOK_PIN}"; do
  if grep -qxF -- "${pin}" <<<"${OLD_STAMP}"; then KEEP_PINS+="${pin}"$'\n'; fi
done
printf '%s' "${KEEP_PINS}" > "${STAMP}"

TO_BUILD=()
for b in "${BINARIES[@]}"; do
  if [[ -x "${BIN_DIR}/${b}" ]] && grep -qxF -- "$(pin_of "${b}")" <<<"${KEEP_PINS}"; then
    continue
  fi
  cache="$(cache_of "${b}")"
  if [[ -n "${cache}" && -x "${cache}/${b}" ]]; then
    cp -f "${cache}/${b}" "${BIN_DIR}/.${b}.tmp"
    mv -f "${BIN_DIR}/.${b}.tmp" "${BIN_DIR}/${b}"
    echo "controlplane: copied ${b} from ${cache}"
    continue
  fi
  TO_BUILD+=("${b}")
done

if (( ${#TO_BUILD[@]} > 0 )); then
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
  # etcd and kwok carry their versions in their sources.
  PLAIN_LDFLAGS="-s -w"

  declare -A PKGS=(
    [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
    [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
    [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
    [kubectl]=k8s.io/kubernetes/cmd/kubectl
    [etcd]=go.etcd.io/etcd/server/v3
    [kwok]=sigs.k8s.io/kwok/cmd/kwok
  )

  # Static binaries, like the upstream release builds.
  export CGO_ENABLED=0
  for b in "${TO_BUILD[@]}"; do
    flags="${LDFLAGS}"
    version="${K8S_VERSION}"
    module_dir="${TOOLS_DIR}"
    case "${b}" in
      etcd) flags="${PLAIN_LDFLAGS}"; version="${ETCD_VERSION}" ;;
      kwok) flags="${PLAIN_LDFLAGS}"; version="${KWOK_VERSION}"; module_dir="${KWOK_TOOLS_DIR}" ;;
    esac
    start=${SECONDS}
    # Build next to the target and rename, so an interrupted build never
    # leaves a truncated binary behind.
    go -C "${module_dir}" build -trimpath -buildvcs=false -ldflags "${flags}" -o "${BIN_DIR}/.${b}.tmp" "${PKGS[${b}]}"
    mv -f "${BIN_DIR}/.${b}.tmp" "${BIN_DIR}/${b}"
    echo "controlplane: built ${b} ${version} ($((SECONDS - start))s)"
  done
fi
printf '%s\n' "${WANT}" > "${STAMP}"

# Keep a copy of every binary its cache lacks (built now, or built before the
# cache existed).
for b in "${BINARIES[@]}"; do
  cache="$(cache_of "${b}")"
  [[ -n "${cache}" && ! -x "${cache}/${b}" ]] || continue
  if mkdir -p "${cache}" 2>/dev/null; then
    cp -f "${BIN_DIR}/${b}" "${cache}/.${b}.tmp" && mv -f "${cache}/.${b}.tmp" "${cache}/${b}" || true
  fi
done
echo "controlplane: ${SUMMARY} ready in ${BIN_DIR}"
