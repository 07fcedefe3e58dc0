# leadhook Makefile. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# Tools are installed into bin/ from the Go module proxy, so a bare machine needs only Go.
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
CONTROLLER_TOOLS_VERSION ?= v0.23.0
HELM ?= $(LOCALBIN)/helm
HELM_VERSION ?= v4.3.2

# The test control plane (kube-apiserver, kube-controller-manager, etcd, kubectl) for envtest, built from the Go module
# proxy (hack/build-control-plane.sh) and cached per machine in ~/.cache/leadhook.
K8S_VERSION ?= v1.37.2
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
KUBECTL ?= $(ENVTEST_ASSETS)/kubectl

# The Helm chart, its tools and the value sets it is linted and tested with (charts/leadhook/ci).
CHART_DIR ?= charts/leadhook
HELM_VALUES ?= $(CHART_DIR)/ci/default-values.yaml

IMG ?= leadhook:dev
CONTAINER_TOOL ?= docker
FUZZTIME ?= 15s
GO_TEST_FLAGS ?= -race -count=1
# Flags of `make bench` (hack/bench), e.g. BENCH_FLAGS="-duration 5s -concurrency 32".
BENCH_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD (config/crd/bases) and RBAC roles (config/rbac).
	$(CONTROLLER_GEN) crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=leadhook-controller paths="./controllers/..." output:rbac:artifacts:config=config/rbac/controller
	$(CONTROLLER_GEN) rbac:roleName=leadhook-server paths="./webhookserver/..." output:rbac:artifacts:config=config/rbac/server
	$(HELM_CRDS)

# The chart renders the generated CRD and RBAC rules from copies in charts/leadhook/files
# (TestChartFilesMatchConfig checks they are identical).
define HELM_CRDS
cp config/crd/bases/leadhook.io_leadintegrations.yaml $(CHART_DIR)/files/crds/
cp config/rbac/controller/role.yaml $(CHART_DIR)/files/rbac/controller-role.yaml
cp config/rbac/server/role.yaml $(CHART_DIR)/files/rbac/server-role.yaml
endef

.PHONY: helm-crds
helm-crds: ## Copy the generated CRD and RBAC rules into the chart (make manifests does it too).
	$(HELM_CRDS)

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: test
test: manifests generate fmt vet control-plane helm build-installer ## Run the whole test suite (real kube-apiserver + etcd, embedded MongoDB-compatible store, the chart).
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) go test $(GO_TEST_FLAGS) ./...

.PHONY: test-chart
test-chart: manifests control-plane helm build-installer ## Run only the chart and install tests (lint, render, apply to a real API server, RBAC).
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) go test -count=1 -run '^(TestChart|TestKustomizeInstall|TestDocker)' .

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (new findings land in testdata/fuzz).
	@for pkg in $$(go list ./...); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: tidy
tidy: ## Run go mod tidy.
	go mod tidy

##@ Helm

.PHONY: helm-lint
helm-lint: helm ## helm lint --strict the chart with every value set in charts/leadhook/ci.
	@for f in $(CHART_DIR)/ci/*-values.yaml; do echo "== $$f"; $(HELM) lint --strict $(CHART_DIR) -f $$f; done

.PHONY: helm-template
helm-template: helm ## Render the chart with HELM_VALUES (default: charts/leadhook/ci/default-values.yaml).
	$(HELM) template leadhook $(CHART_DIR) --namespace leadhook-system -f $(HELM_VALUES)

##@ Build

.PHONY: build
build: ## Build bin/leadhook.
	go build -o $(LOCALBIN)/leadhook .

.PHONY: run
run: build ## Run the server in local mode: embedded store in ./data, config/samples, leads on :8080.
	$(LOCALBIN)/leadhook server --integrations config/samples

.PHONY: docker-build
docker-build: ## Build the container image IMG (needs a Docker engine, or CONTAINER_TOOL=podman).
	@command -v $(CONTAINER_TOOL) >/dev/null || { echo "docker-build: $(CONTAINER_TOOL) is not installed; building the image needs a container engine (CONTAINER_TOOL=podman works too)." >&2; exit 1; }
	@$(CONTAINER_TOOL) info >/dev/null 2>&1 || { echo "docker-build: no $(CONTAINER_TOOL) engine answers ('$(CONTAINER_TOOL) info' fails); start one, or build the image on a machine that has one." >&2; exit 1; }
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the container image IMG.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-installer
build-installer: manifests control-plane ## Render config/default with image IMG into one file, dist/install.yaml (kubectl apply -f dist/install.yaml).
	@mkdir -p dist
	@img='$(IMG)'; name=$${img%:*}; tag=$${img##*:}; \
	if [[ "$$name" == "$$img" || "$$tag" == */* ]]; then name=$$img; tag=latest; fi; \
	overlay=dist/.installer; mkdir -p $$overlay; trap 'rm -rf "$$overlay"' EXIT; \
	printf 'resources:\n- ../../config/default\nimages:\n- name: leadhook\n  newName: %s\n  newTag: %s\n' "$$name" "$$tag" > "$$overlay/kustomization.yaml"; \
	$(KUBECTL) kustomize "$$overlay" > dist/install.yaml
	@echo "Wrote dist/install.yaml (image $(IMG))"

##@ Benchmark

.PHONY: bench
bench: build ## Load-test bin/leadhook (local mode) against a no-op handler, a naive InsertOne server and the store's batched ceiling (~1.5 min; BENCH_FLAGS).
	go build -o $(LOCALBIN)/leadhook-bench ./hack/bench
	$(LOCALBIN)/leadhook-bench -leadhook $(LOCALBIN)/leadhook $(BENCH_FLAGS)

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: control-plane
control-plane: ## Build kube-apiserver, kube-controller-manager (its garbage collector), etcd and kubectl into bin/k8s (cold: ~10-16 min on 2 cores; then cached).
	K8S_VERSION=$(K8S_VERSION) hack/build-control-plane.sh $(ENVTEST_ASSETS)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: helm
helm: $(HELM) ## Install helm into bin/ from the Go module proxy.
$(HELM): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -ldflags "-X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
