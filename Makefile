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
	$(BIN)/uvicorn src.api.main:app --host $(HOST) --port $(PORT)

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

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
