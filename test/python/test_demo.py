"""`make demo`, the README's first command for a newcomer, run as they would run it.

The demo starts a throwaway PostgreSQL 15 of its own, loads generated Pagila, builds the star in
the DuckDB 1.5.6 CLI, lets the simulator trade for five seconds, runs an incremental build and
stops the server. It does not use the matrix cell's server, so it runs once, in the
pg15/duckdb-1.4.4 cell; the file it leaves is then read with that cell's DuckDB.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO, connect  # noqa: E402

DEMO_CELL = ("15", "1.4.4")


def test_make_demo_builds_and_updates_a_star(tmp_path, extension_path):
    cell = (os.environ.get("PAGILA_PG_VERSION"), os.environ.get("PAGILA_DUCKDB_VERSION"))
    if cell != DEMO_CELL:
        pytest.skip(f"the demo brings its own Postgres: it runs once, in the pg{DEMO_CELL[0]}/"
                    f"duckdb-{DEMO_CELL[1]} cell (this is pg{cell[0]}/duckdb-{cell[1]})")
    db = tmp_path / "demo.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PAGILA_"))}
    env["DEMO_DB"] = str(db)
    r = subprocess.run(["make", "--no-print-directory", "demo"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"make demo exited {r.returncode}:\n{out[-4000:]}"
    steps = re.findall(r"^==> (\d)/8 ", r.stdout, flags=re.M)
    assert steps == [str(i) for i in range(1, 9)], f"steps printed: {steps}\n{out[-4000:]}"
    assert "Error" not in out, out[-4000:]
    assert "password=" not in out

    con = connect(extension_path, str(db))
    try:
        runs = con.execute(
            "SELECT run_id, status FROM gold.pagila_runs WHERE step = 'build' ORDER BY run_id").fetchall()
        assert runs == [(1, "FINISHED"), (2, "FINISHED")]
        steps2 = dict(con.execute(
            "SELECT step, \"rows\" FROM gold.pagila_runs WHERE run_id = 2 AND step <> 'build'").fetchall())
        # run 2 is the incremental one: no full-build fallback, the simulator's rentals were read,
        # and detect_deletes compared every key
        assert "mode: full (no bookmarks yet)" not in steps2
        assert steps2["bronze.rental"] > 0
        assert "deletes.rental" in steps2
        checks = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM gold.pagila_check_results WHERE run_id = 2"
        ).fetchone()
        assert checks[0] > 0 and checks[1] == 0, f"run 2's checks: {checks}"
        # the simulator's five seconds are in the facts, past the full build's rows
        full, now = con.execute(
            "SELECT (SELECT \"rows\" FROM gold.pagila_runs WHERE run_id = 1 AND step = 'gold.fact_rental'), "
            "(SELECT count(*) FROM gold.fact_rental)").fetchone()
        assert now > full
    finally:
        con.close()
