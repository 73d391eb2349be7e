# The two commands a newcomer needs: `make run` and `make test`. Everything else they depend on
# (the wasm target, the connectors, the Python toolchain for the third-party connector test) is
# installed or built here.

SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PYTHON ?= python3
COMPONENTIZE_PY_VERSION := 0.25.1
GUEST_TARGET_DIR := target/guests
BIN := target/debug/stella-integrations

.PHONY: run test lint fmt build connectors setup python-toolchain python-connector bench clean

## Install the wasm target the connectors are built for.
setup:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

## Build the service binary (which builds and embeds the built-in connectors).
build: setup
	$(CARGO) build -p stella-integrations

## Build the connectors as components into target/connectors/.
connectors: setup
	$(CARGO) build --target wasm32-wasip2 --profile guest --target-dir $(GUEST_TARGET_DIR) -p connector-in-memory
	@mkdir -p target/connectors
	cp $(GUEST_TARGET_DIR)/wasm32-wasip2/guest/connector_in_memory.wasm target/connectors/in-memory.wasm
	@echo "connectors in target/connectors/"

## Start the main program on its embedded default. Until the catalog service lands, this runs
## the in-memory connector's connection test and health check in the sandbox.
run: build
	$(BIN) connector inspect builtin:in-memory
	$(BIN) connector test builtin:in-memory --config '{"providerVersion":"demo","latencyMs":25}'
	$(BIN) connector test builtin:in-memory --health --config '{"health":"degraded","message":"scripted degradation"}'

## A virtualenv with componentize-py, for the third-party (Python) connector test.
$(VENV)/bin/componentize-py:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)

python-toolchain: $(VENV)/bin/componentize-py

## Build the Python example connector and package it with its manifest.
python-connector: python-toolchain build
	bash connectors/python-example/build.sh $(VENV)/bin/componentize-py $(BIN) target/connectors/python-example.wasm

fmt:
	$(CARGO) fmt --all

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Every test: formatting, lints, unit and integration tests (the sandbox runs real components).
test: setup lint python-connector
	STELLA_PYTHON_CONNECTOR=$(CURDIR)/target/connectors/python-example.wasm $(CARGO) test --workspace

## Benchmarks: print their figures and targets.
bench: setup
	$(CARGO) bench -p stella-runtime --bench sandbox

clean:
	$(CARGO) clean
	rm -rf $(VENV)
