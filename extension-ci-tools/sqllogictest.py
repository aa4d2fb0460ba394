#!/usr/bin/env python3
"""A sqllogictest runner for pagila_star, in DuckDB's dialect, on the `duckdb` Python package.

Run it with the python of the venv whose DuckDB you want to test:

    build/venv/duckdb-2.0.0/bin/python extension-ci-tools/sqllogictest.py test/sql/version.test [...]

Supported records (see test/README.md for examples):
  # comment
  require pagila_star          LOAD the extension from $PAGILA_STAR_EXTENSION (a failure fails the file)
  require <ext>                LOAD <ext>; skip the file when that fails
  require vector_size N / notwindows / skip_reload
  require-env NAME [VALUE]     skip the file unless NAME is set (and equals VALUE)
  test-env NAME VALUE          NAME defaults to VALUE when unset
  statement ok|error|maybe [connection]
  query <types> [nosort|rowsort|valuesort] [label]
  load [path|:memory:] [readonly]   open a database (deleted first unless readonly)
  restart                      reopen the current database (extensions are loaded again)
  mode skip / mode unskip      skip the records in between
  skipif duckdb / onlyif X     before a record
  loop VAR FROM TO / foreach VAR v1 v2 ... / endloop
  halt, hash-threshold, sleep N [unit]

Substitutions in SQL, expected errors and expected values: ${VAR} (loop variables, then
environment variables), __TEST_DIR__ (a fresh temporary folder per file),
__WORKING_DIRECTORY__.

Values are compared as DuckDB prints them: each column CAST to VARCHAR by DuckDB itself,
NULL as NULL, '' as (empty); FLOAT/DOUBLE within 1% (as DuckDB's runner), DECIMAL and
integers numerically. Expected rows are tab-separated, or one value per line.

Exit status: 0 when every file passed or was skipped, 1 when any failed, 2 on bad usage.
--json FILE writes [{"file", "status": pass|fail|skip, "reason", "records"}, ...].
"""
from __future__ import annotations

import argparse
import decimal
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import duckdb

SECRET_ENV = ("PAGILA_PG_PASSWORD",)


class SkipFile(Exception):
    pass


class TestFailure(Exception):
    pass


@dataclass
class Record:
    kind: str  # statement | query | command
    line: int  # 1-based line of the header
    header: list[str]
    sql: str = ""
    expected: list[str] | None = None  # lines after ----, None when there is no ----
    conditions: list[tuple[str, str]] = field(default_factory=list)  # (skipif|onlyif, engine)
    body: list["Record"] = field(default_factory=list)  # loops


# ----------------------------------------------------------------------------- parsing

COMMANDS = {"require", "require-env", "test-env", "load", "restart", "mode", "loop", "foreach", "endloop",
            "halt", "hash-threshold", "sleep", "set", "concurrentloop", "concurrentforeach", "reconnect", "unzip"}


def parse(text: str, path: str) -> list[Record]:
    lines = text.split("\n")
    records: list[Record] = []
    stack: list[Record] = []
    i, n = 0, len(lines)
    conditions: list[tuple[str, str]] = []

    def add(rec: Record) -> None:
        (stack[-1].body if stack else records).append(rec)

    while i < n:
        raw = lines[i].rstrip("\r")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        toks = stripped.split()
        head = toks[0]
        lineno = i + 1
        if head in ("skipif", "onlyif"):
            conditions.append((head, toks[1] if len(toks) > 1 else ""))
            i += 1
            continue
        if head in ("statement", "query"):
            i += 1
            sql_lines: list[str] = []
            while i < n and lines[i].strip() and lines[i].strip() != "----":
                if not lines[i].lstrip().startswith("#"):
                    sql_lines.append(lines[i].rstrip("\r"))
                i += 1
            expected = None
            if i < n and lines[i].strip() == "----":
                i += 1
                expected = []
                while i < n and lines[i].rstrip("\r") != "":
                    expected.append(lines[i].rstrip("\r"))
                    i += 1
            if not sql_lines:
                raise TestFailure(f"{path}:{lineno}: {head} without SQL")
            add(Record(head, lineno, toks, "\n".join(sql_lines), expected, conditions))
            conditions = []
            continue
        if head not in COMMANDS:
            raise TestFailure(f"{path}:{lineno}: unknown command {head!r}")
        i += 1
        if head in ("loop", "foreach", "concurrentloop", "concurrentforeach"):
            rec = Record("loop", lineno, toks)
            add(rec)
            stack.append(rec)
            continue
        if head == "endloop":
            if not stack:
                raise TestFailure(f"{path}:{lineno}: endloop without loop")
            stack.pop()
            continue
        add(Record("command", lineno, toks, conditions=conditions))
        conditions = []
    if stack:
        raise TestFailure(f"{path}:{stack[-1].line}: loop without endloop")
    return records


# ----------------------------------------------------------------------------- values


def to_strings(rows) -> list[list[str]]:
    out = []
    for row in rows:
        out.append(["NULL" if v is None else ("(empty)" if v == "" else str(v)) for v in row])
    return out


_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
              "UHUGEINT"}


def values_equal(expected: str, actual: str, typ: str) -> bool:
    if expected == actual:
        return True
    if expected == "NULL" or actual == "NULL":
        return False
    t = typ.upper()
    try:
        if t in _FLOAT_TYPES:
            e, a = float(expected), float(actual)
            if e != e and a != a:  # nan
                return True
            return abs(a - e) <= abs(e) * 0.01 + 0.00000001
        if t.startswith("DECIMAL") or t in _INT_TYPES:
            return decimal.Decimal(expected) == decimal.Decimal(actual)
        if t == "BOOLEAN":
            norm = {"1": "true", "0": "false", "t": "true", "f": "false"}
            return norm.get(expected.lower(), expected.lower()) == actual
    except (ValueError, decimal.InvalidOperation):
        return False
    return False


def md5_of(values: list[str]) -> str:
    h = hashlib.md5()
    for v in values:
        h.update(v.encode())
        h.update(b"\n")
    return h.hexdigest()


# ----------------------------------------------------------------------------- runner


class Runner:
    def __init__(self, path: str, verbose: bool = False):
        self.path = path
        self.verbose = verbose
        self.test_dir = tempfile.mkdtemp(prefix="pagila-slt-")
        self.db_path = ":memory:"
        self.readonly = False
        self.db: duckdb.DuckDBPyConnection | None = None
        self.conns: dict[str, duckdb.DuckDBPyConnection] = {}
        self.extensions: list[str] = []  # LOAD targets, replayed on load/restart
        self.env_vars: dict[str, str] = {}
        self.skip_mode = False
        self.labels: dict[str, list[str]] = {}
        self.records_run = 0
        self.halted = False

    # ---- connections
    def open(self) -> None:
        self.close()
        config = {"allow_unsigned_extensions": "true", "autoinstall_known_extensions": "false"}
        if self.readonly:
            config["access_mode"] = "READ_ONLY"
        self.db = duckdb.connect(self.db_path, config=config)
        for ext in self.extensions:
            self.db.execute(f"LOAD '{ext}'")

    def close(self) -> None:
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass
        self.conns.clear()
        if self.db is not None:
            try:
                self.db.close()
            except Exception:
                pass
        self.db = None

    def conn(self, name: str | None) -> duckdb.DuckDBPyConnection:
        if self.db is None:
            self.open()
        if not name:
            return self.db
        if name not in self.conns:
            self.conns[name] = self.db.cursor()
        return self.conns[name]

    # ---- substitution
    def subst(self, text: str, loop_vars: dict[str, str]) -> str:
        text = text.replace("__TEST_DIR__", self.test_dir).replace("__WORKING_DIRECTORY__", os.getcwd())

        def var(m: re.Match) -> str:
            name = m.group(1)
            if name in loop_vars:
                return loop_vars[name]
            if name in os.environ:
                return os.environ[name]
            if name in self.env_vars:
                return self.env_vars[name]
            return m.group(0)

        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", var, text)

    # ---- execution
    def run(self, records: list[Record]) -> None:
        try:
            self.open()
            self.run_block(records, {})
        finally:
            self.close()
            shutil.rmtree(self.test_dir, ignore_errors=True)

    def run_block(self, records: list[Record], loop_vars: dict[str, str]) -> None:
        for rec in records:
            if self.halted:
                return
            if rec.kind == "loop":
                self.run_loop(rec, loop_vars)
                continue
            if rec.kind == "command" and rec.header[0] == "mode":
                arg = rec.header[1] if len(rec.header) > 1 else ""
                if arg == "skip":
                    self.skip_mode = True
                elif arg == "unskip":
                    self.skip_mode = False
                continue
            if self.skip_mode or not self.conditions_hold(rec):
                continue
            try:
                if rec.kind == "command":
                    self.command(rec, loop_vars)
                elif rec.kind == "statement":
                    self.statement(rec, loop_vars)
                else:
                    self.query(rec, loop_vars)
            except (SkipFile, TestFailure):
                raise
            except duckdb.Error as e:
                raise TestFailure(self.describe(rec, f"unexpected error: {e}"))
            self.records_run += 1

    @staticmethod
    def conditions_hold(rec: Record) -> bool:
        for kind, engine in rec.conditions:
            if kind == "skipif" and engine == "duckdb":
                return False
            if kind == "onlyif" and engine != "duckdb":
                return False
        return True

    def run_loop(self, rec: Record, loop_vars: dict[str, str]) -> None:
        toks = [self.subst(t, loop_vars) for t in rec.header]
        name = toks[1]
        if toks[0] in ("loop", "concurrentloop"):
            values = [str(v) for v in range(int(toks[2]), int(toks[3]))]
        else:
            values = []
            for v in toks[2:]:  # DuckDB's shorthands for type lists
                values += {"<integral>": ["tinyint", "smallint", "integer", "bigint", "hugeint"],
                           "<signed>": ["tinyint", "smallint", "integer", "bigint", "hugeint"],
                           "<unsigned>": ["utinyint", "usmallint", "uinteger", "ubigint"],
                           "<numeric>": ["tinyint", "smallint", "integer", "bigint", "hugeint", "float", "double"],
                           }.get(v, [v])
        for v in values:
            self.run_block(rec.body, dict(loop_vars, **{name: v}))

    def command(self, rec: Record, loop_vars: dict[str, str]) -> None:
        toks = [self.subst(t, loop_vars) for t in rec.header]
        head, args = toks[0], toks[1:]
        if head == "require":
            self.require(rec, args)
        elif head == "require-env":
            if not args:
                raise TestFailure(self.describe(rec, "require-env needs a variable name"))
            value = os.environ.get(args[0])
            if value is None:
                raise SkipFile(f"require-env {args[0]}: not set")
            if len(args) > 1 and value != args[1]:
                raise SkipFile(f"require-env {args[0]}: not {args[1]!r}")
        elif head == "test-env":
            if len(args) < 2:
                raise TestFailure(self.describe(rec, "test-env needs NAME VALUE"))
            self.env_vars[args[0]] = os.environ.get(args[0], args[1])
        elif head == "load":
            path = args[0] if args and args[0] != "readonly" else ":memory:"
            self.readonly = "readonly" in args[1:] or args == ["readonly"]
            if path != ":memory:" and not self.readonly:
                for suffix in ("", ".wal"):
                    if os.path.exists(path + suffix):
                        os.remove(path + suffix)
            self.db_path = path
            self.open()
        elif head in ("restart", "reconnect"):
            self.open()
        elif head == "halt":
            self.halted = True
        elif head == "sleep":
            amount = float(args[0]) if args else 0
            unit = args[1] if len(args) > 1 else "second"
            scale = {"millisecond": 1e-3, "milliseconds": 1e-3, "microsecond": 1e-6, "microseconds": 1e-6,
                     "nanosecond": 1e-9, "nanoseconds": 1e-9}.get(unit, 1)
            time.sleep(amount * scale)
        elif head in ("hash-threshold", "set", "unzip"):
            pass
        else:
            raise TestFailure(self.describe(rec, f"unsupported command {head!r}"))

    def require(self, rec: Record, args: list[str]) -> None:
        if not args:
            raise TestFailure(self.describe(rec, "require needs an argument"))
        what = args[0]
        if what == "pagila_star":
            ext = os.environ.get("PAGILA_STAR_EXTENSION")
            if not ext:
                raise TestFailure(self.describe(rec, "PAGILA_STAR_EXTENSION is not set (path of the built extension)"))
            if not os.path.exists(ext):
                raise TestFailure(self.describe(rec, f"PAGILA_STAR_EXTENSION={ext} does not exist (make release)"))
            try:
                self.conn(None).execute(f"LOAD '{ext}'")
            except duckdb.Error as e:
                raise TestFailure(self.describe(rec, f"loading {ext} failed: {e}"))
            self.extensions.append(ext)
        elif what == "vector_size":
            if int(args[1]) > 2048:
                raise SkipFile(f"require vector_size {args[1]}")
        elif what in ("notwindows", "skip_reload", "notmusl", "no_extension_autoloading"):
            pass
        elif what == "windows":
            raise SkipFile("require windows")
        else:
            try:
                self.conn(None).execute(f"LOAD {what}")
            except duckdb.Error as e:
                raise SkipFile(f"require {what}: {str(e).splitlines()[0]}")
            self.extensions.append(what)

    def statement(self, rec: Record, loop_vars: dict[str, str]) -> None:
        mode = rec.header[1] if len(rec.header) > 1 else "ok"
        conn_name = rec.header[2] if len(rec.header) > 2 else None
        sql = self.subst(rec.sql, loop_vars)
        con = self.conn(conn_name)
        if self.verbose:
            print(f"  line {rec.line}: statement {mode}", flush=True)
        try:
            con.execute(sql)
            # Drain the result: DuckDB 2.0 streams, and an error raised after the
            # first chunk would otherwise go unseen.
            try:
                con.fetchall()
            except duckdb.Error as drain:
                if "no open result set" not in str(drain).lower():
                    raise
        except duckdb.Error as e:
            if mode == "ok":
                raise TestFailure(self.describe(rec, f"expected success, got error:\n{e}"))
            self.check_error(rec, str(e), loop_vars, maybe=mode == "maybe")
            return
        if mode == "error":
            raise TestFailure(self.describe(rec, "expected an error, the statement succeeded"))
        if mode not in ("ok", "maybe", "error"):
            raise TestFailure(self.describe(rec, f"unknown statement mode {mode!r}"))

    def check_error(self, rec: Record, message: str, loop_vars: dict[str, str], maybe: bool = False) -> None:
        if not rec.expected:
            return
        want = self.subst("\n".join(rec.expected), loop_vars)
        if want.startswith("<REGEX>:"):
            ok = re.search(want[len("<REGEX>:"):], message, re.DOTALL) is not None
        elif want.startswith("<!REGEX>:"):
            ok = re.search(want[len("<!REGEX>:"):], message, re.DOTALL) is None
        else:
            ok = want in message
        if not ok:
            raise TestFailure(self.describe(rec, f"error message mismatch\nexpected (substring):\n{want}\nactual:\n{message}"))

    def query(self, rec: Record, loop_vars: dict[str, str]) -> None:
        types = rec.header[1] if len(rec.header) > 1 else ""
        sort = "nosort"
        label = None
        for tok in rec.header[2:]:
            if tok in ("nosort", "rowsort", "valuesort", "sort"):
                sort = "rowsort" if tok == "sort" else tok
            else:
                label = tok
        sql = self.subst(rec.sql, loop_vars)
        if self.verbose:
            print(f"  line {rec.line}: query {types}", flush=True)
        con = self.conn(None)
        rel = con.sql(sql)
        if rel is None:
            raise TestFailure(self.describe(rec, "query returned no result (use statement ok)"))
        rows = rel.select(duckdb.SQLExpression("CAST(COLUMNS(*) AS VARCHAR)")).fetchall()
        ncols = len(rel.columns)
        actual = to_strings(rows)
        if types and len(types) != ncols:
            raise TestFailure(self.describe(rec, f"wrong column count: query {types} expects {len(types)}, "
                                                 f"the result has {ncols}\nactual:\n" + self.fmt(actual)))
        if sort == "rowsort":
            actual.sort()
        elif sort == "valuesort":
            flat = sorted(v for row in actual for v in row)
            actual = [flat[i:i + ncols] for i in range(0, len(flat), ncols)] if ncols else []
        flat_actual = [v for row in actual for v in row]
        if label is not None:
            if label in self.labels and self.labels[label] != flat_actual:
                raise TestFailure(self.describe(rec, f"result differs from earlier result labelled {label}"))
            self.labels.setdefault(label, flat_actual)
        if rec.expected is None:
            return
        expected_lines = [self.subst(l, loop_vars) for l in rec.expected]
        if len(expected_lines) == 1:
            m = re.fullmatch(r"(\d+) values hashing to ([0-9a-f]{32})", expected_lines[0].strip())
            if m:
                got = (len(flat_actual), md5_of(flat_actual))
                if got != (int(m.group(1)), m.group(2)):
                    raise TestFailure(self.describe(rec, f"hash mismatch: expected {expected_lines[0]}, "
                                                         f"actual {got[0]} values hashing to {got[1]}"))
                return
        expected = [l.split("\t") for l in expected_lines]
        if ncols > 1 and all(len(r) == 1 for r in expected) and len(expected) == len(actual) * ncols:
            flat = [r[0] for r in expected]  # one value per line
            expected = [flat[i:i + ncols] for i in range(0, len(flat), ncols)]
        col_types = None
        problem = None
        if len(expected) != len(actual):
            problem = f"expected {len(expected)} rows, got {len(actual)}"
        else:
            for r, (erow, arow) in enumerate(zip(expected, actual)):
                if len(erow) != len(arow):
                    problem = f"row {r + 1}: expected {len(erow)} values, got {len(arow)}"
                    break
                for c, (e, a) in enumerate(zip(erow, arow)):
                    if e == a:
                        continue
                    if col_types is None:
                        col_types = [str(t) for t in rel.types]
                    if not values_equal(e, a, col_types[c]):
                        problem = f"row {r + 1}, column {c + 1}: expected {e!r}, got {a!r}"
                        break
                if problem:
                    break
        if problem:
            raise TestFailure(self.describe(rec, f"result mismatch: {problem}\nexpected:\n{self.fmt(expected)}\n"
                                                 f"actual:\n{self.fmt(actual)}"))

    @staticmethod
    def fmt(rows: list[list[str]], limit: int = 40) -> str:
        out = ["    " + "\t".join(r) for r in rows[:limit]]
        if len(rows) > limit:
            out.append(f"    ... ({len(rows) - limit} more rows)")
        return "\n".join(out) if out else "    (no rows)"

    def describe(self, rec: Record, msg: str) -> str:
        sql = "\n".join("    " + l for l in rec.sql.split("\n")) if rec.sql else ""
        head = " ".join(rec.header)
        return f"{self.path}:{rec.line}: {head}\n{sql}\n  {msg}".replace("\n\n", "\n")


def redact(text: str) -> str:
    for name in SECRET_ENV:
        secret = os.environ.get(name)
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text)


def run_file(path: str, verbose: bool = False) -> dict:
    start = time.monotonic()
    result = {"file": path, "status": "pass", "reason": "", "records": 0}
    runner = None
    try:
        with open(path, encoding="utf-8") as f:
            records = parse(f.read(), path)
        runner = Runner(path, verbose)
        runner.run(records)
    except SkipFile as e:
        result.update(status="skip", reason=str(e))
    except TestFailure as e:
        result.update(status="fail", reason=redact(str(e)))
    except Exception:
        result.update(status="fail", reason=redact(f"{path}: runner error:\n{traceback.format_exc()}"))
    if runner is not None:
        result["records"] = runner.records_run
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+")
    p.add_argument("--json", help="write per-file results to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="print each record as it runs")
    a = p.parse_args()
    results = []
    for path in a.files:
        r = run_file(path, a.verbose)
        results.append(r)
        tag = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[r["status"]]
        extra = f" ({r['records']} records, {r['seconds']}s)" if r["status"] == "pass" else ""
        line = f"{tag} {path}{extra}"
        if r["status"] == "skip":
            line += f": {r['reason']}"
        print(line, flush=True)
        if r["status"] == "fail":
            print("    " + r["reason"].replace("\n", "\n    "), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    counts = {s: sum(r["status"] == s for r in results) for s in ("pass", "fail", "skip")}
    print(f"duckdb {duckdb.__version__}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
          flush=True)
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
