#!/usr/bin/env python3
"""The test matrix: every PostgreSQL (15, 18) x every DuckDB (1.4.4, 2.0.0).

For each cell it runs every test/sql/**/*.test through sqllogictest.py (one process per
file, so a crash fails one file, not the run) and pytest on test/python, with the
environment described in test/README.md. It starts the PostgreSQL servers itself
(extension-ci-tools/pg.py) and stops them at the end, also on failure and on Ctrl-C.

    python3 extension-ci-tools/run_tests.py                      # everything
    python3 extension-ci-tools/run_tests.py --pg 15 --duckdb 2.0.0 -k version
    python3 extension-ci-tools/run_tests.py --sql-only test/sql/extract/payment.test

The last line is always `N passed, N failed, N skipped` (sqllogictest files and pytest
tests, counted across the matrix); the exit status is non-zero when anything failed.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import fnmatch
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pg  # noqa: E402
from append_footer import cargo_version  # noqa: E402

REPO = HERE.parent
VENVS = {"1.4.4": REPO / "build" / "venv" / "duckdb-1.4.4", "2.0.0": REPO / "build" / "venv" / "duckdb-2.0.0"}
PG_VERSIONS = ["15", "18"]

_children: set[subprocess.Popen] = set()
_children_lock = threading.Lock()
_print_lock = threading.Lock()


def out(msg: str = "") -> None:
    with _print_lock:
        print(msg, flush=True)


def run_child(cmd: list[str], env: dict, timeout: float) -> tuple[int | None, str]:
    """Run a test process; returns (exit status or None on timeout, combined output)."""
    with tempfile.TemporaryFile(mode="w+") as buf:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=buf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=pg._pdeathsig_term)
        with _children_lock:
            _children.add(proc)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        finally:
            with _children_lock:
                _children.discard(proc)
        buf.seek(0)
        return rc, buf.read()


def kill_children() -> None:
    with _children_lock:
        procs = list(_children)
    for p in procs:
        pg.kill_tree(p, grace=2.0)


def cell_name(pgv: str, dv: str) -> str:
    return f"pg{pgv}/duckdb-{dv}"


def run_sql_file(path: Path, env: dict, cell: str, timeout: float) -> dict:
    rel = path.relative_to(REPO)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as jf:
        json_path = jf.name
    try:
        t0 = time.monotonic()
        rc, output = run_child([env["PAGILA_PYTHON"], str(HERE / "sqllogictest.py"), str(rel), "--json", json_path],
                               env, timeout)
        secs = time.monotonic() - t0
        result = {"file": str(rel), "status": "fail", "reason": ""}
        try:
            with open(json_path) as f:
                result = json.load(f)[0]
        except (OSError, ValueError, IndexError):
            if rc is None:
                result["reason"] = f"timed out after {timeout:.0f}s"
            elif rc < 0:
                result["reason"] = f"crashed with signal {-rc} ({signal.Signals(-rc).name})"
            else:
                result["reason"] = f"exited {rc} without a result"
            tail = "\n".join(output.strip().splitlines()[-25:])
            result["reason"] += ("\n" + tail) if tail else ""
    finally:
        os.unlink(json_path)
    tag = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[result["status"]]
    line = f"{tag} [{cell}] {rel} ({secs:.1f}s)"
    if result["status"] == "skip":
        line += f": {result['reason']}"
    if result["status"] == "fail":
        line += "\n    " + pg_redact(result["reason"]).replace("\n", "\n    ")
    out(line)
    result["cell"] = cell
    return result


def pg_redact(text: str) -> str:
    for secret in (pg.PAGILA_PASSWORD, pg.ADMIN_PASSWORD):
        text = text.replace(secret, "***")
    return text


def run_pytest(target: Path, env: dict, cell: str, kexpr: str | None, timeout: float, extra: list[str]) -> dict:
    """One pytest process per test file and cell: files run side by side, a crash costs one file."""
    rel = target.relative_to(REPO)
    with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as xf:
        xml_path = xf.name
    cmd = [env["PAGILA_PYTHON"], "-m", "pytest", str(rel), "-q", "-rfEs", "-p", "no:cacheprovider",
           f"--junitxml={xml_path}", *extra]
    if kexpr:
        cmd += ["-k", kexpr]
    t0 = time.monotonic()
    rc, output = run_child(cmd, env, timeout)
    secs = time.monotonic() - t0
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failed_names: list[str] = []
    try:
        root = ET.parse(xml_path).getroot()
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                counts["failed"] += 1
                failed_names.append(name)
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
        # collection errors show up as <error> without a testcase in some versions
        for suite in root.iter("testsuite"):
            extra_errors = int(suite.get("errors", 0)) - sum(
                1 for c in suite.iter("testcase") if c.find("error") is not None)
            if extra_errors > 0:
                counts["failed"] += extra_errors
                failed_names.append("(collection error)")
    except (OSError, ET.ParseError):
        pass
    finally:
        os.unlink(xml_path)
    problem = None
    if rc is None:
        problem = f"pytest timed out after {timeout:.0f}s"
    elif rc < 0:
        problem = f"pytest crashed with signal {-rc}"
    elif rc not in (0, 1, 5):  # 5: nothing collected (e.g. -k matched nothing)
        problem = f"pytest exited {rc}"
    elif rc == 1 and counts["failed"] == 0:
        problem = "pytest reported failure"
    if problem:
        counts["failed"] = max(counts["failed"], 1)
    status = "FAIL" if counts["failed"] else "PASS"
    out(f"{status} [{cell}] pytest {rel}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped ({secs:.1f}s)")
    if counts["failed"] or problem:
        tail = "\n".join(output.strip().splitlines()[-60:])
        out("    " + pg_redact((problem + "\n" if problem else "") + tail).replace("\n", "\n    "))
    counts["cell"] = cell
    counts["failed_names"] = failed_names
    return counts


def select_sql(k: str | None, paths: list[str]) -> list[Path]:
    if paths:
        files = []
        for p in paths:
            pp = (Path.cwd() / p).resolve()
            files += sorted(pp.rglob("*.test")) if pp.is_dir() else [pp]
    else:
        files = sorted((REPO / "test" / "sql").rglob("*.test"))
    if k:
        files = [f for f in files if k in str(f.relative_to(REPO)) or fnmatch.fnmatch(str(f.relative_to(REPO)), k)]
    return files


def pytest_files(k: str | None) -> list[Path]:
    return sorted((REPO / "test" / "python").rglob("test_*.py"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="only these .test files / folders (default: test/sql)")
    ap.add_argument("--pg", default=",".join(PG_VERSIONS), help="PostgreSQL versions, e.g. 15 or 15,18")
    ap.add_argument("--duckdb", default=",".join(VENVS), help="DuckDB versions, e.g. 2.0.0 or 1.4.4,2.0.0")
    ap.add_argument("-k", help="only .test files whose path contains (or globs) this; passed to pytest -k as well")
    ap.add_argument("--sql-only", action="store_true", help="skip pytest")
    ap.add_argument("--python-only", action="store_true", help="skip the sqllogictest files")
    ap.add_argument("--jobs", "-j", type=int, default=int(os.environ.get("PAGILA_TEST_JOBS", os.cpu_count() or 2)),
                    help="test processes at once (default: cores)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per .test file / pytest run")
    ap.add_argument("--extension", default=str(REPO / "build" / "release" / "pagila_star.duckdb_extension"))
    ap.add_argument("--scale", type=int, default=1, help="pagila-gen scale for db pagila_gen")
    ap.add_argument("--pytest-args", default="", help="extra pytest arguments (one string)")
    a = ap.parse_args()

    pg_versions = [v for v in a.pg.split(",") if v]
    duck_versions = [v for v in a.duckdb.split(",") if v]
    for v in duck_versions:
        if v not in VENVS:
            ap.error(f"unknown DuckDB version {v} (have {', '.join(VENVS)})")
        if not (VENVS[v] / "bin" / "python").exists():
            print(f"run_tests: {VENVS[v]} is missing: run `make setup`", file=sys.stderr)
            print("0 passed, 1 failed, 0 skipped")
            return 1
    ext = Path(a.extension).resolve()
    if not ext.exists():
        print(f"run_tests: {ext} is missing: run `make release`", file=sys.stderr)
        print("0 passed, 1 failed, 0 skipped")
        return 1

    sql_files = [] if a.python_only else select_sql(a.k, a.paths)
    py_files = [] if (a.sql_only or a.paths) else pytest_files(a.k)
    base_env = dict(os.environ)
    base_env.update({
        "PAGILA_STAR_EXTENSION": str(ext),
        "PAGILA_STAR_VERSION": cargo_version(REPO / "Cargo.toml"),
        "PAGILA_REPO": str(REPO),
        "TZ": "UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    out(f"run_tests: PostgreSQL {', '.join(pg_versions)} x DuckDB {', '.join(duck_versions)}; "
        f"{len(sql_files)} sqllogictest file(s), {len(py_files)} pytest file(s); extension {ext}")

    results: list[dict] = []
    pytest_results: list[dict] = []
    t_start = time.monotonic()
    status = 0
    pool = cf.ThreadPoolExecutor(max_workers=max(1, a.jobs))
    try:
        with pg.cluster(pg_versions, real=True, gen_scale=a.scale, gen_required=False) as servers:
            for server in servers:
                if server.gen_error:  # counted as a failure; the tests needing PAGILA_GEN_DSN skip
                    results.append({"cell": f"pg{server.version}", "file": "pagila-gen load", "status": "fail",
                                    "reason": server.gen_error})
            jobs = []  # (kind, function, args); Python files first: they are the long ones
            for server in servers:
                for dv in duck_versions:
                    env = dict(base_env, **server.env())
                    env["PAGILA_DUCKDB_VERSION"] = dv
                    env["PAGILA_VENV"] = str(VENVS[dv])
                    env["PAGILA_PYTHON"] = str(VENVS[dv] / "bin" / "python")
                    cell = cell_name(server.version, dv)
                    for f in py_files:
                        jobs.append(("py", run_pytest, (f, env, cell, a.k, a.timeout, a.pytest_args.split())))
                    for f in sql_files:
                        jobs.append(("sql", run_sql_file, (f, env, cell, a.timeout)))
            jobs.sort(key=lambda j: j[0] != "py")
            futures = [(kind, pool.submit(fn, *args)) for kind, fn, args in jobs]
            try:
                for kind, fut in futures:
                    (results if kind == "sql" else pytest_results).append(fut.result())
            except BaseException:
                kill_children()  # before the servers go away under them
                raise
    except pg.Interrupted as e:
        kill_children()
        pool.shutdown(wait=True, cancel_futures=True)
        out(f"run_tests: interrupted (signal {e.args[0]})")
        print(f"{0} passed, {1} failed, {0} skipped")
        return 128 + e.args[0]
    except pg.PgError as e:
        kill_children()
        pool.shutdown(wait=True, cancel_futures=True)
        out(f"run_tests: PostgreSQL setup failed: {pg_redact(str(e))}")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    pool.shutdown(wait=True)

    passed = sum(r["status"] == "pass" for r in results) + sum(r["passed"] for r in pytest_results)
    failed = sum(r["status"] == "fail" for r in results) + sum(r["failed"] for r in pytest_results)
    skipped = sum(r["status"] == "skip" for r in results) + sum(r["skipped"] for r in pytest_results)

    out("")
    out(f"== summary ({time.monotonic() - t_start:.1f}s)")
    cells = [cell_name(p, d) for p in pg_versions for d in duck_versions]
    for cell in cells:
        rs = [r for r in results if r["cell"] == cell]
        ps = [r for r in pytest_results if r["cell"] == cell]
        c = {s: sum(r["status"] == s for r in rs) for s in ("pass", "fail", "skip")}
        line = f"  {cell:22} sql: {c['pass']} passed, {c['fail']} failed, {c['skip']} skipped"
        if ps:
            line += (f" | pytest: {sum(r['passed'] for r in ps)} passed, {sum(r['failed'] for r in ps)} failed, "
                     f"{sum(r['skipped'] for r in ps)} skipped")
        out(line)
    fails = [f"{r['cell']} {r['file']}" for r in results if r["status"] == "fail"]
    fails += [f"{r['cell']} {n}" for r in pytest_results for n in r["failed_names"]]
    if fails:
        out("  failed:")
        for f in fails:
            out(f"    {f}")
    if failed:
        status = 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return status


if __name__ == "__main__":
    pg.install_signal_handlers()
    sys.exit(main())
