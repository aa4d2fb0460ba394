-- pagila_star demo, run by `make demo` from the repository root:
--     PAGILA_DSN='host=… port=… dbname=… user=… password=…' \
--         duckdb -unsigned -bail -f examples/demo.sql
-- The connection string comes from the environment (getenv, a DuckDB CLI function),
-- so no password is written here or shown on a command line.

LOAD 'build/release/pagila_star.duckdb_extension';
.mode duckbox

.print '-- the extension and the DuckDB it runs in'
FROM pagila_star_version();

.print '-- rows straight from Postgres: the first payments (pagila_extract)'
SELECT payment_id, customer_id, amount, payment_date
FROM pagila_extract('payment', dsn := getenv('PAGILA_DSN'))
ORDER BY payment_id
LIMIT 5;

.print '-- build the star: bronze -> silver -> gold, one transaction, one Postgres snapshot'
.print '-- (one row per step; the table below shows the slowest ten and the final ones)'
CREATE TEMP TABLE build_steps AS
FROM pagila_build_star(dsn := getenv('PAGILA_DSN'));
-- Writes the build into the database file now (see README, 'Short-lived processes').
.output /dev/null
CHECKPOINT;
.output
SELECT step, "rows", round(seconds, 3) AS seconds, status
FROM build_steps
ORDER BY seconds DESC
LIMIT 10;
SELECT count(*) AS steps, round(sum(seconds), 2) AS total_seconds,
       count(*) FILTER (WHERE status = 'FINISHED') AS finished
FROM build_steps;

.print '-- row count of each table of the star'
SELECT 'dim_date' AS "table", count(*) AS "rows" FROM gold.dim_date
UNION ALL SELECT 'dim_customer', count(*) FROM gold.dim_customer
UNION ALL SELECT 'dim_film', count(*) FROM gold.dim_film
UNION ALL SELECT 'dim_store', count(*) FROM gold.dim_store
UNION ALL SELECT 'dim_staff', count(*) FROM gold.dim_staff
UNION ALL SELECT 'dim_actor', count(*) FROM gold.dim_actor
UNION ALL SELECT 'dim_category', count(*) FROM gold.dim_category
UNION ALL SELECT 'bridge_film_actor', count(*) FROM gold.bridge_film_actor
UNION ALL SELECT 'bridge_film_category', count(*) FROM gold.bridge_film_category
UNION ALL SELECT 'fact_sales', count(*) FROM gold.fact_sales
UNION ALL SELECT 'fact_rental', count(*) FROM gold.fact_rental
UNION ALL SELECT 'mart_store_rentals', count(*) FROM gold.mart_store_rentals
UNION ALL SELECT 'mart_revenue_monthly', count(*) FROM gold.mart_revenue_monthly;

.print '-- top 5 categories by revenue (a film counts in each of its categories)'
SELECT category, sum(revenue) AS revenue
FROM gold.mart_revenue_monthly
GROUP BY category
ORDER BY revenue DESC
LIMIT 5;

.print '-- revenue by month'
SELECT d.year, d.month, d.month_name, sum(f.amount) AS revenue, count(*) AS payments
FROM gold.fact_sales f JOIN gold.dim_date d USING (date_key)
GROUP BY ALL
ORDER BY d.year, d.month;

.print '-- rentals, returns and average rental hours per store (mart_store_rentals)'
SELECT store_id, city, country, rentals, returns, open_rentals, avg_rental_hours
FROM gold.mart_store_rentals
ORDER BY store_id;

.print '-- the build checked itself; the same checks on demand (pagila_check)'
SELECT count(*) AS checks, count(*) FILTER (WHERE ok) AS passed
FROM pagila_check(dsn := getenv('PAGILA_DSN'));
