# ganforge: `make run` serves the bundled model, `make test` runs the test suite.
# Both create the virtual environment and install what they need, apt packages included.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# Set SERVE_EXTRA=gpu to serve with onnxruntime-gpu instead of onnxruntime (never both).
SERVE_EXTRA ?= serve
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
BIN := $(VENV)/bin

.PHONY: run test train export apt-venv apt-test apt-data clean

run: $(VENV)/.stamp-$(SERVE_EXTRA)
	@echo "ganforge: serving the page and the API at http://$(HOST):$(PORT)"
	$(BIN)/ganforge serve --host $(HOST) --port $(PORT)

test: $(VENV)/.stamp-all apt-test
	$(BIN)/pytest

train: $(VENV)/.stamp-all apt-data
	$(BIN)/ganforge train --config configs/fashion-mnist-dcgan.toml

export: $(VENV)/.stamp-all
	$(BIN)/ganforge export --run-dir runs/fashion-mnist-dcgan --models-dir models

# Debian splits venv support out of python3; install it only when `venv` cannot create an environment.
apt-venv:
	@if ! $(PYTHON) -c "import ensurepip, venv" >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends python3-venv; fi

apt-data:
	@$(MAKE) --no-print-directory apt-install PACKAGES="dataset-fashion-mnist"

apt-test:
	@$(MAKE) --no-print-directory apt-install PACKAGES="dataset-fashion-mnist chromium"

apt-install:
	@missing=""; for package in $(PACKAGES); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages:$$missing"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; fi

$(BIN)/python: | apt-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.stamp-serve $(VENV)/.stamp-gpu: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[$(SERVE_EXTRA)]"
	touch $@

$(VENV)/.stamp-all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[serve,train,dev]"
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache
