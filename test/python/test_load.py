"""Loading the extension: refused cleanly without unsigned extensions, works in every supported host."""
from __future__ import annotations

import csv
import io
import subprocess
import textwrap

import duckdb
import pytest


def run_python(python_exe: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([python_exe, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_load_refused_without_unsigned(python_exe, extension_path):
    # In a child process: if loading crashed DuckDB, this test fails instead of killing pytest.
    r = run_python(python_exe, f"""
        import duckdb
        con = duckdb.connect()
        try:
            con.execute("LOAD '{extension_path}'")
        except duckdb.Error as e:
            print("ERROR", type(e).__name__, str(e))
        else:
            print("LOADED")
        # the connection is still usable, and the extension is not there
        print("ALIVE", con.execute("SELECT 42").fetchone()[0])
        print("FUNCTIONS", con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE 'pagila%'").fetchone()[0])
    """)
    assert r.returncode == 0, f"child exited {r.returncode}: {r.stderr}"
    out = r.stdout
    assert "LOADED" not in out
    assert "ERROR IOException" in out, out
    # DuckDB's own message, naming the setting that would allow it
    assert "signature is either missing or invalid" in out
    assert "allow_unsigned_extensions" in out
    assert "ALIVE 42" in out
    assert "FUNCTIONS 0" in out


def test_load_in_process(con, extension_version):
    ext, host = con.execute("SELECT extension_version, duckdb_version FROM pagila_star_version()").fetchone()
    assert ext == extension_version
    assert host == con.execute("SELECT version()").fetchone()[0]
    assert host == "v" + duckdb.__version__


def test_load_twice_is_harmless(con, extension_path):
    con.execute(f"LOAD '{extension_path}'")
    assert con.execute("SELECT count(*) FROM pagila_star_version()").fetchone()[0] == 1


@pytest.mark.parametrize("cli_version", ["1.4.4", "1.5.6"])
def test_load_in_cli(duckdb_cli, cli_version, extension_path, extension_version):
    cli = duckdb_cli(cli_version)
    sql = f"LOAD '{extension_path}'; SELECT v.*, version() AS host FROM pagila_star_version() AS v;"
    r = subprocess.run([str(cli), "-unsigned", "-csv", "-c", sql], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"duckdb {cli_version} exited {r.returncode}: {r.stderr}"
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1, r.stdout
    row = rows[0]
    assert row["extension_version"] == extension_version
    assert row["duckdb_version"] == row["host"] == f"v{cli_version}"


@pytest.mark.parametrize("cli_version", ["1.4.4", "1.5.6"])
def test_cli_refuses_without_unsigned(duckdb_cli, cli_version, extension_path):
    cli = duckdb_cli(cli_version)
    r = subprocess.run([str(cli), "-csv", "-c", f"LOAD '{extension_path}'; SELECT 42 AS alive;"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode > 0, f"expected a clean error exit, got {r.returncode}"  # negative would be a signal
    assert "signature is either missing or invalid" in r.stderr
    assert "-unsigned" in r.stderr
