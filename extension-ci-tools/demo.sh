#!/usr/bin/env bash
# `make demo`: pagila_star end to end on a throwaway PostgreSQL 15 with generated Pagila.
#
#   1. setup: venvs (the DuckDB 1.5.6 CLI), PostgreSQL 15
#   2. build the extension (release) and pagila-gen
#   3. start a throwaway PostgreSQL 15 on a free loopback port
#   4. load generated Pagila (pagila-gen load --scale 1 --seed 42) into db pagila_gen
#   5. run examples/demo.sql in the DuckDB CLI (file build/demo/pagila_star.duckdb), with
#      PAGILA_DSN in the environment (demo.sql reads it with getenv('PAGILA_DSN'); the
#      password never shows on a command line): extract, full build, summary
#   6. pagila-gen simulate: five seconds of rentals, returns, payments, customer changes
#   7. examples/demo_incremental.sql: an incremental build, and what it changed
#   8. stop the server and remove its folder (also on failure or Ctrl-C)
#
# Environment: DEMO_SQL (default examples/demo.sql), DEMO_SCALE (default 1),
#              DEMO_CLI (default: the DuckDB 1.5.6 CLI binary of build/venv/cli-1.5.6),
#              DEMO_DB (default build/demo/pagila_star.duckdb; test_demo.py uses its own).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
DEMO_SQL="${DEMO_SQL:-examples/demo.sql}"
DEMO_SCALE="${DEMO_SCALE:-1}"
# The duckdb-cli wheel's bin/duckdb is a Python shim around the real binary; call the binary
# itself (no Python traceback on Ctrl-C).
if [ -z "${DEMO_CLI:-}" ]; then
    DEMO_CLI="$(ls build/venv/cli-1.5.6/lib/python3*/site-packages/duckdb_cli/duckdb 2>/dev/null | tail -n1)"
    DEMO_CLI="${DEMO_CLI:-build/venv/cli-1.5.6/bin/duckdb}"
fi

step() { printf '\n==> %s\n' "$*"; }

if [ "${1:-}" = "--inner" ]; then
    # Runs inside `pg.py run`: the server is up and loaded; its variables are in the environment.
    if [ -z "${PAGILA_GEN_DSN:-}" ]; then
        echo "demo: no generated data (PAGILA_GEN_DSN unset)" >&2
        exit 1
    fi
    DEMO_DB="${DEMO_DB:-build/demo/pagila_star.duckdb}"
    mkdir -p "$(dirname "$DEMO_DB")"
    rm -f "$DEMO_DB" "$DEMO_DB.wal"
    cli() { PAGILA_DSN="$PAGILA_GEN_DSN" "$DEMO_CLI" -unsigned -init /dev/null -bail "$DEMO_DB" -f "$1"; }
    step "5/8 run $DEMO_SQL in DuckDB $("$DEMO_CLI" -version | awk '{print $1}') (CLI, -unsigned, file $DEMO_DB)"
    # The demo reads the DSN of the generated database as PAGILA_DSN.
    cli "$DEMO_SQL"
    step "6/8 the shop keeps trading: pagila-gen simulate --rate 100/s --duration 5s"
    # pagila-gen reads the connection from the PG* variables: no password on a command line.
    PGHOST="$PAGILA_PG_HOST" PGPORT="$PAGILA_PG_PORT" PGUSER=pagila PGPASSWORD="$PAGILA_PG_PASSWORD" \
        PGDATABASE=pagila_gen target/release/pagila-gen simulate --rate 100/s --duration 5s --seed 7
    step "7/8 incremental build: examples/demo_incremental.sql"
    cli examples/demo_incremental.sql
    step "8/8 stop PostgreSQL $PAGILA_PG_VERSION"
    exit 0
fi

step "1/8 setup: venvs (DuckDB CLI 1.5.6), PostgreSQL 15"
SETUP_QUIET=1 bash extension-ci-tools/setup.sh

step "2/8 build the extension (release) and pagila-gen"
make --no-print-directory release gen

step "3/8 start a throwaway PostgreSQL 15 on a free loopback port"
step "4/8 load generated Pagila: pagila-gen load --scale $DEMO_SCALE --seed 42"
exec "$PYTHON" extension-ci-tools/pg.py run --versions 15 --no-real --scale "$DEMO_SCALE" -- \
    bash extension-ci-tools/demo.sh --inner
