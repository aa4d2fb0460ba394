"""The star built from the DuckDB CLI, the way a user types it (issue 4: "from CLI 1.4.4").

The sqllogictests and the other integration tests drive the extension through DuckDB's Python
client. Here each supported CLI (1.4.4 and 1.5.6) runs the build in its own process on a database
file, the figures are compared with the same questions asked of Postgres through psql, and a
second CLI process opens the file afterwards. The password travels in PGPASSWORD only, never on
the command line.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
from decimal import Decimal

import pytest

from test_extract_runtime import clean_env, dsn_parts, make_dsn, sql_str


def run_cli(cli, db, sql: str, password: str) -> list[list[str]]:
    """Runs `sql` in a fresh CLI process on `db`; returns the CSV rows of every result."""
    r = subprocess.run([str(cli), "-unsigned", "-csv", "-noheader", str(db), "-c", sql],
                       capture_output=True, text=True, timeout=300, env=clean_env(PGPASSWORD=password))
    assert r.returncode == 0, f"CLI exited {r.returncode}: {r.stderr}"
    assert password not in r.stdout + r.stderr
    return [row for row in csv.reader(io.StringIO(r.stdout)) if row]


def tagged(rows: list[list[str]], tag: str) -> list[list[str]]:
    return [row[1:] for row in rows if row[0] == tag]


@pytest.mark.parametrize("cli_version", ["1.4.4", "1.5.6"])
def test_star_from_the_cli(duckdb_cli, cli_version, extension_path, pagila_dsn, psql, tmp_path):
    cli = duckdb_cli(cli_version)
    if not os.access(cli, os.X_OK):
        pytest.skip(f"{cli} is not executable (the wheel ships it without the exec bit: make setup)")
    parts = dsn_parts(pagila_dsn)
    nopw = sql_str(make_dsn(**{k: v for k, v in parts.items() if k != "password"}))
    db = tmp_path / "star.duckdb"

    # What a user runs: build, look at the figures, and end with CHECKPOINT (README, short-lived
    # processes). Every result row starts with a tag so that the CSV can be told apart.
    rows = run_cli(cli, db, f"""
        LOAD '{extension_path}';
        CREATE TEMP TABLE call1 AS SELECT * FROM pagila_build_star(dsn := {nopw});
        SELECT 'steps', count(*), count(*) FILTER (WHERE status <> 'FINISHED'),
               count(*) FILTER (WHERE step LIKE 'bronze.%') FROM call1;
        SELECT 'sales', count(*), sum(amount) FROM gold.fact_sales;
        SELECT 'rentals', count(*), count(*) FILTER (WHERE return_date_key = -1) FROM gold.fact_rental;
        SELECT 'store', ds.store_id, count(*), sum(fs.amount)
        FROM gold.fact_sales AS fs JOIN gold.dim_store AS ds USING (store_key)
        WHERE fs.store_key <> -1 GROUP BY ds.store_id ORDER BY ds.store_id;
        SELECT 'checks', count(*), count(*) FILTER (WHERE NOT ok) FROM gold.pagila_check_results;
        CHECKPOINT;
    """, parts["password"])

    steps, failed, bronze = tagged(rows, "steps")[0]
    assert int(failed) == 0 and int(bronze) == 15 and int(steps) > 15, rows

    pg_sales = psql(pagila_dsn, "SELECT count(*) || ',' || sum(amount) FROM payment").strip().split(",")
    pg_rentals = psql(pagila_dsn, "SELECT count(*) || ',' || count(*) FILTER (WHERE return_date IS NULL) "
                                  "FROM rental").strip().split(",")
    pg_store = [line.split(",") for line in psql(pagila_dsn, """
        SELECT i.store_id || ',' || count(*) || ',' || sum(p.amount)
        FROM payment p JOIN rental r ON r.rental_id = p.rental_id
        JOIN inventory i ON i.inventory_id = r.inventory_id
        GROUP BY i.store_id ORDER BY i.store_id""").split()]

    (n, total), = tagged(rows, "sales")
    assert (int(n), Decimal(total)) == (int(pg_sales[0]), Decimal(pg_sales[1]))
    (n, open_rentals), = tagged(rows, "rentals")
    assert (int(n), int(open_rentals)) == (int(pg_rentals[0]), int(pg_rentals[1]))
    assert [(int(s), int(c), Decimal(t)) for s, c, t in tagged(rows, "store")] == \
           [(int(s), int(c), Decimal(t)) for s, c, t in pg_store]
    if os.environ.get("PAGILA_DATA") == "real":
        # the issue's own figures for the real Pagila
        assert (int(n), int(open_rentals)) == (16044, 183)
        assert tagged(rows, "sales")[0] == ["16049", "67416.51"]
    checks, failing = tagged(rows, "checks")[0]
    assert int(checks) > 0 and int(failing) == 0, rows

    # A second process opens the file the first one left, and an incremental run there finds
    # nothing new: same figures, no FAILED step.
    again = run_cli(cli, db, f"""
        LOAD '{extension_path}';
        CREATE TEMP TABLE call2 AS SELECT * FROM pagila_build_star(dsn := {nopw}, mode := 'incremental');
        SELECT 'steps', count(*) FILTER (WHERE status <> 'FINISHED') FROM call2;
        SELECT 'sales', count(*), sum(amount) FROM gold.fact_sales;
        SELECT 'rentals', count(*), count(*) FILTER (WHERE return_date_key = -1) FROM gold.fact_rental;
        CHECKPOINT;
    """, parts["password"])
    assert tagged(again, "steps") == [["0"]], again
    assert tagged(again, "sales") == tagged(rows, "sales")
    assert tagged(again, "rentals") == tagged(rows, "rentals")
