# helmflux — build, test and demo targets. Run `make help` for the list.
#
# Every tool is pinned below and installed into ./bin from the Go module proxy,
# so a fresh Debian machine with Go needs nothing else.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN  := $(ROOT)/bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions (tools install into ./bin with the version in the file name,
# so a version bump reinstalls them).
CONTROLLER_GEN_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION  ?= v2.15.0

CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT  := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# The local control plane (kube-apiserver, etcd, kube-controller-manager, kubectl),
# built from source by hack/controlplane.sh; envtest finds it here.
export KUBEBUILDER_ASSETS := $(BIN)
CONTROLPLANE_STAMP := $(BIN)/.controlplane-version

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

GO_TEST_FLAGS ?=
IMG ?= helmflux:$(VERSION)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into config/ and the chart.
	$(CONTROLLER_GEN) crd rbac:roleName=helmflux-manager paths=./api/... paths=./operator/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	rm -f charts/helmflux/crds/*.yaml && cp config/crd/bases/*.yaml charts/helmflux/crds/
	cp config/rbac/role.yaml charts/helmflux/files/role.yaml

.PHONY: fmt
fmt: ## Format the Go code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) vet ## Run go vet and golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate manifests ## Regenerate and fail when generated files are stale.
	@if [ -n "$$(git status --porcelain -- api config charts/helmflux/crds charts/helmflux/files)" ]; then \
		echo "Generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config charts/helmflux/crds charts/helmflux/files; \
		git diff --stat -- api config charts/helmflux/crds charts/helmflux/files; exit 1; fi
	@echo "Generated files are up to date"

##@ Tests

.PHONY: test
test: controlplane fluxctl ## Build what the tests need, then run unit and integration tests.
	go test $(GO_TEST_FLAGS) ./...

.PHONY: e2e
e2e: controlplane fluxctl ## Run the end-to-end user stories only (test/e2e, test/demo); `make test` includes them.
	go test $(GO_TEST_FLAGS) ./test/e2e/... ./test/demo/...

# go test -v's framing lines, left out of the benchmarks' output: each
# benchmark is a subtest of TestBench.
BENCH_FRAMING := grep -v -E -e '^=== (RUN|NAME|PAUSE|CONT) ' -e '^ *--- PASS' -e '^PASS$$'

.PHONY: bench
bench: controlplane fluxctl ## Run the benchmarks; BENCH=<regexp> runs only those with a matching figure.
	HELMFLUX_BENCH=1 go test ./test/bench -run '^TestBench$$' -count=1 -v -timeout 60m \
		-args -bench.run='$(if $(BENCH),$(BENCH),.)' | $(BENCH_FRAMING)

.PHONY: bench-list
bench-list: ## Name the benchmarks' figures (BENCH=<regexp> as for bench) without running them.
	@go test ./test/bench -run '^TestBench$$' -count=1 -v \
		-args -bench.list -bench.run='$(if $(BENCH),$(BENCH),.)' | $(BENCH_FRAMING) -e '^ok '

##@ Build

.PHONY: build
build: ## Build the operator and the CLI into ./bin.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/helmflux-operator ./operator
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/helmflux ./cli

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: chart-lint
chart-lint: ## Lint the operator's Helm chart with the Helm SDK.
	go run ./hack/chartlint charts/helmflux

.PHONY: controlplane
controlplane: ## Build kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubectl and kwok into ./bin.
	@hack/controlplane.sh $(BIN)

.PHONY: fluxctl
fluxctl: ## Build the unmodified Flux v1 CLI, fluxctl v1.25.4, into ./bin for the fluxd API tests.
	@hack/fluxctl.sh $(BIN)

.PHONY: demo
demo: controlplane build ## Start a local control plane with the CRDs installed and show how to reach it.
	go run ./test/demo

.PHONY: demo-stop
demo-stop: ## Stop a demo started with make demo in another shell, and wait until it has cleaned up.
	go run ./test/demo stop

##@ Tools

$(CONTROLLER_GEN):
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $@

$(GOLANGCI_LINT):
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

.PHONY: clean
clean: ## Remove built binaries (keeps the control plane; use clean-all for that).
	rm -f $(BIN)/helmflux $(BIN)/helmflux-operator

.PHONY: clean-all
clean-all: ## Remove ./bin entirely.
	rm -rf $(BIN)
