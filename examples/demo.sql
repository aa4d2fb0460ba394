-- pagila_star demo, run by `make demo` from the repository root:
--     PAGILA_DSN='host=… port=… dbname=… user=… password=…' \
--         duckdb -unsigned -echo -bail -f examples/demo.sql
-- The connection string comes from the environment (getenv, a DuckDB CLI function),
-- so no password is written here or shown on a command line.

LOAD 'build/release/pagila_star.duckdb_extension';

SET VARIABLE pagila_dsn = getenv('PAGILA_DSN');

FROM pagila_star_version();
