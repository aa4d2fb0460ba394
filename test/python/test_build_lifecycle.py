"""CALL pagila_build_star() over its lifecycle, against a real PostgreSQL.

What sqllogictest cannot express: a Postgres backend killed in the middle of a build, an
interrupted CALL, closing and reopening the database file (in this process and in another
one), a caller holding an open transaction, EXPLAIN, the checks' Postgres figures failing, and
the password never showing up.

Every test works on its own database file with a star from an earlier successful build,
and checks that a failed build leaves that star exactly as it was (row counts and a
checksum of every bronze, silver and gold table).

The builds log in as a throwaway role (created with PAGILA_ADMIN_DSN, member of role
pagila) so that pg_stat_activity shows which backends are ours even while other tests
build against the same server, and so that the password can hold characters that need
quoting in a DSN.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from conftest import connect

psycopg = pytest.importorskip("psycopg", reason="psycopg is needed to watch and kill backends")
from psycopg import sql as pgsql  # noqa: E402

ROLE = f"pagila_lifecycle_{os.getpid()}"
# Quoted in the DSN ('...' with \' and \\), and never to be shown anywhere.
PASSWORD = "Lc-s3cr3t p@ss'w%rd\\x"
WRONG_PASSWORD = "Wr0ng-s3cr3t p@ss'w%rd"
RUN_LOG_TABLES = ("pagila_runs", "pagila_check_results")


# ----------------------------------------------------------------------------- helpers


def dsn_value(value: str) -> str:
    """A libpq connection-string value, quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsn_param(dsn: str, key: str) -> str | None:
    m = re.search(rf"(?:^|\s){key}\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
    if not m:
        return None
    v = m.group(1)
    return re.sub(r"\\(.)", r"\1", v[1:-1]) if v.startswith("'") else v


def role_dsn(base_dsn: str, password: str = PASSWORD, user: str = ROLE) -> str:
    """base_dsn's server and database, logged in as the test role (or `user`)."""
    parts = [f"{k}={dsn_value(v)}" for k in ("host", "port", "dbname", "sslmode", "sslrootcert")
             if (v := dsn_param(base_dsn, k)) is not None]
    return " ".join(parts + [f"user={dsn_value(user)}", f"password={dsn_value(password)}"])


def build(con: duckdb.DuckDBPyConnection, dsn: str, **params) -> list[tuple]:
    named = "".join(f", {k} := ?" for k in params)
    return con.execute(f"CALL pagila_build_star(dsn := ?{named})", [dsn, *params.values()]).fetchall()


def star_tables(con) -> list[str]:
    rows = con.execute("""
        SELECT table_schema, table_name FROM information_schema.tables
        WHERE table_schema IN ('bronze', 'silver', 'gold') AND table_type = 'BASE TABLE'
        ORDER BY ALL""").fetchall()
    # __pagila_next_*: the tables a full build writes before it swaps them in (gone after it)
    return [f'"{s}"."{t}"' for s, t in rows if t not in RUN_LOG_TABLES and not t.startswith("__pagila_next_")]


def unfinished_tables(con) -> list[str]:
    """The tables of a full build that has not swapped them in yet."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '__pagila_next_')").fetchall()]


def fingerprint(con) -> dict[str, tuple]:
    """Row count and an order-independent checksum of every table of the star."""
    out = {}
    for t in star_tables(con):
        out[t] = con.execute(f"SELECT count(*), coalesce(sum(hash(x)), 0) FROM {t} AS x").fetchone()
    assert any("fact_sales" in t for t in out), out.keys()
    return out


def source_table_of(con, copy_query: str) -> str:
    """The bronze table a COPY fills: COPY (SELECT ... FROM public.payment_p2022_02) is payment's."""
    m = re.search(r'\bFROM\s+"?public"?\."?(\w+)"?', copy_query)
    assert m, copy_query
    relation = m.group(1)
    names = [t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'bronze'").fetchall()]
    owners = [t for t in names if relation == t or relation.startswith(t + "_")]
    assert owners, (relation, names)
    return max(owners, key=len)


def bronze_matches_source(con, dsn: str, table: str) -> bool:
    """bronze.<table> holds exactly the rows of the Postgres table (all its columns there)."""
    cols = [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'bronze' AND table_name = ? "
        "AND column_name NOT IN ('_run_id', '_loaded_at') ORDER BY ordinal_position", [table]).fetchall()]
    collist = ", ".join(f'"{c}"' for c in cols)
    n = con.execute(f"""
        SELECT count(*) FROM (
          (SELECT {collist} FROM bronze."{table}"
           EXCEPT ALL SELECT {collist} FROM pagila_extract(?, dsn := ?))
          UNION ALL
          (SELECT {collist} FROM pagila_extract(?, dsn := ?)
           EXCEPT ALL SELECT {collist} FROM bronze."{table}"))""",
                    [f"public.{table}", dsn, f"public.{table}", dsn]).fetchone()[0]
    return n == 0


def runs(con) -> list[tuple]:
    return con.execute("""SELECT run_id, step, status, "rows", message FROM gold.pagila_runs
                          ORDER BY run_id, started_at, step""").fetchall()


def run_rows(con, run_id: int) -> dict[str, tuple]:
    return {step: (status, message) for r, step, status, _, message in runs(con) if r == run_id}


def last_run_id(con) -> int:
    return con.execute("SELECT max(run_id) FROM gold.pagila_runs").fetchone()[0]


def wait_until(predicate, timeout: float, every: float = 0.05):
    """Polls predicate() until it returns something truthy; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(every)


class Backends:
    """The test role's Postgres backends, through a superuser connection."""

    def __init__(self, admin_dsn: str):
        self.pg = psycopg.connect(admin_dsn, autocommit=True)

    def ours(self, copy_only: bool = False, active_only: bool = False) -> list[tuple]:
        sql = ("SELECT pid, state, query FROM pg_stat_activity "
               "WHERE usename = %s AND application_name = 'pagila_star'")
        if active_only:
            sql += " AND state = 'active'"
        if copy_only:
            sql += " AND query ILIKE 'COPY%%'"
        return self.pg.execute(sql, [ROLE]).fetchall()

    def terminate(self, pid: int) -> bool:
        return bool(self.pg.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0])

    def close(self):
        self.pg.close()


class CopyKiller(threading.Thread):
    """Terminates the first COPY of ours that it sees running (polls every 2 ms)."""

    def __init__(self, admin_dsn: str):
        super().__init__(daemon=True)
        self.backends = Backends(admin_dsn)
        self.stop = threading.Event()
        self.killed: list[tuple[int, str]] = []

    def run(self):
        try:
            while not self.stop.is_set() and not self.killed:
                for pid, _, query in self.backends.ours(copy_only=True, active_only=True):
                    if self.backends.terminate(pid):
                        self.killed.append((pid, query))
                        break
                time.sleep(0.002)
        finally:
            self.backends.close()


def assert_no_secret(text, where: str):
    text = "" if text is None else str(text)
    for secret in (PASSWORD, WRONG_PASSWORD, os.environ.get("PAGILA_PG_PASSWORD") or PASSWORD):
        assert secret not in text, f"a password shows in {where}: {text!r}"
    # the quoted form in the DSN, and the distinctive part of both test passwords
    assert "p@ss" not in text and "s3cr3t" not in text, f"a password shows in {where}: {text!r}"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lifecycle_role(admin_dsn, pagila_gen_dsn, pagila_dsn):
    """A login role that is a member of pagila (reads both databases), dropped at the end."""
    with psycopg.connect(admin_dsn, autocommit=True) as pg:
        pg.execute(f'DROP ROLE IF EXISTS "{ROLE}"')
        pg.execute(f"CREATE ROLE \"{ROLE}\" LOGIN PASSWORD {pgsql.quote(PASSWORD)} IN ROLE pagila")
    try:
        yield ROLE
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as pg:
            pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [ROLE])
            wait_until(lambda: not pg.execute("SELECT 1 FROM pg_stat_activity WHERE usename = %s",
                                              [ROLE]).fetchall(), 10)
            pg.execute(f'DROP ROLE IF EXISTS "{ROLE}"')


@pytest.fixture(scope="module")
def gen_dsn(lifecycle_role, pagila_gen_dsn) -> str:
    """The generated data as the test role."""
    return role_dsn(pagila_gen_dsn)


@pytest.fixture(scope="module")
def real_dsn(lifecycle_role, pagila_dsn) -> str:
    """The real Pagila as the test role."""
    return role_dsn(pagila_dsn)


@pytest.fixture
def backends(admin_dsn):
    b = Backends(admin_dsn)
    yield b
    b.close()


@pytest.fixture
def star(tmp_path, extension_path, gen_dsn):
    """A connection to a database file of its own holding a star built from the generated data."""
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    rows = build(con, gen_dsn)
    assert rows and all(r[3] == "FINISHED" for r in rows), rows
    yield con
    try:
        con.close()
    except duckdb.Error:
        pass


# ----------------------------------------------------------------------------- (a) killed backend


def test_backend_killed_mid_build(star, gen_dsn, admin_dsn, backends):
    con = star
    before = fingerprint(con)
    first_run = last_run_id(con)

    # A COPY of a small table can end before we see it, or be terminated after its last
    # row went out (then the build rightly succeeds with every row): try a few builds.
    for _attempt in range(6):
        killer = CopyKiller(admin_dsn)
        killer.start()
        try:
            build(con, gen_dsn)
        except duckdb.Error as e:
            error = str(e)
            break
        finally:
            killer.stop.set()
            killer.join(10)
        if killer.killed:
            # terminated too late to matter: the table must then be complete
            table = source_table_of(con, killer.killed[0][1])
            assert bronze_matches_source(con, gen_dsn, table), (
                f"the COPY of {table} was terminated, the build succeeded, and bronze.{table} "
                "differs from Postgres")
        before = fingerprint(con)  # that build went through: it is the star to protect now
    else:
        pytest.fail("never caught a COPY of ours running: the builds were too fast")
    assert killer.killed, f"the build failed, but not because of us: {error}"
    killed_query = killer.killed[0][1]

    # a clear error naming the step and the cause, without the password
    m = re.match(r"(?:[A-Za-z ]+Error: )?pagila_build_star: step bronze\.(\w+) failed: ", error)
    assert m, error
    table = m.group(1)
    # The failing step is the killed COPY's, or, when the COPY had already sent its last
    # row, the next extract that reuses that session (a build pools its sessions): then
    # the killed table's own step finished, complete.
    killed_table = source_table_of(con, killed_query)
    if killed_table != table:
        order = [t for t, in con.execute(
            "SELECT replace(step, 'bronze.', '') FROM gold.pagila_runs WHERE run_id = "
            "(SELECT max(run_id) FROM gold.pagila_runs) AND step LIKE 'bronze.%' ORDER BY started_at").fetchall()]
        assert killed_table in order and order.index(killed_table) < order.index(table), (table, killed_query, order)
    assert re.search(r"terminat|connection", error, re.IGNORECASE), error
    assert_no_secret(error, "the error")

    # the previous star, untouched
    assert fingerprint(con) == before

    # the run log: that step and the build FAILED, nothing left RUNNING, no later step started
    run = last_run_id(con)
    assert run > first_run
    steps = run_rows(con, run)
    assert steps["build"][0] == "FAILED", steps
    assert steps[f"bronze.{table}"][0] == "FAILED", steps
    assert sorted(s for s, (st, _) in steps.items() if st == "FAILED") == sorted(["build", f"bronze.{table}"])
    assert all(st in ("FINISHED", "FAILED") for st, _ in steps.values()), steps
    assert not any(s.startswith(("silver.", "gold.")) or s in ("checks", "commit") for s in steps), steps
    assert f"bronze.{table}" in steps["build"][1]
    for st, msg in steps.values():
        assert_no_secret(msg, "pagila_runs.message")

    # none of our backends is left copying
    assert wait_until(lambda: not backends.ours(copy_only=True, active_only=True), 5), backends.ours()

    # and the next build works
    rows = build(con, gen_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows
    assert run_rows(con, last_run_id(con))["build"][0] == "FINISHED"


# ----------------------------------------------------------------------------- the checks' figures fail


def test_source_figures_failing_fails_the_checks(star, gen_dsn, admin_dsn, pagila_gen_dsn, backends):
    """The figures the checks compare with (payment's count and sum, rental's count) are read
    from Postgres on a thread of their own while DuckDB runs the models. When that read fails,
    the build fails at its checks step with Postgres' reason, and the previous star stays.
    The failure here is deterministic: a role that may read payment's partitions (the extracts
    read those) but not the partitioned table payment itself (the figures are counted on it)."""
    con = star
    before = fingerprint(con)
    role = f"{ROLE}_nofig"
    with psycopg.connect(admin_dsn, autocommit=True) as pg:
        pg.execute(f'DROP ROLE IF EXISTS "{role}"')
        pg.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD {pgsql.quote(PASSWORD)}')
    try:
        with psycopg.connect(pagila_gen_dsn, autocommit=True) as pg:
            pg.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
            pg.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
            pg.execute(f'REVOKE SELECT ON public.payment FROM "{role}"')
        dsn = role_dsn(pagila_gen_dsn, user=role)

        with pytest.raises(duckdb.Error) as raised:
            build(con, dsn)
        error = str(raised.value)
        assert re.match(r"(?:[A-Za-z ]+Error: )?pagila_build_star: step checks failed: reading source figures: ",
                        error), error
        assert "permission denied for table payment" in error, error
        assert_no_secret(error, "the error")

        # the previous star, untouched
        assert fingerprint(con) == before

        # the run log: every extract and model finished, the checks and the build FAILED
        steps = run_rows(con, last_run_id(con))
        assert steps["build"][0] == "FAILED" and steps["checks"][0] == "FAILED", steps
        assert "permission denied for table payment" in steps["checks"][1], steps["checks"]
        done = [s for s in steps if s.startswith(("bronze.", "silver.", "gold."))]
        assert any(s.startswith("gold.fact_") for s in done), steps
        assert all(steps[s][0] == "FINISHED" for s in done), steps
        assert "commit" not in steps, steps
        for _, msg in steps.values():
            assert_no_secret(msg, "pagila_runs.message")

        # the thread's session is closed with it: no backend of that role is left
        with psycopg.connect(admin_dsn, autocommit=True) as pg:
            assert wait_until(lambda: not pg.execute(
                "SELECT 1 FROM pg_stat_activity WHERE usename = %s", [role]).fetchall(), 10)

        # and the next build works
        rows = build(con, gen_dsn)
        assert all(r[3] == "FINISHED" for r in rows), rows
    finally:
        with psycopg.connect(pagila_gen_dsn, autocommit=True) as pg:
            pg.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
            pg.execute(f'REVOKE ALL ON SCHEMA public FROM "{role}"')
        with psycopg.connect(admin_dsn, autocommit=True) as pg:
            pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
            wait_until(lambda: not pg.execute("SELECT 1 FROM pg_stat_activity WHERE usename = %s",
                                              [role]).fetchall(), 10)
            pg.execute(f'DROP ROLE IF EXISTS "{role}"')


# ----------------------------------------------------------------------------- rebuild


def test_rebuild_gives_identical_star(tmp_path, extension_path, real_dsn):
    """Every gold table (but the pagila_* bookkeeping) and every key map, found by name
    rather than listed, is identical after a second build from the same source: surrogate
    keys included."""
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    build(con, real_dsn)
    tables = [f'"{s}"."{t}"' for s, t in con.execute("""
        SELECT table_schema, table_name FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND ((table_schema = 'gold' AND table_name NOT LIKE 'pagila\\_%' ESCAPE '\\')
              OR (table_schema = 'silver' AND table_name LIKE 'keymap%'))
        ORDER BY ALL""").fetchall()]
    assert any("fact_sales" in t for t in tables) and any("keymap" in t for t in tables), tables
    con.execute("CREATE SCHEMA snap")
    for i, t in enumerate(tables):
        con.execute(f"CREATE TABLE snap.t{i} AS FROM {t}")
    rows = build(con, real_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows
    for i, t in enumerate(tables):
        diff = con.execute(f"SELECT count(*) FROM ((FROM {t} EXCEPT ALL FROM snap.t{i}) "
                           f"UNION ALL (FROM snap.t{i} EXCEPT ALL FROM {t}))").fetchone()[0]
        n = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        assert (t, diff) == (t, 0), f"{t}: {diff} of {n} rows differ after the rebuild"
        assert n > 0, t
    con.close()


def test_builds_at_once_on_one_database(tmp_path, extension_path, gen_dsn):
    """Builds started at the same moment on several connections of one database run one after
    the other, each under a run id of its own, and leave a whole star."""
    con = connect(extension_path, str(tmp_path / "star.duckdb"))
    build(con, gen_dsn)
    results, errors = [], []

    def one(mode: str):
        try:
            results.append(build(con.cursor(), gen_dsn, mode=mode))
        except duckdb.Error as e:  # pragma: no cover - reported below
            errors.append(str(e))

    threads = [threading.Thread(target=one, args=(m,)) for m in ("incremental", "full", "incremental", "full")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(results) == 4 and all(r[3] == "FINISHED" for rows in results for r in rows), results
    runs = con.execute("SELECT run_id, count(*) FILTER (WHERE step = 'build'), count(*) FILTER (WHERE status <> 'FINISHED') "
                       "FROM gold.pagila_runs GROUP BY run_id ORDER BY run_id").fetchall()
    assert runs == [(i, 1, 0) for i in range(1, 6)], runs
    checks = con.execute("SELECT count(*) FILTER (WHERE NOT ok) FROM pagila_check(dsn := ?)", [gen_dsn]).fetchone()[0]
    assert checks == 0
    con.close()


# ----------------------------------------------------------------------------- (b) close and reopen


def test_reopen_in_the_same_process(tmp_path, extension_path, real_dsn):
    path = str(tmp_path / "star.duckdb")
    con = connect(extension_path, path)
    build(con, real_dsn)
    before = fingerprint(con)
    con.close()

    con = connect(None, path)  # right after close, without the extension
    assert fingerprint(con) == before
    con.close()

    con = connect(extension_path, path)  # and with it: a second build works
    rows = build(con, real_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows
    assert [r[2] for r in runs(con) if r[1] == "build"] == ["FINISHED", "FINISHED"]
    con.close()

    con = duckdb.connect(path, read_only=True)  # another configuration
    assert con.execute("SELECT count(*) FROM gold.pagila_runs WHERE step = 'build'").fetchone()[0] == 2
    con.close()


CHILD_OPENER = textwrap.dedent("""
    import sys, time, duckdb
    path = sys.argv[1]
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()                       # the parent has closed its connection
    start = time.monotonic()
    first = None
    while True:
        try:
            con = duckdb.connect(path)
            n = con.execute("SELECT count(*) FROM gold.fact_sales").fetchone()[0]
            con.close()
            break
        except duckdb.Error as e:
            if first is None:
                first = str(e).splitlines()[0]
            if time.monotonic() - start > 10:
                print("FAILED", first); sys.exit(0)
            time.sleep(0.01)
    print("OPENED", n, round(time.monotonic() - start, 3), first or "")
""")


def test_another_process_opens_the_file_after_close(tmp_path, extension_path, real_dsn, python_exe):
    path = str(tmp_path / "star.duckdb")
    con = connect(extension_path, path)
    build(con, real_dsn)
    n = con.execute("SELECT count(*) FROM gold.fact_sales").fetchone()[0]
    # The child is started (and has imported duckdb) before we close, so that it opens the
    # file right after con.close() returns, as a script run next would.
    child = subprocess.Popen([python_exe, "-c", CHILD_OPENER, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        con.close()
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    words = out.split(maxsplit=3)
    assert words[0] == "OPENED", f"the other process never opened the file: {out}"
    assert int(words[1]) == n
    waited, first_error = float(words[2]), (words[3].strip() if len(words) > 3 else "")
    # The extension's own connections (the only way a CALL can run SQL through the C
    # API) are closed by a watcher once the user's last connection is gone, and DuckDB
    # then checkpoints and releases the file: within a fraction of a second on an idle
    # machine, not at the instant close() returns. The child retries every 10 ms to
    # measure it. The bound is 3 s: DuckDB's checkpoint at shutdown waits for the disk,
    # and with the test matrix's four cells loading the machine it took 1.05 to 1.37 s
    # in 5 of 16 runs of the DuckDB 1.4.4 cells on 2026-12-07 (one of them a clean-clone CI).
    # A file held by our connections stays locked until the process exits: still caught.
    assert waited < 3.0, (f"the file was still locked {waited:.3f}s after con.close(): {first_error}")


CHILD_BUILDER = textwrap.dedent("""
    import sys, duckdb
    path, ext, dsn, checkpoint = sys.argv[1:5]
    con = duckdb.connect(path, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{ext}'")
    con.execute("CALL pagila_build_star(dsn := ?)", [dsn]).fetchall()
    if checkpoint == "yes":
        con.execute("CHECKPOINT")
    con.close()
    # and exit at once, as a script or `duckdb -c` does
""")


@pytest.mark.parametrize("checkpoint", ["yes", "no"])
def test_short_process_leaves_a_readable_file(tmp_path, extension_path, gen_dsn, python_exe, checkpoint):
    """A process that builds and exits at once (before the watcher closes the extension's
    connections) leaves a file the next process reads in full. With CHECKPOINT after the
    CALL, as the README says, the database file alone holds the star: no WAL is left, and a
    copy of the file without its WAL has every table."""
    path = tmp_path / "star.duckdb"
    wal = Path(str(path) + ".wal")
    child = subprocess.run([python_exe, "-c", CHILD_BUILDER, str(path), extension_path, gen_dsn, checkpoint],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    con = connect(None, str(path), access_mode="READ_ONLY")  # the next process, without the extension
    expected = fingerprint(con)
    con.close()
    if checkpoint == "yes":
        assert not wal.exists() or wal.stat().st_size == 0, f"{wal.stat().st_size} bytes left in the WAL"
        alone = tmp_path / "copy.duckdb"
        alone.write_bytes(path.read_bytes())
        con = connect(None, str(alone), access_mode="READ_ONLY")
        assert fingerprint(con) == expected
        con.close()


# ----------------------------------------------------------------------------- (c) interrupt


def assert_interrupted_and_rolled_back(con, gen_dsn: str, before: dict, first_run: int) -> None:
    """After a build stopped early: the star is as it was (fingerprint `before`), the run after
    `first_run` is logged FAILED as interrupted with no step left RUNNING, and the next CALL
    builds normally."""
    assert fingerprint(con) == before
    run = last_run_id(con)
    assert run == first_run + 1
    steps = run_rows(con, run)
    assert steps["build"][0] == "FAILED", steps
    assert "interrupt" in (steps["build"][1] or "").lower(), steps
    assert all(st in ("FINISHED", "FAILED") for st, _ in steps.values()), steps
    rows = build(con, gen_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows


def test_interrupt_stops_the_build(star, gen_dsn, backends):
    con = star
    before = fingerprint(con)
    first_run = last_run_id(con)
    # Interrupt mid-build: once the build has committed its first __pagila_next_ table (an
    # extract), long before its last step, the swap. A fixed delay was flaky: on a loaded
    # machine the interrupt could land in the commit step, which then rightly wins.
    watcher = con.cursor()
    seen = threading.Event()
    fired = []

    def interrupt_mid_build():
        wait_until(lambda: seen.is_set() or unfinished_tables(watcher), 30, every=0.005)
        if not seen.is_set():
            fired.append(time.monotonic())
            con.interrupt()

    timer = threading.Thread(target=interrupt_mid_build)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(duckdb.InterruptException):
            build(con, gen_dsn)
    finally:
        seen.set()
        timer.join(35)
        watcher.close()
    assert fired, "the build never wrote a __pagila_next_ table"
    delay = fired[0] - start
    print(f"interrupted {delay:.2f}s into the build")
    elapsed = time.monotonic() - start
    assert elapsed - delay < 3, f"the CALL took {elapsed - delay:.2f}s to stop after the interrupt"

    # no COPY of ours left running in Postgres
    left = wait_until(lambda: not backends.ours(copy_only=True, active_only=True), 5)
    assert left, f"still copying 5 s after the interrupt: {backends.ours()}"

    # the previous star is in place, nothing half-written is left behind, the run is logged
    # FAILED, nothing left RUNNING; the connection and the extension are fine afterwards
    assert wait_until(lambda: not unfinished_tables(con), 5), unfinished_tables(con)
    assert_interrupted_and_rolled_back(con, gen_dsn, before, first_run)


def test_result_cut_short_rolls_the_build_back(star, gen_dsn, backends):
    """A query that stops reading the CALL's rows early (here LIMIT 1) ends the build there: the
    build is rolled back before the query returns, the previous star stays, the run is logged
    FAILED, no COPY of ours is left, and the next CALL builds normally."""
    con = star
    before = fingerprint(con)
    first_run = last_run_id(con)
    rows = con.execute("SELECT * FROM pagila_build_star(dsn := ?) LIMIT 1", [gen_dsn]).fetchall()
    assert len(rows) == 1 and rows[0][3] == "FINISHED", rows
    assert not unfinished_tables(con)
    left = wait_until(lambda: not backends.ours(copy_only=True, active_only=True), 5)
    assert left, f"still copying 5 s after the query returned: {backends.ours()}"
    assert_interrupted_and_rolled_back(con, gen_dsn, before, first_run)


# ----------------------------------------------------------------------------- (d) open transactions


def test_open_transaction_keeps_its_snapshot(star, gen_dsn):
    """A connection inside a transaction keeps seeing the star of its snapshot while another
    connection of the same database builds a new one; it sees the new star once it ends
    its transaction. (DuckDB's snapshot isolation: the snapshot starts at the transaction's
    first read.)"""
    con = star
    a = con.cursor()
    b = con.cursor()
    old_run = a.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall()
    assert len(old_run) == 1
    old_runs = a.execute("SELECT count(*) FROM gold.pagila_runs").fetchone()[0]
    old = fingerprint(a)

    a.execute("BEGIN TRANSACTION")
    assert a.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall() == old_run
    rows = build(b, gen_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows
    new_run = b.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall()
    assert new_run != old_run

    # A still sees the old star, and the old run log
    assert a.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall() == old_run
    assert fingerprint(a) == old
    assert a.execute("SELECT count(*) FROM gold.pagila_runs").fetchone()[0] == old_runs
    a.execute("COMMIT")
    # and the new one after its transaction
    assert a.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall() == new_run
    assert a.execute("SELECT count(*) FROM gold.pagila_runs").fetchone()[0] > old_runs


def test_call_inside_a_transaction_commits_on_its_own(star, gen_dsn):
    """The build runs in its own transaction on the extension's connection: a CALL inside
    the caller's transaction commits regardless of that transaction (a ROLLBACK does not undo
    it), and the caller sees the new star only after its transaction ends."""
    con = star
    old_run = con.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall()
    con.execute("BEGIN TRANSACTION")
    assert con.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall() == old_run
    rows = build(con, gen_dsn)
    assert rows[-1][0] == "commit" and rows[-1][3] == "FINISHED", rows
    assert con.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall() == old_run
    con.execute("ROLLBACK")
    new_run = con.execute("SELECT DISTINCT _run_id FROM bronze.payment").fetchall()
    assert new_run != old_run
    assert con.execute("SELECT status FROM gold.pagila_runs WHERE step = 'build' AND run_id = ?",
                       [new_run[0][0]]).fetchone()[0] == "FINISHED"


# ----------------------------------------------------------------------------- (e) EXPLAIN


EXPLAINED = [
    "EXPLAIN CALL pagila_build_star(dsn := {dsn})",
    "EXPLAIN SELECT * FROM pagila_build_star(dsn := {dsn})",
    "DESCRIBE SELECT * FROM pagila_build_star(dsn := {dsn})",
    "PREPARE build_later AS SELECT * FROM pagila_build_star(dsn := {dsn})",
]


def test_explain_does_not_build(star, gen_dsn, backends):
    """Nothing happens at bind: EXPLAIN, DESCRIBE and PREPARE neither build nor connect."""
    con = star
    before = fingerprint(con)
    log = runs(con)
    literal = "'" + gen_dsn.replace("'", "''") + "'"
    for sql in EXPLAINED:
        con.execute(sql.format(dsn=literal)).fetchall()
        time.sleep(0.5)  # a build started in the background would have logged by now
        assert runs(con) == log, sql
        assert fingerprint(con) == before, sql
        assert not backends.ours(), f"{sql} connected to Postgres"
    # the prepared statement does build once executed
    rows = con.execute("EXECUTE build_later").fetchall()
    assert rows and all(r[3] == "FINISHED" for r in rows), rows
    assert len(runs(con)) > len(log)


# ----------------------------------------------------------------------------- (f) no password anywhere


def all_text(con) -> list[tuple[str, str]]:
    """Every VARCHAR value of every table, and every view's SQL, with where it was found."""
    out = []
    for (schema, table, column) in con.execute("""
            SELECT table_schema, table_name, column_name FROM information_schema.columns
            WHERE data_type = 'VARCHAR' AND table_schema NOT IN ('information_schema', 'pg_catalog')
              AND table_name IN (SELECT table_name FROM information_schema.tables
                                 WHERE table_type = 'BASE TABLE' AND table_schema = columns.table_schema)
            """).fetchall():
        for (v,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}" '
                                f'WHERE "{column}" IS NOT NULL').fetchall():
            out.append((f"{schema}.{table}.{column}", v))
    for name, sql in con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall():
        out.append((f"view {name}", sql))
    return out


def test_password_never_shown(tmp_path, extension_path, gen_dsn, pagila_gen_dsn, python_exe):
    path = tmp_path / "star.duckdb"
    con = connect(extension_path, str(path))
    rows = build(con, gen_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows
    errors = []

    # a wrong password, in key/value and in URI form
    wrong = role_dsn(pagila_gen_dsn, WRONG_PASSWORD)
    host, port, db = (dsn_param(pagila_gen_dsn, k) for k in ("host", "port", "dbname"))
    from urllib.parse import quote
    uri = f"postgresql://{ROLE}:{quote(WRONG_PASSWORD, safe='')}@{host}:{port}/{db}"
    for dsn in (wrong, uri):
        with pytest.raises(duckdb.Error) as e:
            build(con, dsn)
        errors.append(str(e.value))
        assert "password authentication failed" in str(e.value), str(e.value)
    with pytest.raises(duckdb.Error) as e:
        con.execute("SELECT * FROM pagila_check(dsn := ?)", [wrong]).fetchall()
    errors.append(str(e.value))

    # a failure in the middle of a build (a model cannot replace a view), with the right password
    con.execute("DROP TABLE silver.stg_film_actor")
    con.execute("CREATE VIEW silver.stg_film_actor AS SELECT 1 AS film_id, 1 AS actor_id")
    with pytest.raises(duckdb.Error) as e:
        build(con, gen_dsn)
    errors.append(str(e.value))
    # found before any work
    assert "silver.stg_film_actor is a view" in str(e.value), str(e.value)
    assert not unfinished_tables(con)
    con.execute("DROP VIEW silver.stg_film_actor")
    # and a failure at the checks, with on_check_failure := 'warn' next
    con.execute("CREATE SCHEMA s4")
    con.execute("CREATE TABLE s4.keymap_film (film_id INTEGER, film_key INTEGER, first_run_id BIGINT)")
    con.execute("INSERT INTO s4.keymap_film VALUES (1, 1, 0), (1, 100000, 0)")
    with pytest.raises(duckdb.Error) as e:
        build(con, gen_dsn, silver="s4", gold="g4", bronze="b4", compat="c4")
    errors.append(str(e.value))
    build(con, gen_dsn, silver="s4", gold="g4", bronze="b4", compat="c4", on_check_failure="warn")
    rows = build(con, gen_dsn)
    assert all(r[3] == "FINISHED" for r in rows), rows

    for msg in errors:
        assert_no_secret(msg, "an error message")
    statuses = {r[2] for r in runs(con)}
    assert statuses == {"FINISHED", "FAILED"}, statuses
    failed = [r for r in runs(con) if r[2] == "FAILED"]
    assert len({r[0] for r in failed}) == 3, failed  # the two logins and the view
    checks = con.execute("SELECT * FROM pagila_check(dsn := ?, silver := 's4', gold := 'g4', "
                         "bronze := 'b4', compat := 'c4')", [gen_dsn]).fetchall()
    assert any(not ok for *_, ok in checks)
    for row in checks:
        assert_no_secret(row, "pagila_check()")
    for where, value in all_text(con):
        assert_no_secret(value, where)
    assert con.execute("SELECT count(*) FROM g4.pagila_check_results WHERE NOT ok").fetchone()[0] > 0
    con.close()

    # nor in the database file (once the database has been closed and checkpointed)
    opened = subprocess.run([python_exe, "-c", textwrap.dedent(f"""
        import time, duckdb
        for _ in range(500):
            try:
                duckdb.connect({str(path)!r}).close(); print("ok"); break
            except duckdb.Error:
                time.sleep(0.01)
        """)], capture_output=True, text=True, timeout=60)
    assert opened.stdout.strip() == "ok", opened.stderr
    data = Path(path).read_bytes()
    for secret in (PASSWORD, WRONG_PASSWORD, os.environ.get("PAGILA_PG_PASSWORD") or PASSWORD):
        assert secret.encode() not in data
