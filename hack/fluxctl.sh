#!/usr/bin/env bash
# Build fluxctl, the Flux v1 CLI, unmodified from the Go module proxy for the
# fluxd API compatibility tests. The version is pinned in
# test/tools/fluxctl/go.mod (see doc.go there).
#
# Usage: hack/fluxctl.sh [BIN_DIR]     (default: <repo root>/bin)
#
# BIN_DIR/fluxctl is rebuilt only when it is missing or the tools module
# changed (BIN_DIR/.fluxctl-version records what it was built from). A copy is
# kept outside the checkout, as hack/controlplane.sh does, so another clone
# copies it instead of building it.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${REPO_ROOT}/test/tools/fluxctl"
BIN_DIR="${1:-${REPO_ROOT}/bin}"
mkdir -p "${BIN_DIR}"
BIN_DIR="$(cd "${BIN_DIR}" && pwd)"
STAMP="${BIN_DIR}/.fluxctl-version"
BIN="${BIN_DIR}/fluxctl"

cd "${TOOLS_DIR}"
# Resolve against the tools module only, never a workspace or vendor dir.
export GOWORK=off

FLUX_VERSION="$(go list -m -f '{{.Version}}' github.com/fluxcd/flux)"  # e.g. v1.25.4
# The tools module is more than a version pin (mirrored replace directives,
# the install stub), so the stamp and the cache carry a hash of its files.
TOOLS_HASH="$(cat go.mod go.sum install-stub/go.mod install-stub/*.go | sha256sum | cut -c1-12)"
WANT="github.com/fluxcd/flux ${FLUX_VERSION} ${TOOLS_HASH}"

if [[ -x "${BIN}" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" ]]; then
  echo "fluxctl: ${FLUX_VERSION} up to date in ${BIN_DIR}"
  exit 0
fi
rm -f "${STAMP}"

# HELMFLUX_CACHE_DIR moves the cache; an empty value turns it off.
CACHE_ROOT="${HELMFLUX_CACHE_DIR-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/helmflux}"
CACHE=""
if [[ -n "${CACHE_ROOT}" ]]; then CACHE="${CACHE_ROOT}/fluxctl/${FLUX_VERSION}-${TOOLS_HASH}"; fi

if [[ -n "${CACHE}" && -x "${CACHE}/fluxctl" ]]; then
  cp -f "${CACHE}/fluxctl" "${BIN_DIR}/.fluxctl.tmp"
  mv -f "${BIN_DIR}/.fluxctl.tmp" "${BIN}"
  echo "fluxctl: copied fluxctl from ${CACHE}"
else
  # flux's release build sets main.version to the tag without its "v"
  # (docker/image-tag), so "fluxctl version" prints 1.25.4.
  start=${SECONDS}
  # Static, like the upstream release builds; build next to the target and
  # rename, so an interrupted build never leaves a truncated binary behind.
  CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${FLUX_VERSION#v}" \
    -o "${BIN_DIR}/.fluxctl.tmp" github.com/fluxcd/flux/cmd/fluxctl
  mv -f "${BIN_DIR}/.fluxctl.tmp" "${BIN}"
  echo "fluxctl: built fluxctl ${FLUX_VERSION} ($((SECONDS - start))s)"
  if [[ -n "${CACHE}" ]] && mkdir -p "${CACHE}" 2>/dev/null; then
    cp -f "${BIN}" "${CACHE}/.fluxctl.tmp" && mv -f "${CACHE}/.fluxctl.tmp" "${CACHE}/fluxctl" || true
  fi
fi
printf '%s\n' "${WANT}" > "${STAMP}"
echo "fluxctl: ${FLUX_VERSION} ready in ${BIN_DIR}"
