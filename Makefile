# pagescribe: `make demo` (set up, then describe a sample page and a sample PDF) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD ?= build
DEMO_MODEL := $(BUILD)/models/tiny
DEMO_SAMPLES := $(BUILD)/samples

.PHONY: setup demo test test-fast lint lock clean bench audit soak

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pagescribe needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "Installing pinned dependencies (the first build of llama-cpp-python from source takes ~6 minutes)"
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

demo: setup
	$(BIN)/python examples/make_samples.py --out $(DEMO_SAMPLES)
	$(BIN)/pagescribe model synth --preset tiny --out $(DEMO_MODEL)
	@echo
	@echo "NOTE: the demo model has RANDOM WEIGHTS (real LLaVA-1.5 architecture, run by the real llama.cpp code)."
	@echo "      Its words are meaningless. See README.md, 'Use a real model', for real weights."
	@echo
	$(BIN)/pagescribe describe --model $(DEMO_MODEL) --max-tokens 48 \
		$(DEMO_SAMPLES)/page.png $(DEMO_SAMPLES)/report.pdf --pages 2

test: setup
	$(BIN)/ruff check src tests bench examples infra scripts
	$(BIN)/mypy
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not integration and not slow"

lint: setup
	$(BIN)/ruff check src tests bench examples infra
	$(BIN)/mypy

lock:
	uv pip compile pyproject.toml --extra dev --extra infra --extra bench --extra rag --extra eval --python-version 3.11 -o requirements.lock

bench: setup
	$(BIN)/python bench/engine_vs_llamacpp.py --preset 1b
	$(BIN)/python bench/run.py --preset 1b --concurrency 1,4

audit: setup
	scripts/audit.sh

soak: setup
	$(BIN)/pagescribe model synth --preset tiny --out $(DEMO_MODEL)
	$(BIN)/python scripts/soak.py --model $(DEMO_MODEL) --clients 8 --minutes 3

clean:
	rm -rf $(BUILD) .pytest_cache .mypy_cache .ruff_cache

# container image targets: image, image-test, image-push, image-tools, image-clean
include container/image.mk
