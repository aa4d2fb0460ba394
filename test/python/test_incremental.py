"""CALL pagila_build_star(mode := 'incremental') against a Postgres that keeps changing.

Every test writes to a PRIVATE database (CREATE DATABASE inc_<random> through
PAGILA_ADMIN_DSN, owned by role pagila, filled by `pagila-gen load --seed 42`), never to
pagila or pagila_gen, which other tests read at the same time; the databases are dropped
at the end, also when a test fails. The source changes through `pagila-gen simulate`
(the stores' live workload: rentals, returns with payments, new customers, address and
active-flag changes, price changes, staff transfers, manager changes, deletes), whose
timestamps are the wall clock, so the bookmarks move forward with every round.

- equivalence: ten rounds of simulate + incremental build (some with detect_deletes, the
  last one too), then a full build of the same final Postgres state into a fresh file:
  facts (on natural ids and the natural keys their surrogate keys resolve to), current
  dimension rows, bridges, marts (on natural dimensions), staging and bronze are the same,
  and every check passes on both; each round reads exactly the rows within its lookback
  window (counted by Postgres) and removes exactly the keys Postgres lost.
- SCD2: customers that changed have several versions, contiguous, one current, and each
  fact points at the version valid at its date.
- reruns: an incremental run with no change in between changes nothing at all.
- lookback: a transaction that commits after a later one (its last_update is older than
  the bookmark) is only found because of the lookback.
- live writes: incremental runs while two simulators write end equal to a full build.
- payment's bookmark: a payment recorded late with an earlier date is still read.
- upgrade: a star whose bookmarks have the issue's six columns goes on building.
- crash safety: a backend killed, or the CALL interrupted, in the middle of an incremental
  run leaves the star and its bookmarks exactly as they were, the run is logged FAILED,
  and the next run catches up (equivalence with a full build again).
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, connect

psycopg = pytest.importorskip("psycopg", reason="psycopg is needed for the private databases and to watch backends")

GEN_BIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "pagila-gen"

# The source tables: primary key and bookmark column (the contract; payment has no
# last_update, its rows are immutable and its bookmark is payment_date).
SOURCES = {
    "actor": (["actor_id"], "last_update"),
    "address": (["address_id"], "last_update"),
    "category": (["category_id"], "last_update"),
    "city": (["city_id"], "last_update"),
    "country": (["country_id"], "last_update"),
    "customer": (["customer_id"], "last_update"),
    "film": (["film_id"], "last_update"),
    "film_actor": (["actor_id", "film_id"], "last_update"),
    "film_category": (["film_id", "category_id"], "last_update"),
    "inventory": (["inventory_id"], "last_update"),
    "language": (["language_id"], "last_update"),
    "payment": (["payment_id"], "payment_date"),
    "rental": (["rental_id"], "last_update"),
    "staff": (["staff_id"], "last_update"),
    "store": (["store_id"], "last_update"),
}
BOOKKEEPING = ("pagila_runs", "pagila_check_results", "pagila_bookmarks")
SCD2 = {"dim_customer": "customer", "dim_store": "store", "dim_staff": "staff"}
FULL_STEP = "mode: full (no bookmarks yet)"


# ----------------------------------------------------------------------------- helpers


def dsn_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def need_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set (run through extension-ci-tools/run_tests.py)")
    return value


def redact(text: str) -> str:
    pw = os.environ.get("PAGILA_PG_PASSWORD")
    return text.replace(pw, "***") if pw else text


def wait_until(predicate, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(every)


class PrivateDb:
    """A database of our own on the test server, owned by role pagila, filled by pagila-gen."""

    def __init__(self, admin_dsn: str, scale: int):
        self.admin_dsn = admin_dsn
        self.scale = scale
        self.name = f"inc_{secrets.token_hex(5)}"
        host, port, password = (need_env(v) for v in ("PAGILA_PG_HOST", "PAGILA_PG_PORT", "PAGILA_PG_PASSWORD"))
        self.dsn = f"host={host} port={port} dbname={self.name} user=pagila password={dsn_value(password)}"
        # pagila-gen takes libpq's variables: no password on a command line
        self.env = dict(os.environ, PGHOST=host, PGPORT=port, PGUSER="pagila", PGPASSWORD=password,
                        PGDATABASE=self.name)
        for var in ("PGSERVICE", "PGSSLMODE", "PGOPTIONS"):
            self.env.pop(var, None)
        self._pg = None
        self.created = False

    def create(self) -> "PrivateDb":
        with psycopg.connect(self.admin_dsn, autocommit=True) as pg:
            pg.execute(f'CREATE DATABASE "{self.name}" OWNER pagila')
        self.created = True
        self.gen("load", "--scale", str(self.scale), "--seed", "42")
        return self

    def gen(self, *args: str) -> str:
        r = subprocess.run([str(GEN_BIN), *args], env=self.env, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError(f"pagila-gen {args[0]} failed ({r.returncode}): {redact(r.stdout + r.stderr)[-3000:]}")
        return r.stdout + r.stderr

    def simulate(self, events: int, seed: int, delete_rate: float = 0.0) -> dict[str, int]:
        """Exactly `events` events, unpaced; returns the summary's counts."""
        out = self.gen("simulate", "--events", str(events), "--rate", "0", "--seed", str(seed),
                       "--delete-rate", str(delete_rate), "--quiet")
        counts = {}
        for key, label in [("rentals", r"new rentals"), ("returns", r"returns \(each with a payment\)"),
                           ("new_customers", r"new customers"), ("address_changes", r"customer address changes"),
                           ("active_changes", r"customer active flag changes"), ("staff_transfers", r"staff transfers"),
                           ("deleted_rentals", r"deleted rentals \(with payments\)")]:
            m = re.search(label + r"[^\n\d]*(\d+)", out)
            counts[key] = int(m.group(1)) if m else -1
        return counts

    def query(self, sql: str, params=None) -> list[tuple]:
        if self._pg is None:
            self._pg = psycopg.connect(self.dsn, autocommit=True)
        return self._pg.execute(sql, params).fetchall()

    def execute(self, sql: str) -> None:
        """A statement without a result (DDL)."""
        self.query("SELECT 1")
        self._pg.execute(sql)

    def drop(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None
        if not self.created:
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.created = False


def build(con, dsn: str, **params) -> list[tuple]:
    named = "".join(f", {k} := ?" for k in params)
    return con.execute(f"CALL pagila_build_star(dsn := ?{named})", [dsn, *params.values()]).fetchall()


def incremental(con, dsn: str, **params) -> dict[str, tuple]:
    """An incremental run that must succeed; {step: (rows, status)}."""
    rows = build(con, dsn, mode="incremental", **params)
    bad = [r for r in rows if r[3] != "FINISHED"]
    assert not bad, bad
    assert rows[-1][0] == "commit", rows
    steps = {r[0]: (r[1], r[3]) for r in rows}
    assert len(steps) == len(rows), "a step shows twice"
    return steps


def full_build(con, dsn: str) -> None:
    rows = build(con, dsn)
    assert rows and all(r[3] == "FINISHED" for r in rows), rows


def assert_checks_pass(con, dsn: str, label: str) -> None:
    failed = con.execute('SELECT "check", expected, actual FROM pagila_check(dsn := ?) WHERE NOT ok', [dsn]).fetchall()
    assert failed == [], f"{label}: checks fail: {failed}"


def bookmarks(con) -> dict[str, int | None]:
    return dict(con.execute("SELECT source_table, high_water_us FROM gold.pagila_bookmarks").fetchall())


def snapshot_time(con) -> int | None:
    """The Postgres time (µs) of the last run's snapshot, kept with the bookmarks."""
    (n, us), = con.execute("SELECT count(DISTINCT snapshot_us), max(snapshot_us) FROM gold.pagila_bookmarks").fetchall()
    assert n == 1, "the bookmarks disagree on the last snapshot"
    return us


def tables(con, schema: str, catalog: str | None = None) -> list[str]:
    where = f"AND table_catalog = '{catalog}'" if catalog else "AND table_catalog = current_database()"
    return [t for (t,) in con.execute(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' "
        f"{where} ORDER BY 1", [schema]).fetchall()]


def columns(con, catalog: str, schema: str, table: str, exclude=()) -> str:
    cols = [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_schema = ? "
        "AND table_name = ? ORDER BY ordinal_position", [catalog, schema, table]).fetchall() if c not in exclude]
    assert cols, (catalog, schema, table)
    return ", ".join(f'"{c}"' for c in cols)


def diff_count(con, a: str, b: str) -> tuple[int, list]:
    """Rows of a not in b plus rows of b not in a (EXCEPT ALL both ways), and a few of them."""
    rows = con.execute(f"""
        SELECT * FROM ((SELECT 'only in first' AS side, * FROM ({a}) EXCEPT ALL SELECT 'only in first', * FROM ({b}))
                       UNION ALL
                       (SELECT 'only in second', * FROM ({b}) EXCEPT ALL SELECT 'only in second', * FROM ({a})))
        """).fetchall()
    return len(rows), rows[:6]


def wait_released(path: Path, timeout: float = 20.0) -> None:
    """Waits until no DuckDB holds the file any more: the extension's own connections are closed
    by a watcher shortly after the user's last connection. Tested from another process, which
    the file lock keeps out while the database is open here."""
    code = textwrap.dedent(f"""
        import sys, time, duckdb
        deadline = time.monotonic() + {timeout}
        while True:
            try:
                duckdb.connect({str(path)!r}, read_only=True).close(); sys.exit(0)
            except duckdb.Error as e:
                if time.monotonic() > deadline:
                    print(e); sys.exit(1)
                time.sleep(0.02)
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout + 30)
    assert r.returncode == 0, f"{path} still locked after {timeout}s: {r.stdout}{r.stderr}"


# ----------------------------------------------------------------------------- comparing two stars


def natural_fact_sales(db: str) -> str:
    return f"""
        SELECT f.payment_id, f.rental_id, d.date AS payment_day, f.date_key = -1 AS no_day,
               c.customer_id, f.customer_key = -1 AS no_customer, fi.film_id, f.film_key = -1 AS no_film,
               s.store_id, f.store_key = -1 AS no_store, st.staff_id, f.staff_key = -1 AS no_staff,
               f.payment_date, f.amount
        FROM {db}.gold.fact_sales AS f
        LEFT JOIN {db}.gold.dim_date AS d ON d.date_key = f.date_key
        LEFT JOIN {db}.gold.dim_customer AS c ON c.customer_key = f.customer_key
        LEFT JOIN {db}.gold.dim_film AS fi ON fi.film_key = f.film_key
        LEFT JOIN {db}.gold.dim_store AS s ON s.store_key = f.store_key
        LEFT JOIN {db}.gold.dim_staff AS st ON st.staff_key = f.staff_key"""


def natural_fact_rental(db: str) -> str:
    return f"""
        SELECT f.rental_id, d1.date AS rental_day, d2.date AS return_day, f.return_date_key = -1 AS no_return_day,
               c.customer_id, f.customer_key = -1 AS no_customer, fi.film_id, f.film_key = -1 AS no_film,
               s.store_id, f.store_key = -1 AS no_store, st.staff_id, f.staff_key = -1 AS no_staff,
               f.rental_date, f.return_date, f.is_returned, f.rental_hours, f.days_late,
               f.payment_count, f.payment_total
        FROM {db}.gold.fact_rental AS f
        LEFT JOIN {db}.gold.dim_date AS d1 ON d1.date_key = f.rental_date_key
        LEFT JOIN {db}.gold.dim_date AS d2 ON d2.date_key = f.return_date_key
        LEFT JOIN {db}.gold.dim_customer AS c ON c.customer_key = f.customer_key
        LEFT JOIN {db}.gold.dim_film AS fi ON fi.film_key = f.film_key
        LEFT JOIN {db}.gold.dim_store AS s ON s.store_key = f.store_key
        LEFT JOIN {db}.gold.dim_staff AS st ON st.staff_key = f.staff_key"""


NATURAL = {
    "fact_sales": natural_fact_sales,
    "fact_rental": natural_fact_rental,
    # current dimension rows: natural key and attributes, without surrogate keys and validity
    "dim_customer": lambda db: f"SELECT * EXCLUDE (customer_key, valid_from, valid_to, is_current, is_deleted) "
                               f"FROM {db}.gold.dim_customer WHERE is_current",
    "dim_store": lambda db: f"SELECT * EXCLUDE (store_key, valid_from, valid_to, is_current, is_deleted) "
                            f"FROM {db}.gold.dim_store WHERE is_current",
    "dim_staff": lambda db: f"SELECT * EXCLUDE (staff_key, valid_from, valid_to, is_current, is_deleted) "
                            f"FROM {db}.gold.dim_staff WHERE is_current",
    "dim_film": lambda db: f"SELECT * EXCLUDE (film_key, is_deleted) FROM {db}.gold.dim_film WHERE NOT is_deleted",
    "dim_actor": lambda db: f"SELECT * EXCLUDE (actor_key, is_deleted) FROM {db}.gold.dim_actor WHERE NOT is_deleted",
    "dim_category": lambda db: f"SELECT * EXCLUDE (category_key, is_deleted) FROM {db}.gold.dim_category "
                               f"WHERE NOT is_deleted",
    "bridge_film_actor": lambda db: f"""
        SELECT f.film_id, a.actor_id, b.actor_key = -1 AS no_actor, b.weighting_factor
        FROM {db}.gold.bridge_film_actor AS b
        LEFT JOIN {db}.gold.dim_film AS f ON f.film_key = b.film_key
        LEFT JOIN {db}.gold.dim_actor AS a ON a.actor_key = b.actor_key""",
    "bridge_film_category": lambda db: f"""
        SELECT f.film_id, c.category_id, b.category_key = -1 AS no_category, b.weighting_factor
        FROM {db}.gold.bridge_film_category AS b
        LEFT JOIN {db}.gold.dim_film AS f ON f.film_key = b.film_key
        LEFT JOIN {db}.gold.dim_category AS c ON c.category_key = b.category_key""",
    # marts on natural dimensions (a store that moved has one row per version in an incremental star)
    "mart_store_rentals": lambda db: f"""
        SELECT store_id, sum(rentals) AS rentals, sum(returns) AS returns, sum(open_rentals) AS open_rentals,
               sum(late_returns) AS late_returns, sum(payment_total) AS payment_total,
               sum(rental_hours_total) AS rental_hours_total
        FROM {db}.gold.mart_store_rentals GROUP BY store_id""",
    "mart_revenue_monthly": lambda db: f"""
        SELECT month_start, year, month, month_name, store_id, category, sum(payment_count) AS payment_count,
               sum(revenue) AS revenue, sum(revenue_allocated) AS revenue_allocated
        FROM {db}.gold.mart_revenue_monthly GROUP BY ALL""",
    "compat fact_sales": lambda db: f"FROM {db}.pagila_sales.fact_sales",
    "compat dim_customers": lambda db: f"FROM {db}.pagila_sales.dim_customers",
    "compat dim_films": lambda db: f"FROM {db}.pagila_sales.dim_films",
}


def mart_model(name: str, db: str) -> str:
    """The full build's SELECT of a mart (sql/marts/<name>.sql), reading the gold schema of db."""
    sql = (REPO / "sql" / "marts" / f"{name}.sql").read_text()
    m = re.search(r"CREATE OR REPLACE TABLE \{\{gold\}\}\." + name + r" AS\s+(.*?);\s*$", sql, re.S)
    assert m, f"sql/marts/{name}.sql is not one CREATE OR REPLACE TABLE ... AS SELECT"
    body = m.group(1).replace("{{gold}}", f"{db}.gold")
    assert "{{" not in body, body
    return re.sub(r"\bORDER BY[^;]*$", "", body, flags=re.S)


def compare_stars(inc_path: Path, full_path: Path) -> None:
    """The incremental star against a full build of the same Postgres state (both files closed)."""
    wait_released(inc_path)
    wait_released(full_path)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{inc_path}' AS inc (READ_ONLY)")
        con.execute(f"ATTACH '{full_path}' AS fullb (READ_ONLY)")
        problems = []

        def compare(label: str, a: str, b: str, nonempty: bool = True):
            n, sample = diff_count(con, a, b)
            if n:
                problems.append(f"{label}: {n} rows differ, e.g. {sample}")
            if nonempty and con.execute(f"SELECT count(*) FROM ({b})").fetchone()[0] == 0:
                problems.append(f"{label}: empty in the full build")

        for name, q in NATURAL.items():
            compare(name, q("inc"), q("fullb"))

        # the calendar: every day of the full build, plus at most days outside its range (an
        # incremental build never removes days, a full one ends at the first and last fact)
        missing = con.execute("SELECT count(*) FROM (SELECT * FROM fullb.gold.dim_date "
                              "EXCEPT ALL SELECT * FROM inc.gold.dim_date)").fetchone()[0]
        if missing:
            problems.append(f"dim_date: {missing} days of the full build missing")
        inside = con.execute("""
            SELECT count(*) FROM (SELECT * FROM inc.gold.dim_date EXCEPT ALL SELECT * FROM fullb.gold.dim_date)
            WHERE date BETWEEN (SELECT min(date) FROM fullb.gold.dim_date)
                           AND (SELECT max(date) FROM fullb.gold.dim_date)
               OR date_key = -1""").fetchone()[0]
        if inside:
            problems.append(f"dim_date: {inside} extra days inside the full build's range")

        # staging (silver stg_*) and bronze (without the load bookkeeping) hold the same rows
        for t in [t for t in tables(con, "silver", "fullb") if t.startswith("stg_")]:
            cols = columns(con, "fullb", "silver", t)
            compare(f"silver.{t}", f"SELECT {cols} FROM inc.silver.{t}", f"SELECT {cols} FROM fullb.silver.{t}",
                    nonempty=False)
        assert sorted(tables(con, "bronze", "fullb")) == sorted(SOURCES), tables(con, "bronze", "fullb")
        for t in SOURCES:
            cols = columns(con, "fullb", "bronze", t, exclude=("_run_id", "_loaded_at"))
            compare(f"bronze.{t}", f"SELECT {cols} FROM inc.bronze.{t}", f"SELECT {cols} FROM fullb.bronze.{t}")

        # each mart of the incremental star is what the full build's model computes from the
        # incremental star's own facts and dimensions (per store version, keys included)
        for mart in ("mart_store_rentals", "mart_revenue_monthly"):
            compare(f"{mart} (incremental) vs its model over the incremental facts", f"FROM inc.gold.{mart}",
                    mart_model(mart, "inc"))

        # no gold table left out of the comparison
        known = set(NATURAL) | {"dim_date"} | set(BOOKKEEPING)
        extra = [t for t in tables(con, "gold", "fullb") if t not in known]
        if extra:
            problems.append(f"gold tables this test does not compare: {extra}")
        assert not problems, "the incremental star differs from a full build:\n  " + "\n  ".join(problems)
    finally:
        con.close()


def full_build_into(extension_path: str, path: Path, dsn: str) -> None:
    con = connect(extension_path, str(path))
    try:
        full_build(con, dsn)
        assert_checks_pass(con, dsn, "full build")
    finally:
        con.close()


def assert_equals_full_build(extension_path: str, inc_path: Path, tmp_path: Path, dsn: str) -> None:
    """The incremental star at inc_path (closed) against a full build of the same Postgres state."""
    full_path = tmp_path / "full.duckdb"
    full_build_into(extension_path, full_path, dsn)
    compare_stars(inc_path, full_path)


# ----------------------------------------------------------------------------- assertions on one star


def assert_scd2_sound(con) -> dict[str, int]:
    """Every SCD2 dimension: contiguous versions, one current per entity, tracked attributes
    differ between consecutive versions, and every fact points at the version valid at its date.
    Returns, per dimension, how many entities have more than one version."""
    tracked = {
        "dim_customer": ["active", "home_store_id", "address_id", "address", "address2", "district", "postal_code",
                         "city", "country"],
        "dim_store": ["address", "address2", "district", "postal_code", "city", "country"],
    }
    multi = {}
    for dim, entity in SCD2.items():
        key, nid = f"{entity}_key", f"{entity}_id"
        bad = con.execute(f"""
            WITH v AS (
                SELECT *, lead(valid_from) OVER w AS next_from, row_number() OVER w AS n,
                       count(*) OVER (PARTITION BY {nid}) AS versions
                FROM gold.{dim} WHERE {key} <> -1
                WINDOW w AS (PARTITION BY {nid} ORDER BY valid_from))
            SELECT {nid}, {key}, valid_from, valid_to, is_current, is_deleted FROM v
            WHERE (n = 1 AND valid_from <> TIMESTAMP '1900-01-01')
               OR valid_from >= valid_to
               OR (next_from IS NOT NULL AND valid_to IS DISTINCT FROM next_from)
               OR (next_from IS NULL AND valid_to IS NOT NULL AND NOT is_deleted)
               OR is_current IS DISTINCT FROM (valid_to IS NULL)
               OR (is_current AND is_deleted)
            LIMIT 5""").fetchall()
        assert bad == [], f"{dim}: versions that break the timeline: {bad}"
        not_one = con.execute(f"""
            SELECT {nid}, count(*) FILTER (WHERE is_current) FROM gold.{dim} WHERE {key} <> -1
            GROUP BY {nid} HAVING count(*) FILTER (WHERE is_current) <> 1
               AND NOT bool_or(is_deleted) LIMIT 5""").fetchall()
        assert not_one == [], f"{dim}: entities without exactly one current version: {not_one}"
        dup_keys = con.execute(f"SELECT {key} FROM gold.{dim} GROUP BY {key} HAVING count(*) > 1 LIMIT 5").fetchall()
        assert dup_keys == [], f"{dim}: surrogate keys used twice: {dup_keys}"
        if dim in tracked:
            cols = tracked[dim]
            same = con.execute(f"""
                WITH v AS (SELECT *, lag(row({", ".join(cols)})) OVER (PARTITION BY {nid} ORDER BY valid_from) AS prev
                           FROM gold.{dim} WHERE {key} <> -1)
                SELECT {nid}, valid_from FROM v
                WHERE prev IS NOT NULL AND prev IS NOT DISTINCT FROM row({", ".join(cols)})
                LIMIT 5""").fetchall()
            assert same == [], f"{dim}: a new version without a change of a tracked attribute: {same}"
        multi[dim] = con.execute(f"""
            SELECT count(*) FROM (SELECT {nid} FROM gold.{dim} WHERE {key} <> -1 GROUP BY {nid} HAVING count(*) > 1)
            """).fetchone()[0]

    # every fact of a customer, store or staff member points at the version valid at the fact's
    # time; the natural ids come from staging (payment: customer and staff, store through the rental)
    sources = {
        "fact_sales": ("payment_id", "payment_date", """
            SELECT p.payment_id, p.customer_id, r.store_id, p.staff_id
            FROM silver.stg_payment AS p LEFT JOIN silver.stg_rental AS r ON r.rental_id = p.rental_id"""),
        "fact_rental": ("rental_id", "rental_date",
                        "SELECT rental_id, customer_id, store_id, staff_id FROM silver.stg_rental"),
    }
    for fact, (fact_id, at, ids) in sources.items():
        for dim, entity in SCD2.items():
            key, nid = f"{entity}_key", f"{entity}_id"
            wrong = con.execute(f"""
                SELECT f.{fact_id}, f.{key}, v.{key}, s.{nid}, f.{at}
                FROM gold.{fact} AS f
                JOIN ({ids}) AS s ON s.{fact_id} = f.{fact_id}
                LEFT JOIN gold.{dim} AS v ON v.{nid} = s.{nid} AND v.valid_from <= f.{at}
                      AND f.{at} < coalesce(v.valid_to, TIMESTAMP 'infinity')
                WHERE s.{nid} IS NOT NULL AND f.{key} IS DISTINCT FROM coalesce(v.{key}, -1)
                LIMIT 5""").fetchall()
            assert wrong == [], f"{fact}.{key} does not point at the version valid at {at}: {wrong}"
    return multi


def customer_version_split(con) -> list[tuple]:
    """Customers with several versions that have payments both before and after a change, with
    how many payments point at an old version and how many at a newer one."""
    return con.execute("""
        WITH multi AS (SELECT customer_id FROM gold.dim_customer WHERE customer_key <> -1
                       GROUP BY customer_id HAVING count(*) > 1),
        facts AS (
            SELECT d.customer_id, d.valid_from, f.payment_date
            FROM gold.fact_sales AS f JOIN gold.dim_customer AS d ON d.customer_key = f.customer_key
            WHERE d.customer_id IN (SELECT customer_id FROM multi))
        SELECT customer_id, count(*) FILTER (WHERE valid_from = TIMESTAMP '1900-01-01') AS on_first,
               count(*) FILTER (WHERE valid_from > TIMESTAMP '1900-01-01') AS on_later
        FROM facts GROUP BY customer_id
        HAVING count(*) FILTER (WHERE valid_from = TIMESTAMP '1900-01-01') > 0
           AND count(*) FILTER (WHERE valid_from > TIMESTAMP '1900-01-01') > 0
        ORDER BY customer_id""").fetchall()


def expected_window(db: PrivateDb, marks: dict[str, int | None], snap_us: int, lookback: str) -> dict[str, int]:
    """Rows an incremental run must read, counted by Postgres itself: past the bookmark, or at
    most `lookback` older than the last run's snapshot (README, Incremental builds)."""
    parts = []
    for t, (_, col) in SOURCES.items():
        us = marks.get(t)
        cond = "true" if us is None else (
            f"{col} > timestamptz 'epoch' + {int(us)} * interval '1 microsecond' "
            f"OR {col} >= timestamptz 'epoch' + {int(snap_us)} * interval '1 microsecond' - interval '{lookback}'")
        parts.append(f"SELECT '{t}', count(*) FROM {t} WHERE {cond}")
    return dict(db.query(" UNION ALL ".join(parts)))


def changed_since(db: PrivateDb, marks: dict[str, int | None]) -> dict[str, int]:
    """Rows strictly after each bookmark (what a lookback of zero would still need)."""
    parts = [f"SELECT '{t}', count(*) FROM {t} WHERE {col} > timestamptz 'epoch' + {int(marks[t])} * "
             f"interval '1 microsecond'" for t, (_, col) in SOURCES.items()]
    return dict(db.query(" UNION ALL ".join(parts)))


def vanished_keys(con, db: PrivateDb) -> dict[str, int]:
    """Keys in bronze that Postgres no longer has, per table (what detect_deletes must remove)."""
    out = {}
    for t, (keys, _) in SOURCES.items():
        k = ", ".join(keys)
        in_bronze = set(con.execute(f"SELECT {k} FROM bronze.{t}").fetchall())
        in_pg = set(db.query(f"SELECT {k} FROM {t}"))
        out[t] = len(in_bronze - in_pg)
    return out


def assert_source_counts(con, db: PrivateDb) -> None:
    """The facts hold exactly Postgres's payments and rentals."""
    pg = db.query("SELECT (SELECT count(*) FROM payment), (SELECT sum(amount) FROM payment), "
                  "(SELECT count(*) FROM rental)")[0]
    star = con.execute("SELECT (SELECT count(*) FROM gold.fact_sales), (SELECT sum(amount) FROM gold.fact_sales), "
                       "(SELECT count(*) FROM gold.fact_rental)").fetchone()
    assert tuple(star) == tuple(pg), f"star (payments, amount, rentals) {star} != Postgres {pg}"


def snapshot(con, prefix: str = "snap") -> list[tuple[str, str, str]]:
    """Copies every star table into temp tables: gold (bookkeeping aside) with every column, the
    bookmarks without run_id/updated_at, bronze without _run_id/_loaded_at, silver whole.
    Returns (copy, the table, its column list)."""
    out = []
    for schema in ("bronze", "silver", "gold"):
        for t in tables(con, schema):
            if schema == "gold" and t in ("pagila_runs", "pagila_check_results"):
                continue
            if schema == "gold" and t == "pagila_bookmarks":
                cols = "source_table, bookmark_column, high_water, high_water_us"
            elif schema == "bronze":
                cols = columns(con, con.execute("SELECT current_database()").fetchone()[0], schema, t,
                               exclude=("_run_id", "_loaded_at"))
            else:
                cols = "*"
            copy = f"{prefix}_{schema}_{t}"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {copy} AS SELECT {cols} FROM {schema}.{t}")
            out.append((copy, f"{schema}.{t}", cols))
    assert any(t == "gold.fact_sales" for _, t, _ in out)
    return out


def assert_unchanged(con, snap: list[tuple[str, str, str]], what: str) -> None:
    problems = []
    current = {f"{s}.{t}" for s in ("bronze", "silver", "gold") for t in tables(con, s)} - {
        "gold.pagila_runs", "gold.pagila_check_results"}
    if current != {t for _, t, _ in snap}:
        problems.append(f"tables differ: {sorted(current ^ {t for _, t, _ in snap})}")
    for copy, table, cols in snap:
        if table not in current:
            continue
        n, sample = diff_count(con, f"SELECT {cols} FROM {table}", f"FROM {copy}")
        if n:
            problems.append(f"{table}: {n} rows differ, e.g. {sample}")
    assert not problems, f"{what} changed the star:\n  " + "\n  ".join(problems)


def assert_no_duplicates(con) -> None:
    for table, key in (("gold.fact_sales", "payment_id"), ("gold.fact_rental", "rental_id")):
        n, d = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
        assert n == d, f"{table}: {n} rows for {d} {key}s"
    for t, (keys, _) in SOURCES.items():
        n, d = con.execute(f"SELECT count(*), count(DISTINCT ({', '.join(keys)})) FROM bronze.{t}").fetchone()
        assert n == d, f"bronze.{t}: {n} rows for {d} keys"


def assert_rerun_changes_nothing(con, dsn: str, **params) -> None:
    snap = snapshot(con, "rerun")
    versions = {dim: con.execute(f"SELECT count(*) FROM gold.{dim}").fetchone()[0] for dim in SCD2}
    steps = incremental(con, dsn, **params)
    assert FULL_STEP not in steps, steps
    assert_unchanged(con, snap, f"an incremental run without any change in Postgres ({params})")
    assert {dim: con.execute(f"SELECT count(*) FROM gold.{dim}").fetchone()[0] for dim in SCD2} == versions
    if params.get("detect_deletes"):
        assert all(steps[f"deletes.{t}"][0] == 0 for t in SOURCES), steps
    # rows read again by the lookback window but unchanged are not rewritten: bronze keeps the
    # run and load time of the run that brought them
    run = con.execute("SELECT max(run_id) FROM gold.pagila_runs").fetchone()[0]
    rewritten = {t: n for t in SOURCES
                 if (n := con.execute(f"SELECT count(*) FROM bronze.{t} WHERE _run_id = ?", [run]).fetchone()[0])}
    assert not rewritten, f"the rerun rewrote unchanged bronze rows: {rewritten}"
    assert_no_duplicates(con)


def last_run(con) -> tuple[int, dict[str, tuple]]:
    run = con.execute("SELECT max(run_id) FROM gold.pagila_runs").fetchone()[0]
    rows = con.execute('SELECT step, status, "rows", message FROM gold.pagila_runs WHERE run_id = ?', [run]).fetchall()
    return run, {s: (st, n, msg) for s, st, n, msg in rows}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def private_db(admin_dsn, pagila_gen_dsn):
    """private_db(scale) -> a new PrivateDb, loaded; all of them are dropped at the end."""
    if not GEN_BIN.exists():
        pytest.skip(f"{GEN_BIN} is not built (make gen)")
    made: list[PrivateDb] = []

    def make(scale: int) -> PrivateDb:
        db = PrivateDb(admin_dsn, scale)
        made.append(db)
        return db.create()

    yield make
    errors = []
    for db in made:
        try:
            db.drop()
        except Exception as e:  # noqa: BLE001 - report every database left behind
            errors.append(f"{db.name}: {redact(str(e))}")
    assert not errors, f"could not drop private databases: {errors}"


@pytest.fixture(scope="module")
def crash_db(private_db):
    """A bigger private database for the crash tests (their runs must take a while)."""
    return private_db(10)


# ----------------------------------------------------------------------------- equivalence, SCD2, reruns

ROUNDS = 10


def detect_on(r: int) -> bool:
    return r % 3 == 0 or r == ROUNDS


def lookback_of(r: int) -> str:
    return "0 seconds" if r % 4 == 0 else "10 minutes"


def hand_changes(r: int, db: PrivateDb, state: dict) -> list[str]:
    """Changes the simulator never makes, written after round r's simulate (as role pagila, the
    triggers stamp last_update): renames that reach many rows through joins (category, city,
    country, language), a store that moves, copies and customers that change store, rental
    durations (days_late), a new film with copies, links and entities deleted, a lone payment
    deleted. Deletes come just before rounds with detect_deletes, or earlier (found later).
    Returns what was done, for the failure message."""
    one = lambda sql, *p: db.query(sql, p or None)[0][0]  # noqa: E731
    done = []

    def run(label: str, sql: str, *params):
        db.query(sql + " RETURNING 1", params or None)
        done.append(f"round {r}: {label}")

    if r == 2:
        addr = one("INSERT INTO address (address, district, city_id, phone) VALUES ('1 Test Lane', 'Nowhere', "
                   "(SELECT min(city_id) FROM city), '') RETURNING address_id")
        # inactive: the simulator only rents to active customers, so it can be deleted later
        state["gone_customer"] = one(
            "INSERT INTO customer (store_id, first_name, last_name, email, address_id, activebool, active) "
            "VALUES (1, 'Gone', 'Soon', 'gone@example.org', %s, false, 0) RETURNING customer_id", addr)
        run("category renamed", "UPDATE category SET name = 'Renamed ' || name "
            "WHERE category_id = (SELECT min(category_id) FROM category)")
        run("rental_duration of 5 films", "UPDATE film SET rental_duration = rental_duration + 2 "
            "WHERE film_id IN (SELECT film_id FROM film ORDER BY film_id LIMIT 5)")
        run("a customer's home store", "UPDATE customer SET store_id = 3 - store_id WHERE customer_id = "
            "(SELECT min(customer_id) FROM customer WHERE store_id IN (1, 2) AND active = 1)")
        run("a film_category link deleted (found in round 3)", "DELETE FROM film_category WHERE film_id = "
            "(SELECT max(film_id) FROM film_category) AND category_id = (SELECT min(category_id) FROM film_category "
            "WHERE film_id = (SELECT max(film_id) FROM film_category))")
    elif r == 3:
        run("an inactive customer without rentals deleted", "DELETE FROM customer WHERE customer_id = %s",
            state["gone_customer"])
        film = one("SELECT min(film_id) FROM film_actor")
        run("a film's actor links deleted", "DELETE FROM film_actor WHERE film_id = %s", film)
        film = one("SELECT film_id FROM film_category fc WHERE EXISTS (SELECT 1 FROM inventory i JOIN rental r "
                   "USING (inventory_id) WHERE i.film_id = fc.film_id) ORDER BY film_id LIMIT 1")
        run("a rented film's category links deleted", "DELETE FROM film_category WHERE film_id = %s", film)
        actor = one("SELECT max(actor_id) FROM actor")
        db.query("DELETE FROM film_actor WHERE actor_id = %s RETURNING 1", [actor])
        run("an actor deleted", "DELETE FROM actor WHERE actor_id = %s", actor)
        run("a lone payment deleted (its rental stays)", "DELETE FROM payment WHERE payment_id = "
            "(SELECT min(payment_id) FROM payment WHERE rental_id IS NOT NULL)")
        run("a customer's city renamed", "UPDATE city SET city = city || ' Renamed' WHERE city_id = "
            "(SELECT a.city_id FROM customer c JOIN address a USING (address_id) ORDER BY c.customer_id "
            "LIMIT 1 OFFSET 10)")
    elif r == 4:
        run("store 1 moves (its address changes)", "UPDATE address SET address = 'Moved ' || address "
            "WHERE address_id = (SELECT address_id FROM store WHERE store_id = 1)")
        run("a customer's country renamed", "UPDATE country SET country = country || ' Renamed' WHERE country_id = "
            "(SELECT ci.country_id FROM customer c JOIN address a USING (address_id) JOIN city ci USING (city_id) "
            "ORDER BY c.customer_id LIMIT 1 OFFSET 20)")
        run("a rented copy moves to the other store", "UPDATE inventory SET store_id = 3 - store_id "
            "WHERE inventory_id = (SELECT i.inventory_id FROM inventory i WHERE i.store_id IN (1, 2) "
            "AND EXISTS (SELECT 1 FROM rental r WHERE r.inventory_id = i.inventory_id) "
            "AND NOT EXISTS (SELECT 1 FROM rental r WHERE r.inventory_id = i.inventory_id AND r.return_date IS NULL) "
            "ORDER BY 1 LIMIT 1)")
    elif r == 5:
        film = one("INSERT INTO film (title, description, release_year, language_id, rental_duration, rental_rate, "
                   "length, replacement_cost, rating) VALUES ('TEST FILM', 'Made by the test', 2024, "
                   "(SELECT min(language_id) FROM language), 3, 0.99, 90, 9.99, 'PG') RETURNING film_id")
        db.query("INSERT INTO inventory (film_id, store_id) VALUES (%s, 1), (%s, 2) RETURNING 1", [film, film])
        db.query("INSERT INTO film_category (film_id, category_id) VALUES (%s, (SELECT max(category_id) FROM "
                 "category)) RETURNING 1", [film])
        run("a new film with two copies, a category and an actor",
            "INSERT INTO film_actor (actor_id, film_id) VALUES ((SELECT min(actor_id) FROM actor), %s)", film)
    elif r == 6:
        run("a language renamed (every film in it)", "UPDATE language SET name = 'Klingon' "
            "WHERE language_id = (SELECT min(language_id) FROM language)")
        run("one of a film's two categories deleted", "DELETE FROM film_category WHERE (film_id, category_id) = "
            "(SELECT film_id, max(category_id) FROM film_category GROUP BY film_id HAVING count(*) > 1 "
            "ORDER BY film_id LIMIT 1)")
    elif r == 7:
        run("a second category for a film", "INSERT INTO film_category (film_id, category_id) "
            "SELECT min(film_id), (SELECT max(category_id) FROM category) FROM film_category "
            "WHERE film_id NOT IN (SELECT film_id FROM film_category WHERE category_id = "
            "(SELECT max(category_id) FROM category))")
        run("another category renamed", "UPDATE category SET name = name || ' Too' "
            "WHERE category_id = (SELECT min(category_id) + 1 FROM category)")
        run("a staff member of a store without copies leaves", "UPDATE staff SET active = false WHERE staff_id = "
            "(SELECT min(staff_id) FROM staff WHERE active AND store_id NOT IN (SELECT store_id FROM inventory) "
            "AND staff_id NOT IN (SELECT manager_staff_id FROM store))")
    elif r == 8:
        run("the deleted customer comes back (same id)", "INSERT INTO customer (customer_id, store_id, first_name, "
            "last_name, email, address_id, activebool, active) SELECT %s, 2, 'Back', 'Again', 'back@example.org', "
            "min(address_id), false, 0 FROM address WHERE address = '1 Test Lane'", state["gone_customer"])
        run("a returned rental changes customer", "UPDATE rental SET customer_id = customer_id + 1 WHERE rental_id = "
            "(SELECT min(rental_id) FROM rental WHERE return_date IS NOT NULL AND customer_id < "
            "(SELECT max(customer_id) FROM customer) - 10)")
    return done


def test_incremental_rounds_match_a_full_build(private_db, extension_path, tmp_path):
    db = private_db(1)
    inc_path = tmp_path / "incremental.duckdb"
    con = connect(extension_path, str(inc_path))
    full_build(con, db.dsn)
    assert_rerun_changes_nothing(con, db.dsn)  # right after a full build

    summary = []
    changes: list[str] = []
    state: dict = {}
    simulated = {"address_changes": 0, "active_changes": 0, "deleted_rentals": 0}
    for r in range(1, ROUNDS + 1):
        delete_rate = 0.05 if r % 3 == 2 else 0.0
        counts = db.simulate(events=150, seed=r, delete_rate=delete_rate)
        for k in simulated:
            simulated[k] += max(counts[k], 0)
        changes += hand_changes(r, db, state)
        detect, lookback = detect_on(r), lookback_of(r)

        marks = bookmarks(con)
        expected = expected_window(db, marks, snapshot_time(con), lookback)
        fresh = changed_since(db, marks)
        gone = vanished_keys(con, db) if detect else None

        steps = incremental(con, db.dsn, lookback=lookback, detect_deletes=detect)
        assert FULL_STEP not in steps
        read = {t: steps[f"bronze.{t}"][0] for t in SOURCES}
        assert read == expected, (f"round {r}: rows read (bronze.<t> steps) differ from the rows past the "
                                  f"bookmarks or within lookback '{lookback}' of the last snapshot: {read} vs "
                                  f"Postgres {expected}")
        if lookback == "0 seconds":
            assert read == fresh, (r, read, fresh)
        elif r > 1:
            # the window reaches back before the bookmarks: rows of the last round are read again
            assert read["rental"] > fresh["rental"] and read["payment"] > fresh["payment"], (r, read, fresh)
        # the bookmarks moved to the newest rows read (wall-clock timestamps of this round)
        new_marks = bookmarks(con)
        assert new_marks["rental"] > marks["rental"] and new_marks["payment"] > marks["payment"], (marks, new_marks)
        pg_marks = dict(db.query(" UNION ALL ".join(
            f"SELECT '{t}', (extract(epoch FROM max({c})) * 1000000)::bigint FROM {t}"
            for t, (_, c) in SOURCES.items())))
        assert new_marks == pg_marks, f"round {r}: bookmarks {new_marks} != max() in Postgres {pg_marks}"
        if detect:
            deleted = {t: steps[f"deletes.{t}"][0] for t in SOURCES}
            assert deleted == gone, f"round {r}: deletes.<t> rows {deleted} != keys Postgres lost {gone}"
            assert_source_counts(con, db)
        else:
            assert not [s for s in steps if s.startswith("deletes.")], steps
        summary.append((r, lookback, detect, read["rental"], read["payment"],
                        steps.get("deletes.rental", (None,))[0]))
        if r == 5:
            assert_rerun_changes_nothing(con, db.dsn)  # without detect_deletes, default lookback

    print("round, lookback, detect_deletes, rentals read, payments read, rentals deleted:", *summary, sep="\n  ")
    print("changes besides the simulator's:", *changes, sep="\n  ")
    assert len(changes) == 21, changes
    assert simulated["address_changes"] > 0 and simulated["active_changes"] > 0, simulated
    assert simulated["deleted_rentals"] > 0, simulated
    assert sum(s[5] or 0 for s in summary) > 0, "no round removed a deleted rental"

    # SCD2: customers that moved or changed their active flag have several versions, the facts
    # before the change point at the old one, those after at the new one
    multi = assert_scd2_sound(con)
    print("entities with several versions:", multi)
    assert multi["dim_customer"] > 0 and multi["dim_store"] > 0, multi
    assert con.execute("SELECT list(is_deleted ORDER BY valid_from) FROM gold.dim_customer WHERE customer_id = ?",
                       [state["gone_customer"]]).fetchone()[0] == [True, False], "deleted, then back: two versions"
    split = customer_version_split(con)
    assert split, "no customer with payments both before and after a change of version"

    # a rerun right after the last round changes nothing
    assert_rerun_changes_nothing(con, db.dsn, detect_deletes=True)
    assert_checks_pass(con, db.dsn, "incremental star")
    con.close()

    assert_equals_full_build(extension_path, inc_path, tmp_path, db.dsn)


def test_incremental_runs_during_live_writes(private_db, extension_path, tmp_path):
    """Incremental runs back to back while two simulators write (two writers: transactions
    commit out of last_update order, the lookback's case), then one more after they stop: the
    star equals a full build, nothing lost, nothing doubled."""
    db = private_db(1)
    inc_path = tmp_path / "incremental.duckdb"
    con = connect(extension_path, str(inc_path))
    full_build(con, db.dsn)
    # The writers run until at least three incremental runs (and six seconds) have gone by,
    # however slow the machine: then SIGTERM, which the simulator answers by stopping between
    # transactions and exiting 0.
    writers = [subprocess.Popen([str(GEN_BIN), "simulate", "--rate", "100/s", "--duration", "120s", "--seed", str(seed),
                                 "--delete-rate", "0.02", "--quiet"], env=db.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for seed in (31, 32)]
    runs = []
    started = time.monotonic()
    try:
        while any(w.poll() is None for w in writers):
            steps = incremental(con, db.dsn, detect_deletes=len(runs) % 2 == 1)
            runs.append(steps["bronze.rental"][0])
            if len(runs) >= 3 and time.monotonic() - started >= 6:
                for w in writers:
                    w.terminate()
    finally:
        for w in writers:
            if w.poll() is None:
                w.terminate()
            out, _ = w.communicate(timeout=30)
            assert w.returncode == 0, redact(out)[-2000:]
    assert len(runs) >= 3, f"only {len(runs)} runs while the simulators wrote"
    assert sum(runs) > 0, runs
    incremental(con, db.dsn, detect_deletes=True)
    assert_source_counts(con, db)
    assert_no_duplicates(con)
    assert_scd2_sound(con)
    assert_checks_pass(con, db.dsn, "after the live writes")
    con.close()
    assert_equals_full_build(extension_path, inc_path, tmp_path, db.dsn)


def test_changed_source_columns_ask_for_a_full_build(private_db, extension_path, tmp_path):
    """A source table that gained, lost or retyped a column since bronze was loaded cannot be merged
    row by row: the incremental run fails saying which table and what to do, changes nothing, and a
    full build then takes the new shape."""
    db = private_db(1)
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    full_build(con, db.dsn)
    marks = bookmarks(con)
    with psycopg.connect(db.dsn, autocommit=True) as pg:
        pg.execute("ALTER TABLE customer ADD COLUMN loyalty int DEFAULT 0")
    db.query("UPDATE customer SET loyalty = 1 WHERE customer_id < 5 RETURNING 1")
    with pytest.raises(duckdb.Error) as e:
        build(con, db.dsn, mode="incremental")
    msg = redact(str(e.value))
    assert "step bronze.customer failed" in msg and "the columns of Postgres table customer are not those of " \
        "bronze.customer any more" in msg and "loyalty INTEGER" in msg and "run a full build (mode := 'full')" in msg, msg
    assert bookmarks(con) == marks
    assert con.execute("SELECT status FROM gold.pagila_runs WHERE step = 'build' ORDER BY run_id DESC LIMIT 1").fetchone() \
        == ("FAILED",)
    full_build(con, db.dsn)
    assert con.execute("SELECT count(*) FILTER (WHERE loyalty = 1) FROM bronze.customer").fetchone()[0] == 4
    incremental(con, db.dsn)
    # a retyped column too (integer -> bigint)
    with psycopg.connect(db.dsn, autocommit=True) as pg:
        pg.execute("ALTER TABLE rental ALTER COLUMN staff_id TYPE bigint")
    with pytest.raises(duckdb.Error, match=r"table rental are not those of bronze\.rental.*staff_id BIGINT"):
        build(con, db.dsn, mode="incremental")
    full_build(con, db.dsn)
    incremental(con, db.dsn)
    assert_checks_pass(con, db.dsn, "after the full builds")
    con.close()


def test_lookback_reads_late_commits(private_db, extension_path, tmp_path):
    """A transaction that started before a run's snapshot but commits after it stamps its rows
    with its start, older than the bookmark another transaction moved in the meantime: only the
    lookback (before the last snapshot) brings it in."""
    db = private_db(1)
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    full_build(con, db.dsn)
    late_id, early_id = (r[0] for r in db.query("SELECT customer_id FROM customer ORDER BY customer_id LIMIT 2"))

    late = psycopg.connect(db.dsn)  # a transaction: the trigger's last_update = now() = its start
    try:
        late.execute("UPDATE customer SET first_name = 'Latecomer' WHERE customer_id = %s", [late_id])
        time.sleep(0.05)
        db.query("UPDATE customer SET first_name = 'Earlybird' WHERE customer_id = %s RETURNING 1", [early_id])
        steps = incremental(con, db.dsn)  # its snapshot sees the early change, not the late one
        assert steps["bronze.customer"][0] == 1, steps["bronze.customer"]
        late.commit()
    finally:
        late.close()
    (late_us, early_us), = db.query(
        "SELECT (SELECT (extract(epoch FROM last_update) * 1000000)::bigint FROM customer WHERE customer_id = %s), "
        "(SELECT (extract(epoch FROM last_update) * 1000000)::bigint FROM customer WHERE customer_id = %s)",
        [late_id, early_id])
    assert late_us < early_us < snapshot_time(con)
    assert bookmarks(con)["customer"] == early_us  # the late row is behind the bookmark now

    def first_names():
        return dict(con.execute("SELECT customer_id, first_name FROM gold.dim_customer WHERE customer_id IN (?, ?) "
                                "AND is_current", [late_id, early_id]).fetchall())

    assert first_names()[early_id] == "Earlybird"
    assert first_names()[late_id] != "Latecomer"

    # without a lookback the late row, older than the bookmark and than the last snapshot, is not read
    expected = expected_window(db, bookmarks(con), snapshot_time(con), "0 seconds")
    steps = incremental(con, db.dsn, lookback="0 seconds")
    assert steps["bronze.customer"][0] == expected["customer"] == 0, (steps["bronze.customer"], expected)
    assert first_names()[late_id] != "Latecomer"

    # the lookback reaches back to it (and to the early row: the overlap changes nothing)
    expected = expected_window(db, bookmarks(con), snapshot_time(con), "10 minutes")
    steps = incremental(con, db.dsn, lookback="10 minutes")
    assert steps["bronze.customer"][0] == expected["customer"] == 2, (steps["bronze.customer"], expected)
    assert first_names() == {late_id: "Latecomer", early_id: "Earlybird"}
    assert con.execute("SELECT count(*) FROM gold.dim_customer WHERE customer_id IN (?, ?)",
                       [late_id, early_id]).fetchone()[0] == 2, "a first-name change opened a version"
    assert_checks_pass(con, db.dsn, "after the late commit")
    con.close()


def test_payment_with_an_earlier_date_is_read(private_db, extension_path, tmp_path):
    """payment has no last_update; its bookmark is the pair (payment_date, payment_id) "read in the
    order of its primary key", so that payment rows past it "are new whatever their date's place"
    (commit aeefafc). A payment recorded after the last run but dated before the bookmark (and
    before the lookback), with a new payment_id, must reach the star: nothing is lost."""
    db = private_db(1)
    inc_path = tmp_path / "incremental.duckdb"
    con = connect(extension_path, str(inc_path))
    full_build(con, db.dsn)
    db.simulate(events=50, seed=7)  # the bookmark moves to now
    incremental(con, db.dsn)
    (pid, pdate), = db.query(
        "INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) "
        "SELECT customer_id, staff_id, rental_id, 1.23, payment_date + interval '1 hour' FROM payment "
        "WHERE payment_date < now() - interval '1 year' ORDER BY payment_id LIMIT 1 RETURNING payment_id, payment_date")
    assert pid > max(i for (i,) in db.query("SELECT payment_id FROM payment WHERE payment_id <> %s", [pid]))
    steps = incremental(con, db.dsn)
    found = con.execute("SELECT count(*) FROM gold.fact_sales WHERE payment_id = ?", [pid]).fetchone()[0]
    assert found == 1, (f"payment {pid} (new id, dated {pdate}) was not read: bronze.payment read "
                        f"{steps['bronze.payment'][0]} rows")
    assert_source_counts(con, db)
    con.close()


def test_overwritten_attributes_reach_every_version(private_db, extension_path, tmp_path):
    """A type-1 change (e-mail, name) of a customer with history reaches all of its versions and
    nothing else: dim_customer rewrites that customer's rows (deleted and inserted again, not
    updated in place), so keys, validity ranges and tracked attributes must come back as they
    were, and every other row must stay as it is."""
    db = private_db(1)
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    full_build(con, db.dsn)
    cid, other_addr = db.query(
        "SELECT c.customer_id, (SELECT min(address_id) FROM address WHERE address_id <> c.address_id) "
        "FROM customer c WHERE c.active = 1 ORDER BY c.customer_id LIMIT 1")[0]
    # a tracked change first: the customer gets a second version
    db.query("UPDATE customer SET address_id = %s WHERE customer_id = %s RETURNING 1", [other_addr, cid])
    incremental(con, db.dsn)
    versions = ("SELECT customer_key, valid_from, valid_to, is_current, is_deleted, active, home_store_id, "
                "address_id, address, city, country FROM gold.dim_customer WHERE customer_id = ? ORDER BY valid_from")
    before = con.execute(versions, [cid]).fetchall()
    assert len(before) == 2 and [v[3] for v in before] == [False, True], before
    others = ("SELECT count(*), sum(hash(COLUMNS(*))) FROM gold.dim_customer "
              "WHERE customer_id IS DISTINCT FROM ?")
    others_before = con.execute(others, [cid]).fetchall()
    facts = "SELECT count(*), sum(customer_key) FROM gold.fact_sales WHERE customer_key IN " \
            "(SELECT customer_key FROM gold.dim_customer WHERE customer_id = ?)"
    facts_before = con.execute(facts, [cid]).fetchall()

    db.query("UPDATE customer SET first_name = 'Renamed', email = 'renamed@example.org' "
             "WHERE customer_id = %s RETURNING 1", [cid])
    incremental(con, db.dsn)
    assert con.execute(versions, [cid]).fetchall() == before, "keys, validity or tracked attributes changed"
    assert con.execute("SELECT DISTINCT first_name, full_name, email FROM gold.dim_customer WHERE customer_id = ?",
                       [cid]).fetchall() == [("Renamed", "Renamed " + db.query(
                           "SELECT last_name FROM customer WHERE customer_id = %s", [cid])[0][0],
                           "renamed@example.org")]
    assert con.execute(others, [cid]).fetchall() == others_before, "another customer's rows changed"
    assert con.execute(facts, [cid]).fetchall() == facts_before
    assert_scd2_sound(con)
    assert_rerun_changes_nothing(con, db.dsn)
    con.close()


def test_a_change_staging_drops_stops_at_bronze(private_db, extension_path, tmp_path):
    """film.fulltext is not staged: a change to it alone reaches bronze and nothing after it. The
    staging models find the keys to rewrite by comparing each restaged row with the staged one,
    column by column; a comparison that saw a difference where there is none (or the reverse)
    would show here as a rewritten film, or as a stale one."""
    db = private_db(1)
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    full_build(con, db.dsn)
    fid = db.query("UPDATE film SET title = title || ' II' WHERE film_id = (SELECT min(film_id) FROM film) "
                   "RETURNING film_id")[0][0]
    steps = incremental(con, db.dsn)
    assert steps["silver.stg_film"][0] == 1, steps["silver.stg_film"]
    stg_film = "SELECT count(*), sum(hash(COLUMNS(*))) FROM silver.stg_film"
    dim_film = "SELECT count(*), sum(hash(COLUMNS(*))) FROM gold.dim_film"
    before = con.execute(stg_film).fetchall(), con.execute(dim_film).fetchall()
    bronze_text = "SELECT fulltext FROM bronze.film WHERE film_id = ?"
    old_text = con.execute(bronze_text, [fid]).fetchone()[0]

    # fulltext alone, last_update kept (the table's triggers would set both): the next run reads
    # the film again only through its lookback window
    db.execute("ALTER TABLE film DISABLE TRIGGER USER")
    db.query("UPDATE film SET fulltext = to_tsvector('english', 'only bronze sees this') "
             "WHERE film_id = %s RETURNING 1", [fid])
    db.execute("ALTER TABLE film ENABLE TRIGGER USER")
    steps = incremental(con, db.dsn)
    assert steps["bronze.film"][0] >= 1, steps["bronze.film"]
    new_text = con.execute(bronze_text, [fid]).fetchone()[0]
    assert new_text != old_text, old_text
    assert new_text == db.query("SELECT fulltext::text FROM film WHERE film_id = %s", [fid])[0][0]
    assert steps["silver.stg_film"][0] == 0, steps["silver.stg_film"]
    assert steps["gold.dim_film"][0] == 0, steps["gold.dim_film"]
    assert (con.execute(stg_film).fetchall(), con.execute(dim_film).fetchall()) == before
    assert_rerun_changes_nothing(con, db.dsn)
    con.close()


def test_scd2_check_covers_the_runs_scope(private_db, extension_path, tmp_path):
    """The scd2_history check of an incremental run looks at the entities the run could change
    (its SCD2 scope); pagila_check() and a full build look at every entity. A broken history is
    caught by the first incremental run that touches the customer, by pagila_check() at once, and
    by a full build; a failed run leaves the star as it was."""
    db = private_db(1)
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    full_build(con, db.dsn)
    touched, untouched = (r[0] for r in db.query(
        "SELECT customer_id FROM customer WHERE active = 1 ORDER BY customer_id LIMIT 2"))

    def break_history(customer_id: int) -> None:
        # a first version that no longer starts at the beginning of time
        n = con.execute("UPDATE gold.dim_customer SET valid_from = TIMESTAMP '1950-01-01' "
                        "WHERE customer_id = ? AND valid_from = TIMESTAMP '1900-01-01'", [customer_id]).fetchone()[0]
        assert n == 1

    def failing(rows) -> dict[str, str]:
        return {c: actual for c, _, actual, ok in rows if not ok}

    break_history(untouched)
    assert failing(con.execute("SELECT * FROM pagila_check(dsn := ?)", [db.dsn]).fetchall()) == {
        "scd2_intervals:dim_customer": "1"}
    # a run that does not touch that customer does not look at it
    steps = incremental(con, db.dsn)
    assert steps["checks"][1] == "FINISHED"

    break_history(touched)
    db.query("UPDATE customer SET active = 0 WHERE customer_id = %s RETURNING 1", [touched])
    before = snapshot(con)
    with pytest.raises(duckdb.Error, match=r"scd2_intervals:dim_customer \(expected 0, got 1\)"):
        build(con, db.dsn, mode="incremental")
    assert_unchanged(con, before, "the incremental run whose check failed")
    with pytest.raises(duckdb.Error, match=r"scd2_intervals:dim_customer \(expected 0, got 2\)"):
        build(con, db.dsn)
    assert_unchanged(con, before, "the full build whose check failed")
    con.close()


def test_star_with_the_older_bookmarks_layout_keeps_building(extension_path, pagila_gen_dsn, tmp_path):
    """A star whose gold.pagila_bookmarks has the issue's six columns (source_table,
    bookmark_column, high_water, high_water_us, run_id, updated_at: what pagila_star wrote before
    snapshot_us and high_water_id existed) goes on building, incrementally and in full, like the dimensions that
    gain their SCD2 columns with ADD COLUMN IF NOT EXISTS. Reads pagila_gen only."""
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    full_build(con, pagila_gen_dsn)
    con.execute("CREATE OR REPLACE TABLE gold.pagila_bookmarks AS SELECT source_table, bookmark_column, high_water, "
                "high_water_us, run_id, updated_at FROM gold.pagila_bookmarks")
    marks = bookmarks(con)
    snap = snapshot(con, "old")
    problems = []
    try:
        incremental(con, pagila_gen_dsn)
        assert_unchanged(con, snap, "an incremental run on a star with the older bookmarks")
        assert bookmarks(con) == marks
    except (duckdb.Error, AssertionError) as e:
        problems.append(f"incremental: {redact(str(e))[:300]}")
    try:
        full_build(con, pagila_gen_dsn)
        assert bookmarks(con) == marks
    except (duckdb.Error, AssertionError) as e:
        problems.append(f"full: {redact(str(e))[:300]}")
    con.close()
    assert not problems, "a star with the older bookmarks layout no longer builds:\n  " + "\n  ".join(problems)


# ----------------------------------------------------------------------------- crash safety


class CopyWatcher(threading.Thread):
    """Polls (every 2 ms) for an active COPY of ours on `dbname` whose query matches `pattern`,
    and calls act(pid, query) once on the first one seen."""

    def __init__(self, admin_dsn: str, dbname: str, pattern: str, act):
        super().__init__(daemon=True)
        self.pg = psycopg.connect(admin_dsn, autocommit=True)
        self.dbname, self.pattern, self.act = dbname, re.compile(pattern), act
        self.stop = threading.Event()
        self.hit: tuple[int, str] | None = None

    def run(self):
        try:
            while not self.stop.is_set() and self.hit is None:
                for pid, query in self.pg.execute(
                        "SELECT pid, query FROM pg_stat_activity WHERE datname = %s "
                        "AND application_name = 'pagila_star' AND state = 'active' AND query ILIKE 'COPY%%'",
                        [self.dbname]).fetchall():
                    if self.pattern.search(query):
                        self.hit = (pid, query)
                        self.act(pid, query)
                        break
                time.sleep(0.002)
        finally:
            self.pg.close()


def our_copies(admin_dsn: str, dbname: str) -> list[tuple]:
    with psycopg.connect(admin_dsn, autocommit=True) as pg:
        return pg.execute("SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND application_name = "
                          "'pagila_star' AND state = 'active' AND query ILIKE 'COPY%%'", [dbname]).fetchall()


def crash_incremental(con, db: PrivateDb, admin_dsn: str, make_act, seed0: int):
    """Simulates, then runs an incremental build with detect_deletes while a watcher waits for
    the COPY of payment or rental (late in the run: the bronze upserts of the tables before are
    done by then) and acts on it. Retries while the run outruns the watcher. Returns
    (the exception, the hit, the snapshot taken before, the run id before)."""
    for attempt in range(8):
        db.simulate(events=1000, seed=seed0 + attempt, delete_rate=0.01)
        before = snapshot(con, "before")
        run_before = last_run(con)[0]
        watcher = CopyWatcher(admin_dsn, db.name, r"\b(payment|rental)\b|payment_p\d", make_act(con))
        watcher.start()
        try:
            build(con, db.dsn, mode="incremental", detect_deletes=True)
        except duckdb.Error as e:
            print(f"attempt {attempt + 1}: hit {watcher.hit and watcher.hit[1][:120]!r}, "
                  f"error {redact(str(e))[:200]!r}")
            return e, watcher.hit, before, run_before
        finally:
            watcher.stop.set()
            watcher.join(10)
        print(f"attempt {attempt + 1}: the run finished (hit {watcher.hit and watcher.hit[1][:120]!r})")
        # the run won the race (or was hit after its last row): it must have been complete
        assert_source_counts(con, db)
    pytest.fail("never caught a COPY of payment or rental running: the incremental runs were too fast")


def assert_failed_run_left_nothing(con, before, run_before: int, what: str) -> dict[str, tuple]:
    assert_unchanged(con, before, what)
    run, steps = last_run(con)
    assert run == run_before + 1, (run, run_before)
    assert steps["build"][0] == "FAILED", steps
    assert all(st in ("FINISHED", "FAILED") for st, _, _ in steps.values()), steps
    assert "commit" not in steps and "bookmarks" not in steps, steps
    return steps


def test_backend_killed_mid_incremental_run(crash_db, extension_path, admin_dsn, tmp_path):
    db = crash_db
    inc_path = tmp_path / "incremental.duckdb"
    con = connect(extension_path, str(inc_path))
    full_build(con, db.dsn)
    killer = psycopg.connect(admin_dsn, autocommit=True)

    def make_act(_con):
        return lambda pid, _q: killer.execute("SELECT pg_terminate_backend(%s)", [pid])

    try:
        error, hit, before, run_before = crash_incremental(con, db, admin_dsn, make_act, seed0=100)
    finally:
        killer.close()
    assert hit, f"the run failed, but not because of us: {redact(str(error))}"
    message = str(error)
    m = re.match(r"(?:[A-Za-z ]+Error: )?pagila_build_star: step (bronze|deletes)\.(\w+) failed: ", message)
    assert m, redact(message)
    assert m.group(2) in ("payment", "rental"), (m.groups(), hit[1])
    assert re.search(r"terminat|connection", message, re.I), redact(message)
    assert os.environ["PAGILA_PG_PASSWORD"] not in message

    steps = assert_failed_run_left_nothing(con, before, run_before, "a run whose backend was killed")
    assert steps[f"{m.group(1)}.{m.group(2)}"][0] == "FAILED", steps
    assert wait_until(lambda: not our_copies(admin_dsn, db.name), 5), our_copies(admin_dsn, db.name)

    # the next run catches up: nothing lost, nothing doubled
    steps = incremental(con, db.dsn, detect_deletes=True)
    assert FULL_STEP not in steps
    assert_source_counts(con, db)
    assert_no_duplicates(con)
    assert_checks_pass(con, db.dsn, "after the catch-up run")
    con.close()
    assert_equals_full_build(extension_path, inc_path, tmp_path, db.dsn)


def test_interrupt_mid_incremental_run(crash_db, extension_path, admin_dsn, tmp_path):
    db = crash_db
    inc_path = tmp_path / "incremental.duckdb"
    con = connect(extension_path, str(inc_path))
    full_build(con, db.dsn)
    fired = []

    def make_act(c):
        def act(_pid, _q):
            # from a timer thread, as a user's Ctrl-C would come
            t = threading.Timer(0, c.interrupt)
            t.start()
            fired.append(time.monotonic())
        return act

    error, hit, before, run_before = crash_incremental(con, db, admin_dsn, make_act, seed0=200)
    assert hit and fired, f"the run failed, but not because of us: {redact(str(error))}"
    assert isinstance(error, duckdb.InterruptException), redact(repr(error))
    assert wait_until(lambda: not our_copies(admin_dsn, db.name), 5), \
        f"still copying 5 s after the interrupt: {our_copies(admin_dsn, db.name)}"

    steps = assert_failed_run_left_nothing(con, before, run_before, "an interrupted run")
    assert "interrupt" in (steps["build"][2] or "").lower(), steps

    # the same connection catches up
    steps = incremental(con, db.dsn, detect_deletes=True)
    assert FULL_STEP not in steps
    assert_source_counts(con, db)
    assert_no_duplicates(con)
    assert_checks_pass(con, db.dsn, "after the catch-up run")
    con.close()
    assert_equals_full_build(extension_path, inc_path, tmp_path, db.dsn)
