# pagila_star: build, test and demo. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := release

PYTHON ?= python3
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
UNAME_M := $(shell uname -m)
PLATFORM ?= $(if $(filter aarch64 arm64,$(UNAME_M)),linux_arm64,linux_amd64)
# extra arguments for run_tests.py, e.g. make test TEST_ARGS="--pg 15 --duckdb 2.0.0 -k version"
TEST_ARGS ?=

.PHONY: help release debug gen setup test test-only demo bench fmt clippy clean distclean

help:
	@echo "make release    build build/release/pagila_star.duckdb_extension (cargo --release + footer)"
	@echo "make debug      build build/debug/pagila_star.duckdb_extension"
	@echo "make gen        build target/release/pagila-gen (the data generator)"
	@echo "make setup      PostgreSQL 15, openssl, the pinned venvs under build/venv (idempotent)"
	@echo "make test       setup, cargo test, release + gen, then the PG15/PG18 x DuckDB 1.4.4/2.0.0 matrix"
	@echo "make test-only  just the matrix (TEST_ARGS=\"--pg 15 --duckdb 2.0.0 -k pattern\")"
	@echo "make demo       throwaway PG15 + generated Pagila + examples/demo.sql in the DuckDB CLI"
	@echo "make bench      bench/run.sh"
	@echo "make fmt | clippy | clean | distclean"

release:
	$(CARGO) build --release -p pagila_star
	$(PYTHON) extension-ci-tools/append_footer.py --platform $(PLATFORM) \
		$(TARGET_DIR)/release/libpagila_star.so build/release/pagila_star.duckdb_extension

debug:
	$(CARGO) build -p pagila_star
	$(PYTHON) extension-ci-tools/append_footer.py --platform $(PLATFORM) \
		$(TARGET_DIR)/debug/libpagila_star.so build/debug/pagila_star.duckdb_extension

gen:
	$(CARGO) build --release -p pagila-gen

setup:
	@bash extension-ci-tools/setup.sh

test: setup
	$(CARGO) test --workspace
	$(MAKE) --no-print-directory release gen
	$(PYTHON) extension-ci-tools/run_tests.py $(TEST_ARGS)

test-only:
	$(PYTHON) extension-ci-tools/run_tests.py $(TEST_ARGS)

demo:
	@bash extension-ci-tools/demo.sh

bench:
	@if [ -x bench/run.sh ]; then bench/run.sh; \
	elif [ -f bench/run.sh ]; then bash bench/run.sh; \
	else echo "bench: bench/run.sh does not exist yet"; fi

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# keeps the venvs (slow to recreate); distclean removes them too
clean:
	-@$(PYTHON) extension-ci-tools/pg.py down --env-file build/pg.env
	$(CARGO) clean
	rm -rf build/release build/debug

distclean: clean
	rm -rf build
