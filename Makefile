# Portico: build, run and test the edge API gateway.
#
#   make dev    install what is missing, build, and run the gateway locally
#               with the demo config, keys and origin services
#   make test   install what is missing and run every check and test,
#               end-to-end tests on workerd included
#
# Every tool is pinned. The Rust tools (worker-build, the wasm-bindgen CLI,
# and oha for make bench) are compiled once per machine and version into a
# per-user cache ($(PORTICO_TOOLS_CACHE), one directory per tool and
# version), so a fresh clone on a machine that built them before does not
# compile them again; npm packages go into node_modules/. Both commands work
# on a fresh machine and cost nothing extra on the next run.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(CURDIR)
# Per-user cache of compiled tools, keyed by tool and version.
PORTICO_TOOLS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/portico/tools
WASM_TARGET := wasm32-unknown-unknown
WORKER_BUILD_VERSION := 0.8.7
# The wasm-bindgen CLI must equal the wasm-bindgen library in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)

# The fixed-rate load generator of `make bench` (not needed by make test).
OHA_VERSION := 1.15.0

WORKER_BUILD_DIR := $(PORTICO_TOOLS_CACHE)/worker-build-$(WORKER_BUILD_VERSION)
OHA_DIR := $(PORTICO_TOOLS_CACHE)/oha-$(OHA_VERSION)
WASM_BINDGEN_DIR := $(PORTICO_TOOLS_CACHE)/wasm-bindgen-cli-$(WASM_BINDGEN_VERSION)
export PATH := $(WORKER_BUILD_DIR)/bin:$(HOME)/.cargo/bin:$(PATH)
# worker-build would download these; point it at the pinned local copies.
export WASM_BINDGEN_BIN := $(WASM_BINDGEN_DIR)/bin/wasm-bindgen
export ESBUILD_BIN := $(ROOT)/node_modules/.bin/esbuild
export WASM_OPT_BIN := $(ROOT)/node_modules/.bin/wasm-opt
export WRANGLER_SEND_METRICS := false
export OHA_BIN := $(OHA_DIR)/bin/oha

WORKER_SOURCES := $(shell find src -name '*.rs') src/platform/workers/shim.mjs Cargo.toml Cargo.lock
WORKER := build/worker/shim.mjs
CLI := target/debug/portico
# The CORS end-to-end test drives Debian's Chromium through puppeteer-core,
# which never downloads a browser of its own. apt needs root: sudo only
# when make does not already run as root.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup toolchain rust-target dev test bench fmt-check clippy test-native test-schema e2e browser worker cli wasm-bench size fuzz clean

help:
	@echo "make dev    run the gateway locally with the demo (http://127.0.0.1:8787)"
	@echo "make test   run every check and test, end-to-end on workerd included"
	@echo "make worker build the release worker into build/"
	@echo "make size   report the deployable wasm size against the budget"
	@echo "make bench  measure CPU per request, route matching and rate-limit latency"
	@echo "make fuzz   run the property tests over hostile input with many more cases"

## Toolchain ---------------------------------------------------------------

setup: toolchain node_modules/.installed

toolchain: rust-target $(WORKER_BUILD_DIR)/.installed $(WASM_BINDGEN_DIR)/.installed

rust-target:
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)

# One directory per tool and version; the marker is written only after a
# complete install, so an interrupted one is redone, never half-used.
$(WORKER_BUILD_DIR)/.installed:
	@echo "installing worker-build $(WORKER_BUILD_VERSION) into $(WORKER_BUILD_DIR) (a few minutes, once per machine)"
	cargo install --quiet --root $(WORKER_BUILD_DIR) worker-build --version $(WORKER_BUILD_VERSION) --locked --force
	@touch $@

# Not --locked: the crate's own lockfile names a webpki-roots release the
# registry no longer serves; the CLI version itself is still exact.
$(WASM_BINDGEN_DIR)/.installed:
	@test -n "$(WASM_BINDGEN_VERSION)" || { echo "wasm-bindgen not found in Cargo.lock" >&2; exit 1; }
	@echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into $(WASM_BINDGEN_DIR) (a few minutes, once per machine)"
	cargo install --quiet --root $(WASM_BINDGEN_DIR) wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force
	@touch $@

$(OHA_DIR)/.installed:
	@echo "installing oha $(OHA_VERSION) into $(OHA_DIR) (a few minutes, once per machine)"
	cargo install --quiet --root $(OHA_DIR) oha --version $(OHA_VERSION) --locked --force
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(dir $@) && touch $@

# Only when missing. A fresh machine's package lists may be empty or stale,
# hence the update; without recommends it is just the browser and its
# libraries, which is all a headless run needs.
browser:
	@test -x $(CHROMIUM) || { echo "installing chromium (Debian package, for the CORS browser test)"; \
	  $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

## Build -------------------------------------------------------------------

worker: $(WORKER)

# The same feature set worker-build would pass, so that wasm-opt never emits
# encodings workerd does not read yet.
WASM_FEATURES := $(addprefix --enable-,mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)

$(WORKER): $(WORKER_SOURCES) | toolchain node_modules/.installed
	worker-build --release
	$(WASM_OPT_BIN) build/index_bg.wasm -Oz --strip-debug --strip-producers $(WASM_FEATURES) -o build/index_bg.opt.wasm
	mv build/index_bg.opt.wasm build/index_bg.wasm
	cp src/platform/workers/shim.mjs $(WORKER)

cli:
	cargo build --quiet --bin portico

# The core as wasm for V8, with the in-memory platform exported: measures
# the gateway's CPU per request without the Workers runtime around it.
WASM_BENCH := target/wasm-bench/portico.js

wasm-bench: $(WASM_BENCH)

$(WASM_BENCH): $(WORKER_SOURCES) | toolchain node_modules/.installed
	cargo build --quiet --release --lib --target $(WASM_TARGET) --no-default-features --features wasm-bench
	mkdir -p target/wasm-bench
	$(WASM_BINDGEN_BIN) --target nodejs --out-dir target/wasm-bench target/$(WASM_TARGET)/release/portico.wasm
	$(WASM_OPT_BIN) target/wasm-bench/portico_bg.wasm -Oz --strip-debug $(WASM_FEATURES) -o target/wasm-bench/portico_bg.wasm

size: setup
	node tests/support/size.mjs

## Run ---------------------------------------------------------------------

dev: setup worker cli
	node tests/support/dev.mjs

## Benchmarks (not part of make test) -------------------------------------

bench: setup worker cli wasm-bench $(OHA_DIR)/.installed
	@mkdir -p target/bench
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; (apt-get install -y wrk || sudo apt-get install -y wrk); }
	cargo bench --bench gateway
	node tests/support/wasm-bench.mjs | tee target/bench/wasm-cpu.md
	node tests/support/ratelimit-bench.mjs | tee target/bench/ratelimit.md
	node tests/support/size.mjs | tee target/bench/size.md
	node tests/support/coldstart.mjs | tee target/bench/coldstart.md
	node tests/support/bench.mjs

## Test --------------------------------------------------------------------

test: setup fmt-check clippy test-native test-schema worker size e2e

fmt-check:
	cargo fmt --all -- --check

clippy: rust-target
	cargo clippy --quiet --all-targets -- -D warnings
	cargo clippy --quiet --all-targets --target $(WASM_TARGET) --no-default-features -- -D warnings

test-native:
	cargo test --quiet

test-schema: node_modules/.installed
	node --test tests/schema/

e2e: worker cli node_modules/.installed browser
	node --test --test-concurrency=1 tests/e2e/ || { \
	  echo "--- last lines of target/e2e/wrangler.log ---"; \
	  tail -n 60 target/e2e/wrangler.log 2>/dev/null; exit 1; }

# `make test` runs tests/fuzz.rs with proptest's default of 256 cases per
# property; this runs 100000 (about a minute here).
FUZZ_CASES ?= 100000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release --test fuzz

clean:
	rm -rf build target/e2e .wrangler
