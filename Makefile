# The README's commands. Each does its own set-up on a fresh machine: a venv in .venv, the package in it,
# and Debian's Fashion-MNIST package when the data is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint bench data venv

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

data:
	@if [ ! -f "$(FMNIST_DIR)/train-images-idx3-ubyte.gz" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Fashion-MNIST missing: installing Debian's dataset-fashion-mnist"; \
	    apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	      (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist); \
	  else \
	    echo "Fashion-MNIST is missing from $(FMNIST_DIR)."; \
	    echo "Install it with: sudo apt-get install dataset-fashion-mnist"; \
	    echo "(or point FMNIST_DIR / --data-dir at a folder holding the four IDX .gz files)"; \
	    exit 1; \
	  fi; \
	fi

demo: venv data
	$(VENV)/bin/fixnorm-zoo demo

test: venv data
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: venv data
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: venv data
	$(PY) bench/fixnorm_overhead.py
	$(PY) bench/train_throughput.py
	$(PY) bench/load_speed.py
	$(PY) bench/tuner.py
