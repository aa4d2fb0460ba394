-- pagila_star demo, act 2 (run by `make demo` after the shop has traded for a few seconds):
-- an incremental build reads only what changed since the bookmarks and merges it.
-- Connection: PAGILA_DSN from the environment, as in demo.sql.

LOAD 'build/release/pagila_star.duckdb_extension';
.mode duckbox

.print '-- before: row counts and the bookmarks of the last build'
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM gold.fact_sales) AS fact_sales,
       (SELECT count(*) FROM gold.fact_rental) AS fact_rental,
       (SELECT count(*) FROM gold.fact_rental WHERE is_returned) AS returned,
       (SELECT count(*) FROM gold.dim_customer WHERE customer_key <> -1) AS customer_versions,
       (SELECT max(run_id) FROM gold.pagila_runs) AS last_run;
FROM before;
SELECT source_table, bookmark_column, high_water FROM gold.pagila_bookmarks
WHERE source_table IN ('customer', 'payment', 'rental') ORDER BY source_table;

.print '-- incremental build (detect_deletes): rows read from Postgres per source table, rows merged per model'
CREATE TEMP TABLE inc_steps AS
FROM pagila_build_star(dsn := getenv('PAGILA_DSN'), mode := 'incremental', detect_deletes := true);
-- Writes the build into the database file now (see README, 'Short-lived processes').
.output /dev/null
CHECKPOINT;
.output
SELECT replace(r.step, 'bronze.', '') AS source_table, r."rows" AS rows_read, d."rows" AS rows_deleted
FROM inc_steps r LEFT JOIN inc_steps d ON d.step = replace(r.step, 'bronze.', 'deletes.')
WHERE r.step LIKE 'bronze.%' AND (r."rows" > 0 OR d."rows" > 0) ORDER BY r."rows" DESC;
SELECT step AS model, "rows" AS rows_merged, round(seconds, 3) AS seconds
FROM inc_steps WHERE step LIKE 'gold.%' AND "rows" IS NOT NULL ORDER BY "rows" DESC LIMIT 8;
SELECT count(*) AS steps, round(sum(seconds), 2) AS total_seconds,
       bool_and(status = 'FINISHED') AS all_finished
FROM inc_steps;

.print '-- what changed in the star'
SELECT (SELECT count(*) FROM gold.fact_sales) - fact_sales AS new_payments,
       (SELECT count(*) FROM gold.fact_rental) - fact_rental AS new_rentals,
       (SELECT count(*) FROM gold.fact_rental WHERE is_returned) - returned AS new_returns,
       (SELECT count(*) FROM gold.dim_customer WHERE customer_key <> -1) - customer_versions AS new_customer_versions
FROM before;

.print '-- SCD type 2: customers whose address, store or active flag changed now have several versions'
SELECT customer_id, customer_key, active, city, valid_from, valid_to, is_current
FROM gold.dim_customer
WHERE customer_id IN (
    SELECT customer_id FROM gold.dim_customer
    WHERE customer_id IS NOT NULL GROUP BY customer_id HAVING count(*) > 1 LIMIT 3)
ORDER BY customer_id, valid_from;

.print '-- and the checks still pass'
SELECT count(*) AS checks, count(*) FILTER (WHERE ok) AS passed
FROM pagila_check(dsn := getenv('PAGILA_DSN'));
