#!/usr/bin/env python3
"""Writes pagila_checksums.test and pagila_gen_checksums.test from the catalog of a live Pagila.

    set -a; . build/pg.env; set +a          # PAGILA_DSN, PAGILA_PG_BIN (extension-ci-tools/pg.py up)
    python3 test/sql/extract/gen_checksums.py

Every table (partitions included), view and materialized view of schema public gets: a DuckDB copy made
by pagila_extract, and one checksum per column plus one per whole row, computed from a canonical text
that Postgres and DuckDB both produce identically, compared with the same checksums computed by Postgres
(through pagila_query) on the same snapshot. The .test files contain no expected checksum.
"""
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
NULL = "'<NULL>'"

CATALOG = """
SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), t.typtype,
       format_type(coalesce(nullif(t.typbasetype, 0), t.oid), NULL), c.relispopulated, t.typcategory
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
ORDER BY c.relkind <> 'p', c.relname, a.attnum
"""


def canon(col: str, typ: str, typtype: str, base: str, category: str) -> tuple[str, str]:
    """(Postgres expression, DuckDB expression): the same text for the same value, never NULL."""
    q = '"' + col.replace('"', '""') + '"'
    if typtype == "e" or base in ("smallint", "integer", "bigint", "text", "character varying", "tsvector"):
        pg, dd = f"{q}::text", f"CAST({q} AS VARCHAR)"
    elif base == "numeric":
        # unconstrained numeric arrives as DECIMAL(38,10): compare at that scale
        pg = f"{q}::text" if "(" in typ else f"{q}::numeric(38,10)::text"
        dd = f"CAST({q} AS VARCHAR)"
    elif base == "character":  # concat() uses the output function: keeps char(n) padding
        pg, dd = f"concat({q})", q
    elif base == "boolean":
        pg, dd = f"CASE WHEN {q} THEN 'true' ELSE 'false' END", f"CAST({q} AS VARCHAR)"
    elif base == "date":
        pg, dd = f"({q} - DATE '1970-01-01')::text", f"CAST({q} - DATE '1970-01-01' AS VARCHAR)"
    elif base in ("timestamp with time zone", "timestamp without time zone"):
        pg, dd = f"(extract(epoch FROM {q}) * 1000000)::int8::text", f"CAST(epoch_us({q}) AS VARCHAR)"
    elif base == "bytea":
        pg, dd = f"encode({q}, 'hex')", f"lower(hex({q}))"
    elif base == "text[]":
        pg = f"cardinality({q})::text || ':' || array_to_string({q}, chr(31), {NULL})"
        dd = (f"CAST(len({q}) AS VARCHAR) || ':' || "
              f"array_to_string(list_transform({q}, lambda e: coalesce(e, {NULL})), chr(31))")
    else:
        raise SystemExit(f"gen_checksums: no canonical text for {col} {typ} ({base}): add one")
    return f"CASE WHEN {q} IS NULL THEN {NULL} ELSE {pg} END", f"CASE WHEN {q} IS NULL THEN {NULL} ELSE {dd} END"


def lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def checksum_query(relation: str, cols: list[tuple], table: str, args: str) -> str:
    """DuckDB SQL returning (columns compared, columns that differ, their names) for DuckDB table `table`
    against Postgres relation `relation` (SQL-ready name), read with pagila_query(..., `args`)."""
    canons = [canon(*c[:5]) for c in cols]
    names = [c[0] for c in cols] + ["__row__"]
    pg_exprs = [p for p, _ in canons] + ["concat_ws(chr(30), " + ", ".join(p for p, _ in canons) + ")"]
    dd_exprs = [d for _, d in canons] + ["concat_ws(chr(30), " + ", ".join(d for _, d in canons) + ")"]
    values = ",\n        ".join(f"({lit(n)}, {e})" for n, e in zip(names, pg_exprs))
    pg_sql = (f"SELECT v.col, count(*) AS n, sum(('x' || substr(md5(v.canon), 1, 15))::bit(60)::int8)::text AS h\n"
              f"    FROM {relation} AS t CROSS JOIN LATERAL (VALUES\n        {values}) AS v(col, canon)\n"
              f"    GROUP BY v.col")
    dd_select = ",\n        ".join(f'{e} AS "{n}"' for n, e in zip(names, dd_exprs))
    return f"""WITH pg AS (
    FROM pagila_query({lit(pg_sql)}, {args})
), dd AS (
    SELECT col, count(*) AS n, CAST(sum(CAST('0x' || substr(md5(canon), 1, 15) AS BIGINT)) AS VARCHAR) AS h
    FROM (UNPIVOT (SELECT
        {dd_select}
        FROM "{table}") ON COLUMNS(*) INTO NAME col VALUE canon)
    GROUP BY col
)
SELECT count(*), count(*) FILTER (WHERE bad), string_agg(name, ', ' ORDER BY name) FILTER (WHERE bad)
FROM (SELECT coalesce(pg.col, dd.col) AS name, pg.n IS DISTINCT FROM dd.n OR pg.h IS DISTINCT FROM dd.h AS bad
      FROM pg FULL JOIN dd ON pg.col = dd.col);"""


def count_query(relation: str, table: str, args: str) -> str:
    """DuckDB SQL returning (same row count as Postgres, not empty)."""
    return f"""SELECT d.n = p.n, d.n > 0
FROM (SELECT count(*) AS n FROM "{table}") AS d,
     pagila_query('SELECT count(*) AS n FROM {relation.replace("'", "''")}', {args}) AS p;"""


def relation_block(rel: str, cols: list[tuple], dsn: str, table: str, extract_args: str, snap: str) -> str:
    args = f"dsn := '${{{dsn}}}', snapshot := getvariable('{snap}')"
    return f"""
# ---- {rel} ({len(cols)} columns)

statement ok
CREATE OR REPLACE TABLE "{table}" AS FROM pagila_extract({lit(rel)}, dsn := '${{{dsn}}}'{extract_args});

query II
{count_query("public." + rel, table, args)}
----
true	true

# one row per column (and __row__): how many were compared, how many differ, which
query III
{checksum_query("public." + rel, cols, table, args)}
----
{len(cols) + 1}	0	NULL
"""


def unpopulated_block(rel: str, dsn: str) -> str:
    return f"""
# ---- {rel}: the dump creates it WITH NO DATA, so Postgres refuses to read it; the error says so.
# (a populated materialized view is checked the same way in test/python/test_extract_runtime.py)

statement error
CREATE OR REPLACE TABLE "x_{rel}" AS FROM pagila_extract({lit(rel)}, dsn := '${{{dsn}}}');
----
<REGEX>:.*{rel}.*has not been populated.*REFRESH MATERIALIZED VIEW.*
"""


def main() -> None:
    bindir = os.environ.get("PAGILA_PG_BIN", "/usr/lib/postgresql/15/bin")
    out = subprocess.run([f"{bindir}/psql", "-X", "-A", "-t", "-F", "\t", "-d", os.environ["PAGILA_DSN"], "-c", CATALOG],
                         capture_output=True, text=True, check=True).stdout
    rels: dict[str, tuple[str, list, bool]] = {}
    for line in out.splitlines():
        rel, kind, col, typ, typtype, base, populated, category = line.split("\t")
        rels.setdefault(rel, (kind, [], populated == "t"))[1].append((col, typ, typtype, base, category))
    kinds = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view"}
    head = """# name: test/sql/extract/{name}
# description: {desc}
# group: [pagila_star][extract]
# GENERATED by test/sql/extract/gen_checksums.py from the catalog of the real Pagila: edit that, not this.
#
# Checksums: per column, the sum over rows of the first 60 bits of md5(canonical text), where the canonical
# text is produced identically by Postgres and DuckDB (integers, numerics, enums, text: their text; char(n):
# with its padding; booleans: true/false; dates: days since 1970; timestamps: epoch microseconds; bytea:
# lower hex; text[]: length and elements; NULL: <NULL>); __row__ is the same over all columns of a row, so
# values must also stay together in their rows. Postgres computes its side through pagila_query on the same
# snapshot as the extraction, so concurrent writers cannot make the two sides differ.

require pagila_star

require-env {env}

statement ok
SET VARIABLE snap = (SELECT snapshot_id FROM pagila_snapshot(dsn := '${{{env}}}'));
"""
    tail = """
query I
SELECT released FROM pagila_snapshot_release(getvariable('snap'));
----
true
"""
    body = [head.format(name="pagila_checksums.test", env="PAGILA_DSN",
                        desc="every table, partition, view and materialized view of the real Pagila, extracted by "
                             "pagila_extract, has Postgres' row count and per-column checksums")]
    listing = []
    for rel, (kind, cols, populated) in rels.items():
        listing.append(f"#   {rel:28} {kinds[kind]}{'' if populated else ' (not populated)'}")
        if not populated:
            body.append(unpopulated_block(rel, "PAGILA_DSN"))
            continue
        body.append(relation_block(rel, cols, "PAGILA_DSN", f"x_{rel}", ", snapshot := getvariable('snap')", "snap"))
    body[0] += "\n# relations covered:\n" + "\n".join(listing) + "\n"
    body.append(tail)
    (HERE / "pagila_checksums.test").write_text("".join(body))

    gen = [head.format(name="pagila_gen_checksums.test", env="PAGILA_GEN_DSN",
                       desc="the big tables of the generated Pagila (payment, partitioned; rental) extracted with one "
                            "and with four threads (several connections importing one exported snapshot) have "
                            "Postgres' row counts and checksums")]
    for rel in ("payment", "rental"):
        cols = rels[rel][1]
        for threads in (1, 4):
            gen.append(relation_block(rel, cols, "PAGILA_GEN_DSN", f"g_{rel}_t{threads}",
                                      f", snapshot := getvariable('snap'), threads := {threads}", "snap"))
        # without a snapshot of ours: threads := 4 exports its own; the copies must agree row for row
        gen.append(f"""
statement ok
CREATE OR REPLACE TABLE "g_{rel}_own4" AS FROM pagila_extract('{rel}', dsn := '${{PAGILA_GEN_DSN}}', threads := 4);

statement ok
CREATE OR REPLACE TABLE "g_{rel}_own1" AS FROM pagila_extract('{rel}', dsn := '${{PAGILA_GEN_DSN}}', threads := 1);

query III
SELECT (SELECT count(*) FROM "g_{rel}_own4") = (SELECT count(*) FROM "g_{rel}_own1"),
       (SELECT count(*) FROM (FROM "g_{rel}_own4" EXCEPT ALL FROM "g_{rel}_own1")),
       (SELECT count(*) FROM (FROM "g_{rel}_own1" EXCEPT ALL FROM "g_{rel}_own4"));
----
true	0	0

""")
    gen.append(tail)
    (HERE / "pagila_gen_checksums.test").write_text("".join(gen))


if __name__ == "__main__":
    main()
