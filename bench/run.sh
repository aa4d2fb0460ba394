#!/usr/bin/env bash
# pagila_star benchmark entry point (also `make bench`). See bench/README.md.
#
#   bench/run.sh                 full run: scale 625 (~10M payments, ~10M rentals), median of 3
#   bench/run.sh --quick         smoke run: scale 60, one repetition
#   bench/run.sh --keep          keep the loaded server folder (build/bench/pg15-sf<scale>) and reuse it next time
#   bench/run.sh --no-build      do not run `make release gen` first
#   bench/run.sh --only incremental   only the incremental runs next to a full build
#   bench/run.sh --help          every option of bench/bench.py
#
# Environment: BENCH_ARGS (extra arguments, for `make bench BENCH_ARGS=…` style use).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="$REPO/build/venv/duckdb-1.4.4/bin/python"

build=1
args=()
for a in "$@" ${BENCH_ARGS:-}; do
    case "$a" in
        --no-build) build=0 ;;
        *) args+=("$a") ;;
    esac
done

if [ ! -x "$PY" ]; then
    echo "bench: $PY is missing: run 'make setup' first" >&2
    exit 1
fi
if [ "$build" = 1 ]; then
    echo "==> make release gen" >&2
    make --no-print-directory release gen >&2
fi
exec "$PY" "$REPO/bench/bench.py" ${args[@]+"${args[@]}"}
