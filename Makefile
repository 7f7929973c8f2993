# Everyday targets. `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.matchcore-installed
SOURCES := $(wildcard src_ext/*.pyx src_ext/*.pxd src_ext/includes/* matchcore/_native/*.pxd) setup.py pyproject.toml
DEMO_DIR := build/demo

.PHONY: install build browser demo test test-all test-explore bench lint format clean

install: $(STAMP) build

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "setuptools>=77" wheel "cython>=3.0"
	$(PIP) install --quiet --no-build-isolation -e ".[dev]"
	touch $(STAMP)

# Rebuild the compiled modules in place whenever a Cython source changes.
build: $(STAMP) $(SOURCES)
	$(PY) setup.py --quiet build_ext --inplace

demo: install
	$(VENV)/bin/matchcore generate --orders 10000 --seed 1 --out $(DEMO_DIR)/data
	$(VENV)/bin/matchcore match --data $(DEMO_DIR)/data --out $(DEMO_DIR)/result

# The HTML report test renders in headless Chromium (Debian package); install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: could not install chromium; the report rendering test will say so"

test: install browser
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m "slow or not slow"

# Property tests with fresh random examples (`make test` repeats the same ones every run).
test-explore: install
	HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q

bench: install
	$(PY) -m benchmarks.compare

lint: install
	$(VENV)/bin/ruff check matchcore tests benchmarks
	$(VENV)/bin/mypy matchcore

format: install
	$(VENV)/bin/ruff format matchcore tests benchmarks

clean:
	rm -rf build dist *.egg-info matchcore/_native/*.so src_ext/*.c .pytest_cache .hypothesis
