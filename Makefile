# redrobe: two commands for a fresh machine.
#   make run    create .venv, install everything, run the whole pipeline (Prefect flow)
#   make test   create .venv, install everything, static checks, then the whole test suite
# Other targets: make install | test-fast | lint | docs | repro | ui | clean-data

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_CPU := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install browser-deps sandbox-deps run repro test test-fast lint ui clean-data docs

install: $(STAMP)

# uv installs (parallel downloads, a shared cache, bytecode compiled on all cores): about
# a third of pip's time for the same packages. uv does not read pip's configuration, so
# it gets pip's find-links, where a machine keeps local wheels such as torch's CPU build.
# torch first: on a machine without an NVIDIA GPU install the CPU build, so the
# project's `torch>=2.4` is already satisfied and no CUDA wheels are pulled.
# requirements.lock pins every other package to the versions the tests ran with.
# deepspeed builds against the installed torch, hence --no-build-isolation.
UV_VERSION := 0.13.9
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
UV_PIP = $(BIN)/uv pip install --quiet --python $(BIN)/python \
  $(foreach f,$(FIND_LINKS),--find-links $(f))
TORCH_FIRST = $(shell command -v nvidia-smi >/dev/null 2>&1 || echo $(TORCH_CPU))

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(UV_PIP) setuptools wheel $(TORCH_FIRST)
	$(UV_PIP) --compile-bytecode --no-build-isolation -c requirements.lock -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) sandbox-deps
	$(BIN)/python -m flows.pipeline

repro: $(STAMP)
	$(BIN)/dvc repro

# Headless Chromium + ChromeDriver for the MLflow UI browser test (Debian packages).
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# bubblewrap, the jail HumanEval's generated code runs in (redrobe.evaluate.sandbox; the
# evaluate stage refuses to run that code without it: docs/security.md). Debian package.
sandbox-deps:
	@command -v bwrap >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; }

# The suite runs on every core (pytest-xdist), a test file per worker at a time, longest
# files first (tests/conftest.py); TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: $(STAMP) browser-deps sandbox-deps lint
	$(PYTEST)

# The unit tier: everything but the end-to-end and slow tests (about 2 minutes).
test-fast: $(STAMP)
	$(PYTEST) -m "not e2e and not slow"

# Static checks: ruff (lint, import order) and mypy, both configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check src flows tasks tests benchmarks
	$(BIN)/mypy

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db) --host 127.0.0.1 --port 5000

docs: $(STAMP)
	$(BIN)/python benchmarks/render_docs.py

clean-data:
	rm -rf data/raw data/interim data/processed data/models data/reports mlflow.db mlartifacts
