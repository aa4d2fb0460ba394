"""Shared fixtures for pagila_star's Python integration tests.

Run through extension-ci-tools/run_tests.py (which starts PostgreSQL and sets the
environment, see test/README.md), or by hand with that environment sourced:

    python3 extension-ci-tools/pg.py up --versions 15 --env-file build/pg.env
    set -a; . build/pg.env; set +a
    PAGILA_STAR_EXTENSION=$PWD/build/release/pagila_star.duckdb_extension \
        build/venv/duckdb-2.0.0/bin/python -m pytest test/python -q
    python3 extension-ci-tools/pg.py down --env-file build/pg.env

Fixtures that need an environment variable skip the test when it is unset, the way
sqllogictest's `require-env` skips a file.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set (run through extension-ci-tools/run_tests.py)")
    return value


def cargo_version() -> str:
    in_package = False
    for line in (REPO / "Cargo.toml").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            in_package = line == "[package]"
        elif in_package:
            m = re.match(r'version\s*=\s*"([^"]+)"', line)
            if m:
                return m.group(1)
    raise RuntimeError("no [package] version in Cargo.toml")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def extension_path() -> str:
    """Absolute path of the built extension (PAGILA_STAR_EXTENSION, else build/release)."""
    path = os.environ.get("PAGILA_STAR_EXTENSION") or str(REPO / "build" / "release" / "pagila_star.duckdb_extension")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `make release`")
    return path


@pytest.fixture(scope="session")
def extension_version() -> str:
    return os.environ.get("PAGILA_STAR_VERSION") or cargo_version()


def connect(extension: str | None = None, database: str = ":memory:", **config) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that may load unsigned extensions, with pagila_star loaded when given."""
    con = duckdb.connect(database, config={"allow_unsigned_extensions": "true", **config})
    if extension:
        con.execute(f"LOAD '{extension}'")
    return con


@pytest.fixture
def con(extension_path):
    """In-memory DuckDB with pagila_star loaded."""
    c = connect(extension_path)
    yield c
    c.close()


@pytest.fixture(scope="session")
def pagila_dsn() -> str:
    """The real Pagila (role pagila, with password)."""
    return _env("PAGILA_DSN")


@pytest.fixture(scope="session")
def pagila_gen_dsn() -> str:
    """Generated Pagila-shaped data (pagila-gen, scale 1, seed 42)."""
    return _env("PAGILA_GEN_DSN")


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    """Superuser postgres, dbname=postgres."""
    return _env("PAGILA_ADMIN_DSN")


@pytest.fixture(scope="session")
def pg_version() -> str:
    return _env("PAGILA_PG_VERSION")


@pytest.fixture(scope="session")
def pg_password() -> str:
    return _env("PAGILA_PG_PASSWORD")


@pytest.fixture(scope="session")
def ssl_rootcert() -> str:
    """The throwaway CA of a server with ssl=on (PG15); tests using it skip on PG18 (built without OpenSSL)."""
    return _env("PAGILA_SSL_ROOTCERT")


@pytest.fixture
def pg_conn(pagila_dsn):
    """psycopg connection to the real Pagila, autocommit."""
    psycopg = pytest.importorskip("psycopg")
    c = psycopg.connect(pagila_dsn, autocommit=True)
    yield c
    c.close()


@pytest.fixture(scope="session")
def psql():
    """Run SQL through the server's own psql: psql(dsn, sql) -> stdout (unaligned, tuples only)."""
    bindir = _env("PAGILA_PG_BIN")

    def run(dsn: str, sql: str) -> str:
        r = subprocess.run([os.path.join(bindir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn],
                           input=sql, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"psql failed: {r.stderr.strip()}")
        return r.stdout

    return run


CLIS = {
    "1.4.4": REPO / "build" / "venv" / "duckdb-1.4.4" / "bin" / "duckdb",
    "1.5.6": REPO / "build" / "venv" / "cli-1.5.6" / "bin" / "duckdb",
}


@pytest.fixture(scope="session")
def duckdb_cli():
    """duckdb_cli(version) -> path of that DuckDB CLI (1.4.4 or 1.5.6); skips when not installed."""

    def get(version: str) -> Path:
        path = CLIS[version]
        if not path.exists():
            pytest.skip(f"{path} missing: run `make setup`")
        return path

    return get


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
