# Huddle: `make run` starts the whole platform here; `make test` runs every test.
# Both set everything up first (uv, the Python environment, Kafka's jars on first use).

UV_VERSION := 0.13.9
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
RUN        := $(UV) run --frozen
# kustomize renders deploy/k8s; built from the Go module proxy (v5.8.2 is the newest for Go 1.26).
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE         := $(TOOLS)/kustomize-$(KUSTOMIZE_VERSION)/kustomize
# vegeta is the benchmarks' HTTP load generator (open loop, constant rate), from the Go module proxy.
VEGETA_VERSION := v12.13.0
VEGETA         := $(TOOLS)/vegeta-$(VEGETA_VERSION)/vegeta

.DEFAULT_GOAL := help
.PHONY: help setup run up down status test test-unit test-integration lint fmt schemas clean \
        k8s-tools k8s-check bench-tools bench bench-smoke

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-17s %s\n", $$1, $$2}'

$(UV):
	@command -v python3 >/dev/null || { echo "Python 3.11 is required (python3 not found)"; exit 1; }
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(KUSTOMIZE):
	@command -v go >/dev/null || { echo "Go 1.26+ is required to build kustomize (go not found)"; exit 1; }
	GOBIN=$(abspath $(dir $(KUSTOMIZE))) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@mkdir -p $(TOOLS)/bin && ln -sf $(abspath $(KUSTOMIZE)) $(TOOLS)/bin/kustomize

k8s-tools: $(KUSTOMIZE) ## Install kustomize into .tools/ (for the Kubernetes manifests)

$(VEGETA):
	@command -v go >/dev/null || { echo "Go 1.26+ is required to build vegeta (go not found)"; exit 1; }
	GOBIN=$(abspath $(dir $(VEGETA))) go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)
	@mkdir -p $(TOOLS)/bin && ln -sf $(abspath $(VEGETA)) $(TOOLS)/bin/vegeta

bench-tools: $(VEGETA) ## Install vegeta into .tools/ (the benchmarks' HTTP load generator)

setup: $(UV) ## Install the locked Python environment (.venv) and check Java and Maven
	@command -v java >/dev/null || { echo "Java 17+ is required to run Apache Kafka (java not found)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch Apache Kafka's jars (mvn not found)"; exit 1; }
	$(UV) sync --frozen --python 3.11

run: setup ## Start Kafka, PostgreSQL and the five services (Ctrl-C stops everything)
	$(RUN) huddle up

up: setup ## Start the platform in the background (then: make status, make down)
	$(RUN) huddle up --detach

down: ## Stop what `make up` started
	$(RUN) huddle down

status: ## Show every component and whether it is ready
	$(RUN) huddle status

test: setup k8s-tools bench-tools ## Every test: unit, contracts, integration and end to end (starts Kafka and PostgreSQL)
	$(RUN) pytest

test-unit: setup k8s-tools bench-tools ## Only the tests that need no server
	$(RUN) pytest -m "not integration and not e2e"

lint: setup k8s-tools ## ruff, mypy (strict on libs), the contract drift check, the k8s overlays render
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) python -m huddle_contracts.export --check
	for overlay in deploy/k8s/overlays/*/; do $(KUSTOMIZE) build $$overlay >/dev/null || exit 1; done

k8s-check: setup k8s-tools ## Render deploy/k8s and check it against the schemas and rules (no cluster)
	$(RUN) pytest deploy/tests/test_kubernetes_manifests.py

bench: setup bench-tools ## Benchmarks against raw baselines, 3 runs (<15 min): BENCHMARKS.md, benchmarks/results, benchmarks/plots
	$(RUN) python -m huddle_bench run

bench-smoke: setup bench-tools ## Small benchmarks (<2 min); fails when a ratio to its same-run baseline crosses its limit
	$(RUN) python -m huddle_bench run --smoke

fmt: setup ## Format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

schemas: setup ## Regenerate the JSON Schemas and the AsyncAPI document from the models
	$(RUN) python -m huddle_contracts.export

clean: ## Remove the environment, caches and the local stack's data (.huddle)
	rm -rf .venv $(TOOLS) .huddle .pytest_cache .mypy_cache .ruff_cache .hypothesis
