# The two commands a newcomer needs: `make run` and `make test`. Everything else they depend on
# (the wasm target, the connectors, the Python toolchain for the third-party connector test) is
# installed or built here.

SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PYTHON ?= python3
COMPONENTIZE_PY_VERSION := 0.25.1
CONTRACT_VENV := .venv-contract
SCHEMATHESIS_VERSION := 4.32.5
GUEST_TARGET_DIR := target/guests
BIN := target/debug/stella-integrations

.PHONY: run test lint build-benches build-tests fmt build connectors setup python-toolchain python-connector contract contract-venv bench clean test-tools debian-test-tools

## Install the wasm target the connectors are built for.
setup:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

## Build the service binary (which builds and embeds the built-in connectors). `--workspace`, not
## `-p stella-integrations`: cargo then resolves the dependencies' features as the tests' build does
## (with `-p`, wasmtime and much of the tree would compile again with other features).
build: setup
	$(CARGO) build --workspace --bins

## Build the connectors as components into target/connectors/<provider>.wasm: the built-ins'
## build script builds every connector under connectors/ (see connectors/guest-build) and lists
## what it built, so nothing here names a connector.
connectors: setup
	$(CARGO) build -p stella-builtin-connectors
	@mkdir -p target/connectors
	@while IFS=$$'\t' read -r provider wasm; do cp "$$wasm" "target/connectors/$$provider.wasm"; done < $(GUEST_TARGET_DIR)/wasm32-wasip2/guest/connectors.tsv
	@echo "connectors in target/connectors/"

## Start the service on its embedded default: 127.0.0.1:8080, SQLite under ./data, the built-in
## connectors and ./plugins. Prints an admin token for the tenant `demo` first (see README).
run: build
	@mkdir -p plugins
	@echo "Admin token for tenant demo (valid 12 h; mint more with: $(BIN) token --tenant demo):"
	@$(BIN) token --tenant demo --scopes integrations.admin --ttl 12h
	@echo
	@echo "Console: open this one-time sign-in link within 15 minutes (more with: $(BIN) console-link --tenant demo):"
	@$(BIN) console-link --tenant demo
	@echo
	$(BIN) serve

## A virtualenv with schemathesis, for the API contract test.
$(CONTRACT_VENV)/bin/schemathesis:
	$(PYTHON) -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)

contract-venv: $(CONTRACT_VENV)/bin/schemathesis

## schemathesis (default checks) against the OpenAPI document the real binary serves.
contract: build $(CONTRACT_VENV)/bin/schemathesis
	api/contract/run.sh $(BIN) $(CONTRACT_VENV)/bin/schemathesis

## A virtualenv with componentize-py, for the third-party (Python) connector test.
$(VENV)/bin/componentize-py:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)

python-toolchain: $(VENV)/bin/componentize-py

## Build the Python example connector and package it with its manifest.
python-connector: python-toolchain build
	bash connectors/python-example/build.sh $(VENV)/bin/componentize-py $(BIN) target/connectors/python-example.wasm

# Each connector's tests (`connectors/<name>/tests.rs`) are modules the connector test binary
# includes through its build script, out of `cargo fmt`'s reach: formatted by name.
CONNECTOR_TESTS = $(wildcard connectors/*/tests.rs)

fmt:
	$(CARGO) fmt --all
	rustfmt --edition 2024 $(CONNECTOR_TESTS)

## The linted build: clippy (`-D warnings`) is the compiler of the workspace's own crates
## (`RUSTC_WORKSPACE_WRAPPER`), so linting and building are one compilation. `make test` runs every
## cargo command under it, so the tests reuse the build instead of compiling our crates again.
LINTED := RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-Dwarnings

## Every benchmark with its `bench-switches` feature (and so the binary with it). `--bench '*'`, not
## `--benches`, which would also build every library's unit tests a second time, in bench mode.
build-benches: setup
	$(LINTED) $(CARGO) test --workspace --features stella-integrations/bench-switches --bench '*' --no-run

## Every other target: libraries, the binary, tests and examples. After build-benches, so that
## target/debug/stella-integrations is the binary without `bench-switches`.
build-tests: setup
	$(LINTED) $(CARGO) test --workspace --no-run

## Formatting, then clippy on every target of the workspace, with and without `bench-switches`.
lint: setup
	$(CARGO) fmt --all -- --check
	rustfmt --edition 2024 --check $(CONNECTOR_TESTS)
	$(MAKE) --no-print-directory build-benches
	$(MAKE) --no-print-directory build-tests

## What the tests run beside the code, installed from Debian when missing: the CNCF
## distribution registry and htpasswd (the oci-registry tests start a real registry on a free
## loopback port), openssl (the github-app tests make an RSA app key; the signature tests sign as
## cosign does), minisign (the signature tests sign with it), Chromium and its WebDriver (the
## console's browser tests) and node (which runs the OpenID provider the console signs in
## through: npm's oidc-provider, installed with npm ci from its lock file).
OIDC_PROVIDER := api/tests/oidc-provider
test-tools: debian-test-tools $(OIDC_PROVIDER)/node_modules/.package-lock.json

debian-test-tools:
	@command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && command -v openssl >/dev/null && command -v minisign >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v node >/dev/null && command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  NODE=; command -v node >/dev/null && command -v npm >/dev/null || NODE="nodejs npm"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends docker-registry apache2-utils openssl minisign chromium chromium-driver fonts-dejavu-core $$NODE; }

$(OIDC_PROVIDER)/node_modules/.package-lock.json: $(OIDC_PROVIDER)/package-lock.json | debian-test-tools
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error

## Every test: formatting, lints, unit and integration tests (the sandbox runs real components,
## the stores run on SQLite and on the local PostgreSQL, events go to the local NATS, the
## oci-registry connector against a real registry), the schemathesis contract run against the real
## binary, and a smoke run of every benchmark; it ends with a table of each phase's time
## (`.ci/test.sh`, which says how the work is shared).
test:
	$(LINTED) MAKE="$(MAKE)" CARGO="$(CARGO)" bash .ci/test.sh

## Benchmarks: print their figures and targets (the sandbox's cost per call, the catalog API, the
## health sweep, the service under fire from 32 hostile connectors, and the bytes on disk per
## check with the cost of retention).
## (`--workspace` everywhere, so the benchmarks share one build.) `make test` runs each of them as
## a smoke run: a few seconds, tiny sizes, figures not judged.
BENCH := $(CARGO) bench --workspace --features stella-integrations/bench-switches
bench: setup
	$(BENCH) --bench sandbox
	@command -v pgbench >/dev/null || apt-get install -y postgresql-client
	$(BENCH) --bench catalog
	$(BENCH) --bench health
	$(BENCH) --bench containment
	$(BENCH) --bench storage
	$(MAKE) python-connector
	STELLA_PYTHON_CONNECTOR=$(CURDIR)/target/connectors/python-example.wasm $(BENCH) --bench startup

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(CONTRACT_VENV) $(OIDC_PROVIDER)/node_modules
