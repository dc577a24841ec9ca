# `make run`: set up and start the app.  `make test`: set up and run every test.
# Both create .venv on first use and skip the install when nothing changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# Real data for the tests (never copied into the project): override on the command line.
MNIST_DATA ?= $(abspath ../shared/data/mnist)
HANDWRITING_DATA ?= $(abspath ../shared/data)
export MNIST_DATA HANDWRITING_DATA
# TensorFlow's C++ start-up messages, for every command here (mnist_core sets the same when imported first).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test test-fast browser-deps bench lint clean

$(VENV)/.app-deps: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.app-deps requirements-dev.txt requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt -r requirements-ray.txt
	touch $@

run: $(VENV)/.app-deps
	$(PY) -m streamlit run app.py

# The browser tests drive Debian's Chromium; install it when missing and we may.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed; browser tests will be skipped"; fi; }

test: $(VENV)/.test-deps browser-deps
	$(PY) -m pytest

test-fast: $(VENV)/.test-deps
	$(PY) -m pytest -m "not slow and not browser"

bench: $(VENV)/.test-deps
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(VENV)/.test-deps
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
